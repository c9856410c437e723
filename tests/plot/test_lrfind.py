"""The figure of a learning-rate range test, rendered off-screen and read back."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from xgrad import FileFormatError, LRFindResult
from xgrad._train.lrcurve import RULE, lr_schedule, smoothed, suggest
from xgrad.plot import lr_find_curve


def _result(blowup: bool = True) -> LRFindResult:
    lrs = lr_schedule(1e-4, 100.0, 61)
    loss = [2.0 - math.exp(-(math.log10(lr)) ** 2) + (400.0 if blowup and lr > 30 else 0.0) for lr in lrs]
    smooth = smoothed(loss, beta=0.5)
    return LRFindResult(lrs, loss, smooth, suggest(lrs, smooth), RULE, 58 if blowup else None, 1e-4, 100.0, 61,
                        0.5, 4.0, {"dataset": "mnist", "backend": "numpy", "dtype": "float32"})


def _render(fig):
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=40)
    assert buf.getvalue().startswith(b"\x89PNG")


def test_loss_against_log_rate_with_the_suggestion_marked():
    r = _result()
    fig = lr_find_curve(r)
    _render(fig)
    (ax,) = fig.axes
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "learning rate"
    raw, smooth, minimum, line = ax.get_lines()
    np.testing.assert_array_equal(raw.get_xdata(), r.lrs)
    np.testing.assert_array_equal(raw.get_ydata(), r.loss)
    np.testing.assert_array_equal(smooth.get_ydata(), r.smoothed_loss)
    at = int(np.argmin(r.smoothed_loss))
    assert (minimum.get_xdata()[0], minimum.get_ydata()[0]) == (r.lrs[at], r.smoothed_loss[at])
    assert r.suggestion is not None and line.get_xdata()[0] == r.suggestion == pytest.approx(r.lrs[at] / 10)
    assert ax.get_legend_handles_labels()[1][-1] == f"suggested lr = {r.suggestion:.3g}"
    assert "stopped at iteration 58" in ax.get_title()
    assert "mnist, numpy, float32" in fig.get_suptitle()


def test_the_blow_up_is_cut_off_so_the_fall_shows():
    top = lr_find_curve(_result(blowup=True)).axes[0].get_ylim()[1]
    assert top < 10  # the losses of 400 are off the top
    assert lr_find_curve(_result(blowup=False)).axes[0].get_ylim()[1] < 3


def test_no_suggestion_no_line():
    r = _result()
    fig = lr_find_curve(LRFindResult.from_dict({**r.to_dict(), "suggestion": None}))
    _render(fig)
    assert len(fig.axes[0].get_lines()) == 3
    assert not any("suggested" in label for label in fig.axes[0].get_legend_handles_labels()[1])


def test_from_the_json_file_and_a_dict(tmp_path):
    r = _result()
    path = tmp_path / "lr_find.json"
    path.write_text(r.to_json())
    for source in (path, str(path), r.to_dict()):
        np.testing.assert_array_equal(lr_find_curve(source).axes[0].get_lines()[1].get_ydata(), r.smoothed_loss)
    (tmp_path / "bad.json").write_text("[]")
    with pytest.raises(FileFormatError, match=r"bad\.json"):
        lr_find_curve(tmp_path / "bad.json")
    with pytest.raises(TypeError, match="`result` must be"):
        lr_find_curve([1, 2])


def test_non_finite_losses_are_drawn_without_a_warning():
    r = _result()
    d = r.to_dict()
    d["loss"][-1] = None  # an overflow, as the record keeps it
    d["smoothed_loss"][-1] = None
    _render(lr_find_curve(d))
