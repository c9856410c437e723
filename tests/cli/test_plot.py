"""``xgrad plot``'s options: each one reaches the figure, and bad values exit 2."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("matplotlib")

import xgrad._cli.main as cli
from xgrad._plot.functions import BOOK_FUNCTIONS, function_label, function_name


@pytest.fixture
def drawn(monkeypatch, tmp_path):
    """Run ``xgrad plot ARGS`` and return the figure it drew (and saved)."""
    figures = []
    real = cli.draw_figure
    monkeypatch.setattr(cli, "draw_figure", lambda *a, **k: figures.append(real(*a, **k)) or figures[-1])

    def run(*argv):
        out = tmp_path / "figure.png"
        assert cli.main(["plot", *argv, "--out", str(out)]) == 0
        assert out.read_bytes()[:4] == b"\x89PNG"
        return figures[-1]

    return run


def _labels(ax):
    return ax.get_legend_handles_labels()[1]


def test_descent_draws_one_panel_per_learning_rate(drawn):
    fig = drawn("descent", "--lr", "0.1", "10", "1e-10")
    assert [ax.get_title() for ax in fig.axes] == [
        "lr = 0.1: converges", "lr = 10: diverges", "lr = 1e-10: barely moves"]
    assert fig.get_suptitle().startswith("Gradient descent on function_2(x0, x1) = x0² + x1²")


def test_descent_point_and_steps_reach_the_path(drawn):
    fig = drawn("descent", "--point", "1", "2", "--steps", "3", "--lr", "0.25")
    path = fig.axes[0].lines[0].get_xydata()
    # x <- x - 0.25 * 2x halves the point at every step
    np.testing.assert_allclose(path, [[1, 2], [0.5, 1], [0.25, 0.5], [0.125, 0.25]], rtol=1e-6)
    assert fig.get_suptitle().endswith("from (1, 2), 3 steps")


def test_tangent_of_a_named_function_at_a_point(drawn):
    fig = drawn("tangent", "--function", "function_tmp1", "--x0", "3", "--xlim", "0", "5")
    curve, line = fig.axes[0].lines
    t = curve.get_xdata()
    assert (t[0], t[-1]) == (0, 5)
    np.testing.assert_allclose(curve.get_ydata(), t**2 + 16)
    np.testing.assert_allclose(line.get_ydata(), 6 * t + 7, atol=1e-6)  # y = 25 + 6 (t - 3)
    assert _labels(fig.axes[0]) == ["function_tmp1(x) = x² + 4²", "tangent at x = 3 (slope 6)"]
    assert fig.axes[0].get_title() == "The tangent of function_tmp1 at x = 3"


def test_step_error_uses_the_functions_exact_derivative(drawn):
    fig = drawn("step-error", "--function", "function_1", "--x0", "2")
    ax = fig.axes[0]
    errors = dict(zip(_labels(ax), (line.get_ydata() for line in ax.lines), strict=True))
    # a forward difference of 0.01x² + 0.1x is off by exactly 0.01 h: 0.01 at h = 1
    assert errors["float64, forward"][-1] == pytest.approx(0.01, rel=1e-9)
    assert ax.get_title().startswith("Numerical derivative of function_1 at x = 2")


def test_gradient_field_interval(drawn):
    fig = drawn("gradient-field", "--xlim", "-1", "1", "--ylim", "0", "1")
    q = fig.axes[0].collections[0]
    assert q.X.min() == -1 and q.X.max() < 1 and q.Y.min() == 0 and q.Y.max() < 1
    np.testing.assert_allclose(q.U, -2 * q.X, atol=1e-8)
    assert "function_2(x0, x1) = x0² + x1²" in fig.axes[0].get_title()


def test_gradient_field_spacing(drawn):
    q = drawn("gradient-field", "--spacing", "0.5").axes[0].collections[0]
    assert q.N == 9 * 9  # -2, -1.5, ..., 2 on each axis
    np.testing.assert_allclose(np.unique(q.X), np.arange(-2, 2.5, 0.5))


@pytest.mark.parametrize(("name", "book"), [("tangent", "function_1"), ("gradient-field", "function_2"),
                                            ("descent", "function_2"), ("step-error", "exp")])
def test_every_figure_names_its_function(drawn, name, book):
    fig = drawn(name)
    texts = [fig.get_suptitle()] + [ax.get_title() for ax in fig.axes] + _labels(fig.axes[0])
    assert any(book in text for text in texts)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["descent", "--lr", "0"], "`--lr` must be positive and finite; got 0.0"),
        (["descent", "--lr", "-0.1", "1"], "`--lr` must be positive"),
        (["descent", "--lr", *["0.1"] * 13], "`--lr` must hold at most 12 learning rates"),
        (["descent", "--steps", "0"], "`--steps` must be >= 1; got 0"),
        (["descent", "--x0", "1"], "`--x0` must be 2 numbers for the 'descent' figure; got 1"),
        (["tangent", "--x0", "1", "2"], "`--x0` must be one number for the 'tangent' figure; got 2"),
        (["tangent", "--x0", "nan"], "`--x0` must be finite; got nan"),
        (["tangent", "--xlim", "3", "1"], "`--xlim` must be finite with low < high"),
        (["gradient-field", "--ylim", "1", "1"], "`--ylim` must be finite with low < high"),
        (["gradient-field", "--spacing", "0"], "`--spacing` must be positive"),
        (["gradient-field", "--xlim", "-1000", "1000"], "use a `--spacing` of at least 1"),
        (["descent", "--spacing", "1"], "`--spacing` is not used by the 'descent' figure"),
        (["tangent", "--function", "function_2"], "`--function` function_2 takes 2 variables, but the 'tangent'"),
        (["descent", "--function", "exp"], "choose one of function_2"),
        (["tangent", "--lr", "0.1"], "`--lr` is not used by the 'tangent' figure; it takes: --function, --x0"),
        (["gradient-field", "--point", "1", "2"], "`--x0` is not used by the 'gradient-field' figure"),
        (["descent", "--history", "h.json"], "`--history` is not used by the 'descent' figure"),
        (["training"], "the 'training' figure needs `--history`"),
    ],
)
def test_bad_values_exit_2_in_the_commands_terms(argv, message, tmp_path, capsys):
    out = tmp_path / "figure.png"
    assert cli.main(["plot", *argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("xgrad plot: error: ") and message in err and len(err.splitlines()) == 1
    assert not out.exists()


@pytest.mark.parametrize("argv", [["tangent", "--function", "function_3"], ["descent", "--lr", "fast"],
                                  ["descent", "--steps", "2.5"], ["tangent", "--xlim", "0"]])
def test_unparseable_values_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["plot", *argv, "--out", "x.png"])
    assert stop.value.code == 2
    assert "xgrad plot: error: argument" in capsys.readouterr().err


def test_book_functions_and_their_derivatives():
    x = np.array([0.5, 3.0])
    for book in BOOK_FUNCTIONS.values():
        if book.variables == 1:
            h = 1e-6
            np.testing.assert_allclose(book.derivative(x), (book.f(x + h) - book.f(x - h)) / (2 * h), rtol=1e-6)
    np.testing.assert_allclose(BOOK_FUNCTIONS["function_2"].f(np.array([3.0, 4.0])), 25.0)


def test_figures_name_any_function():
    def cube(x):
        return x**3

    assert (function_name(cube), function_label(cube)) == ("cube", "cube(x)")
    assert function_label(lambda x: x, 2) == "f(x0, x1)"
    assert function_name(BOOK_FUNCTIONS["exp"].f) == "exp"


@pytest.mark.parametrize(("x0", "bound"), [("1e308", "at most about 88.72"), ("-1e308", "at least about -746.1")])
def test_a_step_error_point_with_nothing_to_draw_exits_2_with_the_range(x0, bound, tmp_path, capsys):
    out = tmp_path / "figure.png"
    assert cli.main(["plot", "step-error", f"--x0={x0}", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"xgrad plot: error: `--x0` {float(x0):g} is outside the range where this figure can be "
                          "drawn") and len(err.splitlines()) == 1
    assert err.rstrip().endswith(f"choose an `--x0` of {bound}")
    assert not out.exists()


def test_a_descent_start_out_of_range_exits_2_with_the_range(tmp_path, capsys):
    out = tmp_path / "figure.png"
    assert cli.main(["plot", "descent", "--x0", "1e308", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "`--x0` must lie within -1e+307 to 1e+307 in each variable" in err and len(err.splitlines()) == 1
    assert not out.exists()
