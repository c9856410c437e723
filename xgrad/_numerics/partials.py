"""The partial derivatives of a numerical gradient, a chunk of coordinates at
a time: the one kernel of the serial path (:func:`numerical_gradient`) and of
the executor path (``_numerics/parallel.py``), so that both compute the same
numbers, bit for bit.

A chunk is the coordinates ``start..stop-1`` of the flattened point. The
kernels build each perturbed point from `x` without touching it, evaluate `f`
one point per call or a stack of points per call (a vectorized `f`), and
return the derivatives and the values of `f` they saw. They take only arrays,
numbers and `f`, so that an executor can send them to another process.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import array_api_compat

from xgrad._infra.backend import namespace_of
from xgrad._infra.typing import Array, Namespace
from xgrad._infra.validate import as_scalar, check_result_dtype, fresh_copy
from xgrad._numerics.batched import compiled_own, stacked_values
from xgrad._numerics.diff import combine

__all__ = ["center_value", "derivatives", "flat_point", "loop_partials", "one_per_point", "scalar_of",
           "stack_values", "vectorized_partials"]

Kernel = Callable[..., tuple[Array, list[Array]]]


def flat_point(flat: Array, positions: Array, k: int, delta: Array, shape: tuple[int, ...], xp: Namespace) -> Array:
    """``x + delta * e_k`` from `x` flattened, built without touching `x`."""
    return xp.reshape(xp.where(positions == k, flat + delta, flat), shape)


def scalar_of(f: Callable[[Array], Array], x: Array, xp: Namespace) -> Callable[[Array], Array]:
    """`f` returning a checked 0-d array of `x`'s namespace, device and dtype."""
    dev = array_api_compat.device(x)
    return lambda point: as_scalar(f(point), xp, dev, x.dtype, "`f`")


def stack_values(f: Callable[[Array], Array], points: Array, k: int, xp: Namespace, dtype: Any) -> Array:
    """The `k` values of a vectorized `f` at a stack of `k` points, checked."""
    values = f(points)
    if not hasattr(values, "shape") or tuple(values.shape) != (k,):
        shape = getattr(values, "shape", type(values).__name__)
        raise ValueError(
            "with vectorized=True, `f` must map a stack of points of shape "
            f"(k, *x.shape) to k values of shape ({k},), one per point; got {shape}"
        )
    vxp = array_api_compat.array_namespace(values)
    if vxp is not xp:
        raise TypeError(f"`f` must return an array of the library of `x`; got {type(values).__name__}")
    check_result_dtype(vxp, values.dtype, xp, dtype, "`f`")
    return values if xp.isdtype(values.dtype, "real floating") else xp.astype(values, dtype)


def one_per_point(f: Callable[[Array], Array], first: Array, values: Array, k: int, xp: Namespace) -> None:
    """Refuse a vectorized `f` whose value of a point depends on the other points of the
    stack (one that reduces over the wrong axis): `first`, the first point of a stack of
    `k`, alone must give the value `values[0]` that `f` gave it in the stack, to within
    rounding. One more call of `f`, on one point."""
    alone = stack_values(f, first, 1, xp, values.dtype)
    a, b, eps = float(alone[0]), float(values[0]), float(xp.finfo(values.dtype).eps)
    # a stack may be computed with other roundings than one point: allow for them
    slack = math.sqrt(eps) * (abs(a) + abs(b)) + 64 * eps * float(xp.max(xp.abs(values)))
    if math.isfinite(a) and math.isfinite(b) and not abs(a - b) <= slack:
        raise ValueError(
            "with vectorized=True, `f` must map a stack of points of shape (k, *x.shape) to k values, one per "
            f"point, each depending on its point alone; it gave {b!r} for the first point of a stack of {k} but "
            f"{a!r} for that point alone. Reduce over the axes of x only (axis=tuple(range(1, p.ndim)) for a "
            "stack p), never over the stack's first axis")


def center_value(f: Callable[[Array], Array], x: Array, xp: Namespace, vectorized: bool) -> Array:
    """``f(x)`` at a fresh copy of `x` (so `f` cannot change `x`), as a 0-d array."""
    point = fresh_copy(xp, x)
    if not vectorized:
        return scalar_of(f, x, xp)(point)
    value = stack_values(f, xp.reshape(point, (1, *x.shape)), 1, xp, x.dtype)
    return as_scalar(value, xp, array_api_compat.device(x), x.dtype, "`f`")


def loop_partials(f: Callable[[Array], Array], x: Array, steps: Array, mid: Any, start: int, stop: int,
                  method: str, xp: Namespace) -> tuple[Array, list[Array]]:
    """Derivatives ``start..stop-1`` (``stop > start``), one point per call of `f` (a
    stack of points per call of `f` vectorized, where the library vectorizes it: JAX).

    `steps` is flat, one step per element of `x`; `mid` is ``f(x)`` (None for
    central differences). Also returns the values of `f` at the perturbed
    points (at ``x + h`` where it was evaluated, else at ``x - h``), as they
    came, to be compared with ``f(x)`` only if all the derivatives are zero.
    """
    n = math.prod(x.shape)
    dev = array_api_compat.device(x)
    flat, positions = xp.reshape(x, (-1,)), xp.arange(n, device=dev)
    hk = steps[start:stop]
    sides = [s for s, skip in ((1, "backward"), (-1, "forward")) if method != skip]
    # point 2i (and 2i + 1): coordinate start + i moved up (and down), in the order of the book's loop
    coords = xp.reshape(xp.stack([xp.arange(start, stop, device=dev)] * len(sides), axis=1), (-1,))
    deltas = xp.reshape(xp.stack([s * hk for s in sides], axis=1), (-1,))
    build = compiled_own(_coordinate_points, xp)

    def points(lo: int, hi: int) -> Array:
        whole = (lo, hi) == (0, deltas.shape[0])
        block = build(flat, deltas if whole else deltas[lo:hi], coords if whole else coords[lo:hi], positions)
        return xp.reshape(block, (hi - lo, *x.shape))

    value = scalar_of(lambda v: v, x, xp)  # the checks of a value of f
    # vectorized but not compiled (JAX): the numbers of a vectorized f or of a loop of eager calls, bit for bit
    values = xp.reshape(stacked_values(f, deltas.shape[0], points, value, xp, n, exact=True),
                        (stop - start, len(sides)))
    up = None if method == "backward" else values[:, 0]
    down = None if method == "forward" else values[:, -1]
    return combine(up, mid, down, hk, method), [down if up is None else up]


def _coordinate_points(flat: Array, deltas: Array, coords: Array, positions: Array) -> Array:
    """Point r: `flat` with element ``coords[r]`` moved by ``deltas[r]`` (as :func:`flat_point`)."""
    xp = array_api_compat.array_namespace(flat)
    return xp.where(coords[:, None] == positions[None, :], flat[None, :] + deltas[:, None], flat[None, :])


def vectorized_partials(f: Callable[[Array], Array], x: Array, steps: Array, mid: Any, start: int, stop: int,
                        method: str, xp: Namespace, chunk: int | None = None) -> tuple[Array, list[Array]]:
    """Derivatives ``start..stop-1`` from calls of a vectorized `f` on stacks of
    `chunk` points per side (all of them in one call by default); arguments
    and results as for :func:`loop_partials`.

    One call for all the stacks, rather than one per stack, keeps the
    allocator reusing the memory of the stacks from one to the next.
    """
    dev = array_api_compat.device(x)
    n = math.prod(x.shape)
    flat, row = xp.reshape(x, (1, n)), xp.reshape(steps, (1, n))
    out, seen = [], []
    for a in range(start, stop, chunk or stop - start):
        b = min(a + (chunk or stop - start), stop)
        eye = xp.astype(xp.arange(a, b, device=dev)[:, None] == xp.arange(n, device=dev)[None, :], x.dtype)
        delta = eye * row  # row r perturbs element a + r
        shape = (b - a, *x.shape)
        up = None if method == "backward" else stack_values(f, xp.reshape(flat + delta, shape), b - a, xp, x.dtype)
        down = None if method == "forward" else stack_values(f, xp.reshape(flat - delta, shape), b - a, xp, x.dtype)
        if a == 0 and b > 1:  # once per gradient: the chunk of the first coordinate
            sign, values = (1, up) if up is not None else (-1, down)
            one_per_point(f, xp.reshape(flat + sign * delta[:1, ...], (1, *x.shape)), values, b - a, xp)
        out.append(combine(up, mid, down, row[0, a:b], method))
        seen.append(down if up is None else up)
    return out[0] if len(out) == 1 else xp.concat(out), seen


def derivatives(kernel: Kernel, f: Callable[[Array], Array], x: Array, steps: Array, mid: Any, start: int,
                stop: int, method: str) -> Array:
    """The derivatives of one chunk alone, as an executor's task computes them:
    the namespace is found from `x` there (a module does not travel to another
    process), and the values of `f` stay there."""
    xp, _ = namespace_of(x)
    return kernel(f, x, steps, mid, start, stop, method, xp)[0]
