"""What the figures draw, computed: descent paths and their verdicts, windows,
contour grids, checked ranges and steps. Pure functions of host or backend
arrays; :mod:`xgrad.plot` only draws what these return."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import array_api_compat
import numpy as np

from xgrad._infra.backend import quiet_overflow
from xgrad._infra.host import to_numpy
from xgrad._infra.typing import Array
from xgrad._infra.validate import as_float_array, as_scalar, check_callable, check_positive, check_real
from xgrad._numerics.descent import DescentDivergedError, gradient_descent
from xgrad._numerics.diff import difference_quotient
from xgrad._plot.functions import book_function_1, book_function_2, exp_function, function_name

__all__ = [
    "CONTOUR_GRID", "CONVERGED_MOVE", "MAX_GRID", "MAX_HS", "MAX_PANELS", "MAX_START", "MAX_STEPS", "SAMPLES",
    "book_function_1", "book_function_2", "check_grid_step", "check_lrs", "check_range", "check_steps",
    "contour_levels", "descent_path", "descent_verdict", "exp_function", "grid_values", "path_window",
    "start_point", "step_error_functions", "step_errors",
]

SAMPLES = 200  # points on a drawn curve: smooth at any figure size
CONTOUR_GRID = 41  # contour grid points per axis: smooth lines, 1,681 evaluations of f
MAX_GRID = 2000  # grid points per axis of a gradient field: bounds memory and time
MAX_STEPS = 100_000  # steps of a drawn descent path: more cannot be told apart
MAX_PANELS = 12  # learning rates side by side: more panels are unreadable
MAX_HS = 10_000  # steps of a step-error curve: bounds 8 evaluations of f per step
MAX_START = 1e307  # |start| of a descent: its window, about 3.3 times as wide, stays finite
# a descent "converges" when its last move is below this fraction of its first
CONVERGED_MOVE = 0.1


def check_range(lim: Any, name: str) -> tuple[float, float]:
    try:
        lo, hi = lim
    except (TypeError, ValueError):
        raise TypeError(f"`{name}` must be a pair (low, high); got {lim!r}") from None
    lo, hi = check_real(lo, name), check_real(hi, name)
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"`{name}` must be finite with low < high; got {lim!r}")
    return lo, hi


def check_grid_step(spacing: float, *widths: float) -> float:
    """Refuse a grid of more than :data:`MAX_GRID` points per axis (memory and time)."""
    widest = max(widths)
    if widest / spacing > MAX_GRID:
        raise ValueError(f"`spacing` {spacing:g} makes a grid of about {widest / spacing:.3g} points per axis, more "
                         f"than {MAX_GRID}; for this range use a `spacing` of at least {widest / MAX_GRID:.3g}")
    return spacing


def check_lrs(lrs: Any) -> list[float]:
    if isinstance(lrs, (int, float)) or not isinstance(lrs, Sequence):
        raise TypeError(f"`lrs` must be a sequence of learning rates; got {type(lrs).__name__}")
    if not lrs:
        raise ValueError("`lrs` must hold at least one learning rate; got an empty sequence")
    if len(lrs) > MAX_PANELS:
        raise ValueError(f"`lrs` must hold at most {MAX_PANELS} learning rates (one panel each); got {len(lrs)}")
    return [check_positive(lr, "lrs") for lr in lrs]


def start_point(init_x: Any) -> Array:
    x, _, _ = as_float_array(init_x, name="init_x")
    if tuple(x.shape) != (2,):
        raise ValueError(f"`init_x` must be one point of two variables; got shape {tuple(x.shape)}")
    largest = float(np.max(np.abs(to_numpy(x))))
    if not largest <= MAX_START:
        raise ValueError(f"`init_x` must lie within -{MAX_START:g} to {MAX_START:g} in each variable (the figure's "
                         f"window, three times as wide, must have finite limits); got {largest:g}")
    return x


def descent_path(
    f: Callable[[Array], Array], start: Array, lr: float, step_num: int, h: float | None
) -> tuple[np.ndarray, int | None]:
    """The host path, and the step at which it became non-finite (or None: finite, or running away)."""
    try:
        _, path = gradient_descent(f, start, lr=lr, step_num=step_num, h=h, return_path=True)
        return to_numpy(path), None
    except DescentDivergedError as err:  # the finite part, as the error keeps it
        return to_numpy(err.path), None if err.running_away else err.step  # a runaway path shows itself


def descent_verdict(path: np.ndarray, bad_step: int | None) -> str:
    if bad_step is not None:
        return f"diverges (non-finite at step {bad_step})"
    moves = np.diff(path, axis=0)
    lengths = np.hypot(moves[:, 0], moves[:, 1])
    if lengths[0] == 0:
        return "stays put"
    if lengths[-1] > lengths[0]:
        return "diverges"
    if len(moves) > 1 and np.dot(moves[-1], moves[-2]) < 0:
        return "oscillates"
    return "converges" if lengths[-1] < CONVERGED_MOVE * lengths[0] else "barely moves"


def path_window(path: np.ndarray, start: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    half = 1.5 * max(float(np.max(np.abs(start))), 1.0)
    lo = np.minimum(path.min(axis=0), -half)
    hi = np.maximum(path.max(axis=0), half)
    pad = 0.05 * hi - 0.05 * lo  # as 0.05 (hi - lo), without overflowing for a path that ran far out
    top = np.finfo(np.float64).max
    return np.maximum(lo - pad, -top), np.minimum(hi + pad, top)


def grid_values(f: Callable[[Array], Array], start: Array, gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
    """`f` at every grid point, evaluated one point at a time on `start`'s backend."""
    xp = array_api_compat.array_namespace(start)
    device = array_api_compat.device(start)
    points = xp.asarray(np.stack([gx.ravel(), gy.ravel()], axis=1), dtype=start.dtype, device=device)
    values = [as_scalar(f(points[i, ...]), xp, device, start.dtype, "`f`") for i in range(points.shape[0])]
    return np.reshape(to_numpy(xp.stack(values)), gx.shape)


def step_error_functions(f: Any, dfdx: Any) -> tuple[Callable[[Array], Array], Callable[[Array], Array]]:
    if f is None and dfdx is None:
        return exp_function, exp_function
    if f is None or dfdx is None:
        raise ValueError("give `f` and its exact derivative `dfdx` together, or neither (exp)")
    check_callable(f)
    check_callable(dfdx, "dfdx")
    return f, dfdx


def check_steps(hs: Any) -> np.ndarray:
    if hs is None:
        return np.logspace(-13, 0, 53)
    try:
        steps = np.asarray(to_numpy(hs), dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"`hs` must be a sequence of steps; got {type(hs).__name__}") from None
    if steps.ndim != 1 or steps.size == 0:
        raise ValueError(f"`hs` must be a non-empty 1-d sequence; got shape {steps.shape}")
    if steps.size > MAX_HS:
        raise ValueError(f"`hs` must hold at most {MAX_HS} steps; got {steps.size}")
    if not np.all(np.isfinite(steps) & (steps > 0)):
        raise ValueError("`hs` must hold positive, finite steps")
    return steps


def contour_levels(z: np.ndarray) -> np.ndarray:
    """Twelve contour levels between the 2% and 98% quantiles of the finite
    values of `z` (fewer where they coincide; none when nothing is finite)."""
    finite = z[np.isfinite(z)]
    return np.unique(np.quantile(finite, np.linspace(0.02, 0.98, 12))) if finite.size else finite


def step_errors(f: Callable[[Array], Array], dfdx: Callable[[Array], Array], x: Any,
                steps: np.ndarray) -> tuple[float, dict[tuple[str, str], np.ndarray]]:
    """The point, and the absolute error of the bare difference quotient at each
    step, for ``(dtype, method)`` in float32 and float64, forward and central.

    The quotient is the bare one (:func:`numerical_diff` refuses the steps that
    show rounding error); the exact derivative is `dfdx` in float64.
    """
    x, xp, _ = as_float_array(x)
    if math.prod(x.shape) != 1:
        raise ValueError(f"`x` must be a single point; got shape {tuple(x.shape)}")
    x = xp.reshape(x, ())
    x0 = float(to_numpy(x))
    errors = _step_errors(f, dfdx, x, steps)
    problem = _nothing_to_draw(errors)
    if problem is not None:
        raise ValueError(_out_of_range(f, dfdx, x, steps, problem))
    return x0, errors


def _nothing_to_draw(errors: dict[tuple[str, str], np.ndarray]) -> str | None:
    """Why the curves of `errors` would leave the figure (or one of its curves) empty, or None."""
    empty = [f"{dtype}, {method}" for (dtype, method), err in errors.items() if not np.any(np.isfinite(err))]
    if empty:
        return f"are not finite there at any step ({'; '.join(empty)})"
    if not any(np.any(np.isfinite(err) & (err > 0)) for err in errors.values()):
        return "equal its derivative exactly at every step (the values underflow or do not change), which a log "\
            "scale cannot show"
    return None


def _step_errors(f: Callable[[Array], Array], dfdx: Callable[[Array], Array], x: Array,
                 steps: np.ndarray) -> dict[tuple[str, str], np.ndarray]:
    """The errors of :func:`step_errors` at the 0-d `x`, non-finite where the values overflow."""
    xp = array_api_compat.array_namespace(x)
    with quiet_overflow(xp):  # overflow shows as non-finite errors, which the caller refuses
        exact = float(to_numpy(dfdx(xp.astype(x, xp.float64))))
        errors = {}
        for dtype in ("float32", "float64"):
            xd = xp.astype(x, getattr(xp, dtype))
            for method in ("forward", "central"):
                diffs = [float(to_numpy(difference_quotient(f, xd, float(h), method))) for h in steps]
                errors[dtype, method] = np.abs(np.asarray(diffs) - exact)
    return errors


def _out_of_range(f: Callable[[Array], Array], dfdx: Callable[[Array], Array], x: Array, steps: np.ndarray,
                  problem: str) -> str:
    """Why nothing can be drawn at `x`, and the points that work: the last one (found by bisection
    from 1 or 0 towards `x`, on the smallest and largest steps) where every curve has a finite value."""
    xp = array_api_compat.array_namespace(x)
    ends = steps[[int(np.argmin(steps)), int(np.argmax(steps))]]

    def works(point: float) -> bool:
        at = xp.asarray(point, dtype=xp.float64, device=array_api_compat.device(x))
        return _nothing_to_draw(_step_errors(f, dfdx, at, ends)) is None

    x0 = float(to_numpy(x))
    what = (f"`x` {x0:g} is outside the range where this figure can be drawn: the difference quotients of "
            f"{function_name(f)} {problem}")
    good = next((g for g in (1.0, 0.0) if math.isfinite(x0) and works(g)), None)
    if good is None:
        return what + "; choose an `x` where f and dfdx have finite values in float32 and float64"
    lo, hi = math.asinh(good), math.asinh(x0)  # bisection on asinh: the boundary may be anywhere up to 1e308
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if works(math.sinh(mid)) else (lo, mid)
    bound = math.sinh(lo)
    side = "at most" if x0 > good else "at least"
    return what + f"; choose an `x` of {side} about {bound:.4g}"
