"""Sessions that CI runs: ``nox`` runs lint, the test suite once per CPU
backend, the CuPy suite (which says that it skipped where no CUDA device is)
and the documentation build.

    nox                                # everything CI runs
    nox -s "tests(backend='numpy')"    # one backend
    nox -s docs                        # the documentation site, warnings as errors
    bash scripts/gpu_check.sh          # on a GPU node: the CuPy suite and GPU benchmark,
                                       # with the Python at hand, installing nothing
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True

PYPROJECT = nox.project.load_toml("pyproject.toml")
TEST_DEPS = nox.project.dependency_groups(PYPROJECT, "test")
DOCS_DEPS = nox.project.dependency_groups(PYPROJECT, "docs")
# What each backend needs besides the test dependencies. The PyTorch CPU build
# is pinned because it is the one at hand offline; any recent release works.
TORCH = os.environ.get("XGRAD_TORCH_SPEC", "torch==2.13.0")
BACKEND_DEPS = {
    # the numpy session runs the tests that take no backend, among them those that mix
    # libraries on purpose (a torch scalar returned for a NumPy point, a JAX array given
    # to a NumPy network): without torch and jax installed they would never run
    "numpy": [TORCH, "jax"],
    "array_api_strict": ["array-api-strict"],
    "torch": [TORCH],
    "jax": ["jax"],
    "cupy": [],  # chosen by the CUDA version the driver reports
}
ROOT = os.path.dirname(os.path.abspath(__file__))
REPORTS = os.path.join(ROOT, ".nox", "reports")
# One virtualenv for the test sessions of every backend and the docs build: each needs
# PyTorch and JAX (the numpy session's mixed-library tests, the docs' backends page), and
# a virtualenv per session installed PyTorch three times (5.9 GB of .nox, most of the time).
SHARED = os.path.join(ROOT, ".nox", "shared")
SHARED_DEPS = sorted({*TEST_DEPS, *DOCS_DEPS, *(d for deps in BACKEND_DEPS.values() for d in deps)})


def _shared_bin(session: nox.Session, *extra: str) -> str:
    """The bin folder of the shared virtualenv, made and filled once (again when its
    dependencies change, or `extra` ones are asked for), with xgrad installed editable."""
    bin_dir = os.path.join(SHARED, "bin")
    wanted = "\n".join([*SHARED_DEPS, *extra])
    stamp = os.path.join(SHARED, "xgrad-dependencies.txt")
    have = pathlib.Path(stamp).read_text() if os.path.isfile(stamp) else None
    if have is not None and all(line in have.splitlines() for line in wanted.splitlines()):
        return bin_dir
    if not os.path.isdir(bin_dir):
        session.run_install(sys.executable, "-m", "venv", SHARED, external=True)
    pip = os.path.join(bin_dir, "python")
    session.run_install(pip, "-m", "pip", "install", *SHARED_DEPS, *extra, external=True)
    session.run_install(pip, "-m", "pip", "install", "-e", ".", external=True)
    pathlib.Path(stamp).write_text("\n".join(sorted({*wanted.splitlines(), *(have or "").splitlines()})))
    return bin_dir


def _env(backend: str, bin_dir: str) -> dict[str, str]:
    # the data: the copy of MNIST shipped in xgrad/_data, or XGRAD_DATA_DIR where it is set
    # (CI sets it, for Fashion-MNIST); the tests that need more say so when they skip
    env = {"XGRAD_TEST_BACKENDS": backend, "VIRTUAL_ENV": SHARED,
           "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    if backend != "numpy":  # backend-independent tests ran in the numpy session
        env["XGRAD_TEST_BACKEND_ONLY"] = "1"
    return env


def _cuda_major() -> int | None:
    """The CUDA major version the NVIDIA driver supports, or None without a GPU."""
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(["nvidia-smi"], capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    marker = "CUDA Version:"
    if marker not in out or "GPU" not in out:
        return None
    return int(out.split(marker, 1)[1].split(".", 1)[0])


@nox.session
def lint(session: nox.Session) -> None:
    """ruff on everything, mypy on the package's typed public API."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "lint"))
    session.install("-e", ".")
    session.run("ruff", "check", ".")
    session.run("mypy")


@nox.session(venv_backend="none")
@nox.parametrize("backend", list(BACKEND_DEPS))
def tests(session: nox.Session, backend: str) -> None:
    """The test suite with the `backend` fixture set to one backend (in the shared virtualenv)."""
    extra: list[str] = []
    if backend == "cupy":
        major = _cuda_major()
        if major is None:
            session.skip("no CUDA device (nvidia-smi finds no GPU); the CuPy suite needs one")
        extra = [f"cupy-cuda{13 if major >= 13 else 12}x"]
    bin_dir = _shared_bin(session, *extra)
    args = session.posargs or (["tests", "xgrad"] if backend == "numpy" else ["tests"])
    report = os.path.join(REPORTS, f"tests-{backend}.xml")
    # pytest's exit status 5 (no tests collected) fails the session like a failed test
    session.run(os.path.join(bin_dir, "pytest"), *args, f"--junitxml={report}", env=_env(backend, bin_dir),
                external=True)


@nox.session(venv_backend="none")
def docs(session: nox.Session) -> None:
    """Build the site with warnings as errors; the figures are drawn by the build."""
    # every CPU backend (in the shared virtualenv), so that the backends page can say what runs where
    bin_dir = _shared_bin(session)
    env = {"VIRTUAL_ENV": SHARED, "PATH": bin_dir + os.pathsep + os.environ["PATH"]}
    session.run(os.path.join(bin_dir, "sphinx-build"), "-W", "--keep-going", "-b", "html", "docs",
                "docs/_build/html", env=env, external=True)
    # the built pages as a phone and a desktop show them: figure label sizes, tables, maths, copy buttons
    session.run(os.path.join(bin_dir, "pytest"), "-q", "-p", "no:cacheprovider", "tests/test_site.py",
                env={**env, "XGRAD_DOCS_HTML": "docs/_build/html"}, external=True)
