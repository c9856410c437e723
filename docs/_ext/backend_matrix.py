"""Sphinx extension: the "what runs where" table, measured while the docs build.

For every name in ``xgrad._infra.backend.BACKENDS`` it resolves the backend and runs
a few real capability checks on it, then writes the results as a reST table to
``_generated/backend_matrix.inc`` (included by ``backends.rst``). Nothing in the
table is written by hand: rebuilding the docs on another machine (one with a
GPU, say) measures that machine.

The module needs Sphinx only for :func:`setup`; the checks can be run alone::

    python docs/_ext/backend_matrix.py
"""

from __future__ import annotations

import platform
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

PASSES = "passes"
NOT_INSTALLED = "not installed here"
NO_CUDA = "no CUDA device"
OUTPUT = Path("_generated") / "backend_matrix.inc"
_DISTRIBUTIONS = {
    "numpy": "numpy",
    "cupy": "cupy",
    "torch": "torch",
    "jax": "jax",
    "array_api_strict": "array-api-strict",
}
_REASON_LENGTH = 90


@dataclass(frozen=True)
class Row:
    """One backend's line of the table."""

    backend: str
    version: str
    device: str
    checks: dict[str, str]


def _short(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".splitlines()[0]
    return text if len(text) <= _REASON_LENGTH else text[: _REASON_LENGTH - 1] + "…"


def _run(check: Callable[[Any], str | None], backend: Any) -> str:
    """'passes', or 'fails: <reason>'; warnings count as failures."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            problem = check(backend)
    except ImportError as exc:  # a part of xgrad that is not written yet
        return f"not available in this build ({exc.name or exc})"
    except Exception as exc:
        return f"fails: {_short(exc)}"
    return PASSES if problem is None else f"fails: {problem}"


def _host(a: Any) -> Any:
    from xgrad import to_numpy

    return to_numpy(a)


def check_numerical_gradient(b: Any) -> str | None:
    """The numerical gradient of ``sum(x**2)`` is ``2x``."""
    import numpy as np

    from xgrad._numerics.gradient import numerical_gradient

    x = b.asarray(np.array([1.0, -2.0, 3.0]))
    g = numerical_gradient(lambda v: b.xp.sum(v**2), x)
    err = float(np.max(np.abs(_host(g) - 2 * _host(x))))
    return None if err < 1e-3 else f"max error {err:.1e} against 2x"


def check_gradient_descent(b: Any) -> str | None:
    """100 steps with lr=0.1 from (-3, 4) reach the minimum of ``x0² + x1²``."""
    import numpy as np

    from xgrad._numerics.descent import gradient_descent

    x = gradient_descent(lambda v: b.xp.sum(v**2), b.asarray(np.array([-3.0, 4.0])), lr=0.1, step_num=100)
    dist = float(np.linalg.norm(_host(x)))
    return None if dist < 1e-6 else f"ended {dist:.1e} from the minimum"


def check_two_layer_net(b: Any) -> str | None:
    """A float32 TwoLayerNet: finite loss, and its backprop gradient agrees
    with a central difference of the loss along a random direction."""
    import numpy as np

    from xgrad._net.directional import directional_check
    from xgrad._net.net import TwoLayerNet

    net = TwoLayerNet(8, 6, 3, backend=b, dtype="float32", seed=0, weight_init_std=0.5)
    rng = np.random.default_rng(0)
    x = b.asarray(rng.random((5, 8)), dtype=net.dtype)
    t = b.asarray(np.array([0, 1, 2, 1, 0]))
    loss = float(net.loss(x, t))
    if not np.isfinite(loss):
        return f"non-finite loss {loss}"
    rel = directional_check(net, x, t)["rel_error"]
    return None if rel < 1e-2 else f"backprop vs numerical slope: rel. error {rel:.1e}"


CHECKS: dict[str, Callable[[Any], str | None]] = {
    "numerical_gradient": check_numerical_gradient,
    "gradient_descent": check_gradient_descent,
    "TwoLayerNet (float32)": check_two_layer_net,
}


def _version(name: str) -> str:
    try:
        return metadata.version(_DISTRIBUTIONS.get(name, name))
    except metadata.PackageNotFoundError:
        if name == "cupy":  # CuPy wheels are named after the CUDA version
            for dist in metadata.distributions():
                if (dist.metadata["Name"] or "").lower().startswith("cupy"):
                    return dist.version
        return "—"


def _unavailable(message: str) -> str:
    if "not installed" in message:
        return NOT_INSTALLED
    if "CUDA" in message:
        return NO_CUDA
    return f"unavailable: {message[:_REASON_LENGTH]}"


def measure(name: str) -> Row:
    """Resolve backend `name` and run every check on it."""
    from xgrad._infra.backend import BackendUnavailableError, resolve_backend

    try:
        b = resolve_backend(name)
    except BackendUnavailableError as exc:
        status = _unavailable(str(exc))
        return Row(name, _version(name), "—", dict.fromkeys(CHECKS, status))
    checks = {label: _run(check, b) for label, check in CHECKS.items()}
    try:
        device = b.describe().removeprefix(f"{b.name} on ")
    except Exception as exc:
        device = f"? ({_short(exc)})"
    return Row(name, _version(name), device, checks)


def measure_all() -> list[Row]:
    from xgrad._infra.backend import BACKENDS

    return [measure(name) for name in BACKENDS]


REPORTS = Path(__file__).resolve().parents[2] / ".nox" / "reports"


def suite_result(name: str, reports: Path = REPORTS) -> str:
    """The test suite's outcome on backend `name`, from the JUnit report its
    nox session wrote (``nox`` runs the docs build after the test sessions)."""
    import xml.etree.ElementTree as ET

    path = reports / f"tests-{name}.xml"
    if not path.exists():
        return "not run with this build"
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for suite in ET.parse(path).getroot().iter("testsuite"):
        for key in counts:
            counts[key] += int(suite.get(key, 0))
    failed = counts["failures"] + counts["errors"]
    passed = counts["tests"] - failed - counts["skipped"]
    return f"{passed} passed, {failed} failed, {counts['skipped']} skipped"


def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("*", "\\*").replace("`", "'").replace("|", "/")


def short_device(device: str) -> str:
    """``array_api_strict.Device('CPU_DEVICE')`` -> ``CPU_DEVICE``: the name, not the repr."""
    match = re.fullmatch(r"[\w.]*Device\('([^']*)'\)", device)
    return match.group(1) if match else device


def checks_cell(checks: dict[str, str]) -> str:
    """One cell for all checks: their common status, or each check that differs."""
    statuses = set(checks.values())
    if statuses == {PASSES}:
        return f"all {len(checks)} pass"
    if len(statuses) == 1:
        return statuses.pop()
    return "; ".join(f"{label}: {status}" for label, status in checks.items() if status != PASSES)


def _backend_cell(row: Row) -> str:
    name = row.backend if row.version == "—" else f"{row.backend} {row.version}"
    return name if row.device == "—" else f"{name} on {short_device(row.device)}"


def render(rows: list[Row]) -> str:
    """The rows as a reST ``list-table`` of three columns, narrow enough for a phone."""
    header = ["Backend, device", "Checks", "Test suite"]
    lines = [
        ".. list-table:: Measured on the machine that built this page "
        f"(Python {platform.python_version()}, {platform.system()} {platform.machine()})",
        "   :header-rows: 1",
        "   :widths: 30 35 35",
        "",
    ]
    body = ([_backend_cell(r), checks_cell(r.checks), suite_result(r.backend)] for r in rows)
    for cells in [header, *body]:
        lines.append(f"   * - {_cell(cells[0])}")
        lines.extend(f"     - {_cell(c)}" for c in cells[1:])
    return "\n".join(lines) + "\n"


def suite_source(reports: Path = REPORTS) -> str:
    """A sentence saying where the test-suite column comes from."""
    found = sorted(reports.glob("tests-*.xml")) if reports.is_dir() else []
    if not found:
        return ("*Test suite*: no test session of ``nox`` has run in this checkout, so the column "
                "says *not run with this build*. ``nox`` with no arguments runs every test "
                "session first and this build last; ``nox -s docs`` alone runs no tests.")
    newest = max(f.stat().st_mtime for f in found)
    when = datetime.fromtimestamp(newest, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (f"*Test suite*: counts from the JUnit reports that ``nox``'s test sessions wrote to "
            f"``.nox/reports/`` in this checkout, the newest at {when}; a backend whose session "
            "did not run says *not run with this build*.")


GPU_RECORD = Path(__file__).resolve().parents[1] / "_data" / "gpu"


def render_gpu(record: Path = GPU_RECORD) -> str:
    """The recorded GPU run (``scripts/gpu_check.sh docs/_data/gpu``), or how to record one."""
    how = ("On a machine with an NVIDIA GPU and CuPy, ``bash scripts/gpu_check.sh docs/_data/gpu`` "
           "runs the test suite on CuPy and the GPU benchmark; commit ``docs/_data/gpu/`` and the "
           "next build shows the run here.")
    device_txt = record / "device.txt"
    if not device_txt.exists():
        return f"**GPU**: no GPU run recorded yet. {how}\n"
    device = next((line.strip() for line in device_txt.read_text().splitlines() if line.strip()), "?")
    suite = suite_result("cupy", record).replace("not run with this build", "no report recorded")
    when = datetime.fromtimestamp((record / "device.txt").stat().st_mtime, tz=timezone.utc).date()
    return (f"**GPU** (recorded run, not measured by this build; files in ``docs/_data/gpu/``): "
            f"{_cell(device)}; CuPy test suite: {suite}; recorded {when}. {how}\n")


def write(srcdir: str | Path) -> Path:
    """Measure and write the table under `srcdir`; unchanged text is not rewritten."""
    out = Path(srcdir) / OUTPUT
    text = "\n\n".join([render(measure_all()), suite_source(), render_gpu()])
    out.parent.mkdir(parents=True, exist_ok=True)
    if not out.exists() or out.read_text(encoding="utf-8") != text:
        out.write_text(text, encoding="utf-8")
    return out


def _on_builder_inited(app: Any) -> None:
    write(app.srcdir)


def setup(app: Any) -> dict[str, Any]:
    app.connect("builder-inited", _on_builder_inited)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}


if __name__ == "__main__":
    print(render(measure_all()))
