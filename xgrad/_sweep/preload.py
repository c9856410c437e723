"""What each worker of the local cluster a sweep starts runs first and last (a Dask preload).

Ctrl-C in a terminal, and SIGTERM from a job scheduler, reach every process of
the command: the sweep's own process stops the runs and closes the cluster, so
its workers ignore both (a worker whose parent goes away exits at once, a Dask
rule). Once the sweep is over, a run in progress, whose result nobody waits
for any more, is asked to stop (or Dask would wait for it as the worker
closes, then kill the worker), and the worker closes without a word: the
sweep has said what happened in one line.
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from xgrad._infra.signals import stop_threads

__all__ = ["dask_setup", "dask_teardown", "drop_cancelled_on_close", "stop_dropped_runs"]

_CANCELLED_ON_CLOSE = "ended with CancelledError"


def drop_cancelled_on_close(record: logging.LogRecord) -> bool:
    """False for the warning of a worker closed with a task in progress (Dask logs
    it only in ``Worker.close``), True for every other record.

    Examples
    --------
    >>> import logging
    >>> def record(text):
    ...     return logging.LogRecord("distributed.worker.state_machine", logging.WARNING, "", 0, text, (), None)
    >>> drop_cancelled_on_close(record("Async instruction for <Task ...> ended with CancelledError"))
    False
    >>> drop_cancelled_on_close(record("Compute Failed"))
    True
    """
    return _CANCELLED_ON_CLOSE not in record.getMessage()


def dask_setup(worker: Any) -> None:
    """Called by Dask in each worker process as it starts: SIGINT and SIGTERM are
    ignored (the sweep stops the cluster), and the warning of a worker closed with
    a run in progress is dropped."""
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
    logging.getLogger("distributed.worker.state_machine").addFilter(drop_cancelled_on_close)


def stop_dropped_runs(dask_worker: Any = None) -> int:
    """Ask the runs in progress in this worker, whose results nobody waits for any more,
    to stop at their next step, without a word. Returns how many tasks `dask_worker` (as
    ``Client.run`` passes it) is still running, dropped ones included: a run still
    loading its data is asked again on the next call. Without a worker, how many runs
    were asked."""
    logging.getLogger("xgrad").setLevel(logging.ERROR)  # not "interrupted after ... iterations"
    logging.getLogger("distributed").setLevel(logging.CRITICAL)  # nor what the worker says as it closes
    asked = stop_threads("SIGTERM")
    return asked if dask_worker is None else len(dask_worker.state.executing)


def dask_teardown(worker: Any) -> None:
    """Called by Dask as the worker closes, before it waits for the run in progress:
    that run stops at its next step (:func:`stop_dropped_runs`)."""
    stop_dropped_runs()
