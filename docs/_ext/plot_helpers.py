"""Helpers for the ``.. plot::`` snippets of the documentation.

:mod:`xgrad.plot` builds its figures without pyplot, while matplotlib's plot
directive collects the figures pyplot knows about. :func:`show` hands a figure
over. ``conf.py`` imports it into every snippet through ``plot_pre_code``.
"""

from __future__ import annotations

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
