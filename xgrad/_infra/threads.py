"""CPU thread limits for a backend's thread pools, inside a block.

Small matrix products (the book's network) run faster on one thread than on
several, and much steadier when other processes compete for the cores: idle
pool threads spin and wait on each other. :func:`thread_limits` limits every
pool a backend computes with and restores it on exit.
"""

from __future__ import annotations

import contextlib
import operator
import os
import statistics
import time
import warnings
from collections.abc import Iterator
from typing import Any

from xgrad._infra.backend import Backend, library, normalise_name

__all__ = ["blas_threads", "free_cores", "thread_limits"]


def check_threads(threads: Any, *, auto: bool = False) -> int | str | None:
    """`threads` as a positive int, None, or (with `auto`, as ``train`` takes
    it) ``"auto"``; the one check of a thread count, for ``train``, the
    command line and :func:`thread_limits`.

    Raises TypeError for the wrong kind (a bool, a float, other text) and
    ValueError for a count below 1, both saying what is allowed.
    """
    allowed = "a positive integer, 'auto' or None" if auto else "a positive integer or None"
    if threads is None or (auto and isinstance(threads, str) and threads == "auto"):
        return threads
    try:
        count = None if isinstance(threads, bool) else operator.index(threads)
    except TypeError:
        count = None
    if count is None:
        hint = " ('auto' is chosen by xgrad.train from the network's size)" if threads == "auto" else ""
        raise TypeError(f"`threads` must be {allowed}; got {type(threads).__name__} {threads!r}{hint}")
    if count < 1:
        raise ValueError(f"`threads` must be {allowed}; got {count}")
    return count


def free_cores(*, samples: int = 5, interval: float = 0.01) -> float:
    """How many of the cores this process may run on are not busy with other
    work now: the cores it may use, less the tasks running or waiting to run
    beside it.

    On Linux the running tasks are counted from ``/proc/loadavg`` (its
    fourth field, a count of now, not an average), `samples` times
    `interval` seconds apart, and the median is taken, so that one short
    task does not count; elsewhere the one-minute load average stands in for
    them. Tasks on cores this process may not use count too, so the answer
    errs towards busy. Where neither can be read, no core is free (0.0).

    Examples
    --------
    >>> from xgrad._infra.threads import free_cores
    >>> free_cores() <= len(os.sched_getaffinity(0))
    True
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    counts = []
    for i in range(samples):
        if i:
            time.sleep(interval)
        try:
            with open("/proc/loadavg") as f:
                running = f.read().split()[3].partition("/")[0]
            counts.append(int(running) - 1)  # less this process, running as it reads
        except (OSError, IndexError, ValueError):
            break
    if counts:
        return float(cores - statistics.median(counts))
    try:
        return cores - os.getloadavg()[0]
    except OSError:
        return 0.0


def _backend_name(backend: Any) -> str:
    if isinstance(backend, Backend):
        return backend.name
    if not isinstance(backend, str):
        raise TypeError(f"`backend` must be a string such as 'numpy' or a Backend; got {type(backend).__name__}")
    return normalise_name(backend, auto=False)


@contextlib.contextmanager
def thread_limits(threads: int | None, *, backend: str | Backend = "numpy") -> Iterator[None]:
    """Limit the CPU thread pools that `backend` computes with, inside a block.

    Parameters
    ----------
    threads : int or None
        Threads per pool; ``None`` leaves every pool as it is.
    backend : str or Backend
        Which backend's pools (one of :data:`BACKENDS`):

        - ``"numpy"``, ``"array_api_strict"``: the BLAS (OpenBLAS, MKL, ...)
          and OpenMP pools that threadpoolctl finds in the process.
        - ``"torch"``: the same, and PyTorch's intra-op pool
          (:func:`torch.set_num_threads`, which also sizes its own MKL). The
          inter-op pool is left alone: PyTorch can size it only once per
          process and never undo it, and eager operations do not use it.
        - ``"jax"``: only the pools threadpoolctl finds (NumPy's, used at the
          host edge). XLA sizes its own CPU pools when JAX starts and they
          cannot change afterwards; to limit them, set ``XLA_FLAGS`` (e.g.
          ``--xla_cpu_multi_thread_eigen=false``) before importing jax.
        - ``"cupy"``: nothing; it computes on the GPU.

        Every limit is restored when the block ends, even on error.

    Raises
    ------
    TypeError
        If `threads` is not an int or None (a bool, a float, a string).
    ValueError
        If `threads` is less than 1, or `backend` is not a known name.

    Examples
    --------
    >>> from threadpoolctl import threadpool_info
    >>> from xgrad import thread_limits
    >>> with thread_limits(1, backend="numpy"):
    ...     {pool["num_threads"] for pool in threadpool_info()}
    {1}
    """
    limit = check_threads(threads)
    assert not isinstance(limit, str)  # "auto" is refused without auto=True
    lib = library(_backend_name(backend))
    if limit is None or lib.pools == "gpu":
        yield
        return
    from threadpoolctl import threadpool_limits

    # its own pool first: PyTorch reads its count back from OpenMP, which threadpoolctl changes
    with lib.own_pool(limit) if lib.own_pool else contextlib.nullcontext(), threadpool_limits(limits=limit):
        yield


def blas_threads(limit: int | None) -> contextlib.AbstractContextManager[None]:
    """Limit the BLAS thread pools (OpenBLAS, MKL, ...) inside a block.

    Deprecated, and warns (DeprecationWarning) when called: use
    :func:`xgrad.thread_limits` ``(n, backend=...)``, which limits every CPU
    pool the backend computes with (BLAS, OpenMP and PyTorch's intra-op
    pool), where this limits BLAS alone and leaves PyTorch's own pool as it is.

    ``None`` leaves them as they are.

    Examples
    --------
    The replacement, for the pools NumPy computes with:

    >>> from xgrad import thread_limits
    >>> with thread_limits(1, backend="numpy"):  # was: blas_threads(1)
    ...     pass
    """
    warnings.warn("`blas_threads` is deprecated; use `thread_limits(n, backend=...)`, which limits every CPU "
                  "pool the backend computes with (BLAS, OpenMP and PyTorch's)", DeprecationWarning, stacklevel=2)
    return _blas_limits(limit)


@contextlib.contextmanager
def _blas_limits(limit: int | None) -> Iterator[None]:
    if limit is None:
        yield
        return
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"`limit` (BLAS threads) must be a positive integer or None; got {limit!r}")
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=limit, user_api="blas"):
        yield
