"""Helpers for the ``.. plot::`` snippets of the documentation.

:mod:`xgrad.plot` builds its figures without pyplot, while matplotlib's plot
directive collects the figures pyplot knows about. :func:`show` hands a figure
over. ``conf.py`` imports it into every snippet through ``plot_pre_code``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from collections.abc import Iterator
from typing import Any


def show(fig: Any) -> Any:
    """Register `fig`, then its phone-sized twin (:func:`phone_twin`), with pyplot,
    so that the plot directive saves both: ``conf.py``'s template shows the first
    on wide screens and the second on narrow ones (``_ext/phone_figures.py``)."""
    twin = phone_twin(fig)
    shown = _register(fig)
    _register(twin)
    return shown


def _register(fig: Any) -> Any:
    import matplotlib.pyplot as plt

    _label_pngs(fig)
    try:
        return plt.figure(fig)  # recent matplotlib adopts a Figure made without pyplot
    except ValueError:  # older versions refuse; hand over a picture of it instead
        return _adopt_as_image(fig)


def _adopt_as_image(fig: Any) -> Any:
    """A pyplot figure of the same size showing `fig` rendered with Agg."""
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    pixels = np.asarray(canvas.buffer_rgba())
    host = plt.figure(figsize=fig.get_size_inches(), dpi=fig.dpi)
    host.figimage(pixels, origin="upper")
    return host


# -- figures for a phone ------------------------------------------------------------
TEXT_WIDTH = 7.6  # inches: furo's text column at 96 dpi
PHONE_WIDTH = 4.5  # inches: the phone twin, shown 358 px wide on a 390 px phone (furo's 1em margins)
PHONE_TEXT_PX = 358  # the text column of a 390 px wide phone, in CSS pixels
SMALLEST_LABEL_PX = 9.0  # no text of a figure is drawn smaller than this on that phone
STACKED_ASPECT = 1.0  # height over width of a stacked panel, at most


def smallest_text_pt(fig: Any) -> float:
    """The size, in points, of the smallest visible text of `fig` (drawn first,
    so that tick labels are set)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if fig.canvas is None or not hasattr(fig.canvas, "get_renderer"):
        FigureCanvasAgg(fig)
    fig.canvas.draw()
    return min((t.get_fontsize() for t in _drawn_texts(fig)), default=float("inf"))


def _drawn_texts(fig: Any) -> list[Any]:
    """The visible, non-empty texts of `fig` that a drawing shows: an axis keeps
    the labels of ticks outside its limits, with their last text, undrawn."""
    from matplotlib.text import Text

    undrawn = set()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            lo, hi = sorted(axis.get_view_interval())
            slack = 1e-9 * (hi - lo)
            for tick in [*axis.get_major_ticks(), *axis.get_minor_ticks()]:
                if not lo - slack <= tick.get_loc() <= hi + slack:
                    undrawn.update({id(tick.label1), id(tick.label2)})
    return [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip() and id(t) not in undrawn]


def cut_texts(fig: Any) -> list[str]:
    """The drawn texts of `fig` that do not fit inside it."""
    smallest_text_pt(fig)  # draws it
    cut = []
    for text in _drawn_texts(fig):
        box = text.get_window_extent()
        if not (fig.bbox.x0 - 1 <= box.x0 and box.x1 <= fig.bbox.x1 + 1
                and fig.bbox.y0 - 1 <= box.y0 and box.y1 <= fig.bbox.y1 + 1):
            cut.append(text.get_text())
    return cut


def label_px(fig: Any, shown_px: float) -> float:
    """How many CSS pixels high the smallest text of `fig` is when the figure
    is shown `shown_px` wide."""
    return smallest_text_pt(fig) / 72 * shown_px / fig.get_size_inches()[0]


def phone_twin(fig: Any) -> Any:
    """A copy of `fig` drawn for a phone: :data:`PHONE_WIDTH` inches wide, its
    panels stacked in one column, each as high for its width as in `fig`.

    Its smallest text is at least :data:`SMALLEST_LABEL_PX` CSS pixels high on a
    390 px phone; side-by-side panels scaled to that width would have text of
    4 to 6 pixels.
    """
    import pickle

    twin = pickle.loads(pickle.dumps(fig))
    panels = [ax for ax in twin.axes if ax.get_subplotspec() is not None]
    width, height = fig.get_size_inches()
    spec = panels[0].get_subplotspec() if panels else None
    rows, cols = spec.get_gridspec().get_geometry() if spec is not None else (1, 1)
    panel_aspect = (height / rows) / (width / cols)  # of one panel, titles and labels included
    if cols > 1:  # panels made narrow to sit side by side need not stay tall when stacked
        panel_aspect = min(panel_aspect, STACKED_ASPECT)
    if cols > 1:
        grid = twin.add_gridspec(rows * cols, 1)
        for ax in panels:
            first = ax.get_subplotspec()
            row, col = divmod(first.num1, cols)
            ax.set_subplotspec(grid[col * rows + row, 0])
    stacked = rows * cols
    _wrap_labels(twin)  # a title written for the wide drawing may not fit the narrow one
    with contextlib.suppress(RuntimeError):  # a figure laid out once by tight_layout: lay it out again
        twin.set_layout_engine("constrained")
    twin.set_size_inches(PHONE_WIDTH, PHONE_WIDTH * panel_aspect * stacked + (0.6 if twin.legends else 0.0))
    return twin


def _wrap_labels(fig: Any, *, written: bool = False) -> None:
    """Break the titles and axis labels of `fig` into lines where they would cross its edge.

    With `written`, the line breaks of one drawing are written into the texts,
    so that the layout, which measures texts as written, makes room for every
    line (a figure legend below the panels stays clear of their labels).
    """
    labels = [t for t in (fig._suptitle, *(t for ax in fig.axes for t in (ax.title, ax.xaxis.label,
                                                                           ax.yaxis.label))) if t is not None]
    for label in labels:
        label.set_wrap(True)
    if written:
        smallest_text_pt(fig)  # draws it, wrapping as drawn
        for label in labels:
            label.set_text(label._get_wrapped_text())
            label.set_wrap(False)


def legend_overlaps(fig: Any) -> list[str]:
    """The titles of the panels of `fig` whose labels or ticks a figure legend covers."""
    smallest_text_pt(fig)  # draws it
    renderer = fig.canvas.get_renderer()
    return [ax.get_title() for legend in fig.legends for ax in fig.axes
            if legend.get_window_extent(renderer).overlaps(ax.get_tightbbox(renderer))]


def _label_pngs(fig: Any) -> None:
    """Make `fig` write its smallest text size into the PNG the plot directive
    saves, for the site's tests (``tests/test_site.py``) to read back."""
    size = smallest_text_pt(fig)
    save = fig.savefig

    def savefig(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("metadata", {"xgrad smallest text pt": f"{size:g}"})
        return save(*args, **kwargs)

    fig.savefig = savefig


# -- the gallery: figures drawn by the commands shown -----------------------------
_WORKDIR: Any = None
SCALED_MIN_HEIGHT = 3.4  # inches: three square panels scaled to the column keep plots about 2 inches high


def workdir() -> Any:
    """A folder of this build where the gallery's commands read and write files."""
    global _WORKDIR
    if _WORKDIR is None:
        import tempfile
        from pathlib import Path

        _WORKDIR = Path(tempfile.mkdtemp(prefix="xgrad-gallery-"))
    return _WORKDIR


@contextlib.contextmanager
def _inside(folder: Any) -> Iterator[None]:
    """Work in `folder` for a while (``contextlib.chdir`` needs Python 3.11)."""
    before = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


@contextlib.contextmanager
def _quiet_command() -> Iterator[io.StringIO]:
    """Collect what a command prints, and leave the ``xgrad`` logger as it was.

    The command reports on stdout and, through a handler it adds to the
    ``xgrad`` logger, on stderr; in the build that would be noise, and the
    handler would go on printing the rest of the build's log records.
    """
    logger = logging.getLogger("xgrad")
    handlers, level = list(logger.handlers), logger.level
    err = io.StringIO()
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            yield err
    finally:
        logger.handlers[:] = handlers
        logger.setLevel(level)


def run_command(command: str) -> None:
    """Run ``xgrad ...`` (`command`) in :func:`workdir`; fail the build if it fails."""
    import shlex

    from xgrad._cli.main import main

    argv = shlex.split(command)
    if argv[0] != "xgrad":
        raise ValueError(f"not an xgrad command: {command!r}")
    with _inside(workdir()), _quiet_command() as err:
        status = main(argv[1:])
    if status != 0:
        raise RuntimeError(f"{command!r} exited with status {status}: {err.getvalue().strip()}")


def cli_figure(command: str) -> Any:
    """The figure that ``xgrad plot ...`` (`command`) draws: parsed and checked by
    the command itself, its files read in :func:`workdir`; nothing is written.
    A figure wider than the text column is scaled down to fit it, and kept at
    least :data:`SCALED_MIN_HEIGHT` high."""
    import shlex

    from xgrad._cli.main import _parser
    from xgrad._cli.plot import plot_kwargs
    from xgrad.plot import draw_figure, figure_key

    argv = shlex.split(command)
    if argv[:2] != ["xgrad", "plot"]:
        raise ValueError(f"not an `xgrad plot` command: {command!r}")
    args = _parser().parse_args(argv[1:])
    key = figure_key(args.name)
    with _inside(workdir()):
        fig = draw_figure(key, **plot_kwargs(key, args))
    width, height = fig.get_size_inches()
    if width > TEXT_WIDTH:  # side-by-side panels: scaled to the column, with room left for their titles
        fig.set_size_inches(TEXT_WIDTH, max(height * TEXT_WIDTH / width, SCALED_MIN_HEIGHT))
        _wrap_labels(fig, written=True)
    return fig
