"""Finite-difference gradients: every partial derivative of a scalar-valued
function, and the slope along one direction.

Written against the array API only: the same code runs on NumPy, CuPy,
PyTorch, JAX and array-api-strict arrays, on the device they live on.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

from xgrad._infra.backend import namespace_of
from xgrad._infra.typing import Array, Namespace
from xgrad._infra.validate import (
    as_float_array,
    check_callable,
    check_count,
    check_flag,
    check_method,
    check_optional_positive,
    fresh_copy,
)
from xgrad._numerics.diff import (
    CLOSURE_HINT,
    VECTORIZED_ELEMENTS,
    check_finite_result,
)
from xgrad._numerics.partials import center_value, loop_partials, scalar_of, stack_values, vectorized_partials
from xgrad._numerics.steps import check_finite, eps, steps_for

__all__ = ["directional_derivative", "numerical_gradient", "steps_for"]


Unchanged = Callable[[], bool]


def _partials(
    f: Callable[[Array], Array], x: Array, steps: Array, xp: Namespace, method: str, chunk: int | None
) -> tuple[Array, Unchanged]:
    """One point: its derivatives, `chunk` coordinates per call of a
    vectorized `f` (one call per element without a `chunk`, the book's
    loop). Also returns a test of whether every perturbed value equalled
    ``f(x)``."""
    n = math.prod(x.shape)
    if n == 0:
        return xp.zeros_like(x), lambda: False
    steps = xp.reshape(steps, (-1,))
    mid: Any = None if method == "central" else center_value(f, x, xp, chunk is not None)
    if chunk is None:
        grad, seen = loop_partials(f, x, steps, mid, 0, n, method, xp)
    else:
        grad, seen = vectorized_partials(f, x, steps, mid, 0, n, method, xp, chunk)

    def unchanged() -> bool:
        at_x = center_value(f, x, xp, chunk is not None) if mid is None else mid
        return all(bool(xp.all(value == at_x)) for value in seen)

    return xp.reshape(grad, x.shape), unchanged


def numerical_gradient(
    f: Callable[[Array], Array],
    /,
    x: Any,
    *,
    h: float | None = None,
    method: str = "central",
    per_row: bool = False,
    vectorized: bool = False,
    chunk_size: int | None = None,
    executor: Any = None,
    batch: bool | None = None,
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
    per_row : bool
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
    batch : bool, optional
        Deprecated: the former name of `per_row` (a DeprecationWarning says
        so; it read like a minibatch size).

    Returns
    -------
    array
        The gradient, with the shape, dtype, namespace and device of `x`
        (floating; integer input is promoted first).

    Raises
    ------
    TypeError
        If `f` is not callable, or returns something that is not a real
        number, or a float narrower than `x`'s dtype.
    ValueError
        If `f` returns more than one number, `h` is not positive and finite,
        `method` is unknown, `per_row=True` with an `x` that is not 2-d, `x` is
        not finite, the step is too small for the dtype to resolve
        (``x + h == x``) or takes ``x ± h`` out of range, or the gradient is
        not finite (`f` returned inf or nan near `x`).

    Warns
    -----
    RuntimeWarning
        If every perturbed value of `f` equals ``f(x)`` (and a far point
        too): `f` does not compute from its argument.

    Notes
    -----
    Cost: ``2 * x.size`` evaluations of `f` for central differences
    (``x.size + 1`` for one-sided ones). Central differences err by O(h**2).

    `f` must compute its value from its argument. The book differentiates
    a network's loss with ``f = lambda W: net.loss(x, t)``, which works there
    only because its loop changes ``net.params['W1']`` in place. xgrad never
    changes the caller's arrays, so that `f` ignores ``W``, every difference is
    zero and a `RuntimeWarning` says so. Pass the parameters through instead:
    ``lambda W: net.with_params({**net.params, 'W1': W}).loss(x, t)``, or use
    :meth:`TwoLayerNet.numerical_gradient`, which is exact and much faster.

    On JAX, a traceable `f` is vectorized (``jax.vmap``, not compiled, so
    that every path gives the same numbers) and evaluated at 16 points per
    call: its Python code runs once per call, not once per point. An `f` that
    cannot be traced is called once per point ("What runs where" in the
    documentation).

    Examples
    --------
    >>> import numpy as np
    >>> from xgrad import numerical_gradient
    >>> def f2(x):
    ...     return (x**2).sum()
    >>> numerical_gradient(f2, np.array([3.0, 4.0]), h=1e-4).round(6)
    array([6., 8.])
    >>> numerical_gradient(f2, np.array([[1.0, 2.0], [3.0, 0.0]]), per_row=True).round(6)
    array([[2., 4.],
           [6., 0.]])
    """
    check_callable(f)
    method = check_method(method)
    h = check_optional_positive(h, "h")
    if batch is not None:
        warnings.warn("numerical_gradient's `batch` is deprecated; pass `per_row` (each row of a 2-d `x` "
                      "is a point)", DeprecationWarning, stacklevel=2)
        if per_row:
            raise TypeError("give `per_row` only; `batch` is its deprecated name")
        per_row = check_flag(batch, "batch")
    per_row, vectorized = check_flag(per_row, "per_row"), check_flag(vectorized, "vectorized")
    x, xp, _ = as_float_array(x)
    if per_row and x.ndim != 2:
        raise ValueError(f"with per_row=True, `x` must be 2-d (one point per row); got shape {tuple(x.shape)}")
    if chunk_size is not None and not vectorized and executor is None:
        raise ValueError("`chunk_size` applies only with vectorized=True or an `executor`")
    chunk = None if chunk_size is None else check_count(chunk_size, "chunk_size", minimum=1)
    if executor is not None:
        from xgrad._numerics.parallel import executor_gradient

        points = [x] if not per_row else [x[i, ...] for i in range(x.shape[0])]
        grads = [executor_gradient(f, p, xp, h, method, executor, chunk_size=chunk, vectorized=vectorized)
                 for p in points]
        grad = grads[0] if not per_row else xp.stack(grads) if grads else xp.zeros_like(x)
    else:
        try:
            grad = gradient_of(f, x, xp, h, method, per_row=per_row, vectorized=vectorized, chunk=chunk)
        except ValueError as exc:
            if per_row or x.ndim != 2 or "must return a scalar" not in str(exc):
                raise
            raise ValueError(f"{exc} Or, if each row of the 2-d `x` {tuple(x.shape)} is a point (the book's "
                             "gradient field, numerical_gradient(function_2, np.array([X, Y]).T)), pass "
                             "per_row=True for one gradient per row") from None
    check_finite_result(xp, grad, "gradient")
    return grad


def gradient_of(
    f: Callable[[Array], Array],
    x: Array,
    xp: Namespace,
    h: float | None,
    method: str,
    *,
    per_row: bool = False,
    vectorized: bool = False,
    chunk: int | None = None,
    name: str = "x",
) -> Array:
    """:func:`numerical_gradient` on checked arguments, without its test of a
    finite result (gradient descent reports that itself)."""
    steps = steps_for(xp, x, h, method, name=name)
    pairs = [(x, steps)] if not per_row else [(x[i, ...], steps[i, ...]) for i in range(x.shape[0])]
    k = None
    if vectorized:
        size = max(1, math.prod(x.shape[1:] if per_row else x.shape))
        k = chunk or (VECTORIZED_ELEMENTS // size or 1)
    parts = [_partials(f, p, s, xp, method, k) for p, s in pairs]
    grads = [g for g, _ in parts]
    grad = grads[0] if not per_row else xp.stack(grads) if grads else xp.zeros_like(x)
    if (math.prod(x.shape) and not bool(xp.any(grad != 0)) and all(unchanged() for _, unchanged in parts)
            and _same_far_away(f, pairs[0][0], xp, vectorized)):
        warnings.warn(CLOSURE_HINT, RuntimeWarning, stacklevel=3)
    return grad


def _same_far_away(f: Callable[[Array], Array], x: Array, xp: Namespace, vectorized: bool) -> bool:
    """Whether `f` also has its value at x at a point that differs from `x` in
    every element: two more evaluations, made only when the gradient is all zeros."""
    far = xp.where(x == 1, xp.zeros_like(x), xp.ones_like(x))
    if vectorized:
        values = stack_values(f, xp.stack([x, far]), 2, xp, x.dtype)
        return bool(values[0] == values[1])
    value = scalar_of(f, x, xp)
    return bool(value(fresh_copy(xp, x)) == value(far))


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

    Raises
    ------
    ValueError
        If `u` is zero or of another shape than `x`, `x` or `u` is not
        finite, `h` is not positive and finite, too small to move `x` along
        `u`, or takes ``x ± h*u`` out of range, or the slope is not finite.

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
    check_finite(xp, x, "x")
    check_finite(xp, u, "u")
    t = _direction_step(xp, x, u, h)
    value = scalar_of(f, x, xp)
    slope = (value(x + t * u) - value(x - t * u)) / (2 * t)
    check_finite_result(xp, slope, "directional derivative")
    return slope


def _log_norm(xp: Namespace, v: Array) -> float:
    """The log of the Euclidean norm of `v` (not all zeros), free of overflow."""
    top = xp.max(xp.abs(v))
    return float(xp.log(top) + 0.5 * xp.log(xp.sum((v / top) ** 2)))


def _direction_step(xp: Namespace, x: Array, u: Array, h: float | None) -> float:
    """The step in ``t``: `h`, or ``eps**(1/3) * max(1, ||x||) / ||u||``; checked
    to move `x` (``x + t*u != x`` where ``u != 0``) and to stay finite."""
    if not bool(xp.any(u != 0)):
        raise ValueError("`u` must be a non-zero direction; got all zeros (the slope along it is not a check)")
    if h is None:
        log_scale = max(0.0, _log_norm(xp, x)) if bool(xp.any(x != 0)) else 0.0
        exponent = math.log(eps(xp, x.dtype)) / 3 + log_scale - _log_norm(xp, u)
        if exponent > math.log(float(xp.finfo(x.dtype).max)):
            raise ValueError("`u` is too short for the scale of `x`: the step along it overflows; scale `u` up")
        return math.exp(exponent)
    largest = float(xp.finfo(x.dtype).max)
    if bool(xp.any(xp.abs(x) / largest + xp.abs(u) * (h / largest) > 1)):  # without overflowing
        raise ValueError(f"`h` = {h} takes x ± h*u out of the range of {x.dtype}; use a smaller `h`")
    moved = (x + h * u) != x
    if not bool(xp.all(moved | (u == 0))):
        raise ValueError(
            f"`h` = {h} is too small for `x` in {x.dtype}: x + h*u == x where u is not zero, so "
            "the difference would lose that part of the slope. Use a larger `h`, or h=None"
        )
    return h
