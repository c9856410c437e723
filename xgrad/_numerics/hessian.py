"""Hessians of scalar functions by second differences, extrapolated.

Entry ``(i, j)`` is the second difference of `f` along ``e_i`` and ``e_j``:
``(f(x+h_i e_i) - 2 f(x) + f(x-h_i e_i)) / h_i**2`` on the diagonal, and the
four-point ``(f(++) - f(+-) - f(-+) + f(--)) / (4 h_i h_j)`` off it, both
with an error in even powers of the step. Every entry of the upper triangle
runs :func:`xgrad.derivative`'s iteration (Richardson extrapolation over
shrinking steps, an error estimate, a status); the lower triangle is its
mirror. An entry that has stopped keeps its step, and its values are not
evaluated again, except on a library with a compiler (JAX), where a round of
every entry is one compiled call: the points, `f` at them, the quotients.
Array API only.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any

import array_api_compat

from xgrad._infra.backend import index_dtype
from xgrad._infra.host import to_numpy
from xgrad._infra.typing import Array, Namespace
from xgrad._infra.validate import as_float_array, check_callable, check_count, same_library_result
from xgrad._numerics import richardson as _richardson
from xgrad._numerics.batched import BLOCK_ELEMENTS, batching_of, compiled_around, compiled_own, stacked_values
from xgrad._numerics.derivative import DerivativeResult
from xgrad._numerics.knobs import check_step_factor, check_tolerance, default_rtol, order_depth

__all__ = ["hessian"]


def _scalar(f: Callable[[Array], Any], point: Array, shape: tuple[int, ...], xp: Namespace) -> Array:
    return _checked(f(xp.reshape(point, shape)), xp, point.dtype, array_api_compat.device(point))


def _checked(value: Any, xp: Namespace, dtype: Any, dev: Any) -> Array:
    """A value of `f` as a 0-d array of `dtype` on `dev`, or a clear error. It holds no
    array, so that a compiled call that checks with it keeps none while `f` lives."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = xp.asarray(value, dtype=dtype, device=dev)
    if not array_api_compat.is_array_api_obj(value) or math.prod(value.shape) != 1:
        got = getattr(value, "shape", type(value).__name__)
        raise ValueError(f"`f` must return a scalar (a number or an array of one element); got {got}")
    return xp.reshape(same_library_result(value, xp, dtype, "`f`"), ())


def _moved_twice(x: Array, steps: Array, cols: Array, index: Array) -> Array:
    """Row r: `x` plus ``steps[r, 0]`` times the unit vector ``cols[r, 0]``, then plus
    ``steps[r, 1]`` times ``cols[r, 1]`` (`index`: the positions of `x`)."""
    xp = array_api_compat.array_namespace(x)
    once = x[None, :] + steps[:, 0:1] * xp.astype(cols[:, 0:1] == index[None, :], x.dtype)
    return once + steps[:, 1:2] * xp.astype(cols[:, 1:2] == index[None, :], x.dtype)


class _Stencils:
    """The second differences of every upper-triangle entry at steps `t`
    (one per entry, times the scale of its variables), evaluating `f` only for
    entries whose step changed since the last call; on a library with a
    compiler, every entry in one compiled call where `f` traces."""

    def __init__(self, f: Callable[[Array], Any], x: Array, scale: Array, pairs: list[tuple[int, int]],
                 xp: Namespace) -> None:
        self.f, self.x, self.xp, self.shape = f, xp.reshape(x, (-1,)), xp, tuple(x.shape)
        self.pairs = pairs
        self.scale = [float(s) for s in to_numpy(xp.reshape(scale, (-1,))).tolist()]
        self.centre: Array | None = None
        self.last: dict[int, tuple[float, float, float, int]] = {}  # entry -> (t, d, r, evaluations)
        self.xs = [float(v) for v in to_numpy(self.x).tolist()]  # read back at once
        dev = array_api_compat.device(x)
        self.index = xp.arange(self.x.shape[0], device=dev)
        self.eps = float(xp.finfo(x.dtype).eps)
        # the round as one compiled call where the library has a compiler, f traces and the points
        # of a round are few enough to build at once (else the host's rounds, in chunks)
        k = 2 if all(i == j for i, j in pairs) else 4  # points per entry: the diagonal's, or those off it
        small = 0 < len(pairs) * k * self.x.shape[0] <= BLOCK_ELEMENTS
        self.traced = _traced_round(f, self.shape, x.dtype, dev, k, xp) if small and batching_of(xp) else None
        if self.traced is not None:
            self.scale_array = xp.reshape(scale, (-1,))
            self.rows = tuple(xp.asarray([p[c] for p in pairs], device=dev) for c in (0, 1))
            self.bonus = {flag: xp.asarray([int(flag)] + [0] * (len(pairs) - 1), dtype=xp.int32, device=dev)
                          for flag in (False, True)}

    def _values(self, moves: list[tuple[tuple[int, float], ...]]) -> list[float]:
        """`f` at `x` moved by each of `moves` (one or two (variable, step) each), in order: the
        points built as one array by one call, the values read back at once (not one element
        at a time, each of which waits for the device)."""
        xp, n = self.xp, self.x.shape[0]
        # a move along one variable is a move along two whose second step is -0.0, which leaves
        # every number as it is (x + -0.0 is x, -0.0 included): one array of each kind, one call
        pairs = [m if len(m) == 2 else (*m, (0, -0.0)) for m in moves]
        dev = array_api_compat.device(self.x)
        cols = xp.asarray([(i, j) for (i, _), (j, _) in pairs], device=dev)
        steps = xp.asarray([(hi, hj) for (_, hi), (_, hj) in pairs], dtype=self.x.dtype, device=dev)
        points = compiled_own(_moved_twice, xp)(self.x, steps, cols, self.index)
        if self.shape != (n,):
            points = xp.reshape(points, (len(moves), *self.shape))
        # f at every point of the round in one compiled call where it traces (JAX), else one call per
        # point, in order: ``sum(triu(nfev))`` counts the points either way
        k = len(moves)
        values = stacked_values(self.f, k, lambda lo, hi: points if hi - lo == k else points[lo:hi, ...],
                                lambda value: _checked(value, xp, self.x.dtype, dev), xp, n)
        return [float(v) for v in to_numpy(values).tolist()]

    def _steps(self, i: int, j: int, t: float) -> tuple[float, float]:
        xi, xj = self.xs[i], self.xs[j]
        return (xi + t * self.scale[i]) - xi, (xj + t * self.scale[j]) - xj

    def _moves(self, i: int, j: int, t: float) -> list[tuple[tuple[int, float], ...]]:
        """The points of entry (i, j) at step `t`: two on the diagonal, four off it."""
        hi, hj = self._steps(i, j, t)
        if i == j:
            return [((i, hi),), ((i, -hi),)]
        return [((i, hi), (j, hj)), ((i, hi), (j, -hj)), ((i, -hi), (j, hj)), ((i, -hi), (j, -hj))]

    def _entry(self, i: int, j: int, t: float, f: list[float]) -> tuple[float, float, int]:
        """Entry (i, j) at step `t` from the values `f` of its points (:func:`_quotients`, on Python floats)."""
        hi, hj = self._steps(i, j, t)
        values = f
        if i == j:
            assert self.centre is not None  # the diagonal's first round made it
            values = [f[0], f[1], float(self.centre)]
        d, r = _quotients(self.xs[i], self.xs[j], hi, hj, values, self.eps, _divide)
        return d, r, len(f)

    def __call__(self, t: Array) -> tuple[Array, Array, Array]:
        xp = self.xp
        first = self.centre is None and any(i == j for i, j in self.pairs)
        if first:
            self.centre = _scalar(self.f, self.x, self.shape, xp)
        if self.traced is not None:  # a library with a compiler: the round in one call, if f traces
            assert self.centre is not None  # the diagonal's first round made it, and the off-diagonal run has it
            out = self.traced(t, self.x, self.scale_array, self.centre, *self.rows, self.bonus[first])
            if out is not None:
                return out
            self.traced = None
        steps = [float(v) for v in to_numpy(t).tolist()]  # read back at once
        todo = [p for p, tp in enumerate(steps) if (self.last.get(p) or (None,))[0] != tp]
        todo_new = [p for p in todo if math.isfinite(steps[p]) and steps[p] != 0]
        moves = {p: self._moves(*self.pairs[p], steps[p]) for p in todo_new}
        flat = self._values([m for p in todo_new for m in moves[p]]) if todo_new else []
        at = 0
        for p in todo:
            tp = steps[p]
            if p in moves:
                k = len(moves[p])
                self.last[p] = (tp, *self._entry(*self.pairs[p], tp, flat[at:at + k]))
                at += k
            else:
                self.last[p] = (tp, math.nan, math.nan, 0)
        d, r, spent = [], [], []
        for p in range(len(self.pairs)):
            tp, dp, rp, ep = self.last[p]
            fresh = p in todo
            d.append(dp)
            r.append(rp)
            spent.append((ep if fresh else 0) + (1 if first and p == 0 else 0))  # the call at x, once
        dev = array_api_compat.device(self.x)
        return (xp.asarray(d, dtype=self.x.dtype, device=dev), xp.asarray(r, dtype=self.x.dtype, device=dev),
                xp.asarray(spent, dtype=xp.int32, device=dev))


def _divide(a: float, b: float) -> float:
    """``a / b`` as the floating-point standard has it: inf or nan where `b` is 0 (a step lost
    in rounding, ``x + t == x``), as on arrays, where Python would raise."""
    try:
        return a / b
    except ZeroDivisionError:
        return math.nan if a == 0 or math.isnan(a) else math.copysign(math.inf, a) * math.copysign(1.0, b)


def _quotients(xi: Any, xj: Any, hi: Any, hj: Any, f: list[Any], eps: float,
               divide: Callable[[Any, Any], Any]) -> tuple[Any, Any]:
    """The second difference of an entry and its rounding bound, from the values `f` of its
    points at the steps `hi`, `hj` of its variables at `xi`, `xj`: ``(up, down, f(x))`` on the
    diagonal, ``(++, +-, -+, --)`` off it. Written once for Python floats and for arrays (the
    entries of a round at once), in the same order of operations; `divide` is ``a / b``."""
    if len(f) == 3:
        up, down, mid = f
        d = divide(up - 2 * mid + down, hi * hi)
        slope = divide(abs(up - down), 2 * abs(hi))
        noise = abs(up) + 2 * abs(mid) + abs(down) + 4 * abs(xi) * slope
        return d, divide(_richardson.ROUNDING_ULPS * eps * noise, hi * hi)
    pp, pm, mp, mm = f
    d = divide(pp - pm - mp + mm, 4 * hi * hj)
    slope = divide(abs(pp - mm), 2 * (abs(hi) + abs(hj)))
    noise = abs(pp) + abs(pm) + abs(mp) + abs(mm) + 4 * (abs(xi) + abs(xj)) * slope
    return d, divide(_richardson.ROUNDING_ULPS * eps * noise, abs(4 * hi * hj))


def _traced_round(f: Callable[[Array], Any], shape: tuple[int, ...], dtype: Any, dev: Any, k: int,
                  xp: Namespace) -> Callable[..., Any]:
    """The entries of a round from their steps `t` in one compiled call (the points, `f` at
    them, the quotients), for a library with a compiler; the call returns None where `f`
    cannot be traced. `k`: 2 points per entry on the diagonal, 4 off it. Every entry is
    evaluated each round (an entry that has stopped is not counted: the iteration adds its
    evaluations only while it is active)."""
    signs = [(1, 0), (-1, 0)] if k == 2 else [(1, 1), (1, -1), (-1, 1), (-1, -1)]
    eps = float(xp.finfo(dtype).eps)
    one = functools.partial(_checked, xp=xp, dtype=dtype, dev=dev)

    def around(values_of: Callable[[Array], Array]) -> Callable[..., Any]:
        def core(t: Array, flat: Array, scale: Array, centre: Array, i: Array, j: Array,
                 bonus: Array) -> tuple[Array, Array, Array]:
            xi, xj = xp.take(flat, i, axis=0), xp.take(flat, j, axis=0)
            hi = (xi + t * xp.take(scale, i, axis=0)) - xi
            hj = (xj + t * xp.take(scale, j, axis=0)) - xj
            index = xp.arange(flat.shape[0], device=dev)
            along_i = xp.astype(i[:, None] == index[None, :], dtype)
            along_j = xp.astype(j[:, None] == index[None, :], dtype)
            # point (p, c): as the host builds it, the second move -0.0 on the diagonal
            points = xp.stack([flat[None, :] + (a * hi)[:, None] * along_i
                               + (b * hj if b else xp.full_like(hj, -0.0))[:, None] * along_j
                               for a, b in signs], axis=1)
            values = xp.reshape(values_of(xp.reshape(points, (-1, *shape))), (t.shape[0], k))
            f = [values[:, c] for c in range(k)] + ([xp.broadcast_to(centre, t.shape)] if k == 2 else [])
            d, r = _quotients(xi, xj, hi, hj, f, eps, lambda a, b: a / b)
            usable = xp.isfinite(t) & (t != 0)
            nan = xp.full_like(d, math.nan)
            spent = xp.where(usable, xp.full_like(bonus, k), xp.zeros_like(bonus)) + bonus
            return xp.where(usable, d, nan), xp.where(usable, r, nan), spent

        return core

    kind = f"hessian {k} {shape} {dtype} {dev}"
    return lambda *args: compiled_around(f, kind, one, around, args, xp)


def hessian(
    f: Callable[[Array], Any],
    x: Any,
    /,
    *,
    rtol: float | None = None,
    atol: float | None = None,
    maxiter: int = 14,
    initial_step: float | None = None,
    step_factor: float | None = None,
    order: int | None = None,
) -> DerivativeResult:
    """Hessian of a scalar function, entry by entry with error control.

    Parameters
    ----------
    f : callable
        A scalar function (a number or a one-element array) of an array of
        the shape of `x`.
    x : array or number
        Where to differentiate.
    rtol, atol : float, optional
        As for :func:`derivative`, per entry; ``rtol`` defaults to
        ``eps**0.7`` (1e-11 in float64). ``atol`` defaults to ``rtol`` times
        the largest diagonal entry (the scale of the matrix): an entry that is
        0, where no relative accuracy is possible, converges when its error
        is that small against the matrix.
    maxiter : int
        At most this many steps per entry.
    initial_step : float, optional
        The first step of every variable; by default a quarter of
        ``max(|x_i|, 1)``.
    step_factor, order : optional
        As for :func:`derivative`, per entry.

    Returns
    -------
    DerivativeResult
        Fields of shape ``x.shape + x.shape``; ``df`` is the Hessian, symmetric
        by construction. ``nfev[i, j]`` counts the evaluations of `f` that
        entry ``(i, j)`` needed (entry ``(0, 0)`` includes the one at `x`);
        ``sum(triu(nfev))`` is the number of calls of `f` where it is called
        once per point. On JAX, an `f` that traces is evaluated at the points
        of every entry in one compiled call per round, those of entries that
        have stopped included, which costs less than a call per point.

    Notes
    -----
    Each diagonal entry costs 2 evaluations of `f` per step and each
    off-diagonal one 4; a smooth function takes 2 to 6 steps per entry, one
    evaluation at `x` comes on top. Rosenbrock's function in 5 variables takes
    109 calls in all (about 4 per entry), ``exp(x0) sin(x1)`` 39.

    Examples
    --------
    >>> import numpy as np
    >>> from xgrad import hessian
    >>> res = hessian(lambda x: x[0]**2 * x[1], np.array([1.0, 2.0]))
    >>> np.round(res.df, 6)
    array([[4., 2.],
           [2., 0.]])
    >>> bool(res.success.all()), int(np.triu(res.nfev).sum())
    (True, 17)
    """
    check_callable(f)
    x, xp, _ = as_float_array(x)
    maxiter = check_count(maxiter, "maxiter", minimum=1)
    rtol, atol = check_tolerance(rtol, "rtol"), check_tolerance(atol, "atol")
    h0 = check_tolerance(initial_step, "initial_step")
    if h0 == 0:
        raise ValueError("`initial_step` must be > 0; leave it out for a quarter of max(|x_i|, 1)")
    flat = xp.reshape(x, (-1,))
    n = flat.shape[0]
    scale = xp.ones_like(flat) if h0 is not None else xp.maximum(xp.abs(flat), xp.ones_like(flat))
    rtol = default_rtol(xp, x.dtype, 2) if rtol is None else rtol
    settings = _richardson.Settings(rtol=rtol, atol=0.0 if atol is None else atol, maxiter=maxiter,
                                    depth=order_depth(order), step_factor=check_step_factor(step_factor))
    diagonal = _Stencils(f, x, scale, [(i, i) for i in range(n)], xp)
    diag = _run(diagonal, settings, h0, xp)
    # the diagonal sets the scale of the matrix: an off-diagonal entry within rtol of it is converged,
    # even where it is 0 and no relative accuracy is possible
    largest = _largest(diag.df, xp)
    if atol is None:
        settings = dataclasses.replace(settings, atol=rtol * largest)
    off = _Stencils(f, x, scale, [(i, j) for i in range(n) for j in range(i + 1, n)], xp)
    off.centre = diagonal.centre
    rest = _run(off, settings, h0, xp)
    state = _richardson.State(**{k: xp.concat([getattr(diag, k), getattr(rest, k)])
                                 for k in ("df", "error", "status", "nfev", "nit")})
    if atol is None and n:
        # a zero diagonal entry, or a matrix whose diagonal is 0: the same test against the largest entry
        small = (state.status == _richardson.NO_RELATIVE) & (state.error <= rtol * _largest(state.df, xp))
        state.status = xp.where(small, xp.zeros_like(state.status), state.status)
    return _symmetric(state, diagonal.pairs + off.pairs, tuple(x.shape), xp)


def _largest(a: Array, xp: Namespace) -> float:
    if not math.prod(a.shape):
        return 0.0
    return float(xp.max(xp.where(xp.isfinite(a), xp.abs(a), xp.zeros_like(a))))


def _run(stencils: _Stencils, settings: _richardson.Settings, h0: float | None,
         xp: Namespace) -> _richardson.State:
    zero = xp.zeros((len(stencils.pairs),), dtype=stencils.x.dtype, device=array_api_compat.device(stencils.x))
    t = zero + (0.25 if h0 is None else h0)
    return _richardson.run(stencils, zero, t, 2 * xp.ones_like(zero), settings, xp)


def _symmetric(state: _richardson.State, pairs: list[tuple[int, int]], shape: tuple[int, ...],
               xp: Namespace) -> DerivativeResult:
    n = math.prod(shape)
    index = [[0] * n for _ in range(n)]
    for p, (i, j) in enumerate(pairs):
        index[i][j] = index[j][i] = p
    dev = array_api_compat.device(state.df)
    take = xp.asarray([index[i][j] for i in range(n) for j in range(n)], dtype=index_dtype(xp, dev), device=dev)

    def full(a: Array) -> Array:
        return xp.reshape(xp.take(a, take, axis=0), (*shape, *shape))

    status = full(state.status)
    return DerivativeResult(df=full(state.df), error=full(state.error), success=status >= 0, status=status,
                            nfev=full(state.nfev), nit=full(state.nit))
