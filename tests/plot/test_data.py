"""What the figures draw, computed and checked as numbers."""

from __future__ import annotations

import numpy as np
import pytest

from xgrad._plot import data as data


def _f2(x):
    return (x**2).sum()


def test_descent_path_holds_every_point_of_the_descent():
    path, bad = data.descent_path(_f2, np.array([-3.0, 4.0]), 0.1, 3, None)
    assert bad is None and path.shape == (4, 2)
    np.testing.assert_allclose(path[-1], [-3.0 * 0.8**3, 4.0 * 0.8**3], rtol=1e-7)


def test_a_diverging_descent_keeps_its_finite_part():
    with np.errstate(over="ignore", invalid="ignore"):
        path, bad = data.descent_path(_f2, np.array([-3.0, 4.0]), 1e100, 10, None)
    assert bad == 3 and path.shape == (3, 2) and np.all(np.isfinite(path))


@pytest.mark.parametrize(("lr", "verdict"), [(0.1, "converges"), (0.001, "barely moves"), (1.05, "diverges"),
                                             (0.99, "oscillates")])
def test_descent_verdicts_of_the_book_function(lr, verdict):
    path, bad = data.descent_path(_f2, np.array([-3.0, 4.0]), lr, 20, None)
    assert data.descent_verdict(path, bad) == verdict


def test_descent_verdict_thresholds():
    # each move a factor r of the one before: converges once the last is below a tenth of the first
    def path(r, n=5):
        return np.cumsum([[0.0, 0.0]] + [[r**k, 0.0] for k in range(n)], axis=0)
    assert data.descent_verdict(path(0.5), None) == "converges"  # 0.5**4 = 0.06 < 0.1
    assert data.descent_verdict(path(0.6), None) == "barely moves"  # 0.6**4 = 0.13
    assert data.descent_verdict(path(1.1), None) == "diverges"
    assert data.descent_verdict(np.zeros((3, 2)), None) == "stays put"
    assert data.descent_verdict(path(0.5), 4) == "diverges (non-finite at step 4)"


def test_path_window_holds_the_path_and_the_start_square():
    lo, hi = data.path_window(np.array([[-3.0, 4.0], [10.0, 0.0]]), np.array([-3.0, 4.0]))
    # square |x| <= 6, path up to x0 = 10; 5% margins
    np.testing.assert_allclose(lo, [-6.0 - 0.8, -6.0 - 0.6])
    np.testing.assert_allclose(hi, [10.0 + 0.8, 6.0 + 0.6])


def test_contour_levels_ignore_non_finite_values():
    z = np.array([[np.inf, 0.0], [1.0, np.nan]])
    levels = data.contour_levels(z)
    assert levels[0] == pytest.approx(0.02) and levels[-1] == pytest.approx(0.98) and len(levels) == 12
    assert data.contour_levels(np.full((2, 2), np.nan)).size == 0


def test_step_errors_follow_the_truncation_error_at_large_steps():
    steps = np.array([1e-2, 1e-3])
    x0, errors = data.step_errors(np.exp, np.exp, 1.0, steps)
    assert x0 == 1.0 and set(errors) == {(d, m) for d in ("float32", "float64") for m in ("forward", "central")}
    # forward: e h / 2, central: e h**2 / 6, to leading order
    np.testing.assert_allclose(errors["float64", "forward"], np.e * steps / 2, rtol=0.02)
    np.testing.assert_allclose(errors["float64", "central"], np.e * steps**2 / 6, rtol=0.02)
    assert np.all(errors["float32", "central"][1] > errors["float64", "central"][1] * 100)  # rounding in float32


@pytest.mark.parametrize(("x", "problem", "bound"), [
    (1e308, "are not finite there at any step (float32, forward; float32, central; float64, forward; "
            "float64, central)", "at most about 88.72"),
    (100.0, "are not finite there at any step (float32, forward; float32, central)", "at most about 88.72"),
    (-1e308, "equal its derivative exactly at every step", "at least about -746.1"),
])
def test_step_errors_refuse_a_point_where_nothing_can_be_drawn(x, problem, bound):
    with pytest.raises(ValueError) as excinfo:
        data.step_errors(np.exp, np.exp, x, data.check_steps(None))
    message = str(excinfo.value)
    assert message.startswith(f"`x` {x:g} is outside the range where this figure can be drawn: "
                              f"the difference quotients of exp {problem}")
    assert message.endswith(f"; choose an `x` of {bound}")


def test_step_errors_keep_a_point_where_some_steps_overflow():
    # at 88, exp(88 + h) overflows float32 for the largest steps only: those points are left out
    steps = data.check_steps(None)
    _, errors = data.step_errors(np.exp, np.exp, 88.0, steps)
    assert not np.all(np.isfinite(errors["float32", "forward"]))
    assert np.any(np.isfinite(errors["float32", "forward"]) & (errors["float32", "forward"] > 0))
    for x in (88.72, -746.0):
        data.step_errors(np.exp, np.exp, x, steps)  # the bounds the message names work


def test_a_descent_start_whose_window_overflows_is_refused():
    with pytest.raises(ValueError, match=r"`init_x` must lie within -1e\+307 to 1e\+307 in each .*got 1e\+308"):
        data.start_point([1.0, -1e308])
    data.start_point([1e307, -1e307])


def test_the_window_of_a_path_that_ran_far_out_stays_finite():
    path = np.array([[1e307, 1.0], [1.7e308, -1.7e308]])
    lo, hi = data.path_window(path, path[0])
    assert np.all(np.isfinite(lo)) and np.all(np.isfinite(hi)) and np.all(lo < hi)
    assert np.all(lo <= path.min(axis=0)) and np.all(hi >= path.max(axis=0))
