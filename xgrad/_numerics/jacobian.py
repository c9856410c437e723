"""Jacobians on top of :func:`xgrad.derivative` (and :func:`hessian`, from its own module).

Every entry ``(i, j)`` of the Jacobian is one element of the adaptive
iteration; entries of one column that try the same step share one evaluation
of `f`, and with ``vectorized=True`` all the points of one round go to `f` as
one stack. On a library with a compiler (JAX), a round of a small Jacobian is
one compiled call instead: a point per entry, built, evaluated and picked
from inside the program, where sharing would read the steps back to the host.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import array_api_compat

from xgrad._infra.host import to_numpy
from xgrad._infra.typing import Array, Namespace
from xgrad._infra.validate import as_float_array, check_callable, check_flag, fresh_copy, same_library_result
from xgrad._numerics.batched import BLOCK_ELEMENTS, compiled_around, compiled_own, stacked_values
from xgrad._numerics.derivative import DerivativeResult, derivative
from xgrad._numerics.hessian import hessian

__all__ = ["hessian", "jacobian"]


def _column_points(t: Array, x: Array, n: int, xp: Namespace) -> tuple[Array, list[list[int]]]:
    """The distinct points of one round, as the rows of one array, and for every (a, i, j), which one.
    The steps are read back to the host at once (not one element at a time) to find the distinct ones."""
    keys: dict[tuple[int, float], int] = {}
    steps = to_numpy(t).tolist()
    which = []
    for a in range(t.shape[0]):
        for i in range(t.shape[1]):
            row = []
            for j in range(n):
                key = (j, float(steps[a][i][j]))
                if key not in keys:
                    keys[key] = len(keys)
                row.append(keys[key])
            which.append(row)
    dev = array_api_compat.device(x)
    cols = xp.asarray([j for j, _ in keys], device=dev)
    moves = xp.asarray([step for _, step in keys], dtype=x.dtype, device=dev)
    return compiled_own(_moved, xp)(x, moves, cols, xp.arange(n, device=dev)), which


def _moved(x: Array, moves: Array, cols: Array, index: Array) -> Array:
    """Row r: `x` plus ``moves[r]`` times the unit vector ``cols[r]`` (`index`: the positions of `x`)."""
    xp = array_api_compat.array_namespace(x)
    return x[None, :] + moves[:, None] * xp.astype(cols[:, None] == index[None, :], x.dtype)


def _stacked(f: Callable[[Array], Array], x: Array, m: int, vectorized: bool,
             xp: Namespace, user: tuple[Callable[[Array], Any], Callable[[Any], Array], tuple[int, ...]] | None = None,
             ) -> Callable[[Array], Array]:
    """The elementwise function of the steps t[a, i, j] -> f_i(x + t e_j). `user`: the user's
    `f`, the check of its values and the shape of its argument, to evaluate it at all the
    points of a round in one compiled call where the library traces it (JAX)."""
    n = x.shape[0]
    whole = None if user is None else _per_entry(user[0], x, m, user[2], xp)

    def g(t: Array) -> Array:
        if math.prod(t.shape) == 0:  # an empty x, or an f with no outputs: nothing to evaluate
            return xp.zeros(t.shape, dtype=x.dtype, device=array_api_compat.device(x))
        if whole is not None and math.prod(t.shape) * max(n, m) <= BLOCK_ELEMENTS:
            values = whole(t)
            if values is not None:
                return values
        points, which = _column_points(t, x, n, xp)
        k = points.shape[0]
        if vectorized:
            values = xp.reshape(f(points), (k, m))
        elif user is not None:
            fn, check, shape = user
            values = stacked_values(fn, k, lambda lo, hi: xp.reshape(points[lo:hi, ...], (hi - lo, *shape)),
                                    lambda v: xp.reshape(check(v), (m,)), xp, n)
        else:
            values = xp.stack([xp.reshape(f(points[r, ...]), (m,)) for r in range(k)])
        # entry (a, i, j) of the round: value i of its point, gathered in one operation
        index = [which[r][j] * m + r % m for r in range(len(which)) for j in range(n)]
        picked = xp.take(xp.reshape(values, (-1,)), xp.asarray(index, device=array_api_compat.device(x)), axis=0)
        return xp.reshape(picked, t.shape)

    return g


def _per_entry(f: Callable[[Array], Any], x: Array, m: int, shape: tuple[int, ...],
               xp: Namespace) -> Callable[[Array], Array | None]:
    """The steps t[a, i, j] -> f_i(x + t e_j) in one compiled call, one point per entry, where
    the library has a compiler and `f` traces; None from the call elsewhere. `x` is flat and
    `shape` the shape of the argument of `f`."""
    n, dtype, dev = x.shape[0], x.dtype, array_api_compat.device(x)

    def one(value: Any) -> Array:  # kept with the compiled call while f lives: no array of this call
        if not array_api_compat.is_array_api_obj(value) or math.prod(value.shape) != m:
            raise ValueError("a value of another shape than at `x`: the round is done point by point, which says so")
        return xp.reshape(same_library_result(value, xp, dtype, "`f`"), (m,))

    def around(values_of: Callable[[Array], Array]) -> Callable[..., Array]:
        def core(t: Array, flat: Array) -> Array:
            r = xp.arange(math.prod(t.shape), device=dev)  # point r: entry (a, i, j), moved along x_j
            index = xp.arange(n, device=dev)
            steps = xp.reshape(t, (-1,))
            block = flat[None, :] + steps[:, None] * xp.astype((r % n)[:, None] == index[None, :], dtype)
            values = values_of(xp.reshape(block, (r.shape[0], *shape)))  # (points, m)
            # entry (a, i, j): value i of its point
            return xp.reshape(xp.take(xp.reshape(values, (-1,)), r * m + (r // n) % m, axis=0), t.shape)

        return core

    kind = f"jacobian {shape} {m} {dtype} {dev}"
    return lambda t: compiled_around(f, kind, one, around, (t, x), xp)


def _checked_values(value: Any, shape: tuple[int, ...] | None, x: Array, xp: Namespace, what: str) -> Array:
    """A value of `f` as a real array of the namespace, device and dtype of `x`,
    refused (with an error naming `f`) if it is of another library, complex, a
    float narrower than `x`, or not of `shape` (None: any shape)."""
    if isinstance(value, int | float | list | tuple) and not isinstance(value, bool):
        value = xp.asarray(value, device=array_api_compat.device(x))  # Python numbers, nested lists
    if not array_api_compat.is_array_api_obj(value):
        raise TypeError(f"`f` must return an array or a number; got {type(value).__name__}")
    value = same_library_result(value, xp, x.dtype, "`f`")
    if shape is not None and tuple(value.shape) != shape:
        raise ValueError(f"`f` must return an array of shape {shape} {what}; got shape {tuple(value.shape)}")
    return value


def jacobian(
    f: Callable[[Array], Array],
    x: Any,
    /,
    *,
    vectorized: bool = False,
    rtol: float | None = None,
    atol: float | None = None,
    maxiter: int = 14,
    initial_step: Any = None,
    step_direction: Any = 0,
    step_factor: float | None = None,
    order: int | None = None,
) -> DerivativeResult:
    """Jacobian of a vector function, entry by entry with error control.

    Parameters
    ----------
    f : callable
        Maps an array of the shape of `x` to an array of any shape. With
        ``vectorized=True`` it maps a stack of shape ``(k, *x.shape)`` to
        ``(k, *out_shape)``.
    x : array or number
        Where to differentiate.
    vectorized : bool
        Call `f` once per round on a stack of points instead of once per point.
    rtol, atol, maxiter, step_factor, order
        As for :func:`derivative`, per entry.
    initial_step, step_direction : float or array, optional
        As for :func:`derivative`, per input: a number, or an array of the
        shape of `x` (one value per variable), e.g. one-sided steps for the
        variables at the edge of the domain of `f`.

    Returns
    -------
    DerivativeResult
        Its fields have shape ``out_shape + x.shape``; ``df[i, j]`` is the
        derivative of output ``i`` with respect to input ``j``.

    Raises
    ------
    TypeError
        If `f` returns something other than a real array (or number) of the
        library of `x`, or a float narrower than the dtype of `x`.
    ValueError
        If a value of `f` has another shape than its value at `x` (with
        ``vectorized=True``: than ``(k, *out_shape)`` for a stack of `k`
        points).

    Notes
    -----
    Each entry runs :func:`derivative`'s iteration with the scale
    ``max(|x_j|, 1)``; evaluations of `f` are shared by the entries of one
    column while their steps agree, so the cost is about that of one
    derivative per column (``nfev`` counts per entry).

    On JAX, without ``vectorized=True``, a traceable `f` is traced and
    compiled (once per `f` and shape of the points) and evaluated at all the
    points of a round in one call: its Python code runs once per compilation,
    not once per point. Where the points of a round hold at most 2**18
    numbers, one program builds a point per entry, evaluates `f` and picks
    the entries, with no step read back to the host to share points. An `f`
    that cannot be traced is called once per point ("What runs where" in the
    documentation).

    Examples
    --------
    >>> import numpy as np
    >>> from xgrad import jacobian
    >>> A = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    >>> res = jacobian(lambda x: A @ x, np.array([0.5, -1.0]))
    >>> bool(np.allclose(res.df, A, rtol=1e-12))
    True
    """
    check_callable(f)
    vectorized = check_flag(vectorized, "vectorized")
    x, xp, _ = as_float_array(x)
    flat = xp.reshape(x, (-1,))
    n = flat.shape[0]
    out = _checked_values(f(xp.stack([x]) if vectorized else fresh_copy(xp, x)), None, x, xp, "")
    if vectorized and (out.ndim == 0 or out.shape[0] != 1):
        raise ValueError("with vectorized=True, `f` must map a stack of k points, shape (k, *x.shape), to "
                         f"values of shape (k, *out_shape); given one point it returned shape {tuple(out.shape)}")
    out_shape = tuple(out.shape[1:] if vectorized else out.shape)
    m = math.prod(out_shape)

    checked = [False]

    def f_flat(v: Array) -> Array:
        if vectorized:
            k = v.shape[0]
            values = _checked_values(f(xp.reshape(v, (k, *x.shape))), (k, *out_shape), x, xp,
                                     f"(k, *out_shape) for a stack of k = {k} points")
            if not checked[0] and k > 1:  # once: the first point alone must give what it gave in the stack
                checked[0] = True
                alone = _checked_values(f(xp.reshape(v[:1, ...], (1, *x.shape))), (1, *out_shape), x, xp,
                                        "(1, *out_shape) for a stack of one point")
                _one_per_point(alone, values, k, xp)
            return values
        return _checked_values(f(xp.reshape(v, x.shape)), out_shape, x, xp, "at every point, as at `x`")

    user = None if vectorized else (f, lambda v: _checked_values(v, out_shape, x, xp, "at every point, as at `x`"),
                                    tuple(x.shape))
    g = _stacked(f_flat, flat, m, vectorized, xp, user)
    zero = xp.zeros((m, n), dtype=x.dtype, device=array_api_compat.device(x))
    scale = xp.broadcast_to(xp.maximum(xp.abs(flat), xp.ones_like(flat)), (m, n))
    per_input: dict[str, Any] = {"initial_step": initial_step, "step_direction": step_direction}
    for name, value in per_input.items():
        if array_api_compat.is_array_api_obj(value) and value.ndim:
            if tuple(value.shape) != tuple(x.shape):
                raise ValueError(f"`{name}` must be a number or an array of the shape of `x` {tuple(x.shape)}; "
                                 f"got shape {tuple(value.shape)}")
            per_input[name] = xp.broadcast_to(xp.reshape(value, (1, n)), (m, n))
    res = derivative(g, zero, scale=scale, rtol=rtol, atol=atol, maxiter=maxiter,
                     initial_step=per_input["initial_step"], step_direction=per_input["step_direction"],
                     step_factor=step_factor, order=order)
    return _reshaped(res, (*out_shape, *x.shape), xp)


def _one_per_point(alone: Array, values: Array, k: int, xp: Namespace) -> None:
    """Refuse a vectorized `f` whose values of the first point of a stack of `k` differ
    from its values alone by more than rounding: one that mixes the points of a stack."""
    a, b = xp.reshape(alone[0, ...], (-1,)), xp.reshape(values[0, ...], (-1,))
    eps = float(xp.finfo(values.dtype).eps)
    slack = math.sqrt(eps) * (xp.abs(a) + xp.abs(b)) + 64 * eps * xp.max(xp.abs(values))
    differ = xp.isfinite(a) & xp.isfinite(b) & ~(xp.abs(a - b) <= slack)
    if bool(xp.any(differ)):
        raise ValueError(
            "with vectorized=True, `f` must map a stack of points of shape (k, *x.shape) to values of shape "
            "(k, *out_shape), one row per point, each depending on its point alone; the first point of a stack "
            f"of {k} got other values than that point alone. Reduce over the axes of a point only, never over "
            "the stack's first axis")


def _reshaped(res: DerivativeResult, shape: tuple[int, ...], xp: Namespace) -> DerivativeResult:
    return DerivativeResult(**{k: xp.reshape(getattr(res, k), shape) for k in
                               ("df", "error", "success", "status", "nfev", "nit")})
