"""Numerical gradients of expensive functions, spread over an executor.

When one evaluation of `f` takes seconds, the ``2 * x.size`` evaluations of a
central-difference gradient are worth spreading over cores or machines.
:func:`executor_gradient` cuts the coordinates into chunks and sends each chunk
to any :class:`concurrent.futures.Executor` (a thread or process pool, or a
Dask client's ``get_executor()``); each task builds its perturbed points
itself and returns the derivatives of its chunk. Each task computes exactly
what the serial path computes for those coordinates, so the gradient is the
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

import array_api_compat

from xgrad._infra.backend import namespace_of
from xgrad._infra.typing import Array, Namespace
from xgrad._infra.validate import as_scalar, check_count, fresh_copy
from xgrad._numerics.diff import VECTORIZED_ELEMENTS, combine, steps_for
from xgrad._numerics.gradient import flat_point, stack_values

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
    mid: Any = None
    if method != "central":  # f(x), once, here: as the serial path does
        dev = array_api_compat.device(x)
        point = fresh_copy(xp, x)
        value = stack_values(f, xp.reshape(point, (1, *x.shape)), 1, xp, x.dtype) if vectorized else f(point)
        mid = as_scalar(value, xp, dev, x.dtype, "`f`")
    bounds = [(start, min(start + chunk, n)) for start in range(0, n, chunk)]
    itemsize = xp.finfo(x.dtype).bits // 8
    window = max(1, min(_MAX_IN_FLIGHT, _IN_FLIGHT_BYTES // (2 * n * itemsize)))
    task = _vectorized_chunk if vectorized else _loop_chunk
    parts = _map_bounded(executor, lambda b: (task, f, x, steps, mid, b[0], b[1], method), bounds, window)
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


def _loop_chunk(f: Callable[[Array], Array], x: Array, steps: Array, mid: Any, start: int, stop: int,
                method: str) -> Array:
    """Derivatives ``start..stop-1``, one point per call of `f` (on a worker)."""
    xp, dev = namespace_of(x)
    n = math.prod(x.shape)
    flat, positions = xp.reshape(x, (-1,)), xp.arange(n, device=dev)

    def value(point: Array) -> Array:
        return as_scalar(f(point), xp, dev, x.dtype, "`f`")

    diffs = []
    for k in range(start, stop):
        hk = steps[k]
        up = None if method == "backward" else value(flat_point(flat, positions, k, hk, x.shape, xp))
        down = None if method == "forward" else value(flat_point(flat, positions, k, -hk, x.shape, xp))
        diffs.append(combine(up, mid, down, hk, method))
    return xp.stack(diffs)


def _vectorized_chunk(f: Callable[[Array], Array], x: Array, steps: Array, mid: Any, start: int, stop: int,
                      method: str) -> Array:
    """Derivatives ``start..stop-1`` from one call of a vectorized `f` per side."""
    xp, dev = namespace_of(x)
    n = math.prod(x.shape)
    flat, row = xp.reshape(x, (1, n)), xp.reshape(steps, (1, n))
    eye = xp.astype(xp.arange(start, stop, device=dev)[:, None] == xp.arange(n, device=dev)[None, :], x.dtype)
    delta = eye * row
    shape = (stop - start, *x.shape)
    up = None if method == "backward" else stack_values(f, xp.reshape(flat + delta, shape), stop - start, xp, x.dtype)
    down = None if method == "forward" else stack_values(f, xp.reshape(flat - delta, shape), stop - start, xp, x.dtype)
    return combine(up, mid, down, row[0, start:stop], method)
