"""``xgrad plot``'s options: which figure takes which, checked in the
command's terms before anything is drawn."""

from __future__ import annotations

import argparse
import math
from typing import Any

from xgrad._infra.files import check_input_file
from xgrad._plot.functions import BOOK_FUNCTIONS

__all__ = ["PLOT_OPTIONS", "add_plot_options", "check_image_file", "plot_kwargs"]

PLOT_OPTIONS: dict[str, tuple[str, ...]] = {
    "tangent": ("function", "x0", "xlim"),
    "gradient-field": ("function", "xlim", "ylim", "spacing"),
    "descent": ("function", "x0", "lr", "steps"),
    "training": ("history",),
    "step-error": ("function", "x0"),
}
"""The options each figure of ``xgrad plot`` takes; any other is refused."""

# figure -> (its default function, how many variables a function must take)
_FUNCTIONS = {
    "tangent": ("function_1", 1),
    "gradient-field": ("function_2", 2),
    "descent": ("function_2", 2),
    "step-error": ("exp", 1),
}
# the keyword of the figure's function that the point goes to, and how many numbers it is
_POINT = {"tangent": ("x", 1), "descent": ("init_x", 2), "step-error": ("x", 1)}


def _functions_of(variables: int) -> str:
    return ", ".join(n for n, b in BOOK_FUNCTIONS.items() if b.variables == variables)


def add_plot_options(pl: argparse.ArgumentParser) -> None:
    """The figure options of ``xgrad plot``; their defaults are the figures' own."""
    one, two = _functions_of(1), _functions_of(2)
    pl.add_argument("--function", choices=list(BOOK_FUNCTIONS), default=None, metavar="NAME",
                    help=f"the book's function to draw: one of {one} (tangent, step-error; default function_1 "
                    f"and exp), or {two} (gradient-field, descent; the default)")
    pl.add_argument("--x0", "--point", dest="x0", type=float, nargs="+", default=None, metavar="X",
                    help="the point: one number for tangent (default 5) and step-error (default 1), "
                    "two for descent's start (default -3 4)")
    pl.add_argument("--lr", type=float, nargs="+", default=None, metavar="LR",
                    help="descent: the learning rates, one panel each (default: 0.1 0.001 1.05)")
    pl.add_argument("--steps", type=int, default=None, metavar="N",
                    help="descent: gradient steps per path (default: 20)")
    pl.add_argument("--xlim", type=float, nargs=2, default=None, metavar=("LOW", "HIGH"),
                    help="tangent, gradient-field: the interval of x (default: 0 20; -2 2.5)")
    pl.add_argument("--ylim", type=float, nargs=2, default=None, metavar=("LOW", "HIGH"),
                    help="gradient-field: the interval of the second variable (default: -2 2.5)")
    pl.add_argument("--spacing", type=float, default=None, metavar="D",
                    help="gradient-field: the distance between grid points (default: 0.25)")


def plot_kwargs(key: str, args: argparse.Namespace) -> dict[str, Any]:
    """The keywords of figure `key`'s function from the parsed options,
    refusing an option the figure does not take or a value it cannot use."""
    given = [name for names in PLOT_OPTIONS.values() for name in names if getattr(args, name) is not None]
    for name in dict.fromkeys(given):
        if name not in PLOT_OPTIONS[key]:
            takes = ", ".join(f"--{n}" for n in PLOT_OPTIONS[key])
            raise ValueError(f"`--{name}` is not used by the {key!r} figure; it takes: {takes}")
    if key == "training":
        if args.history is None:
            raise ValueError("the 'training' figure needs `--history`, the history.json of a training run")
        check_input_file(args.history, "`--history`", "the history.json that `xgrad train --out DIR` writes in DIR")
        return {"history": args.history}
    kwargs = _function_kwargs(key, args.function)
    if args.x0 is not None:
        kwargs.update(_point_kwargs(key, args.x0))
    if args.lr is not None:
        kwargs["lrs"] = args.lr  # checked by descent_paths, named in the command's terms by the caller
    if args.steps is not None:
        kwargs["step_num"] = args.steps
    if args.spacing is not None:
        kwargs["spacing"] = args.spacing
    kwargs.update({k: tuple(getattr(args, k)) for k in ("xlim", "ylim") if getattr(args, k) is not None})
    return kwargs


def _function_kwargs(key: str, name: str | None) -> dict[str, Any]:
    default, variables = _FUNCTIONS[key]
    book = BOOK_FUNCTIONS[default if name is None else name]
    if book.variables != variables:
        raise ValueError(f"`--function` {book.name} takes {_variables(book.variables)}, but the {key!r} figure "
                         f"draws a function of {_variables(variables)}: choose one of {_functions_of(variables)}")
    if key == "step-error":
        return {"f": book.f, "dfdx": book.derivative}
    return {"f": book.f}


def _variables(n: int) -> str:
    return "one variable" if n == 1 else f"{n} variables"


def _point_kwargs(key: str, values: list[float]) -> dict[str, Any]:
    keyword, count = _POINT[key]
    if len(values) != count:
        what = "one number" if count == 1 else f"{count} numbers"
        raise ValueError(f"`--x0` must be {what} for the {key!r} figure; got {len(values)}")
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"`--x0` must be finite; got {' '.join(map(str, values))}")
    return {keyword: values[0] if count == 1 else tuple(values)}


def check_image_file(path: Any) -> str:
    """The image format of ``--out`` (its suffix, png without one), refused before drawing
    when matplotlib cannot write it."""
    fmt = str(path.suffix).lstrip(".").lower() or "png"
    try:
        from matplotlib.backend_bases import FigureCanvasBase
    except ImportError:
        return fmt  # drawing says how to install matplotlib
    formats = FigureCanvasBase.get_supported_filetypes()
    if fmt not in formats:
        raise ValueError(f"`--out` {str(path)!r}: matplotlib cannot write .{fmt} files; end the name with one of "
                         + ", ".join("." + f for f in sorted(formats)))
    return fmt
