"""The machine and software a benchmark ran on, for its JSON file.

Every benchmark script that writes JSON adds ``"environment": environment()``,
so that a recorded figure says where, when and with what it was measured: the
CPU model and core count, the load average (the machine may be busy), Python
and library versions, the BLAS and its threads, the commit of the checkout and
the date. The documentation draws its benchmark page from these files.
"""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
_LIBRARIES = ("numpy", "array-api-compat", "torch", "jax", "jaxlib", "cupy-cuda12x", "cupy-cuda13x",
              "array-api-strict", "threadpoolctl", "scipy", "numdifftools")


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux), else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def commit() -> str | None:
    """The checkout's commit, with ``-dirty`` when it has uncommitted changes."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("-dirty" if dirty else "")


def _versions() -> dict[str, str]:
    found = {}
    for name in _LIBRARIES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    try:
        import xgrad

        found["xgrad"] = getattr(xgrad, "__version__", "?")
    except ImportError:
        pass
    return found


def _thread_pools() -> list[dict[str, Any]]:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    keys = ("user_api", "internal_api", "version", "num_threads", "threading_layer")
    return [{k: info.get(k) for k in keys} for info in threadpool_info()]


def environment() -> dict[str, Any]:
    """A JSON-ready record of the machine, the software and the moment."""
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "commit": commit(),
        "machine": platform.machine(),
        "system": f"{platform.system()} {platform.release()}",
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "load_average_1_5_15_min": load,
        "python": platform.python_version(),
        "versions": _versions(),
        "thread_pools": _thread_pools(),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(environment(), indent=2))


def write_json(path: str | os.PathLike[str], payload: Any) -> None:
    """`payload` as compact JSON at `path`, replaced whole (a reader never sees half
    a file), readable by everyone."""
    import json
    import tempfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump(payload, fh, separators=(",", ":"))
        fh.write("\n")
    os.chmod(tmp, 0o644)  # mkstemp makes it private
    os.replace(tmp, path)
