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
    """Register `fig` with pyplot so that the plot directive saves it."""
    import matplotlib.pyplot as plt

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


# -- the gallery: figures drawn by the commands shown -----------------------------
TEXT_WIDTH = 7.6  # inches: furo's text column at 96 dpi
_WORKDIR: Any = None


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
    A figure wider than the text column is scaled down to fit it."""
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
    if width > TEXT_WIDTH:
        fig.set_size_inches(TEXT_WIDTH, height * TEXT_WIDTH / width)
    return fig
