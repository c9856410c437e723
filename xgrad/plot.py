"""The figures of chapter 4, drawn with matplotlib (``pip install ".[plot]"`` from a checkout).

Every function returns a :class:`matplotlib.figure.Figure` built with the
object API: no pyplot, no global state and no window, so they work off-screen
(on a server, in tests, in the documentation build). Save one with
:meth:`fig.savefig("out.png") <matplotlib.figure.Figure.savefig>`.

The computations run on the backend of the arrays you pass (NumPy by default);
results are copied to the host only to be drawn.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from xgrad._infra.host import to_numpy as _to_numpy
from xgrad._infra.typing import Array
from xgrad._infra.validate import (
    as_float_array,
    check_callable,
)
from xgrad._numerics.diff import tangent_line
from xgrad._plot.canvas import new_figure as _new_figure
from xgrad._plot.data import (
    SAMPLES,
    check_range,
    check_steps,
    step_error_functions,
    step_errors,
)
from xgrad._plot.functions import book_function_1, function_label, function_name
from xgrad._plot.gradient import descent_paths, gradient_field
from xgrad._plot.lrfind import lr_find_curve
from xgrad._plot.training import training_curves

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "FIGURES",
    "descent_paths",
    "figure",
    "gradient_field",
    "lr_find_curve",
    "step_error",
    "tangent",
    "training_curves",
]

# -- Fig. 4-7 -----------------------------------------------------------------
def tangent(
    f: Callable[[Array], Array] | None = None,
    x: Any = 5.0,
    *,
    xlim: tuple[float, float] = (0, 20),
    h: float | None = None,
) -> Figure:
    """A function and its tangent line at `x` (the book's figure 4-7).

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
        One panel with two lines: the curve, labelled with the function's
        name (and formula, for the book's functions), and the tangent.

    Examples
    --------
    >>> from xgrad.plot import tangent
    >>> fig = tangent()
    >>> len(fig.axes[0].lines)
    2
    >>> fig.axes[0].get_legend_handles_labels()[1]
    ['function_1(x) = 0.01x² + 0.1x', 'tangent at x = 5 (slope 0.2)']
    """
    f = book_function_1 if f is None else f
    check_callable(f)
    lo, hi = check_range(xlim, "xlim")
    line = tangent_line(f, x, h=h)  # validates x: one point
    x, xp, device = as_float_array(x)
    x = xp.reshape(x, ())
    grid = xp.linspace(lo, hi, SAMPLES, dtype=x.dtype, device=device)
    t = _to_numpy(grid)
    y, yt = (np.reshape(_to_numpy(v), (-1,)) for v in (f(grid), line(grid)))
    x0, y0 = float(_to_numpy(x)), float(_to_numpy(f(x)))
    slope = (yt[-1] - yt[0]) / (t[-1] - t[0])
    fig, (ax,) = _new_figure()
    ax.plot(t, y, label=function_label(f))
    ax.plot(t, yt, "--", label=f"tangent at x = {x0:g} (slope {slope:.4g})")
    ax.scatter([x0], [y0], color="black", zorder=3)
    ax.set(xlabel="x", ylabel="f(x)", title=f"The tangent of {function_name(f)} at x = {x0:g}")
    ax.legend()
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
        title=f"Numerical derivative of {function_name(f)} at x = {x0:g}: error against the step",
    )
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1))
    return fig


# -- by name ------------------------------------------------------------------
_DRAW: dict[str, Callable[..., Figure]] = {
    "tangent": tangent,
    "gradient-field": gradient_field,
    "descent": descent_paths,
    "training": training_curves,
    "step-error": step_error,
}
"""``xgrad plot NAME``: each figure name and the function that draws it."""

FIGURES = tuple(_DRAW)
"""The names :func:`figure` and ``xgrad plot NAME`` accept."""


def figure_key(name: str) -> str:
    """`name` as a key of :data:`FIGURES`, forgiving underscores and case."""
    if not isinstance(name, str):
        raise TypeError(f"`name` must be a string; got {type(name).__name__}")
    key = name.strip().lower().replace("_", "-")
    if key not in _DRAW:
        raise ValueError(f"unknown figure {name!r}; choose one of: {', '.join(map(repr, FIGURES))}")
    return key


def draw_figure(name: str, /, *, history: Any = None, **kwargs: Any) -> Figure:
    """Draw the figure called `name` (one of :data:`FIGURES`) with `kwargs`.

    ``"training"`` needs `history` (see :func:`training_curves`); the other
    figures refuse it. Underscores and case in `name` are forgiven.

    Examples
    --------
    >>> draw_figure("descent", lrs=(0.1, 0.2), step_num=3).axes[0].get_title()[:8]
    'lr = 0.1'
    """
    key = figure_key(name)
    draw = _DRAW[key]
    if key == "training":
        if history is None:
            raise TypeError(
                "the 'training' figure needs `history=`: a TrainResult, its to_dict(), "
                "or the path of a history.json"
            )
        return draw(history, **kwargs)
    if history is not None:
        raise TypeError(f"`history` is only used by the 'training' figure, not {name!r}")
    return draw(**kwargs)


def figure(name: str, /, *, history: Any = None, **kwargs: Any) -> Figure:
    """Draw one of the chapter's figures by name.

    A thin wrapper kept for compatibility over the name -> function table of
    the ``xgrad plot NAME`` command (:data:`FIGURES` lists its names); in code,
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
    'The tangent of function_1 at x = 10'
    """
    return draw_figure(name, history=history, **kwargs)
