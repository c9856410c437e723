"""Where the runs of a sweep go: this process, or a Dask cluster.

A runner has one method, ``map(todo, data, round_)``, that yields the
:class:`SweepRun` of each ``(key, settings)`` in `todo` as it finishes.
:func:`runner` picks one from the `client` argument of :func:`xgrad.sweep`,
and starts (and stops) a local cluster when none is given.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
from collections.abc import Iterator
from typing import Any

from xgrad._infra.backend import visible_gpus
from xgrad._infra.install import install_hint
from xgrad._infra.signals import StopRequest, Terminated, stop_signals
from xgrad._sweep.worker import SweepRun, run_one

ONE_BLAS_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
"""The environment of the workers of a local cluster: runs do not fight over cores."""

QUIET_HTTP = {"dashboard_address": None, "scheduler_kwargs": {"dashboard_address": "127.0.0.1:0"}}
"""No dashboard, and the scheduler's small HTTP server on a free local port (not
8787, which another cluster may hold, with a warning)."""

WORKER_CONFIG = {
    # a training step allocates and frees arrays of a few hundred kB; Dask's
    # default MALLOC_TRIM_THRESHOLD_ turns off glibc's adaptive mmap threshold,
    # so that each of them would be mapped and unmapped again
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
    # the statistical profiler samples the running task every 10 ms
    "distributed.worker.profile.enabled": False,
}
"""Dask settings of the workers of a local cluster started for a sweep."""

_INSTALL = (f'parallel sweeps need Dask: {install_hint("dask")} (or pip install "dask[distributed]"); or pass '
            'client="serial" to run the grid in this process')


def stopped(stop: StopRequest) -> KeyboardInterrupt:
    """The exception that ends a sweep asked to stop: :class:`Terminated` for SIGTERM."""
    what = ("the run in progress is dropped, never stored as finished; the same sweep with the same `out` "
            "reads the finished runs back and does the others")
    return Terminated(what) if stop.signal == "SIGTERM" else KeyboardInterrupt(what)


class _Serial:
    """Runs one after another in this process. Ctrl-C or SIGTERM stops the run in
    progress (train keeps a partial result) and the sweep: that run is dropped, never
    handed on as finished, and the sweep raises KeyboardInterrupt."""

    def map(self, todo: list[tuple[str, dict[str, Any]]], data: Any, round_: int) -> Iterator[SweepRun]:
        with stop_signals() as stop:  # one request for the sweep and the train inside it
            for key, settings in todo:
                if stop:
                    raise stopped(stop)
                run = run_one(key, settings, data, round_)
                if stop:  # cut short (or ended as the signal came): run again on resume
                    raise stopped(stop)
                yield run
            if stop:  # during the last run's file write
                raise stopped(stop)


class _Dask:
    """Runs as Dask tasks, collected as they finish."""

    def __init__(self, client: Any, retries: int) -> None:
        self.client, self.retries = client, retries
        self.data_ref: Any = None
        self.data_id: int | None = None

    def _data(self, data: Any) -> Any:
        if data is None:
            return None
        if self.data_id != id(data):  # sent to every worker once per sweep
            # under a key of its own: a content-hashed key is shared with any other client that
            # scattered the same data, and is lost when that client goes away
            self.data_ref = self.client.scatter([data], broadcast=True, hash=False)[0]
            self.data_id = id(data)
        return self.data_ref

    def map(self, todo: list[tuple[str, dict[str, Any]]], data: Any, round_: int) -> Iterator[SweepRun]:
        from distributed import as_completed

        ref = self._data(data)
        futures = [self.client.submit(run_one, key, s, ref, round_, pure=False, retries=self.retries)
                   for key, s in todo]
        try:
            for future in as_completed(futures):
                yield future.result()
        finally:
            self.client.cancel([f for f in futures if not f.done()])


def local_cluster_kind(gpus: int, dask_cuda: bool) -> str:
    """``"cuda"`` (one worker per GPU) where this machine has GPUs and
    dask_cuda is installed, else ``"cpu"`` (one worker per core).

    Examples
    --------
    >>> local_cluster_kind(2, True), local_cluster_kind(2, False), local_cluster_kind(0, True)
    ('cuda', 'cpu', 'cpu')
    """
    return "cuda" if gpus > 0 and dask_cuda else "cpu"


def cores() -> int:
    """The CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def local_cluster(distributed: Any, n_workers: int | None = None) -> Any:
    """The cluster ``sweep(client=None)`` starts: one single-threaded worker
    process per core (per GPU with dask_cuda), tuned for training runs."""
    import dask

    with dask.config.set(WORKER_CONFIG):  # read by the nannies as they start their workers
        if local_cluster_kind(visible_gpus(), importlib.util.find_spec("dask_cuda") is not None) == "cuda":
            from dask_cuda import LocalCUDACluster

            return LocalCUDACluster(threads_per_worker=1, **QUIET_HTTP)
        return distributed.LocalCluster(n_workers=n_workers or cores(), threads_per_worker=1, processes=True,
                                        env=dict(ONE_BLAS_THREAD), **QUIET_HTTP)


_NO_GUARD = ("xgrad.sweep() starts a local Dask cluster, whose worker processes run {file} again as they start, "
             "and line {line} would start another cluster in each of them; put the sweep under "
             "`if __name__ == \"__main__\":` (see the tutorial), or pass client=\"serial\"")


def check_main_guard() -> None:
    """Refuse, before a local cluster starts, a sweep called from the top level of a script
    without ``if __name__ == "__main__":``: Dask starts its workers with multiprocessing's
    "spawn", which runs the script again in each of them (hundreds of lines of tracebacks)."""
    import sys

    import dask

    if dask.config.get("distributed.worker.multiprocessing-method", "spawn") == "fork":
        return
    main = sys.modules.get("__main__")
    spec_name = getattr(getattr(main, "__spec__", None), "name", None)
    path = getattr(main, "__file__", None)
    if main is None or path is None or (spec_name or "").endswith("__main__"):
        return  # interactive, -c, or a package's __main__: not run again in the workers
    frame: Any = sys._getframe()
    line = None
    while frame is not None:  # the outermost line of the script's own code
        if frame.f_globals is vars(main) and frame.f_code.co_name == "<module>":
            line = frame.f_lineno
        frame = frame.f_back
    if line is None or guarded(path, line):
        return
    raise RuntimeError(_NO_GUARD.format(file=path, line=line))


def guarded(path: str, line: int) -> bool:
    """Whether `line` of the Python file `path` is under ``if __name__ == "__main__":``
    (True where the file cannot be read: nothing is refused on a guess)."""
    import ast

    try:
        with open(path, "rb") as f:
            tree = ast.parse(f.read())
    except (OSError, SyntaxError, ValueError):
        return True

    def main_test(test: ast.expr) -> bool:
        if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
            return False
        sides = [test.left, test.comparators[0]]
        return (any(isinstance(x, ast.Name) and x.id == "__name__" for x in sides)
                and any(isinstance(x, ast.Constant) and x.value == "__main__" for x in sides))

    return any(isinstance(n, ast.If) and main_test(n.test) and n.body[0].lineno <= line <= (n.body[-1].end_lineno
               or line) for n in ast.walk(tree))


DASK_SCHEMES = ("tcp", "tls", "inproc", "ucx", "ucxx", "ws", "wss")
"""The address schemes of Dask's communication layers."""


def check_client(name: str, value: Any, given: Any = None) -> Any:
    """`client` as :func:`runner` takes it: ``"serial"`` in any case, or a scheduler's address
    (``scheme://host:port``, or ``host:port`` for TCP); any other string is refused here, before
    Dask reads it as an address.

    Examples
    --------
    >>> check_client("client", "Serial"), check_client("client", "tcp://10.0.0.2:8786")
    ('serial', 'tcp://10.0.0.2:8786')
    """
    if not isinstance(value, str):
        return value
    if value.strip().lower() == "serial":
        return "serial"
    scheme, sep, rest = value.partition("://")
    if not sep:
        scheme, rest = "tcp", value
    host, colon, port = rest.rpartition(":")
    if scheme in DASK_SCHEMES and (scheme == "inproc" or (colon and host and port.isdigit())):
        return value
    raise ValueError(f"`{name}` {value!r} is neither 'serial' nor a Dask scheduler's address; give 'serial' to "
                     "run in this process, an address such as 'tcp://host:8786', or nothing for a local cluster")


@contextlib.contextmanager
def runner(client: Any, retries: int) -> Iterator[Any]:
    if isinstance(client, str) and client == "serial":
        yield _Serial()
        return
    try:
        import distributed
    except ImportError as exc:
        raise ImportError(_INSTALL) from exc
    if client is None:
        check_main_guard()
        with local_cluster(distributed) as cluster, distributed.Client(cluster) as c:
            yield _Dask(c, retries)
    elif isinstance(client, str):
        with distributed.Client(client) as c:
            yield _Dask(c, retries)
    elif isinstance(client, distributed.Client):
        yield _Dask(client, retries)
    else:
        raise TypeError("`client` must be a dask.distributed.Client, a scheduler address such as "
                        f"'tcp://host:8786', 'serial' or None; got {type(client).__name__}")
