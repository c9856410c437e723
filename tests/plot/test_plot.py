"""xgrad.plot: each figure is rendered off-screen and its content read back."""

from __future__ import annotations

import io
import json
import math
import sys

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from xgrad import History, plot, to_numpy
from xgrad._numerics.descent import gradient_descent


def _labels(ax):
    return ax.get_legend_handles_labels()[1]


def _render(fig):
    """Draw to PNG bytes: layout and drawing run, and must not warn."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=40)
    assert buf.getvalue().startswith(b"\x89PNG")


@pytest.fixture
def history():
    return {
        "loss": [2.30, 2.10, 1.50, 0.90, 0.70, 0.50],
        "eval_iters": [3, 6],
        "train_acc": [0.61, 0.83],
        "test_acc": [0.60, 0.81],
        "iters_per_epoch": 3,
        "backend": "numpy",
        "device": "cpu",
        "dtype": "float64",
    }


# -- tangent ------------------------------------------------------------------
def test_tangent_draws_curve_and_tangent():
    fig = plot.tangent()
    (ax,) = fig.axes
    curve, line = ax.lines
    t = curve.get_xdata()
    assert (t[0], t[-1]) == (0, 20)
    np.testing.assert_allclose(curve.get_ydata(), 0.01 * t**2 + 0.1 * t)
    np.testing.assert_allclose(line.get_ydata(), 0.2 * t - 0.25, atol=1e-9)  # y = 0.2x - 0.25
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("x", "f(x)")
    assert _labels(ax) == ["function_1(x) = 0.01x² + 0.1x", "tangent at x = 5 (slope 0.2)"]
    assert ax.get_title() == "The tangent of function_1 at x = 5"
    _render(fig)


def test_tangent_of_another_function_and_interval():
    fig = plot.tangent(lambda x: x**3, 1.0, xlim=(-2, 2))
    line = fig.axes[0].lines[1]
    t = line.get_xdata()
    np.testing.assert_allclose(line.get_ydata(), 3 * t - 2, atol=1e-8)
    assert "slope 3" in _labels(fig.axes[0])[1]


def test_tangent_with_torch():
    torch = pytest.importorskip("torch")
    fig = plot.tangent(lambda x: torch.sin(x), torch.tensor(0.0, dtype=torch.float64), xlim=(-1, 1))
    line = fig.axes[0].lines[1]
    np.testing.assert_allclose(line.get_ydata(), line.get_xdata(), atol=1e-9)


@pytest.mark.parametrize("xlim", [(20, 0), (0, math.inf)])
def test_tangent_rejects_bad_interval(xlim):
    with pytest.raises(ValueError, match="`xlim` must be finite with low < high"):
        plot.tangent(xlim=xlim)


def test_tangent_rejects_non_pair():
    with pytest.raises(TypeError, match=r"`xlim` must be a pair \(low, high\)"):
        plot.tangent(xlim=3)


# -- gradient field -----------------------------------------------------------
def test_gradient_field_has_one_arrow_per_grid_point():
    fig = plot.gradient_field()
    (ax,) = fig.axes
    (q,) = ax.collections
    assert q.N == 18 * 18
    np.testing.assert_allclose(q.U, -2 * q.X, atol=1e-8)  # -∇(x0² + x1²) = -2x
    np.testing.assert_allclose(q.V, -2 * q.Y, atol=1e-8)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("$x_0$", "$x_1$")
    assert _labels(ax) == ["−∇f, the steepest way down"]
    _render(fig)


def test_gradient_field_with_a_per_point_function_and_step():
    fig = plot.gradient_field(lambda x: x[0] ** 2 - x[1] ** 2, spacing=1.0, vectorized=False)
    q = fig.axes[0].collections[0]
    assert q.N == 5 * 5
    np.testing.assert_allclose(q.U, -2 * q.X, atol=1e-8)
    np.testing.assert_allclose(q.V, 2 * q.Y, atol=1e-8)


def test_gradient_field_on_array_api_strict():
    pytest.importorskip("array_api_strict")
    ref = plot.gradient_field(spacing=0.5).axes[0].collections[0]
    fig = plot.gradient_field(spacing=0.5, backend="array_api_strict")
    q = fig.axes[0].collections[0]
    assert q.N == ref.N == 9 * 9
    np.testing.assert_allclose(q.U, ref.U)


def test_gradient_field_rejects_bad_step():
    with pytest.raises(ValueError, match="`spacing` must be positive"):
        plot.gradient_field(spacing=0)


# -- descent ------------------------------------------------------------------
def test_descent_paths_one_panel_per_rate():
    fig = plot.descent_paths()
    assert [ax.get_title() for ax in fig.axes] == [
        "lr = 0.1: converges",
        "lr = 0.001: barely moves",
        "lr = 1.05: diverges",
    ]
    for ax in fig.axes:
        assert (ax.get_xlabel(), ax.get_ylabel()) == ("$x_0$", "$x_1$")
        assert _labels(ax) == ["path", "start", "end"]
        assert ax.collections, "contour lines are drawn"
    _, expected = gradient_descent(lambda x: (x**2).sum(), [-3.0, 4.0], lr=0.1, step_num=20, return_path=True)
    path = fig.axes[0].lines[0].get_xydata()
    np.testing.assert_allclose(path, expected)
    assert "(-3, 4), 20 steps" in fig.get_suptitle()
    _render(fig)


@pytest.mark.parametrize("lrs", [(0.1,), (0.1, 0.5), (0.01, 0.1, 0.5, 0.9)])
def test_descent_paths_panel_count(lrs):
    assert len(plot.descent_paths(lrs=lrs, step_num=5).axes) == len(lrs)


def test_descent_paths_oscillation():
    fig = plot.descent_paths(lrs=[0.99])
    assert fig.axes[0].get_title() == "lr = 0.99: oscillates"


def test_descent_paths_non_finite_is_drawn_up_to_the_divergence(monkeypatch):
    calls = []
    from xgrad._plot import data as _figdata

    real = _figdata.gradient_descent
    monkeypatch.setattr(_figdata, "gradient_descent", lambda *a, **k: calls.append(k) or real(*a, **k))
    fig = plot.descent_paths(lrs=(0.1, 1e100), step_num=10)
    assert len(calls) == 2  # one run per learning rate: the diverging path is not run again
    ax = fig.axes[1]
    assert ax.get_title() == "lr = 1e+100: diverges (non-finite at step 3)"
    path = ax.lines[0].get_xydata()
    assert path.shape == (3, 2)  # the start and two finite steps
    assert np.all(np.isfinite(path))
    _render(fig)


def test_descent_paths_with_torch_start():
    torch = pytest.importorskip("torch")
    fig = plot.descent_paths(
        lambda x: (x**2).sum(),
        torch.tensor([1.0, -2.0], dtype=torch.float64),
        lrs=(0.1,),
        step_num=10,
    )
    path = fig.axes[0].lines[0].get_xydata()
    np.testing.assert_allclose(path[-1], 0.8**10 * np.array([1.0, -2.0]), rtol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"lrs": ()}, ValueError, "at least one learning rate"),
        ({"lrs": 0.1}, TypeError, "`lrs` must be a sequence"),
        ({"lrs": (0.1, -0.1)}, ValueError, "`lrs` must be positive"),
        ({"init_x": (1.0, 2.0, 3.0)}, ValueError, "one point of two variables"),
        ({"step_num": 0}, ValueError, "`step_num` must be >= 1"),
    ],
)
def test_descent_paths_validation(kwargs, error, match):
    with pytest.raises(error, match=match):
        plot.descent_paths(**kwargs)


# -- training curves ----------------------------------------------------------
def _check_training(fig, history):
    left, right = fig.axes
    (loss,) = left.lines
    np.testing.assert_array_equal(loss.get_ydata(), history["loss"])
    np.testing.assert_array_equal(loss.get_xdata(), np.arange(1, 7))
    train, test = right.lines
    np.testing.assert_array_equal(train.get_xdata(), [1.0, 2.0])  # epochs
    np.testing.assert_array_equal(train.get_ydata(), history["train_acc"])
    np.testing.assert_array_equal(test.get_ydata(), history["test_acc"])
    assert (left.get_xlabel(), left.get_ylabel()) == ("iteration", "loss")
    assert (right.get_xlabel(), right.get_ylabel()) == ("epoch", "accuracy")
    assert _labels(right) == ["train", "test"]


def test_training_curves_from_dict(history):
    fig = plot.training_curves(history)
    _check_training(fig, history)
    assert fig.get_suptitle() == "Two-layer network (numpy, cpu, float64)"
    _render(fig)


def test_training_curves_from_object_with_numpy_loss(history):
    result = History(**{**history, "loss": np.asarray(history["loss"])})
    _check_training(plot.training_curves(result), history)


def test_training_curves_from_json_file(history, tmp_path):
    path = tmp_path / "history.json"
    path.write_text(json.dumps(history), encoding="utf-8")
    _check_training(plot.training_curves(path), history)
    _check_training(plot.figure("training", history=str(path)), history)


def test_training_curves_torch_loss(history):
    torch = pytest.importorskip("torch")
    fig = plot.training_curves({**history, "loss": torch.tensor(history["loss"], dtype=torch.float64)})
    _check_training(fig, history)


def test_training_curves_validation(history):
    with pytest.raises(ValueError, match="lacks 'iters_per_epoch'"):
        plot.training_curves({k: v for k, v in history.items() if k != "iters_per_epoch"})
    with pytest.raises(ValueError, match="'test_acc' has 1 values but 'eval_iters' has 2"):
        plot.training_curves({**history, "test_acc": [0.5]})
    with pytest.raises(TypeError, match="`history` must be a TrainResult"):
        plot.training_curves(42)


# -- step error ---------------------------------------------------------------
def test_step_error_four_lines_both_dtypes():
    fig = plot.step_error()
    (ax,) = fig.axes
    assert len(ax.lines) == 4
    assert _labels(ax) == [
        "float32, forward",
        "float32, central",
        "float64, forward",
        "float64, central",
    ]
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")
    assert ax.get_xlabel() == "step h"
    _render(fig)


def test_step_error_shows_truncation_and_rounding():
    hs = [1e-12, 1e-5, 1e-2]
    ax = plot.step_error(hs=hs).axes[0]
    errors = {label: line.get_ydata() for line, label in zip(ax.lines, _labels(ax), strict=True)}
    central = errors["float64, central"]
    assert central[2] == pytest.approx(math.e * 1e-4 / 6, rel=1e-3)  # truncation e h²/6
    # a V: truncation error at large h, rounding error at tiny h
    assert central[1] < central[2]
    assert central[1] < central[0]
    assert errors["float64, forward"][2] == pytest.approx(math.e * 1e-2 / 2, rel=1e-2)
    # in float32, 1 + 1e-12 == 1: the difference is 0 and the error is f'(1) = e
    assert errors["float32, central"][0] == pytest.approx(math.e)


def test_step_error_custom_function_on_torch():
    torch = pytest.importorskip("torch")
    ax = plot.step_error(torch.sin, torch.cos, torch.tensor(0.5), hs=[1e-3]).axes[0]
    assert len(ax.lines) == 4
    assert ax.lines[3].get_ydata()[0] < 1e-6


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"f": np.sin}, ValueError, "together"),
        ({"hs": [1e-3, -1.0]}, ValueError, "positive, finite steps"),
        ({"hs": []}, ValueError, "non-empty 1-d"),
        ({"x": [1.0, 2.0]}, ValueError, "single point"),
    ],
)
def test_step_error_validation(kwargs, error, match):
    with pytest.raises(error, match=match):
        plot.step_error(**kwargs)


# -- dispatcher and host copies -----------------------------------------------
@pytest.mark.parametrize("name", ["tangent", "gradient-field", "gradient_field", "step-error"])
def test_figure_dispatches(name):
    from matplotlib.figure import Figure

    kwargs = {"hs": [1e-4, 1e-2]} if name == "step-error" else {}
    assert isinstance(plot.figure(name, **kwargs), Figure)


def test_figure_passes_options():
    fig = plot.figure("descent", lrs=(0.1, 0.2), step_num=3)
    assert len(fig.axes) == 2


def test_figure_names():
    assert plot.FIGURES == (
        "tangent",
        "gradient-field",
        "descent",
        "training",
        "step-error",
    )


def test_figure_unknown_name_lists_the_valid_ones():
    with pytest.raises(
        ValueError,
        match="unknown figure 'loss'; choose one of: 'tangent', 'gradient-field'",
    ):
        plot.figure("loss")


def test_figure_history_rules(history):
    with pytest.raises(TypeError, match="needs `history=`"):
        plot.figure("training")
    with pytest.raises(TypeError, match="only used by the 'training' figure"):
        plot.figure("tangent", history=history)
    with pytest.raises(TypeError, match="`name` must be a string"):
        plot.figure(3)


def test_missing_matplotlib_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r'pip install "\.\[plot\]" in the xgrad checkout'):
        plot.tangent()


def test_to_numpy_from_torch_and_strict():
    torch = pytest.importorskip("torch")
    strict = pytest.importorskip("array_api_strict")
    t = torch.ones(3, dtype=torch.float64, requires_grad=True) * 2
    np.testing.assert_array_equal(to_numpy(t), [2.0, 2.0, 2.0])
    s = strict.asarray([1.0, 2.0], device=strict.Device("device1"))
    np.testing.assert_array_equal(to_numpy(s), [1.0, 2.0])
    assert to_numpy([1, 2]).tolist() == [1, 2]


# -- inputs that cannot be drawn ------------------------------------------------
class _GuardedNumpy:
    """NumPy, but an arange that would be huge fails instead of taking the memory."""

    def __getattr__(self, name):
        return getattr(np, name)

    @staticmethod
    def arange(lo, hi, step):
        assert (hi - lo) / step < 10**6, "a huge grid was allocated"
        return np.arange(lo, hi, step)


def test_gradient_field_refuses_a_grid_too_fine_and_says_the_step_to_use(monkeypatch):
    import xgrad._plot.gradient as _gradplot

    monkeypatch.setattr(_gradplot, "np", _GuardedNumpy())
    with pytest.raises(ValueError, match=r"about 4\.5e\+04 points per axis.*use a `spacing` of at least 0\.00225"):
        plot.gradient_field(spacing=1e-4)
    with pytest.raises(ValueError, match="points per axis"):
        plot.gradient_field(xlim=(-1e12, 1e12))
    assert plot.gradient_field(spacing=0.05).axes[0].collections[0].N == 90 * 90


def test_gradient_field_step_is_the_old_name_of_spacing():
    pytest.importorskip("matplotlib")
    with pytest.warns(DeprecationWarning, match="use `spacing=`"):
        fig = plot.gradient_field(step=0.5)
    assert fig.axes[0].collections[0].N == plot.gradient_field(spacing=0.5).axes[0].collections[0].N == 81


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: plot.descent_paths(step_num=10**9), "`step_num` must be at most 100000"),
        (lambda: plot.descent_paths(lrs=[0.1] * 13), "`lrs` must hold at most 12 learning rates"),
        (lambda: plot.step_error(hs=np.logspace(-8, 0, 10_001)), "`hs` must hold at most 10000 steps"),
    ],
)
def test_unbounded_sizes_are_refused(make, match, monkeypatch):
    from xgrad._plot import data as _figdata

    real = _figdata.gradient_descent

    def guarded(*args, step_num, **kwargs):
        assert step_num <= 10**5, "a descent of a billion steps was started"
        return real(*args, step_num=step_num, **kwargs)

    monkeypatch.setattr(_figdata, "gradient_descent", guarded)
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("{not json", "Expecting property name"),
        ("[1, 2, 3]", "must be a JSON object"),
        ('{"loss": [1]}', "lacks 'eval_iters'"),
        (json.dumps({"loss": "abc", "eval_iters": [], "train_acc": [], "test_acc": [], "iters_per_epoch": 1}),
         "'loss' must be a list of numbers"),
        (json.dumps({"loss": [1, 2], "eval_iters": [1, 2, 3], "train_acc": [.1, .2, .3], "test_acc": [.1, .2, .3],
                     "iters_per_epoch": 1}), r"'eval_iters' must be iterations in 1..2"),
        (json.dumps({"loss": [1, 2], "eval_iters": [2, 1], "train_acc": [.1, .2], "test_acc": [.1, .2],
                     "iters_per_epoch": 1}), "'eval_iters' must increase"),
        (json.dumps({"loss": [1, 2], "eval_iters": [1], "train_acc": [3.0], "test_acc": [.1],
                     "iters_per_epoch": 1}), "'train_acc' must hold accuracies between 0 and 1"),
        (json.dumps({"loss": [1, 2], "eval_iters": [1], "train_acc": [.1], "test_acc": [.1],
                     "iters_per_epoch": 0}), "'iters_per_epoch' must be a positive integer"),
        (json.dumps({"loss": [1, 2], "eval_iters": [1, 2], "train_acc": [.1], "test_acc": [.1, .2],
                     "iters_per_epoch": 1}), "'train_acc' has 1 values but 'eval_iters' has 2"),
    ],
)
def test_bad_history_file_is_one_error_naming_it(tmp_path, content, match):
    from xgrad import FileFormatError

    path = tmp_path / "history.json"
    path.write_text(content)
    with pytest.raises(FileFormatError, match=match) as info:
        plot.training_curves(path)
    assert str(path) in str(info.value) and info.value.path == str(path)


def test_history_of_an_interrupted_run_plots(history):
    partial = {**history, "loss": history["loss"][:5], "eval_iters": [3], "train_acc": [0.6], "test_acc": [0.6]}
    assert len(plot.training_curves(partial).axes) == 2
