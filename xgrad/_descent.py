"""Gradient descent on any array-API backend."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from xgrad._diff import numerical_gradient
from xgrad._typing import Array
from xgrad._validate import as_float_array, check_callable, check_count, check_positive

__all__ = ["DivergenceError", "gradient_descent"]


class DivergenceError(FloatingPointError):
    """An iteration produced non-finite values.

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


def gradient_descent(
    f: Callable[[Array], Array],
    init_x: Any,
    /,
    *,
    lr: float = 0.01,
    step_num: int = 100,
    h: float | None = None,
    grad: Callable[[Array], Array] | None = None,
    return_path: bool = False,
) -> Array | tuple[Array, Array]:
    """Minimise `f` by taking `step_num` steps ``x <- x - lr * ∇f(x)``.

    Parameters
    ----------
    f : callable
        Scalar-valued function of one array.
    init_x : array or sequence of numbers
        The start; never modified.
    lr : float
        The learning rate (step size), positive.
    step_num : int
        Number of steps, >= 0.
    h : float, optional
        Step of the numerical gradient (see :func:`numerical_gradient`).
    grad : callable, optional
        The gradient of `f`, if known; by default the numerical gradient.
    return_path : bool
        Also return every point visited, shape ``(step_num + 1, *x.shape)``,
        the start included.

    Returns
    -------
    x : array
        The final point.
    path : array
        Only with ``return_path=True``.

    Raises
    ------
    DivergenceError
        If the point becomes non-finite (inf or nan). The error names the step
        and keeps the last finite point in ``.last_finite``.

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
    if grad is not None:
        check_callable(grad, "grad")
    x, xp, _ = as_float_array(init_x, name="init_x")
    gradient = grad if grad is not None else (lambda p: numerical_gradient(f, p, h=h))
    path = [x]
    for step in range(1, step_num + 1):
        new_x = x - lr * gradient(x)
        if not bool(xp.all(xp.isfinite(new_x))):
            raise DivergenceError(
                f"gradient descent diverged at step {step} of {step_num}: the point "
                f"became non-finite. Try a smaller `lr` (got {lr}); the last finite "
                "point is in the error's `.last_finite`.",
                step=step,
                last_finite=x,
            )
        x = new_x
        if return_path:
            path.append(x)
    if return_path:
        return x, xp.stack(path)
    return x
