"""Gradient descent on any array-API backend."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import array_api_compat

from xgrad._infra.typing import Array, Namespace
from xgrad._infra.validate import (
    as_float_array,
    check_callable,
    check_count,
    check_flag,
    check_optional_positive,
    check_positive,
    fresh_copy,
)
from xgrad._numerics.gradient import gradient_of
from xgrad._numerics.steps import StepError, check_finite, steps_for

__all__ = ["DescentDivergedError", "DivergenceError", "gradient_descent"]


class DivergenceError(FloatingPointError):
    """An iteration produced non-finite values: the common base of
    :class:`DescentDivergedError` and :class:`TrainingDivergedError`, so that
    ``except DivergenceError`` catches both.

    Attributes
    ----------
    step : int
        The 1-based step (or iteration) at which values became non-finite.
    last_finite : object
        The last finite point (or parameters), for inspection or a restart.
    """

    def __init__(self, message: str, *, step: int, last_finite: Any) -> None:
        super().__init__(message)
        self.step = step
        self.last_finite = last_finite


class DescentDivergedError(DivergenceError):
    """:func:`gradient_descent` reached a non-finite point, or a point running away.

    Attributes
    ----------
    step : int
        The 1-based descent step that gave the non-finite (or runaway) point.
    last_finite : array
        The last finite point.
    path : array or None
        With ``return_path=True``, the points from the start to the last
        finite one, one per row (``step`` rows); None otherwise.
    running_away : bool
        True when the point was still finite but running away: more than a
        million times the start's scale, its size and step growing at each of
        the last five steps. The same rule holds whatever the gradient (any
        step `h`, or `grad`).
    """

    def __init__(self, message: str, *, step: int, last_finite: Any, path: Any = None,
                 running_away: bool = False) -> None:
        super().__init__(message, step=step, last_finite=last_finite)
        self.path = path
        self.running_away = running_away


def gradient_descent(
    f: Callable[[Array], Array],
    /,
    init_x: Any,
    *,
    lr: float = 0.01,
    step_num: int = 100,
    h: float | None = None,
    grad: Callable[[Array], Array] | None = None,
    return_path: bool = False,
) -> Array | tuple[Array, Array]:
    """Minimise `f` by `step_num` iterations of the update ``x <- x - lr * ∇f(x)``.

    Parameters
    ----------
    f : callable
        Scalar-valued function of one array.
    init_x : array or sequence of numbers
        The start; never modified. It may be given by keyword, as the book
        does: ``gradient_descent(f, init_x=x, lr=0.1, step_num=100)``.
    lr : float
        The learning rate, positive: each update is `lr` times the gradient.
    step_num : int
        Number of iterations (the book's name), >= 0.
    h : float, optional
        Step of the numerical gradient (see :func:`numerical_gradient`); not
        with `grad`.
    grad : callable, optional
        The gradient of `f`, if known; by default the numerical gradient.
    return_path : bool
        Also return every point visited, shape ``(step_num + 1, *x.shape)``,
        the start included.

    Returns
    -------
    x : array
        The final point, of the floating dtype of `init_x` (integers are
        promoted), whatever the dtype `grad` returns.
    path : array
        Only with ``return_path=True``.

    Raises
    ------
    ValueError
        If `init_x` is not finite, `lr` or `h` is not positive and finite,
        `h` is given with `grad` (where it would have no effect), the step
        `h` is too small for the dtype to resolve at `init_x`, or
        `grad` returns an array of another shape than `init_x`.
    DescentDivergedError
        If the point becomes non-finite (inf or nan), grows past what the
        step `h` resolves, or the gradient is not finite at a finite point.
        The error names the step, says which happened (only a growing point
        is blamed on `lr`) and keeps the last finite point in ``.last_finite``
        and, with ``return_path=True``, the path up to it in ``.path``.

    Examples
    --------
    >>> import numpy as np
    >>> from xgrad import gradient_descent
    >>> def f2(x):
    ...     return (x**2).sum()
    >>> x = gradient_descent(f2, np.array([-3.0, 4.0]), lr=0.1, step_num=100, h=1e-4)
    >>> print(np.array2string(x, precision=8))   # the book's value
    [-6.11110793e-10  8.14814391e-10]
    >>> x, path = gradient_descent(f2, [-3.0, 4.0], lr=0.1, step_num=20, return_path=True)
    >>> path.shape
    (21, 2)
    """
    check_callable(f)
    lr = check_positive(lr, "lr")
    step_num = check_count(step_num, "step_num")
    h = check_optional_positive(h, "h")
    return_path = check_flag(return_path, "return_path")
    if grad is not None:
        check_callable(grad, "grad")
        if h is not None:
            raise ValueError("`h` is the numerical gradient's step and `grad` replaces that gradient, so `h` "
                             "would have no effect; pass one or the other")
    x, xp, _ = as_float_array(init_x, name="init_x")
    check_finite(xp, x, "init_x")
    x = fresh_copy(xp, x)  # the result is never the caller's array, even after 0 iterations
    if grad is None:
        steps_for(xp, x, h, "central", name="init_x")  # a step that works at the start

    def gradient(p: Array) -> Array:
        return gradient_of(f, p, xp, h, "central") if grad is None else _checked_grad(grad, p, xp)

    path = [x]
    away = _RunAway(xp, x)
    for iteration in range(1, step_num + 1):
        try:
            g = gradient(x)
        except StepError as exc:  # the point has grown past what the step resolves
            raise _with_path(_diverged(xp, iteration, step_num, lr, x, path[0], str(exc)), xp, path,
                             return_path) from exc
        new_x = x - lr * g
        if not bool(xp.all(xp.isfinite(new_x))):
            raise _with_path(_not_finite(xp, iteration, step_num, lr, x, path[0], g), xp, path, return_path)
        if away.step(x, new_x):
            err = _diverged(xp, iteration, step_num, lr, x, path[0], away.why)
            err.running_away = True
            raise _with_path(err, xp, path, return_path)
        x = new_x
        if return_path:
            path.append(x)
    if return_path:
        return x, xp.stack(path)
    return x


class _RunAway:
    """The one rule of divergence, whatever computes the gradient (any `h`, or `grad`):
    the point is more than :data:`RUNAWAY` times the start's scale away and both its
    size and its step have grown at each of the last :data:`RUNAWAY_STEPS` steps. A
    descent that converges, even to a far minimum, takes shorter and shorter steps."""

    def __init__(self, xp: Namespace, start: Array) -> None:
        self.xp, self.limit = xp, RUNAWAY * max(1.0, _largest(xp, start))
        self.size, self.stride, self.growing = _largest(xp, start), math.inf, 0
        self.why = ""

    def step(self, x: Array, new_x: Array) -> bool:
        size, stride = _largest(self.xp, new_x), _largest(self.xp, new_x - x)
        self.growing = self.growing + 1 if size > self.size and stride > self.stride else 0
        self.size, self.stride = size, stride
        if self.growing >= RUNAWAY_STEPS and size > self.limit:
            self.why = (f"it would reach |x| = {size:.3g}, and its size and its step have grown at each of the "
                        f"last {self.growing} steps: it is running away from any minimum")
            return True
        return False


RUNAWAY = 1e6  # times the start's scale (at least 1) that a point must have grown to, to be running away
RUNAWAY_STEPS = 5  # steps in a row of growth that make it so


def _with_path(err: DescentDivergedError, xp: Namespace, path: list[Array], kept: bool) -> DescentDivergedError:
    err.path = xp.stack(path) if kept else None
    return err


def _checked_grad(grad: Callable[[Array], Array], x: Array, xp: Namespace) -> Array:
    g = grad(fresh_copy(xp, x))
    shape = getattr(g, "shape", None)
    if shape is None or tuple(shape) != tuple(x.shape):
        got = type(g).__name__ if shape is None else f"shape {tuple(shape)}"
        raise ValueError(f"`grad` must return an array of the shape of `init_x` {tuple(x.shape)}; got {got}")
    if array_api_compat.array_namespace(g) is not xp:
        raise TypeError(f"`grad` must return an array of the library of `init_x`; got {type(g).__name__}")
    if not xp.isdtype(g.dtype, ("real floating", "integral")):
        raise TypeError(f"`grad` must return real numbers; got dtype {g.dtype}")
    return g if g.dtype == x.dtype else xp.astype(g, x.dtype)  # a float64 grad must not widen the point


def _largest(xp: Namespace, x: Array) -> float:
    return float(xp.max(xp.abs(x))) if math.prod(x.shape) else 0.0


def _diverged(xp: Namespace, iteration: int, step_num: int, lr: float, x: Array, start: Array,
              why: str) -> DescentDivergedError:
    return DescentDivergedError(
        f"gradient descent diverged at step {iteration} of {step_num}: the point grew from "
        f"|x| = {_largest(xp, start):.3g} to {_largest(xp, x):.3g}; {why}. Try a smaller "
        f"`lr` (got {lr}); the last finite point is in the error's `.last_finite`.",
        step=iteration,
        last_finite=x,
    )


def _not_finite(
    xp: Namespace, iteration: int, step_num: int, lr: float, x: Array, start: Array, g: Array
) -> DescentDivergedError:
    """Why ``x - lr * g`` is not finite: the gradient at a finite point, or the update."""
    grew = _largest(xp, x) > 1e3 * max(1.0, _largest(xp, start))
    if bool(xp.all(xp.isfinite(g))):
        why = "the point overflowed"
    elif grew:
        why = "the gradient became non-finite where the values of `f` overflow"
    else:
        return DescentDivergedError(
            f"gradient descent stopped at step {iteration} of {step_num}: the gradient is not "
            f"finite at the finite point of step {iteration - 1} (largest |x| = {_largest(xp, x):.3g}); "
            "`f` (or `grad`) returned inf or nan near it. The learning rate is not the cause; "
            "check `f` there. The last finite point is in the error's `.last_finite`.",
            step=iteration,
            last_finite=x,
        )
    return _diverged(xp, iteration, step_num, lr, x, start, why)
