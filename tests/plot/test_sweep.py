"""The figure of a sweep: legends that say what each panel shows, and cover no point."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xgrad import History, SweepRun
from xgrad._plot.sweep import sweep_figure


def _runs(seeds, hidden=(50,)):
    return [SweepRun(f"{lr}-{seed}-{h}", {"lr": lr, "seed": seed, "hidden_size": h}, acc, acc, loss, lr > 1,
                     3 if lr > 1 else None, 0.1, "local", "numpy", val_acc=acc, history=History(loss=[2.3, loss]))
            for h in hidden for seed in seeds
            for lr, acc, loss in [(0.01, 0.3, 2.0), (0.1, 0.8, 0.7), (1.0, 0.95, 0.2), (10.0, 0.1, math.nan)]]


def _legend_texts(ax):
    return [t.get_text() for t in ax.get_legend().get_texts()]


@pytest.mark.parametrize(("seeds", "suffix"), [((0,), ""), ((0, 1), " (mean over 2 seeds)")])
def test_each_legend_names_what_its_panel_shows(seeds, suffix):
    pytest.importorskip("matplotlib")
    runs = _runs(seeds)
    fig = sweep_figure(runs, ["lr", "seed"], [r for r in runs if not r.diverged][::-1])
    acc_ax, loss_ax, _ = fig.axes
    assert _legend_texts(acc_ax)[0] == "final validation accuracy" + suffix
    assert _legend_texts(loss_ax)[0] == "final loss" + suffix
    grouped = _runs(seeds, hidden=(50, 100))
    fig = sweep_figure(grouped, ["lr", "seed", "hidden_size"], [r for r in grouped if not r.diverged])
    assert _legend_texts(fig.axes[0])[:2] == [f"hidden_size=50{suffix}", f"hidden_size=100{suffix}"]


def test_no_legend_covers_a_point():
    pytest.importorskip("matplotlib")
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    runs = _runs((0, 1))
    fig = sweep_figure(runs, ["lr", "seed"], [r for r in runs if not r.diverged])
    FigureCanvasAgg(fig).draw()
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes[:2]:
        box = ax.get_legend().get_window_extent(renderer)
        assert fig.bbox.contains(box.x0, box.y0) and fig.bbox.contains(box.x1, box.y1)  # not cut off
        for line in ax.get_lines():
            xy = line.get_transform().transform(np.column_stack([line.get_xdata(), line.get_ydata()]))
            xy = xy[np.isfinite(xy).all(axis=1)]
            assert not any(box.contains(x, y) for x, y in xy), (ax.get_title(), line.get_label())
