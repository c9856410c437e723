"""Ctrl-C and SIGTERM as requests to stop cleanly, for the length of a run.

While a run is in progress, the first SIGINT (Ctrl-C) or SIGTERM (what ``kill``
and job schedulers send) only sets a flag: the run finishes the iteration,
evaluation or file write it is in, then stops and keeps what it has done. A
second signal stops at once (KeyboardInterrupt). Outside a run nothing changes.
In threads other than the main one (a Dask worker's), no signal reaches a run:
:func:`stop_threads` asks those runs to stop instead.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["StopRequest", "Terminated", "stop_signals", "stop_threads"]


EXIT_CODES = {"SIGINT": 130, "SIGTERM": 143}
"""Exit statuses of a command stopped by each signal (128 + the signal number)."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where a second one arrives before the run could stop."""


class StopRequest:
    """The name of the first stop signal received (``"SIGINT"``, ``"SIGTERM"``), or None."""

    def __init__(self) -> None:
        self.signal: str | None = None

    def __bool__(self) -> bool:
        return self.signal is not None


_active: StopRequest | None = None
_in_threads: set[StopRequest] = set()  # the requests of the runs in progress in other threads


@contextlib.contextmanager
def stop_signals() -> Iterator[StopRequest]:
    """Turn SIGINT and SIGTERM into a :class:`StopRequest` while in the block.

    Signals the process ignores stay ignored; the previous handlers are put
    back on leaving. In a thread other than the main one (where Python cannot
    install handlers) the request never fires and Ctrl-C raises as usual.

    Examples
    --------
    >>> import os, signal
    >>> from xgrad._infra.signals import stop_signals
    >>> with stop_signals() as stop:
    ...     os.kill(os.getpid(), signal.SIGTERM)
    ...     print(stop.signal)
    SIGTERM
    """
    global _active
    if threading.current_thread() is not threading.main_thread():
        request = StopRequest()
        _in_threads.add(request)
        try:
            yield request
        finally:
            _in_threads.discard(request)
        return
    if _active is not None:  # nested (the command around a run): one request for both
        yield _active
        return
    stop = _active = StopRequest()

    def handler(signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if stop.signal is not None:  # asked twice: stop now
            raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()
        stop.signal = name  # nothing else here: printing from a handler can re-enter a write to stderr

    previous: dict[int, Any] = {}
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            old = signal.getsignal(sig)
            if old is not signal.SIG_IGN:
                previous[sig] = old
                signal.signal(sig, handler)
        yield stop
    finally:
        _active = None
        for signum, old in previous.items():
            signal.signal(signum, signal.SIG_DFL if old is None else old)


def stop_threads(name: str = "SIGTERM") -> int:
    """Ask every run in progress in a thread other than the main one to stop, as
    the signal `name` asks the main thread's (a Dask worker closing calls it);
    returns how many were asked.

    Examples
    --------
    >>> import threading
    >>> from xgrad._infra.signals import stop_signals, stop_threads
    >>> seen = []
    >>> def run():
    ...     with stop_signals() as stop:
    ...         started.set()
    ...         asked.wait()
    ...         seen.append(stop.signal)
    >>> started, asked = threading.Event(), threading.Event()
    >>> thread = threading.Thread(target=run); thread.start(); started.wait()
    True
    >>> stop_threads(), asked.set(), thread.join(), seen
    (1, None, None, ['SIGTERM'])
    """
    requests = list(_in_threads)
    for request in requests:
        request.signal = request.signal or name
    return len(requests)
