"""The gradient figures of chapter 4: the field of -grad f (Fig. 4-9) and
gradient descent's paths (Fig. 4-10). Exported by :mod:`xgrad.plot`."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from xgrad._infra.backend import Backend, resolve_backend
from xgrad._infra.host import to_numpy
from xgrad._infra.typing import Array
from xgrad._infra.validate import (
    check_callable,
    check_count,
    check_positive,
)
from xgrad._numerics.gradient import numerical_gradient
from xgrad._plot.canvas import new_figure
from xgrad._plot.data import (
    CONTOUR_GRID,
    MAX_STEPS,
    check_grid_step,
    check_lrs,
    check_range,
    contour_levels,
    descent_path,
    descent_verdict,
    grid_values,
    path_window,
    start_point,
)
from xgrad._plot.functions import book_function_2, function_label

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


# -- Fig. 4-9 -----------------------------------------------------------------
def gradient_field(
    f: Callable[[Array], Array] | None = None,
    *,
    xlim: tuple[float, float] = (-2, 2.5),
    ylim: tuple[float, float] = (-2, 2.5),
    spacing: float = 0.25,
    h: float | None = None,
    vectorized: bool = True,
    backend: str | Backend = "numpy",
    step: float | None = None,
) -> Figure:
    """Arrows of the negative gradient ``-∇f`` on a grid (the book's figure 4-9).

    Parameters
    ----------
    f : callable, optional
        A function of two variables. With ``vectorized=True`` (the default) it
        maps a stack of points, shape ``(k, 2)``, to ``k`` values, e.g.
        ``lambda x: (x**2).sum(axis=-1)``; with ``vectorized=False`` it takes
        one point ``(2,)``. By default the book's ``x0² + x1²``.
    xlim, ylim : (float, float)
        The grid's intervals; points are ``low, low + spacing, ...`` below high.
    spacing : float
        Distance between neighbouring grid points.
    h : float, optional
        Step of the numerical gradient.
    vectorized : bool
        Whether `f` takes stacks of points (much faster).
    backend : str or Backend
        Where the gradients are computed (see :func:`xgrad.resolve_backend`).
    step : float, optional
        Deprecated: the old name of `spacing` (it warns; `h` is the step).

    Returns
    -------
    matplotlib.figure.Figure
        One panel holding a quiver with one arrow per grid point; the title
        names `f`.

    Notes
    -----
    The gradients come from ``numerical_gradient(f, points, per_row=True,
    vectorized=vectorized)``: ``4 * k`` values of `f` for ``k`` points.

    Examples
    --------
    >>> from xgrad.plot import gradient_field
    >>> fig = gradient_field()
    >>> fig.axes[0].collections[0].N   # an 18 x 18 grid
    324
    """
    f = book_function_2 if f is None else f
    check_callable(f)
    (x_lo, x_hi), (y_lo, y_hi) = check_range(xlim, "xlim"), check_range(ylim, "ylim")
    if step is not None:
        warnings.warn("`step` is deprecated in `gradient_field`; use `spacing=` (the grid's spacing; `h` is the "
                      "step of the numerical gradient)", DeprecationWarning, stacklevel=2)
        spacing = step
    spacing = check_grid_step(check_positive(spacing, "spacing"), x_hi - x_lo, y_hi - y_lo)
    gx, gy = np.meshgrid(np.arange(x_lo, x_hi, spacing), np.arange(y_lo, y_hi, spacing))
    points = np.stack([gx.ravel(), gy.ravel()], axis=1)
    b = backend if isinstance(backend, Backend) else resolve_backend(backend)
    grad = to_numpy(numerical_gradient(f, b.asarray(points), h=h, per_row=True, vectorized=vectorized))
    fig, (ax,) = new_figure(panel=(6.0, 5.5))
    ax.quiver(
        points[:, 0],
        points[:, 1],
        -grad[:, 0],
        -grad[:, 1],
        angles="xy",
        color="0.35",
        label="−∇f, the steepest way down",
    )
    ax.set(
        xlabel="$x_0$",
        ylabel="$x_1$",
        xlim=(x_lo - spacing, x_hi),
        ylim=(y_lo - spacing, y_hi),
        title=f"The negative gradient of\n{function_label(f, 2)}",
    )
    ax.set_aspect("equal")
    ax.grid(alpha=0.3)
    fig.legend(loc="outside lower center")  # below the axes and their labels
    return fig


# -- Fig. 4-10 ----------------------------------------------------------------
def descent_paths(
    f: Callable[[Array], Array] | None = None,
    init_x: Any = (-3.0, 4.0),
    *,
    lrs: Sequence[float] = (0.1, 0.001, 1.05),
    step_num: int = 20,
    h: float | None = None,
) -> Figure:
    """Gradient descent paths over the contour lines of `f`, one panel per
    learning rate (the book's figure 4-10, side by side).

    The defaults show the three behaviours: ``lr=0.1`` converges, ``lr=0.001``
    barely moves, ``lr=1.05`` overshoots further at every step and diverges.

    Parameters
    ----------
    f : callable, optional
        A scalar function of one point of shape ``(2,)``, as for
        :func:`xgrad.gradient_descent`; by default the book's ``x0² + x1²``.
    init_x : pair of numbers or array of shape (2,)
        The start. An array's backend runs the descent.
    lrs : sequence of float
        The learning rates, one panel each.
    step_num : int
        Steps per descent.
    h : float, optional
        Step of the numerical gradient.

    Returns
    -------
    matplotlib.figure.Figure
        One panel per learning rate. Each title names the rate and what
        happened: ``converges``, ``oscillates``, ``barely moves`` or
        ``diverges``; when the point became non-finite (a
        :class:`xgrad.DescentDivergedError`) the path is drawn up to the last finite
        point and the title gives the step. The figure's title names `f` and
        the start.

    Notes
    -----
    Each window holds the whole path and the square ``|x_i| <= 1.5 max|init_x|``;
    where the path runs more than a thousand times farther out (a diverging
    descent), both axes are symlog, linear over that square. One legend below the
    panels names the path, start and end markers.
    Cost: ``4 * step_num`` evaluations of `f` per panel for the descent, plus
    ``41**2`` for the contour lines.

    Examples
    --------
    >>> from xgrad.plot import descent_paths
    >>> fig = descent_paths()
    >>> [ax.get_title() for ax in fig.axes]
    ['lr = 0.1: converges', 'lr = 0.001: barely moves', 'lr = 1.05: diverges']
    """
    f = book_function_2 if f is None else f
    check_callable(f)
    lrs = check_lrs(lrs)
    step_num = check_count(step_num, "step_num", minimum=1)
    if step_num > MAX_STEPS:
        raise ValueError(f"`step_num` must be at most {MAX_STEPS} (a drawn path); got {step_num}")
    start = start_point(init_x)
    fig, axes = new_figure(len(lrs), panel=(4.5, 4.5))
    # a diverging descent overflows: that is drawn, not warned about
    with np.errstate(over="ignore", invalid="ignore"):
        for ax, lr in zip(axes, lrs, strict=True):
            path, bad_step = descent_path(f, start, lr, step_num, h)
            _draw_path(ax, f, start, path)
            ax.set_title(f"lr = {lr:g}: {descent_verdict(path, bad_step)}")
    x0, x1 = to_numpy(start)
    fig.suptitle(f"Gradient descent on {function_label(f, 2)}\nfrom ({x0:g}, {x1:g}), {step_num} steps")
    # one legend for every panel, below them: inside a panel it would hide part of a path
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=3)
    return fig


FAR_OUT = 1e3  # a path this many times farther out than its start square is drawn on symlog axes


def _window_scale(
    ax: Axes, lo: np.ndarray, hi: np.ndarray, start: np.ndarray
) -> tuple[np.ndarray, np.ndarray, Callable[[float, float], np.ndarray]]:
    """Give `ax` the scale the window needs; return the window and how to space the contour grid.

    A path that ran far out (a diverging descent) would leave the start square a
    dot in a corner and the tick labels an offset such as ``1e128`` over the axis
    labels; both axes then become symlog, linear over the start square and
    logarithmic beyond, so the whole path and the contours around the start show.
    """
    from matplotlib.scale import SymmetricalLogTransform

    half = 1.5 * max(float(np.max(np.abs(start))), 1.0)
    if float(np.max(np.maximum(np.abs(lo), np.abs(hi)))) <= FAR_OUT * half:
        return lo, hi, lambda a, b: np.linspace(a, b, CONTOUR_GRID)
    scale = SymmetricalLogTransform(10, half, 1.0)
    back = scale.inverted()
    t_lo, t_hi = scale.transform(lo), scale.transform(hi)
    top = np.finfo(np.float64).max
    with np.errstate(over="ignore"):  # 5% margins in the drawn (log) scale, so that the end marker shows
        lo = np.maximum(back.transform(t_lo - 0.05 * (t_hi - t_lo)), -top)
        hi = np.minimum(back.transform(t_hi + 0.05 * (t_hi - t_lo)), top)
    for i, (set_scale, set_ticks) in enumerate(((ax.set_xscale, ax.set_xticks), (ax.set_yscale, ax.set_yticks))):
        set_scale("symlog", linthresh=half)
        tick = 10.0 ** math.floor(math.log10(max(abs(float(lo[i])), abs(float(hi[i])))))
        set_ticks([t for t in (-tick, 0.0, tick) if lo[i] <= t <= hi[i]])  # one per decade would overlap
        set_ticks([], minor=True)

    def spaced(a: float, b: float) -> np.ndarray:
        t_a, t_b = scale.transform(np.array([a, b]))
        return np.asarray(back.transform(np.linspace(t_a, t_b, CONTOUR_GRID)))

    return lo, hi, spaced


def _draw_path(ax: Axes, f: Callable[[Array], Array], start: Array, path: np.ndarray) -> None:
    lo, hi = path_window(path, to_numpy(start))
    lo, hi, spaced = _window_scale(ax, lo, hi, to_numpy(start))
    gx, gy = np.meshgrid(spaced(lo[0], hi[0]), spaced(lo[1], hi[1]))
    z = grid_values(f, start, gx, gy)
    levels = contour_levels(z)
    if levels.size > 1:
        ax.contour(
            gx,
            gy,
            np.ma.masked_invalid(z),
            levels=levels,
            colors="0.75",
            linewidths=0.8,
        )
    ax.plot(
        path[:, 0],
        path[:, 1],
        "o-",
        color="C0",
        markersize=3,
        linewidth=1,
        label="path",
    )
    ax.plot(*path[0], "s", color="C3", markerfacecolor="none", markersize=8, label="start")
    ax.plot(*path[-1], "*", color="C2", markersize=10, label="end")
    ax.set(xlabel="$x_0$", ylabel="$x_1$", xlim=(lo[0], hi[0]), ylim=(lo[1], hi[1]))
    ax.set_aspect("equal")
