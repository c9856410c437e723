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
import shutil
import subprocess

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True

PYPROJECT = nox.project.load_toml("pyproject.toml")
TEST_DEPS = nox.project.dependency_groups(PYPROJECT, "test")
# What each backend needs besides the test dependencies. The PyTorch CPU build
# is pinned because it is the one at hand offline; any recent release works.
TORCH = os.environ.get("XGRAD_TORCH_SPEC", "torch==2.13.0")
BACKEND_DEPS = {
    # the numpy session runs the tests that take no backend, among them those that mix
    # libraries on purpose (a torch scalar returned for a NumPy point, a JAX array given
    # to a NumPy network): without torch and jax installed they would never run
    "numpy": [TORCH, "jax"],
    "array_api_strict": [],
    "torch": [TORCH],
    "jax": ["jax"],
    "cupy": [],  # chosen by the CUDA version the driver reports
}
REPORTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), ".nox", "reports")
DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "shared", "datasets")


def _env(backend: str) -> dict[str, str]:
    env = {"XGRAD_TEST_BACKENDS": backend}
    if backend != "numpy":  # backend-independent tests ran in the numpy session
        env["XGRAD_TEST_BACKEND_ONLY"] = "1"
    if "XGRAD_DATA_DIR" not in os.environ and os.path.isdir(DATA_DIR):
        env["XGRAD_DATA_DIR"] = os.path.normpath(DATA_DIR)
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


@nox.session
@nox.parametrize("backend", list(BACKEND_DEPS))
def tests(session: nox.Session, backend: str) -> None:
    """The test suite with the `backend` fixture set to one backend."""
    extra = BACKEND_DEPS[backend]
    if backend == "cupy":
        major = _cuda_major()
        if major is None:
            session.skip("no CUDA device (nvidia-smi finds no GPU); the CuPy suite needs one")
        extra = [f"cupy-cuda{13 if major >= 13 else 12}x"]
    session.install(*TEST_DEPS, *extra)
    session.install("-e", ".")
    args = session.posargs or (["tests", "xgrad"] if backend == "numpy" else ["tests"])
    report = os.path.join(REPORTS, f"tests-{backend}.xml")
    # pytest's exit status 5 (no tests collected) fails the session like a failed test
    session.run("pytest", *args, f"--junitxml={report}", env=_env(backend))


@nox.session
def docs(session: nox.Session) -> None:
    """Build the site with warnings as errors; the figures are drawn by the build."""
    # every CPU backend, so that the backends page can say what runs where
    session.install(*nox.project.dependency_groups(PYPROJECT, "docs"), "array-api-strict",
                    *BACKEND_DEPS["torch"], *BACKEND_DEPS["jax"])
    session.install("-e", ".")
    session.run("sphinx-build", "-W", "--keep-going", "-b", "html", "docs", "docs/_build/html")
    # the built pages as a phone and a desktop show them: figure label sizes, tables, maths, copy buttons
    session.install("pytest")
    session.run("pytest", "-q", "-p", "no:cacheprovider", "tests/test_site.py",
                env={"XGRAD_DOCS_HTML": "docs/_build/html"})
