"""The blank figure every :mod:`xgrad.plot` function draws on (matplotlib's object API)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from xgrad._infra.install import install_hint

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def new_figure(ncols: int = 1, *, panel: tuple[float, float] = (6.0, 4.5)) -> tuple[Figure, list[Axes]]:
    """A constrained-layout Figure of `ncols` panels side by side, and their axes."""
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(f"xgrad.plot needs matplotlib; install it with: {install_hint('plot')}") from exc
    fig = Figure(figsize=(panel[0] * ncols, panel[1]), layout="constrained")
    return fig, list(fig.subplots(1, ncols, squeeze=False)[0])
