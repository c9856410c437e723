"""Adaptive, error-controlled derivatives of elementwise functions.

:func:`derivative` extrapolates difference quotients over a shrinking sequence
of steps (see :mod:`xgrad._numerics.richardson` and the "How derivative works" page of
the documentation). Array API only: it runs on every backend, on the device
of `x`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import array_api_compat

from xgrad._infra.backend import is_numpy_scalar
from xgrad._infra.typing import Array, Namespace
from xgrad._infra.validate import (
    as_float_array,
    check_callable,
    check_count,
    check_real,
    python_real,
    same_library_result,
)
from xgrad._numerics import richardson as _richardson

__all__ = ["DerivativeResult", "derivative"]

STATUS = {
    0: "converged: the error estimate is within the tolerances",
    1: "noise floor: smaller steps would only add rounding error; `df` is the best estimate found",
    -2: "`maxiter` rounds used before the tolerances were met",
    -3: "no finite estimate: `f` returned non-finite values at every step tried",
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
        accept an absolute error there). See ``STATUS``.
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


def default_rtol(xp: Namespace, dtype: Any) -> float:
    """eps**0.8: about 3e-13 in float64 and 3e-6 in float32."""
    return float(xp.finfo(dtype).eps) ** 0.8


def _as_like(value: Any, name: str, x: Array, xp: Namespace) -> Array:
    """A number or an array broadcast to the shape of `x`, with its dtype and device."""
    dev = array_api_compat.device(x)
    is_array = array_api_compat.is_array_api_obj(value) and not is_numpy_scalar(value)  # np.float32(2): a number
    if is_array and array_api_compat.array_namespace(value) is not xp:
        raise TypeError(f"`{name}` must be a number or an array of the library of `x`; got {type(value).__name__}")
    if is_array:
        if value.dtype == xp.bool or xp.isdtype(value.dtype, "complex floating"):
            raise TypeError(f"`{name}` must hold real numbers; got dtype {value.dtype}")
        value = xp.astype(value, x.dtype)
    else:
        value = xp.asarray(check_real(value, name), dtype=x.dtype, device=dev)
    try:
        return xp.broadcast_to(value, x.shape)
    except (ValueError, RuntimeError, TypeError) as exc:
        raise ValueError(f"`{name}` must broadcast to the shape of `x` {tuple(x.shape)}; "
                         f"got shape {tuple(value.shape)}") from exc


def _check_tolerance(value: Any, name: str) -> float | None:
    if value is None:
        return None
    v = check_real(value, name)
    if not (math.isfinite(v) and v >= 0):
        raise ValueError(f"`{name}` must be >= 0 and finite; got {value!r}")
    return v


def _default_scale(x: Array, scale: Any, xp: Namespace) -> Array:
    if scale is None:
        return xp.maximum(xp.abs(x), xp.ones_like(x))
    s = _as_like(scale, "scale", x, xp)
    return xp.where(xp.isfinite(s) & (s > 0), s, xp.full_like(s, math.nan))


def derivative(
    f: Callable[[Array], Array],
    x: Any,
    /,
    *,
    scale: Any = None,
    step_direction: Any = 0,
    rtol: float | None = None,
    atol: float | None = None,
    maxiter: int = 14,
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
        At most this many steps per element (two evaluations each).

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
        estimate made for the dtype of `x`).
    ValueError
        If `f` does not return an array of the shape it is given, or a
        tolerance or `maxiter` is out of range.

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
    """
    check_callable(f)
    x, xp, _ = as_float_array(x)
    maxiter = check_count(maxiter, "maxiter", minimum=1)
    rtol = _check_tolerance(rtol, "rtol")
    atol = _check_tolerance(atol, "atol")
    direction = _as_like(step_direction, "step_direction", x, xp)
    scale_arr = _default_scale(x, scale, xp)
    settings = _richardson.Settings(
        rtol=default_rtol(xp, x.dtype) if rtol is None else rtol,
        atol=0.0 if atol is None else atol,
        maxiter=maxiter,
    )
    wrapped = _elementwise(f, xp)
    state = _richardson.run(wrapped, x, scale_arr, direction, settings, xp)
    unusable = ~xp.isfinite(direction) | ~xp.isfinite(scale_arr)
    nan = xp.full_like(x, math.nan)
    status = xp.where(unusable, xp.full_like(state.status, _richardson.NONFINITE), state.status)
    return DerivativeResult(
        df=xp.where(unusable, nan, state.df),
        error=xp.where(unusable, nan, state.error),
        success=status >= 0,
        status=status,
        nfev=state.nfev,
        nit=state.nit,
    )


def _elementwise(f: Callable[[Array], Array], xp: Namespace) -> Callable[[Array], Array]:
    """`f`, checked to return an array of the shape it was given."""

    def call(points: Array) -> Array:
        values = f(points)
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
