"""The descent figure read on a page: no legend over a path, no ``1e128`` offset over an axis label."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from xgrad import plot


def _drawn(fig):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig).draw()
    return fig.canvas.get_renderer()


def _points(ax):
    """Every drawn vertex of the panel's lines, in display pixels."""
    for line in ax.get_lines():
        xy = line.get_transform().transform(line.get_xydata())
        yield from xy[np.isfinite(xy).all(axis=1)]


@pytest.mark.parametrize("lrs", [(0.1, 0.001, 1.05), (0.1, 10, 1e-10)])
def test_the_legend_covers_no_path_and_no_marker(lrs):
    fig = plot.descent_paths(lrs=lrs, step_num=100)
    renderer = _drawn(fig)
    assert all(ax.get_legend() is None for ax in fig.axes)  # one legend for all panels, not one in each
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == ["path", "start", "end"]
    box = legend.get_window_extent(renderer)
    assert fig.bbox.contains(box.x0, box.y0) and fig.bbox.contains(box.x1, box.y1)
    for ax in fig.axes:
        assert not box.overlaps(ax.get_tightbbox(renderer)), ax.get_title()  # nor its labels and ticks
        assert not any(box.contains(x, y) for x, y in _points(ax))


def test_a_diverging_path_gets_symlog_axes_and_no_offset():
    fig = plot.descent_paths(lrs=(0.1, 10, 1e-10), step_num=100)
    _drawn(fig)
    for ax in fig.axes:
        assert ax.xaxis.get_offset_text().get_text() == "" == ax.yaxis.get_offset_text().get_text()
    near, far, _ = fig.axes
    assert far.get_title() == "lr = 10: diverges"  # stopped by gradient descent as a runaway
    assert near.get_title() == "lr = 0.1: converges"
    assert [ax.get_xscale() for ax in fig.axes] == ["linear", "symlog", "linear"]
    assert far.get_yscale() == "symlog"
    end = far.lines[0].get_xydata()[-1]
    assert np.max(np.abs(end)) > 1e6  # the book's lr = 10, stopped as a runaway near 1e7 (step 6)
    (x_lo, x_hi), (y_lo, y_hi) = far.get_xlim(), far.get_ylim()
    assert x_lo < end[0] < x_hi and y_lo < end[1] < y_hi
    # the end marker is inside the frame, not cut in half by it: a margin of 5% of the drawn width
    corner = far.transData.transform(end)
    frame = far.get_window_extent()
    assert frame.x0 + 0.04 * frame.width < corner[0] < frame.x1 - 0.04 * frame.width
    assert len(far.get_xticks()) <= 3 and 0.0 in far.get_xticks()  # few ticks: one per decade would overlap
    assert near.get_xlim() == pytest.approx((-6.6, 6.6))  # converging paths keep the linear window


def test_a_path_that_ran_to_the_largest_floats_is_still_drawn():
    fig = plot.descent_paths(init_x=(1e300, -1e300), lrs=(10,), step_num=100)
    _drawn(fig)
    lo, hi = fig.axes[0].get_xlim()
    assert np.isfinite(lo) and np.isfinite(hi) and lo < 0 < hi


def test_the_gradient_field_legend_sits_below_the_axis_label():
    fig = plot.gradient_field()
    renderer = _drawn(fig)
    (ax,) = fig.axes
    assert ax.get_legend() is None
    (legend,) = fig.legends
    box, label = legend.get_window_extent(renderer), ax.xaxis.label.get_window_extent(renderer)
    assert not box.overlaps(label) and box.y1 <= label.y0
    assert fig.bbox.contains(box.x0, box.y0) and fig.bbox.contains(box.x1, box.y1)
