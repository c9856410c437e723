"""Numerical gradients of expensive functions, spread over an executor.

When one evaluation of `f` takes seconds, the ``2 * x.size`` evaluations of a
central-difference gradient are worth spreading over cores or machines.
:func:`executor_gradient` cuts the coordinates into chunks and sends each chunk
to any :class:`concurrent.futures.Executor` (a thread or process pool, or a
Dask client's ``get_executor()``); each task builds its perturbed points
itself and returns the derivatives of its chunk. Each task runs the kernel
that the serial path runs (``_numerics/partials.py``), so the gradient is the
same, bit for bit, as without an executor.

Memory stays bounded: at most a fixed number of tasks (each holding a copy of
`x` and of the steps) are in flight at once; the next chunk is sent when one
comes back.
"""

from __future__ import annotations

import concurrent.futures
import math
from collections.abc import Callable
from typing import Any

from xgrad._infra.typing import Array, Namespace
from xgrad._infra.validate import check_count
from xgrad._numerics.diff import VECTORIZED_ELEMENTS, steps_for
from xgrad._numerics.partials import center_value, derivatives, loop_partials, vectorized_partials

_TASKS = 256  # the default chunk cuts the coordinates into about this many tasks
_IN_FLIGHT_BYTES = 2**28  # copies of x and of the steps held by tasks in flight, at most
_MAX_IN_FLIGHT = 256


def executor_gradient(
    f: Callable[[Array], Array], x: Array, xp: Namespace, h: float | None, method: str, executor: Any, *,
    chunk_size: int | None = None, vectorized: bool = False,
) -> Array:
    """The gradient of `f` at the point `x`, its chunks computed on `executor`.

    `chunk_size` coordinates go to each task (by default about ``x.size / 256``,
    and no more than the serial vectorized path would stack at once).
    """
    if not isinstance(executor, concurrent.futures.Executor):
        raise TypeError("`executor` must be a concurrent.futures.Executor (a thread or process pool, or a Dask "
                        f"client's get_executor()); got {type(executor).__name__}")
    n = math.prod(x.shape)
    if n == 0:
        return xp.zeros_like(x)
    chunk = _chunk(n, chunk_size, vectorized)
    steps = xp.reshape(steps_for(xp, x, h, method), (-1,))
    # f(x), once, here: as the serial path does
    mid: Any = None if method == "central" else center_value(f, x, xp, vectorized)
    bounds = [(start, min(start + chunk, n)) for start in range(0, n, chunk)]
    itemsize = xp.finfo(x.dtype).bits // 8
    window = max(1, min(_MAX_IN_FLIGHT, _IN_FLIGHT_BYTES // (2 * n * itemsize)))
    kernel = vectorized_partials if vectorized else loop_partials
    parts = _map_bounded(executor, lambda b: (derivatives, kernel, f, x, steps, mid, b[0], b[1], method), bounds,
                         window)
    return xp.reshape(xp.concat(parts), x.shape)


def _chunk(n: int, chunk_size: int | None, vectorized: bool) -> int:
    if chunk_size is not None:
        return check_count(chunk_size, "chunk_size", minimum=1)
    chunk = max(1, -(-n // _TASKS))
    return min(chunk, VECTORIZED_ELEMENTS // n or 1) if vectorized else chunk


def _map_bounded(executor: Any, args_of: Callable[[Any], tuple[Any, ...]], items: list[Any], window: int) -> list[Any]:
    """``[fn(*rest) for (fn, *rest) in map(args_of, items)]`` on `executor`,
    at most `window` tasks submitted and unfinished at any time."""
    results: list[Any] = [None] * len(items)
    pending: dict[concurrent.futures.Future[Any], int] = {}
    following = iter(range(len(items)))
    try:
        for i in following:
            pending[executor.submit(*args_of(items[i]))] = i
            if len(pending) >= window:
                break
        while pending:
            done, _ = concurrent.futures.wait(pending, return_when=concurrent.futures.FIRST_COMPLETED)
            for future in done:
                results[pending.pop(future)] = future.result()
                following_i = next(following, None)
                if following_i is not None:
                    pending[executor.submit(*args_of(items[following_i]))] = following_i
    finally:
        for future in pending:
            future.cancel()
    return results

