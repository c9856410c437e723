"""Finite differences: derivatives, gradients, slopes along a direction.

Written against the array API only: the same code runs on NumPy, CuPy,
PyTorch, JAX and array-api-strict arrays, on the device they live on.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import array_api_compat

from xgrad._backend import namespace_of
from xgrad._typing import Array, Namespace
from xgrad._validate import (
    as_float_array,
    as_scalar,
    check_callable,
    check_count,
    check_method,
    check_optional_positive,
)

__all__ = ["directional_derivative", "numerical_diff", "numerical_gradient", "tangent_line"]

_ORDER = {"central": 2, "forward": 1, "backward": 1}


def _eps(xp: Namespace, dtype: Any) -> float:
    return float(xp.finfo(dtype).eps)


def _default_step(xp: Namespace, x: Array, method: str) -> Array:
    """Step from the dtype and the scale: eps**(1/3) for central differences,
    eps**(1/2) for one-sided ones, times max(1, |x|); rounded so that x + h is
    exactly representable."""
    power = 1 / 3 if method == "central" else 1 / 2
    h = _eps(xp, x.dtype) ** power * xp.maximum(xp.abs(x), xp.ones_like(x))
    return (x + h) - x


def steps_for(xp: Namespace, x: Array, h: float | None, method: str) -> Array:
    """The step of every element of `x`: `h` as given, or the default step."""
    return _default_step(xp, x, method) if h is None else xp.full_like(x, h)


def _combine(up: Array, mid: Array, down: Array, h: Array, method: str) -> Array:
    """The difference quotient from ``f(x+h)``, ``f(x)`` and ``f(x-h)`` (those the method needs)."""
    if method == "central":
        return (up - down) / (2 * h)
    return (up - mid) / h if method == "forward" else (mid - down) / h


def _difference(f: Callable[[Array], Array], x: Array, h: Array, method: str) -> Array:
    up = None if method == "backward" else f(x + h)
    mid = None if method == "central" else f(x)
    down = None if method == "forward" else f(x - h)
    return _combine(up, mid, down, h, method)


def numerical_diff(
    f: Callable[[Array], Array],
    x: Any,
    /,
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
        error (``4 eps |f(x)| / h``).

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
    x, xp, _ = as_float_array(x)
    step = steps_for(xp, x, h, method)
    d = _difference(f, x, step, method)
    if not return_error:
        return d
    # Richardson: D(h) - D(h/2) = c h**p (1 - 2**-p), and c h**p is D(h)'s error
    d_half = _difference(f, x, (x + step / 2) - x, method)  # a representable half step
    truncation = xp.abs(d - d_half) / (1 - 2.0 ** -_ORDER[method])
    # rounding noise of both differences, the one at h/2 dominating
    rounding = 4 * _eps(xp, x.dtype) * xp.abs(f(x)) / step
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
    x, _, _ = as_float_array(x)
    if math.prod(x.shape) != 1:
        raise ValueError(f"`x` must be a single point; got shape {tuple(x.shape)}")
    d = numerical_diff(f, x, h=h)
    y = f(x) - d * x
    return lambda t: d * t + y


def _flat_point(flat: Array, positions: Array, k: int, delta: Array, shape: tuple[int, ...], xp: Namespace) -> Array:
    """``x + delta * e_k`` from `x` flattened, built without touching `x`."""
    return xp.reshape(xp.where(positions == k, flat + delta, flat), shape)


def _loop_gradient(f: Callable[[Array], Array], x: Array, xp: Namespace, h: float | None, method: str) -> Array:
    """One point: perturb each element in turn (the book's loop)."""
    dev = array_api_compat.device(x)

    def value(point: Array) -> Array:
        return as_scalar(f(point), xp, dev, x.dtype, "`f`")

    n = math.prod(x.shape)
    flat, positions = xp.reshape(x, (-1,)), xp.arange(n, device=dev)
    steps = xp.reshape(steps_for(xp, x, h, method), (-1,))
    mid: Any = None if method == "central" else value(x)
    diffs = []
    for k in range(n):
        hk = steps[k]
        up = None if method == "backward" else value(_flat_point(flat, positions, k, hk, x.shape, xp))
        down = None if method == "forward" else value(_flat_point(flat, positions, k, -hk, x.shape, xp))
        diffs.append(_combine(up, mid, down, hk, method))
    if not diffs:
        return xp.zeros_like(x)
    return xp.reshape(xp.stack(diffs), x.shape)


def _vectorized_gradient(
    f: Callable[[Array], Array], x: Array, xp: Namespace, h: float | None, method: str, chunk: int
) -> Array:
    """One point: ``f`` takes a stack of points; evaluate `chunk` at a time."""
    n = math.prod(x.shape)
    dev = array_api_compat.device(x)
    flat = xp.reshape(x, (1, n))
    steps = xp.reshape(steps_for(xp, x, h, method), (1, n))
    mid: Any = None
    if method != "central":
        mid = as_scalar(_stack_values(f, xp.reshape(x, (1, *x.shape)), 1), xp, dev, x.dtype, "`f`")
    out = []
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        eye = xp.astype(
            xp.arange(start, stop, device=dev)[:, None] == xp.arange(n, device=dev)[None, :], x.dtype
        )
        delta = eye * steps  # row r perturbs element start + r
        shape = (stop - start, *x.shape)
        up = None if method == "backward" else _stack_values(f, xp.reshape(flat + delta, shape), stop - start)
        down = None if method == "forward" else _stack_values(f, xp.reshape(flat - delta, shape), stop - start)
        out.append(_combine(up, mid, down, steps[0, start:stop], method))
    return xp.reshape(xp.concat(out), x.shape) if out else xp.zeros_like(x)


def _stack_values(f: Callable[[Array], Array], points: Array, k: int) -> Array:
    values = f(points)
    if not hasattr(values, "shape") or tuple(values.shape) != (k,):
        shape = getattr(values, "shape", type(values).__name__)
        raise ValueError(
            "with vectorized=True, `f` must map a stack of points of shape "
            f"(k, *x.shape) to k values of shape ({k},); got {shape}"
        )
    return values


def numerical_gradient(
    f: Callable[[Array], Array],
    x: Any,
    /,
    *,
    h: float | None = None,
    method: str = "central",
    batch: bool = False,
    vectorized: bool = False,
    chunk_size: int | None = None,
    executor: Any = None,
) -> Array:
    """Gradient of a scalar-valued `f` with respect to every element of `x`.

    Parameters
    ----------
    f : callable
        ``f(x)`` returns one number (a 0-d array or a Python float).
    x : array or number
        The point, of any shape. It is never modified: perturbed points are
        new arrays, so read-only NumPy arrays and JAX arrays work.
    h : float, optional
        The step; by default derived from the dtype and scale, as in
        :func:`numerical_diff`. ``h=1e-4`` reproduces the book.
    method : {"central", "forward", "backward"}
        The difference formula.
    batch : bool
        Treat each row ``x[i]`` of a 2-d `x` as its own point (the book's
        ``numerical_gradient_2d``): returns the gradient of `f` at each row.
    vectorized : bool
        `f` accepts a stack of points, shape ``(k, *point.shape)``, and returns
        ``k`` values. The perturbed points are then evaluated `chunk_size` at a
        time, which is much faster than one call per element.
    chunk_size : int, optional
        Points per call of a vectorized `f`; bounds memory to about
        ``chunk_size * x.size`` elements. By default about 4 million elements.
        With an `executor`: the coordinates of each task.
    executor : concurrent.futures.Executor, optional
        Spread the evaluations over it in chunks (a thread or process pool, or
        a Dask client's ``get_executor()``), for an `f` that takes seconds per
        call; a bounded number of tasks is in flight. Same result as without.

    Returns
    -------
    array
        The gradient, with the shape, dtype, namespace and device of `x`
        (floating; integer input is promoted first).

    Raises
    ------
    TypeError
        If `f` is not callable or returns something that is not a number.
    ValueError
        If `f` returns more than one number, `h` is not positive and finite,
        `method` is unknown, or `batch=True` with an `x` that is not 2-d.

    Notes
    -----
    Cost: ``2 * x.size`` evaluations of `f` for central differences
    (``x.size + 1`` for one-sided ones). Central differences err by O(h**2).

    Examples
    --------
    >>> import numpy as np
    >>> from xgrad import numerical_gradient
    >>> def f2(x):
    ...     return (x**2).sum()
    >>> numerical_gradient(f2, np.array([3.0, 4.0]), h=1e-4).round(6)
    array([6., 8.])
    >>> numerical_gradient(f2, np.array([[1.0, 2.0], [3.0, 0.0]]), batch=True).round(6)
    array([[2., 4.],
           [6., 0.]])
    """
    check_callable(f)
    method = check_method(method)
    h = check_optional_positive(h, "h")
    x, xp, _ = as_float_array(x)
    points = [x]
    if batch:
        if x.ndim != 2:
            raise ValueError(f"with batch=True, `x` must be 2-d (one point per row); got shape {tuple(x.shape)}")
        points = [x[i, ...] for i in range(x.shape[0])]
    if chunk_size is not None and not vectorized and executor is None:
        raise ValueError("`chunk_size` applies only with vectorized=True or an `executor`")
    if executor is not None:
        from xgrad._parallel import executor_gradient

        grads = [executor_gradient(f, p, xp, h, method, executor, chunk_size=chunk_size, vectorized=vectorized)
                 for p in points]
    elif vectorized:
        size = max(1, math.prod(points[0].shape))
        chunk = (2**22 // size or 1) if chunk_size is None else check_count(chunk_size, "chunk_size", minimum=1)
        grads = [_vectorized_gradient(f, p, xp, h, method, chunk) for p in points]
    else:
        grads = [_loop_gradient(f, p, xp, h, method) for p in points]
    if not batch:
        return grads[0]
    return xp.stack(grads) if grads else xp.zeros_like(x)


def directional_derivative(
    f: Callable[[Array], Array], x: Any, u: Any, /, *, h: float | None = None
) -> Array:
    """The slope of `f` at `x` along `u`, ``∇f(x)·u``, from two evaluations.

    A central difference along the line ``t -> f(x + t*u)``: it needs two
    evaluations of `f` whatever the size of `x`, which makes it a cheap check of
    a gradient computed another way.

    Parameters
    ----------
    f : callable
        Scalar-valued.
    x, u : array
        The point and the direction, of the same shape. `u` need not be a unit
        vector: the result scales with it.
    h : float, optional
        The step in ``t``; by default ``eps**(1/3) * max(1, ||x||) / ||u||``.

    Examples
    --------
    >>> import numpy as np
    >>> from xgrad import directional_derivative
    >>> x = np.array([3.0, 4.0])
    >>> round(float(directional_derivative(lambda v: (v**2).sum(), x, np.array([1.0, 0.0]))), 8)
    6.0
    """
    check_callable(f)
    h = check_optional_positive(h, "h")
    x, xp, _ = as_float_array(x)
    u, _, _ = as_float_array(u, xp=xp, name="u")
    namespace_of(x, u)
    if tuple(u.shape) != tuple(x.shape):
        raise ValueError(f"`u` must have the shape of `x` {tuple(x.shape)}; got {tuple(u.shape)}")
    u = xp.astype(u, x.dtype)
    norm_u = xp.sqrt(xp.sum(u * u))
    if h is None:
        if not bool(norm_u > 0):
            raise ValueError("`u` must be a non-zero direction")
        scale = xp.maximum(xp.sqrt(xp.sum(x * x)), xp.ones_like(norm_u))
        t = _eps(xp, x.dtype) ** (1 / 3) * scale / norm_u
    else:
        t = h
    what = "`f`"
    up = as_scalar(f(x + t * u), xp, array_api_compat.device(x), x.dtype, what)
    down = as_scalar(f(x - t * u), xp, array_api_compat.device(x), x.dtype, what)
    return (up - down) / (2 * t)
