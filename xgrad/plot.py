"""The figures of chapter 4, drawn with matplotlib (``pip install "xgrad[plot]"``).

Every function returns a :class:`matplotlib.figure.Figure` built with the
object API: no pyplot, no global state and no window, so they work off-screen
(on a server, in tests, in the documentation build). Save one with
``fig.savefig("out.png")``.

The computations run on the backend of the arrays you pass (NumPy by default);
results are copied to the host only to be drawn.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from xgrad._backend import Backend, resolve_backend
from xgrad._cli import FIGURES as _FIGURE_TABLE
from xgrad._cli import draw_figure
from xgrad._diff import tangent_line
from xgrad._figdata import (
    CONTOUR_GRID,
    MAX_STEPS,
    SAMPLES,
    book_function_1,
    book_function_2,
    check_grid_step,
    check_lrs,
    check_range,
    check_steps,
    contour_levels,
    descent_path,
    descent_verdict,
    grid_values,
    path_window,
    start_point,
    step_error_functions,
    step_errors,
)
from xgrad._gradient import numerical_gradient
from xgrad._history import read_history
from xgrad._host import to_host as _to_host
from xgrad._typing import Array
from xgrad._validate import (
    as_float_array,
    check_callable,
    check_count,
    check_positive,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "FIGURES",
    "descent_paths",
    "figure",
    "gradient_field",
    "step_error",
    "tangent",
    "training_curves",
]

FIGURES = tuple(_FIGURE_TABLE)
"""The names :func:`figure` and ``xgrad plot NAME`` accept."""



# -- helpers ------------------------------------------------------------------
def _new_figure(ncols: int = 1, *, panel: tuple[float, float] = (6.0, 4.5)) -> tuple[Figure, list[Axes]]:
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError('xgrad.plot needs matplotlib; install it with: pip install "xgrad[plot]"') from exc
    fig = Figure(figsize=(panel[0] * ncols, panel[1]), layout="constrained")
    return fig, list(fig.subplots(1, ncols, squeeze=False)[0])


# -- Fig. 4-7 -----------------------------------------------------------------
def tangent(
    f: Callable[[Array], Array] | None = None,
    x: Any = 5.0,
    *,
    xlim: tuple[float, float] = (0, 20),
    h: float | None = None,
) -> Figure:
    """A function and its tangent line at `x` (the book's Fig. 4-7).

    Parameters
    ----------
    f : callable, optional
        An elementwise function; by default the book's ``0.01 x² + 0.1 x``.
    x : number or 0-d array
        Where to touch the curve. An array's backend runs `f`.
    xlim : (float, float)
        The drawn interval.
    h : float, optional
        Step of the numerical derivative (see :func:`xgrad.numerical_diff`).

    Returns
    -------
    matplotlib.figure.Figure
        One panel with two lines: the curve and the tangent.

    Examples
    --------
    >>> from xgrad.plot import tangent
    >>> fig = tangent()
    >>> len(fig.axes[0].lines)
    2
    >>> fig.axes[0].get_legend_handles_labels()[1][1]
    'tangent at x = 5 (slope 0.2)'
    """
    f = book_function_1 if f is None else f
    check_callable(f)
    lo, hi = check_range(xlim, "xlim")
    line = tangent_line(f, x, h=h)  # validates x: one point
    x, xp, device = as_float_array(x)
    x = xp.reshape(x, ())
    grid = xp.linspace(lo, hi, SAMPLES, dtype=x.dtype, device=device)
    t = _to_host(grid)
    y, yt = (np.reshape(_to_host(v), (-1,)) for v in (f(grid), line(grid)))
    x0, y0 = float(_to_host(x)), float(_to_host(f(x)))
    slope = (yt[-1] - yt[0]) / (t[-1] - t[0])
    fig, (ax,) = _new_figure()
    ax.plot(t, y, label="f(x)")
    ax.plot(t, yt, "--", label=f"tangent at x = {x0:g} (slope {slope:.4g})")
    ax.scatter([x0], [y0], color="black", zorder=3)
    ax.set(xlabel="x", ylabel="f(x)", title=f"The tangent of f at x = {x0:g}")
    ax.legend()
    return fig


# -- Fig. 4-9 -----------------------------------------------------------------
def gradient_field(
    f: Callable[[Array], Array] | None = None,
    *,
    xlim: tuple[float, float] = (-2, 2.5),
    ylim: tuple[float, float] = (-2, 2.5),
    step: float = 0.25,
    h: float | None = None,
    vectorized: bool = True,
    backend: str | Backend = "numpy",
) -> Figure:
    """Arrows of the negative gradient ``-∇f`` on a grid (the book's Fig. 4-9).

    Parameters
    ----------
    f : callable, optional
        A function of two variables. With ``vectorized=True`` (the default) it
        maps a stack of points, shape ``(k, 2)``, to ``k`` values, e.g.
        ``lambda x: (x**2).sum(axis=-1)``; with ``vectorized=False`` it takes
        one point ``(2,)``. By default the book's ``x0² + x1²``.
    xlim, ylim : (float, float)
        The grid's intervals; points are ``low, low + step, ...`` below high.
    step : float
        Grid spacing.
    h : float, optional
        Step of the numerical gradient.
    vectorized : bool
        Whether `f` takes stacks of points (much faster).
    backend : str or Backend
        Where the gradients are computed (see :func:`xgrad.resolve_backend`).

    Returns
    -------
    matplotlib.figure.Figure
        One panel holding a quiver with one arrow per grid point.

    Notes
    -----
    The gradients come from ``numerical_gradient(f, points, batch=True,
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
    step = check_grid_step(check_positive(step, "step"), x_hi - x_lo, y_hi - y_lo)
    gx, gy = np.meshgrid(np.arange(x_lo, x_hi, step), np.arange(y_lo, y_hi, step))
    points = np.stack([gx.ravel(), gy.ravel()], axis=1)
    b = backend if isinstance(backend, Backend) else resolve_backend(backend)
    grad = _to_host(numerical_gradient(f, b.asarray(points), h=h, batch=True, vectorized=vectorized))
    fig, (ax,) = _new_figure(panel=(6.0, 5.5))
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
        xlim=(x_lo - step, x_hi),
        ylim=(y_lo - step, y_hi),
        title="The negative gradient of f",
    )
    ax.set_aspect("equal")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1))
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
    learning rate (the book's Fig. 4-10, side by side).

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
        point and the title gives the step.

    Notes
    -----
    Each window holds the whole path and the square ``|x_i| <= 1.5 max|init_x|``.
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
    fig, axes = _new_figure(len(lrs), panel=(4.5, 4.5))
    # a diverging descent overflows: that is drawn, not warned about
    with np.errstate(over="ignore", invalid="ignore"):
        for ax, lr in zip(axes, lrs, strict=True):
            path, bad_step = descent_path(f, start, lr, step_num, h)
            _draw_path(ax, f, start, path)
            ax.set_title(f"lr = {lr:g}: {descent_verdict(path, bad_step)}")
    x0, x1 = _to_host(start)
    fig.suptitle(f"Gradient descent from ({x0:g}, {x1:g}), {step_num} steps")
    return fig


def _draw_path(ax: Axes, f: Callable[[Array], Array], start: Array, path: np.ndarray) -> None:
    lo, hi = path_window(path, _to_host(start))
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], CONTOUR_GRID), np.linspace(lo[1], hi[1], CONTOUR_GRID))
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
    ax.legend(loc="best", fontsize="small")


# -- Figs 4-11 and 4-12 -------------------------------------------------------
def training_curves(history: Any) -> Figure:
    """The loss per iteration (left) and the accuracies per epoch (right), the
    book's Figs 4-11 and 4-12.

    Parameters
    ----------
    history : TrainResult, dict or path
        What :func:`xgrad.train` returns, its ``to_dict()``, or the path of
        the ``history.json`` the command line writes. It needs ``loss`` (one
        value per iteration), ``eval_iters``, ``train_acc``, ``test_acc`` (one
        value per evaluation) and ``iters_per_epoch``; ``backend``, ``device``
        and ``dtype`` go into the title when present.

    Returns
    -------
    matplotlib.figure.Figure
        Two panels: the loss curve and the train and test accuracies.

    Raises
    ------
    TypeError
        If `history` is none of the accepted kinds.
    ValueError
        If a field is missing or malformed, the accuracy lists do not match
        `eval_iters`, or evaluations lie outside the losses; for a file,
        :class:`xgrad.FileFormatError` naming it (also for bad JSON).

    Examples
    --------
    >>> from xgrad.plot import training_curves
    >>> history = {"loss": [2.3, 1.1, 0.6, 0.4], "eval_iters": [2, 4],
    ...            "train_acc": [0.8, 0.9], "test_acc": [0.78, 0.88],
    ...            "iters_per_epoch": 2}
    >>> fig = training_curves(history)
    >>> [ax.get_xlabel() for ax in fig.axes]
    ['iteration', 'epoch']
    """
    h = read_history(history)
    loss, iters = h["loss"], h["eval_iters"]
    accs = {k: h[k] for k in ("train_acc", "test_acc")}
    epochs = iters / int(h["iters_per_epoch"])
    fig, (left, right) = _new_figure(2, panel=(5.5, 4.0))
    left.plot(np.arange(1, loss.size + 1), loss, linewidth=0.8, label="mini-batch loss")
    left.set(xlabel="iteration", ylabel="loss", title="Training loss per iteration")
    left.legend()
    right.plot(epochs, accs["train_acc"], "o-", label="train")
    right.plot(epochs, accs["test_acc"], "s--", label="test")
    right.set(xlabel="epoch", ylabel="accuracy", ylim=(0, 1.02), title="Accuracy per epoch")
    right.legend(loc="lower right")
    about = ", ".join(str(h[k]) for k in ("backend", "device", "dtype") if h.get(k) is not None)
    if about:
        fig.suptitle(f"Two-layer network ({about})")
    return fig


# -- numerical differentiation's two errors -----------------------------------
def step_error(
    f: Callable[[Array], Array] | None = None,
    dfdx: Callable[[Array], Array] | None = None,
    x: Any = 1.0,
    *,
    hs: Any = None,
) -> Figure:
    """The error of the numerical derivative against the step `h` (log-log),
    for forward and central differences in float32 and float64.

    Large steps suffer truncation error (``∝ h`` forward, ``∝ h²`` central);
    small ones rounding error (``∝ eps / h``): each curve is a V whose bottom
    is the best step for that dtype and formula.

    Parameters
    ----------
    f, dfdx : callable, optional
        An elementwise function and its exact derivative, given together; by
        default ``exp``, its own derivative.
    x : number or 0-d array
        Where to differentiate. An array's backend runs `f`; it must support
        float32 and float64.
    hs : array-like, optional
        The steps; by default 53 steps from 1e-13 to 1, four per decade.

    Returns
    -------
    matplotlib.figure.Figure
        One log-log panel with four lines, labelled ``"float32, forward"`` etc.
        Exactly zero errors are left out (log scale).

    Notes
    -----
    Cost: ``8 * len(hs)`` evaluations of `f` (two per step, formula and dtype).

    Examples
    --------
    >>> from xgrad.plot import step_error
    >>> fig = step_error()
    >>> fig.axes[0].get_legend_handles_labels()[1]
    ['float32, forward', 'float32, central', 'float64, forward', 'float64, central']
    """
    f, dfdx = step_error_functions(f, dfdx)
    steps = check_steps(hs)
    x0, errors = step_errors(f, dfdx, x, steps)
    fig, (ax,) = _new_figure(panel=(7.5, 4.5))
    colors, styles = {"float32": "C0", "float64": "C1"}, {"forward": "--", "central": "-"}
    for (dtype, method), err in errors.items():
        ax.loglog(steps, np.where(err > 0, err, np.nan), styles[method], color=colors[dtype],
                  label=f"{dtype}, {method}")
    ax.text(0.03, 0.04, "← rounding error", transform=ax.transAxes)
    ax.text(0.97, 0.04, "truncation error →", transform=ax.transAxes, ha="right")
    ax.set(
        xlabel="step h",
        ylabel="absolute error of f′(x)",
        title=f"Numerical derivative at x = {x0:g}: error against the step",
    )
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1))
    return fig


# -- by name ------------------------------------------------------------------
def figure(name: str, /, *, history: Any = None, **kwargs: Any) -> Figure:
    """Draw one of the chapter's figures by name.

    A thin wrapper kept for compatibility: the name -> function table belongs
    to the ``xgrad plot NAME`` command (``xgrad._cli.FIGURES``); in code,
    call the figure's own function (:func:`tangent`, :func:`gradient_field`,
    :func:`descent_paths`, :func:`training_curves`, :func:`step_error`).

    Parameters
    ----------
    name : str
        One of :data:`FIGURES`: ``"tangent"``, ``"gradient-field"``,
        ``"descent"``, ``"training"`` or ``"step-error"``.
    history : TrainResult, dict or path, optional
        Needed by ``"training"`` (see :func:`training_curves`), refused by the
        others.
    **kwargs
        Options passed on to the figure's function.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        If `name` is unknown; the message lists the valid names.
    TypeError
        If `name` is not a string, or `history` is missing for ``"training"``
        or given for another figure.

    Examples
    --------
    >>> from xgrad.plot import figure
    >>> fig = figure("tangent", x=10.0)
    >>> fig.axes[0].get_title()
    'The tangent of f at x = 10'
    """
    return draw_figure(name, history=history, **kwargs)
