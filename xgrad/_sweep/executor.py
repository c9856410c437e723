"""Where the runs of a sweep go: this process, or a Dask cluster.

A runner has one method, ``map(todo, data, round_)``, that yields the
:class:`SweepRun` of each ``(key, settings)`` in `todo` as it finishes, and
``stream(jobs, data, round_, task)``, that runs ``task(key, job, data,
round_)`` for each ``(key, job)`` that ``jobs()`` hands out (None: none now)
as workers free up, and yields what each returns.
:func:`runner` picks one from the `client` argument of :func:`xgrad.sweep`,
and starts (and stops) a local cluster when none is given.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from xgrad._infra.backend import visible_gpus
from xgrad._infra.install import install_hint
from xgrad._infra.signals import StopRequest, Terminated, stop_signals
from xgrad._sweep.preload import stop_dropped_runs
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

PRELOAD = "xgrad._sweep.preload"
"""What each worker of a local cluster runs as it starts: Ctrl-C in a terminal reaches every
process of the command, and the sweep, not each worker, stops the runs (a worker would print
a traceback, and its nanny would start another)."""

_INSTALL = (f'parallel sweeps need Dask: {install_hint("dask")} (or pip install "dask[distributed]"); or pass '
            'client="serial" to run the grid in this process')


def stopped(stop: StopRequest, many: bool = False) -> KeyboardInterrupt:
    """The exception that ends a sweep asked to stop: :class:`Terminated` for SIGTERM;
    `many` where several runs were in progress (on a cluster)."""
    what = ("the runs in progress are dropped" if many else "the run in progress is dropped") + (
        ", never stored as finished; the same sweep with the same `out` reads the finished runs back and does "
        "the others")
    return Terminated(what) if stop.signal == "SIGTERM" else KeyboardInterrupt(what)


class _Serial:
    """Runs one after another in this process. Ctrl-C or SIGTERM stops the run in
    progress (train keeps a partial result) and the sweep: that run is dropped, never
    handed on as finished, and the sweep raises KeyboardInterrupt."""

    concurrent = False  # one run at a time

    def map(self, todo: Iterable[tuple[str, Any]], data: Any, round_: int, task: Callable[..., Any] | None = None
            ) -> Iterator[Any]:
        with stop_signals() as stop:  # one request for the sweep and the train inside it
            for key, settings in todo:
                if stop:
                    raise stopped(stop)
                run = (task or run_one)(key, settings, data, round_)
                if stop:  # cut short (or ended as the signal came): run again on resume
                    raise stopped(stop)
                yield run
            if stop:  # during the last run's file write
                raise stopped(stop)

    def stream(self, jobs: Callable[[], tuple[str, Any] | None], data: Any, round_: int,
               task: Callable[..., Any]) -> Iterator[Any]:
        """One job after another, asking `jobs` for the next once the last one is handed on."""
        return self.map(iter(jobs, None), data, round_, task)


POLL_SECONDS = 0.05
"""How often the client looks for finished runs and for a request to stop."""


class _Dask:
    """Runs as Dask tasks, collected as they finish. A request to stop (`stop`: Ctrl-C,
    SIGTERM) hands on the runs already finished, cancels the others and raises
    KeyboardInterrupt."""

    concurrent = True

    def __init__(self, client: Any, retries: int, stop: StopRequest) -> None:
        self.client, self.retries, self.stop = client, retries, stop
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
            yield from self._finished(as_completed(futures))
        finally:
            self.client.cancel([f for f in futures if not f.done()])

    def stream(self, jobs: Callable[[], tuple[str, Any] | None], data: Any, round_: int,
               task: Callable[..., Any]) -> Iterator[Any]:
        """As many jobs at once as the cluster has worker threads, asking `jobs` for more as each
        one's result is handed on: a free worker never waits for the others. Asked to stop, it
        hands on what has finished, starts nothing more and cancels the rest."""
        from distributed import as_completed

        ref = self._data(data)
        running = as_completed()
        futures: list[Any] = []

        def fill() -> None:
            while (not self.stop and running.count() < max(sum(self.client.nthreads().values()), 1)
                   and (job := jobs()) is not None):
                futures.append(self.client.submit(task, *job, ref, round_, pure=False, retries=self.retries))
                running.add(futures[-1])

        try:
            fill()
            yield from self._finished(running, fill)
        finally:
            self.client.cancel([f for f in futures if not f.done()])

    def _finished(self, pending: Any, refill: Callable[[], None] | None = None) -> Iterator[Any]:
        """The results of `pending` (Dask's ``as_completed``) as they finish, calling `refill`
        after each batch; asked to stop, only what has finished, then the exception that
        stops the sweep."""
        while not pending.is_empty():
            # polled, not blocking: a signal only sets the flag, and a blocked wait would not see it
            stop = bool(self.stop)
            batch = pending.next_batch(block=False)
            if not batch and not stop:
                time.sleep(POLL_SECONDS)
            for future in batch:
                if not stop or future.status == "finished":  # asked to stop: only what has finished
                    yield future.result()
            if stop:
                raise stopped(self.stop, many=True)
            if refill is not None:
                refill()
        if self.stop:  # during the last run's file write
            raise stopped(self.stop, many=True)


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

            return LocalCUDACluster(threads_per_worker=1, preload=[PRELOAD], **QUIET_HTTP)
        return distributed.LocalCluster(n_workers=n_workers or cores(), threads_per_worker=1, processes=True,
                                        env=dict(ONE_BLAS_THREAD), preload=[PRELOAD], **QUIET_HTTP)


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


def stop_runs(client: Any, seconds: float = 60.0) -> None:
    """Ask the runs still in progress on the workers of a local cluster (dropped: the
    sweep stopped or failed) to stop at their next step, again until no worker runs a
    task, or for `seconds`: Dask would close a busy worker by waiting a few seconds,
    then killing it, with warnings on stderr. Nothing to wait for after a sweep that
    ended well."""
    deadline = time.monotonic() + seconds
    while sum(client.run(stop_dropped_runs, on_error="ignore").values()) and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)


@contextlib.contextmanager
def _local(distributed: Any) -> Iterator[Any]:
    """A client of a local cluster started for the sweep. At the end, the runs left are
    stopped (:func:`stop_runs`), and the cluster closes without a word: what Dask would
    log about its closing, here and in the workers, concerns nothing the sweep keeps."""
    log = logging.getLogger("distributed")
    level = log.level
    try:
        with local_cluster(distributed) as cluster, distributed.Client(cluster) as c:
            try:
                yield c
            finally:
                stop_runs(c)
                log.setLevel(logging.CRITICAL)
    finally:
        log.setLevel(level)


@contextlib.contextmanager
def runner(client: Any, retries: int) -> Iterator[Any]:
    if isinstance(client, str) and client == "serial":
        yield _Serial()
        return
    try:
        import distributed
    except ImportError as exc:
        raise ImportError(_INSTALL) from exc
    if not (client is None or isinstance(client, str)) and not isinstance(client, distributed.Client):
        raise TypeError("`client` must be a dask.distributed.Client, a scheduler address such as "
                        f"'tcp://host:8786', 'serial' or None; got {type(client).__name__}")
    # Ctrl-C and SIGTERM only ask to stop, from the cluster's start to its end: the sweep
    # stops between runs, and the client and the local cluster close as they do after a sweep
    with stop_signals() as stop:
        if client is None:
            check_main_guard()
            with _local(distributed) as c:
                yield _Dask(c, retries, stop)
        elif isinstance(client, str):
            with distributed.Client(client) as c:
                yield _Dask(c, retries, stop)
        else:
            yield _Dask(client, retries, stop)
        if stop:  # as the cluster closed, after the last run
            raise stopped(stop, many=True)
