"""Adaptive, error-controlled derivatives of elementwise functions.

:func:`derivative` extrapolates difference quotients over a shrinking sequence
of steps (see :mod:`xgrad._numerics.richardson` and the "How derivative works" page of
the documentation). Array API only: it runs on every backend, on the device
of `x`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import array_api_compat

from xgrad._infra.backend import quiet_overflow
from xgrad._infra.typing import Array, Namespace
from xgrad._infra.validate import check_callable, python_real, same_library_result
from xgrad._numerics import knobs as _knobs
from xgrad._numerics import richardson as _richardson
from xgrad._numerics import rounds as _rounds
from xgrad._numerics.batched import compiled_own, compiled_whole
from xgrad._numerics.complexstep import complex_step
from xgrad._numerics.knobs import default_rtol
from xgrad._numerics.stencils import quotient_for

__all__ = ["STATUS", "DerivativeResult", "default_rtol", "derivative"]

STATUS = {
    0: "converged: the error estimate is within the tolerances",
    1: "noise floor: smaller steps would only add rounding error; `df` is the best estimate found",
    -2: "`maxiter` rounds used before the tolerances were met",
    -3: "no finite estimate: `f` returned non-finite values at every step tried",
    -5: "stopped by `callback` (it raised StopIteration)",
    -4: "no relative accuracy: the error estimate is not below `atol` + |df| (the derivative is 0, underflows or "
        "is lost in rounding at this scale); pass an `atol` to accept an absolute error",
}


@dataclass(frozen=True)
class DerivativeResult:
    """The result of :func:`derivative`, elementwise over `x`.

    Attributes
    ----------
    df : array
        The derivative at every element of `x` (NaN where none was found).
    error : array
        An estimate of the absolute error of `df`: the change from the
        extrapolation one order lower, plus a bound on the rounding error.
    success : array of bool
        ``status >= 0``: converged, or stopped at the noise floor of `f`.
    status : array of int32
        0 converged; 1 stopped at the noise floor (smaller steps only add
        rounding error) before the tolerances were met; -2 ran out of rounds;
        -3 no finite value; -4 no relative accuracy: the error estimate is
        not below ``atol + |df|``, as where the derivative is 0, underflows or
        is lost in rounding at the scale of the steps (give an `atol` to
        accept an absolute error there); -5 stopped by `callback`; 2 (seen
        by a callback only) still iterating. See ``STATUS``. scipy's codes
        differ: its 1 means "in progress" (xgrad's 2), its -1 "error
        increased" (xgrad stops at the noise floor, 1, or goes on), its -4
        "stopped by callback" (xgrad's -5); 0, -2 and -3 mean the same.
    nfev : array of int32
        Evaluations of `f` spent on each element.
    nit : array of int32
        Rounds (steps tried) spent on each element.
    """

    df: Array
    error: Array
    success: Array
    status: Array
    nfev: Array
    nit: Array

    def __repr__(self) -> str:
        parts = [f"{f.name}: {getattr(self, f.name)!r}" for f in fields(self)]
        return "DerivativeResult(\n  " + ",\n  ".join(parts) + "\n)"


def derivative(
    f: Callable[..., Array],
    x: Any,
    /,
    *,
    scale: Any = None,
    step_direction: Any = 0,
    rtol: float | None = None,
    atol: float | None = None,
    maxiter: int = 14,
    args: Any = (),
    kwargs: dict[str, Any] | None = None,
    order: int | None = None,
    initial_step: Any = None,
    step_factor: float | None = None,
    callback: Callable[[DerivativeResult], None] | None = None,
    method: str = "central",
    n: int = 1,
    preserve_shape: bool = False,
) -> DerivativeResult:
    """Derivative of an elementwise function, with an error estimate.

    Parameters
    ----------
    f : callable
        An elementwise function: ``f(x)[i]`` depends on ``x[i]`` alone. It is
        called with arrays of shape ``(2, *x.shape)``.
    x : array or number
        Where to differentiate; any shape. Integers become the default
        floating dtype; Python numbers become NumPy arrays.
    scale : float or array, optional
        The length over which `f` changes appreciably near `x`. The first step
        is a quarter of it (0.3 in float32); steps then shrink by 15 while the
        estimates are far off, by 3.9 (2.2 in float32) while they approach and
        by 2.2 once they settle. By default ``max(|x|, 1)``; give it for
        functions that vary on a smaller scale (e.g. ``1e-3`` for
        ``sin(1000 x)``) to save evaluations.
    step_direction : int or array
        0 for central differences; positive (negative) to evaluate `f` only
        at ``x`` and to its right (left), where `f` is undefined on the other
        side. Broadcast against `x`.
    rtol, atol : float, optional
        Stop when the estimated truncation error is below
        ``atol + rtol * |df|``. Defaults: ``rtol = eps**0.8`` of the dtype
        (3e-13 in float64, 3e-6 in float32) and ``atol = 0``. Success also
        needs the whole error estimate below ``atol + |df|``: with
        ``atol = 0`` a derivative of 0 (or one that underflows or drowns in
        rounding) is reported as status -4, not as a success.
    maxiter : int
        At most this many steps per element (two evaluations each for a first
        derivative). With ``maxiter=1`` the first quotient is returned with an
        infinite error estimate and status -2.
    args : tuple, optional
        Further positional arguments: ``f(x, *args)``. Arrays among them
        broadcast with `x` (and with `step_direction` and `initial_step`);
        the result has the broadcast shape. A lone array is taken as
        ``(array,)``.
    kwargs : dict, optional
        Keyword arguments for `f`, passed unchanged.
    order : int, optional
        The highest order of the extrapolated formula: extrapolations use at
        most ``ceil(order / 2)`` quotients (central; one-sided formulas gain
        one order per quotient). 1 or 2: no extrapolation, the plain
        quotient, its error estimated from its change between steps. By
        default 14 (seven quotients).
    initial_step : float or array, optional
        The first step, absolute, instead of a quarter of `scale`;
        broadcast with `x`. Elements where it is not positive and finite get
        status -3.
    step_factor : float, optional
        Divide the step by this factor (> 1) every round, instead of the
        ratios chosen from the estimates (15, 3.9, 2.2).
    callback : callable, optional
        Called after every round with a :class:`DerivativeResult` of the
        state so far, in which elements still iterating have status 2. It
        can stop the iteration by raising ``StopIteration``: the elements
        still iterating then get status -5.
    method : {"central", "forward", "backward", "complex"}
        "central" (default) uses `step_direction` per element; "forward" and
        "backward" make every element one-sided. "complex" takes the
        complex step ``Im f(x + ih) / h`` (first derivatives only): one
        evaluation at a tiny step, no cancellation, error near machine
        precision, for an `f` that is analytic and accepts complex input. It
        is checked at every element against a central difference (two more
        evaluations, ``nfev`` = 3); an `f` that returns a real array for
        complex input or disagrees with the check (``abs``, a kink of
        ``max``, a dropped imaginary part) is refused.
    n : int
        The order of the derivative, 1 to 4 (1 to 2 in float32: rounding
        grows like ``eps / h**n``). ``n + 1`` evaluations per step, the one at
        `x` itself made once. The default `rtol` is ``eps**(0.8 - (n-1)/10)``.
    preserve_shape : bool
        For an `f` that is not elementwise over a stack: it is called with
        one array of shape ``(*x.shape, k)`` (the `k` points of every element
        on a last axis) and must return ``(*lead, *x.shape, k)``, e.g. a
        stack of several functions of `x`; the result has shape
        ``(*lead, *x.shape)``. The elements along `lead` share their steps,
        which shrink by a fixed ratio (`step_factor`, default 3.9, 2.2 in
        float32).

    Returns
    -------
    DerivativeResult
        ``df``, ``error``, ``success``, ``status``, ``nfev`` and ``nit``, each
        of the shape of `x`, on its namespace and device. Non-finite values of
        `f` are reported in ``status``, never raised.

    Raises
    ------
    TypeError
        If `f` is not callable, or returns an array of another library than
        `x`, a complex array, or a float narrower than the dtype of `x` (its
        differences would keep only that dtype's digits, under an error
        estimate made for the dtype of `x`); with ``method="complex"``, if `f`
        refuses complex input or returns a real array for it.
    ValueError
        If `f` does not return an array of the shape it is given, if a
        tolerance, `maxiter`, `order`, `step_factor` or `n` is out of range,
        if the arrays of `args`, `step_direction` and `initial_step` do not
        broadcast with `x`, or, with ``method="complex"``, if the complex step
        disagrees with a central difference (an `f` that is not analytic).

    Notes
    -----
    Richardson extrapolation of central (or one-sided) differences over a
    shrinking sequence of steps, by Neville's scheme; each new step raises the
    order of the error by two (one for one-sided quotients). The error
    estimate is the change from the previous extrapolation one order lower,
    plus a rounding bound. Cost: two evaluations per step, typically 8 to 12
    per element near the origin, 14 to 20 far from it or on small scales.
    "How derivative works" in the documentation has the details and a
    comparison with scipy and numdifftools.

    On JAX, a traceable `f` given without `args` and `kwargs` is traced and
    compiled (``jax.jit``, once per `f` and shape of the points): its Python
    code runs once per compilation, not once per round. An `f` that cannot be
    traced is called as on any backend ("What runs where" in the
    documentation).

    Examples
    --------
    >>> import numpy as np
    >>> from xgrad import derivative
    >>> res = derivative(np.exp, np.array([0.0, 1.0, 50.0]))
    >>> bool(np.all(abs(res.df / np.exp([0.0, 1.0, 50.0]) - 1) < 1e-12))
    True
    >>> bool(np.all(res.success)), bool(np.all(res.error < 1e-10 * res.df))
    (True, True)
    >>> res = derivative(np.log, 1e-3, step_direction=1)   # undefined left of 0
    >>> round(float(res.df), 6), bool(res.success)
    (1000.0, True)
    >>> res = derivative(np.sin, np.array([0.5, 1.0]), n=2)   # second derivative
    >>> bool(np.all(abs(res.df + np.sin([0.5, 1.0])) < 1e-9)), bool(np.all(res.success))
    (True, True)
    >>> res = derivative(np.exp, 1.0, method="complex")
    >>> float(abs(res.df / np.e - 1)) < 1e-15, int(res.nfev)
    (True, 3)
    >>> res = derivative(lambda x, p: x**p, 2.0, args=(np.array([2.0, 3.0]),))
    >>> res.df.round(9).tolist()
    [4.0, 12.0]
    """
    check_callable(f)
    opts = _knobs.parse(x, scale=scale, step_direction=step_direction, rtol=rtol, atol=atol, maxiter=maxiter,
                        args=args, kwargs=kwargs, order=order, initial_step=initial_step,
                        step_factor=step_factor, callback=callback, method=method, n=n,
                        preserve_shape=preserve_shape)
    return _solve(f, opts)


def _solve(f: Callable[..., Array], o: _knobs.Options) -> DerivativeResult:
    xp, x = o.xp, o.x
    call = _with_args(f, o)
    call_is_f = call is f  # no arguments: f itself can be compiled, and kept while it lives
    if o.method == "complex":
        state = complex_step(call, x, _knobs.default_scale(x, None, xp) if o.scale is None else o.scale, xp)
        return _result(state, xp.zeros(x.shape, dtype=xp.bool, device=array_api_compat.device(x)), xp)
    lockstep = 0
    if o.preserve_shape:
        call, lead = _shape_preserving(call, x, xp)
        lockstep = len(lead)
        shape = (*lead, *x.shape)
        x = xp.broadcast_to(x, shape)
        scale = None if o.scale is None else xp.broadcast_to(o.scale, shape)
        direction = o.direction if isinstance(o.direction, float) else xp.broadcast_to(o.direction, shape)
        h0 = None if o.initial_step is None else xp.broadcast_to(o.initial_step, shape)
    else:
        call = _elementwise(call, xp, compiled=call_is_f)
        scale, direction, h0 = o.scale, o.direction, o.initial_step
    precision = "double" if float(xp.finfo(x.dtype).eps) < 1e-10 else "single"
    settings = o.settings
    if lockstep and settings.step_factor is None:  # shared points need steps that do not depend on the estimates
        settings = dataclasses.replace(settings, step_factor=_richardson.COARSE[precision])
    if o.callback is not None:
        settings = dataclasses.replace(settings, callback=_reporter(o.callback, xp), lockstep=lockstep)
    else:
        settings = dataclasses.replace(settings, lockstep=lockstep)
    with quiet_overflow(xp):  # inf - inf at an infinite x: reported as status NONFINITE below
        # the first steps, the powers of the error and the unusable elements, in one call on JAX
        h, power, unusable, central = compiled_own(_knobs.first_steps, xp)(
            x, scale, direction, _richardson.FIRST_FRACTION[precision], h0)
    split = None
    if o.n == 1 and not lockstep:  # on JAX, f then the rest of a round: two compiled calls per round
        split = _rounds.Split(_richardson.points, call, _richardson.quotient_of_values, (central,))
    state = _richardson.run(quotient_for(call, x, central, o.n, xp), x, h, power, settings, xp, split)
    if lockstep or o.preserve_shape:
        state.nfev = state.nfev + 1  # the call at x that found the shape of the values
    return _result(state, unusable, xp)


def _result(state: _richardson.State, unusable: Array, xp: Namespace) -> DerivativeResult:
    df, error, success, status = compiled_own(_outcome, xp)(state.df, state.error, state.status, unusable)
    return DerivativeResult(df=df, error=error, success=success, status=status, nfev=state.nfev, nit=state.nit)


def _outcome(df: Array, error: Array, status: Array, unusable: Array) -> tuple[Array, Array, Array, Array]:
    """NaN and status -3 where the options made an element unusable."""
    xp = array_api_compat.array_namespace(df)
    nan = xp.full_like(df, math.nan)
    status = xp.where(unusable, xp.full_like(status, _richardson.NONFINITE), status)
    return xp.where(unusable, nan, df), xp.where(unusable, nan, error), status >= 0, status


def _reporter(callback: Callable[[DerivativeResult], None], xp: Namespace) -> Callable[..., None]:
    """The user's callback, given a snapshot in which elements still iterating have status 2."""

    def report(state: _richardson.State, active: Array) -> None:
        status = xp.where(active, xp.full_like(state.status, _richardson.IN_PROGRESS), state.status)
        callback(DerivativeResult(df=state.df, error=state.error, success=status == 0, status=status,
                                  nfev=state.nfev, nit=state.nit))

    return report


def _with_args(f: Callable[..., Array], o: _knobs.Options) -> Callable[[Array], Array]:
    """``f(points, *args, **kwargs)`` with every array of `args` broadcast to the points."""
    if not o.args and not o.kwargs:
        return f
    arrays = [array_api_compat.is_array_api_obj(a) for a in o.args]

    def call(points: Array) -> Array:
        extra = [o.xp.broadcast_to(a, points.shape) if is_array else a
                 for a, is_array in zip(o.args, arrays, strict=True)]
        return f(points, *extra, **o.kwargs)

    return call


def _shape_preserving(f: Callable[[Array], Array], x: Array,
                      xp: Namespace) -> tuple[Callable[[Array], Array], tuple[int, ...]]:
    """For ``preserve_shape=True``: `f` takes the k points of every element on
    a last axis, shape ``(*x.shape, k)``, and returns ``(*lead, *x.shape, k)``;
    the elementwise function of the stack ``(k, *lead, *x.shape)`` that the
    iteration needs, and `lead`. Points along `lead` are equal (lockstep)."""
    d = x.ndim
    first = f(xp.reshape(x, (*x.shape, 1)))
    if not array_api_compat.is_array_api_obj(first) or tuple(first.shape[first.ndim - d - 1:]) != (*x.shape, 1):
        shape = getattr(first, "shape", type(first).__name__)
        raise ValueError(f"with preserve_shape=True, `f` must map points of shape (*x.shape, k) = "
                         f"{(*x.shape, 1)} to values of shape (..., *x.shape, k); got {shape}")
    lead = tuple(first.shape[: first.ndim - d - 1])

    def call(points: Array) -> Array:
        k = points.shape[0]
        own = points[(slice(None),) + (0,) * len(lead) + (...,)]  # (k, *x.shape)
        values = f(xp.permute_dims(own, (*range(1, d + 1), 0)))
        if tuple(values.shape) != (*lead, *x.shape, k):
            raise ValueError(f"with preserve_shape=True, `f` must return values of shape (*lead, *x.shape, k) = "
                             f"{(*lead, *x.shape, k)} for points of shape {(*x.shape, k)}; got {tuple(values.shape)}")
        values = xp.permute_dims(values, (values.ndim - 1, *range(values.ndim - 1)))
        return same_library_result(values, xp, points.dtype, "`f`")

    return call, lead


def _elementwise(f: Callable[[Array], Array], xp: Namespace, compiled: bool = False) -> Callable[[Array], Array]:
    """`f`, checked to return an array of the shape it was given; `compiled`: through
    its compiled self where the library traces `f` (JAX)."""

    def call(points: Array) -> Array:
        values = compiled_whole(f, points, xp) if compiled else f(points)
        if isinstance(values, int | float):
            python_real(values, "`f`")  # an integer beyond the floats' range says so
        if not array_api_compat.is_array_api_obj(values) or tuple(values.shape) != tuple(points.shape):
            shape = getattr(values, "shape", type(values).__name__)
            raise ValueError(
                "`f` must be elementwise: given points of shape "
                f"{tuple(points.shape)} it must return an array of that shape; got {shape}"
            )
        # a narrower float would carry only its own digits, under an error
        # estimate made for the dtype of `x`; a complex one would lose its
        # imaginary part in a cast
        return same_library_result(values, xp, points.dtype, "`f`")

    return call
