"""Finite differences of one variable: derivatives, difference quotients, tangents.

Gradients are in :mod:`xgrad._numerics.gradient`.

Written against the array API only: the same code runs on NumPy, CuPy,
PyTorch, JAX and array-api-strict arrays, on the device they live on.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import array_api_compat

from xgrad._infra.backend import namespace_of
from xgrad._infra.typing import Array, Namespace
from xgrad._infra.validate import (
    as_float_array,
    as_scalar,
    check_callable,
    check_flag,
    check_method,
    check_optional_positive,
    check_result_dtype,
    fresh_copy,
)
from xgrad._numerics.steps import StepError, eps, first_non_finite, steps_for

__all__ = ["numerical_diff", "steps_for", "tangent_line"]

# points times coordinates evaluated in one call of a vectorised `f`: 4 Mi
# float64 values (32 MiB) bound the memory of the stacked perturbed points
VECTORIZED_ELEMENTS = 2**22

_ORDER = {"central": 2, "forward": 1, "backward": 1}

CLOSURE_HINT = (
    "`f` returned the same value at every perturbed point, so the gradient is all zeros. "
    "`f` must compute its value from its argument: xgrad never changes the caller's arrays, "
    "so a closure such as `lambda W: net.loss(x, t)` ignores W. Write "
    "`lambda W: net.with_params({**net.params, 'W1': W}).loss(x, t)` instead (or use "
    "net.numerical_gradient(x, t)). If f really is constant near x, ignore this warning."
)


def combine(up: Array, mid: Array, down: Array, h: Array, method: str) -> Array:
    """The difference quotient from ``f(x+h)``, ``f(x)`` and ``f(x-h)`` (those the method needs)."""
    if method == "central":
        return (up - down) / (2 * h)
    return (up - mid) / h if method == "forward" else (mid - down) / h


def _difference(f: Callable[[Array], Array], x: Array, h: Array, method: str, xp: Namespace) -> Array:
    up = None if method == "backward" else _elementwise(f, x + h, xp)
    mid = None if method == "central" else _elementwise(f, fresh_copy(xp, x), xp)
    down = None if method == "forward" else _elementwise(f, x - h, xp)
    return combine(up, mid, down, h, method)


def difference_quotient(f: Callable[[Array], Array], x: Array, h: float, method: str) -> Array:
    """The bare difference quotient of an elementwise `f` at the floating array
    `x` with step `h`, with none of :func:`numerical_diff`'s checks: for showing
    the rounding error of steps that :func:`numerical_diff` refuses."""
    xp, _ = namespace_of(x)
    return _difference(f, x, xp.full_like(x, h), method, xp)


def _elementwise(f: Callable[[Array], Array], point: Array, xp: Namespace) -> Array:
    """``f(point)``, checked to be an array of the shape of `point` (or a number
    for a 0-d point)."""
    value = f(point)
    if point.ndim == 0 and math.prod(getattr(value, "shape", ())) == 1:
        return as_scalar(value, xp, array_api_compat.device(point), point.dtype, "`f`")
    shape = getattr(value, "shape", None)
    if shape is None or tuple(shape) != tuple(point.shape):
        got = type(value).__name__ if shape is None else f"shape {tuple(shape)}"
        raise ValueError(
            f"`f` must be elementwise: f(x) must have the shape of `x` {tuple(point.shape)}; got "
            f"{got}. For a scalar function of several variables, such as x[0]**2 + x[1]**2, "
            "use numerical_gradient"
        )
    vxp = array_api_compat.array_namespace(value)
    if vxp is not xp:
        raise TypeError(f"`f` must return an array of the library of `x`; got {type(value).__name__}")
    check_result_dtype(vxp, value.dtype, xp, point.dtype, "`f`")
    return value if xp.isdtype(value.dtype, "real floating") else xp.astype(value, point.dtype)


def check_finite_result(xp: Namespace, d: Array, what: str) -> None:
    """At a finite `x`, a non-finite derivative means `f` returned inf or nan near it."""
    found = first_non_finite(xp, d)
    if found is not None:
        index, value = found
        raise ValueError(
            f"the {what} is not finite at index {index} (got {value}): "
            "`f` returned inf or nan at x + h or x - h there. Check f near `x`; if f is "
            "finite at x itself, a smaller `h` may help"
        )


def numerical_diff(
    f: Callable[[Array], Array],
    /,
    x: Any,
    *,
    h: float | None = None,
    method: str = "central",
    return_error: bool = False,
) -> Array | tuple[Array, Array]:
    """Derivative of an elementwise function at every element of `x`.

    Parameters
    ----------
    f : callable
        An elementwise function: ``f(x)[i]`` depends on ``x[i]`` alone.
    x : array or number
        Where to differentiate. Integers are promoted to the default floating
        dtype; Python numbers become NumPy arrays.
    h : float, optional
        The step. By default it comes from the dtype and the scale of `x`:
        ``eps**(1/3) * max(1, |x|)`` for central differences and
        ``eps**(1/2) * max(1, |x|)`` for one-sided ones. ``h=1e-4`` reproduces
        the book.
    method : {"central", "forward", "backward"}
        The difference formula.
    return_error : bool
        Also return an estimate of the absolute error of each derivative.

    Returns
    -------
    derivative : array
        Same shape, namespace and device as `x`.
    error : array
        Only with ``return_error=True``: the estimated truncation error
        (Richardson, from the steps `h` and `h/2`) plus a bound on the rounding
        error (``4 eps (|f(x)| + |x f'(x)|) / h``).

    Raises
    ------
    TypeError
        If `f` is not callable, or returns something other than a real array
        of the library of `x` (or a float narrower than `x`'s dtype).
    ValueError
        If ``f(x)`` does not have the shape of `x` (`f` is not elementwise:
        use :func:`numerical_gradient` for a scalar function), `h` is not
        positive and finite, `x` is not finite, the step is too small for the
        dtype to resolve (``x ± h == x``) or takes ``x ± h`` out of range, or
        the derivative is not finite (`f` returned inf or nan near `x`).

    Notes
    -----
    Central differences err by O(h**2), one-sided ones by O(h). Cost: two
    evaluations of `f` (four with `return_error`).

    Examples
    --------
    >>> from xgrad import numerical_diff
    >>> def f1(x):
    ...     return 0.01 * x**2 + 0.1 * x
    >>> float(numerical_diff(f1, 5.0, h=1e-4))   # the book's value
    0.1999999999990898
    >>> round(float(numerical_diff(f1, 5.0)), 9)   # the default step
    0.2
    """
    check_callable(f)
    method = check_method(method)
    h = check_optional_positive(h, "h")
    return_error = check_flag(return_error, "return_error")
    x, xp, _ = as_float_array(x)
    step = steps_for(xp, x, h, method)
    d = _difference(f, x, step, method, xp)
    check_finite_result(xp, d, "derivative")
    if not return_error:
        return d
    # Richardson: D(h) - D(h/2) = c h**p (1 - 2**-p), and c h**p is D(h)'s error
    try:  # a representable half step, itself checked
        half = step / 2 if h is None else steps_for(xp, x, h / 2, method)
    except StepError as exc:
        raise StepError(f"with return_error=True the step h/2 is used too: {exc}") from None
    d_half = _difference(f, x, (x + half) - x, method, xp)
    truncation = xp.abs(d - d_half) / (1 - 2.0 ** -_ORDER[method])
    # rounding noise of both differences, the one at h/2 dominating. The noise of
    # f is about eps (|f| + |x f'|): where f cancels to near 0 (x*x - 2 near
    # sqrt(2), sin(10 x) near its zeros) eps |f| alone is far too small
    size = xp.abs(_elementwise(f, fresh_copy(xp, x), xp)) + xp.abs(x) * xp.abs(d)
    rounding = 4 * eps(xp, x.dtype) * size / step
    return d, truncation + rounding


def tangent_line(f: Callable[[Array], Array], x: Any, /, *, h: float | None = None) -> Callable[[Array], Array]:
    """The tangent of `f` at the scalar `x`, as a function ``t -> d*t + y``.

    Examples
    --------
    >>> from xgrad import tangent_line
    >>> line = tangent_line(lambda x: 0.01 * x**2 + 0.1 * x, 5.0)
    >>> round(float(line(5.0)), 9), round(float(line(6.0)), 9)
    (0.75, 0.95)
    """
    check_callable(f)
    x, xp, _ = as_float_array(x)
    if math.prod(x.shape) != 1:
        raise ValueError(f"`x` must be a single point; got shape {tuple(x.shape)}")
    d = numerical_diff(f, x, h=h)
    y = f(fresh_copy(xp, x)) - d * x
    return lambda t: d * t + y
