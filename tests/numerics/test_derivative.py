"""xgrad.derivative against analytic derivatives on every backend: elementary
functions, points far from the origin, functions that vary on a small scale,
one-sided stencils, non-finite values and argument errors; hostile input (an `f`
returning a complex, a narrower float or an array of another library, options of
another library, error estimates where f cancels to near zero), answered by a
clear error that names the argument or by the right answer."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _helpers import POINTS, assert_close, assert_on_backend, of_another_library

from xgrad import DerivativeResult, derivative
from xgrad._infra.host import to_numpy

# (name, f on a namespace, f' on the host in float64, points)
ELEMENTARY = [
    ("exp", lambda xp: xp.exp, np.exp, [-1.0, 0.65, 0.7, 2.0]),
    ("sin", lambda xp: xp.sin, np.cos, [0.0, 1.0, 2.5]),
    ("log", lambda xp: xp.log, lambda x: 1 / x, [0.5, 2.0]),
    ("sqrt", lambda xp: xp.sqrt, lambda x: 0.5 / np.sqrt(x), [2.0]),
    ("tanh", lambda xp: xp.tanh, lambda x: 1 / np.cosh(x) ** 2, [0.5]),
    ("atan", lambda xp: xp.atan, lambda x: 1 / (1 + x * x), [1.0]),
    ("x**5", lambda xp: lambda x: 2 * x**5, lambda x: 10 * x**4, [1.5]),
]
# functions far from the origin or varying on a small scale: (f, f', x, scale)
HARD = [
    ("exp at 50", lambda xp: xp.exp, np.exp, 50.0, None),
    ("sin at 1e3", lambda xp: xp.sin, np.cos, 1e3, None),
    ("sin at 1e6", lambda xp: xp.sin, np.cos, 1e6, None),
    ("log at 1e8", lambda xp: xp.log, lambda x: 1 / x, 1e8, None),
    ("1/x at 1e-3", lambda xp: lambda x: 1 / x, lambda x: -1 / x**2, 1e-3, None),
    ("sin(1000x)", lambda xp: lambda x: xp.sin(1000 * x), lambda x: 1000 * np.cos(1000 * x), 1.0, None),
    ("sin(1000x), scale", lambda xp: lambda x: xp.sin(1000 * x), lambda x: 1000 * np.cos(1000 * x), 1.0, 1e-3),
    ("logistic step", lambda xp: lambda x: 1 / (1 + xp.exp(-x / 1e-3)),
     lambda x: 1e3 * np.exp(-x / 1e-3) / (1 + np.exp(-x / 1e-3)) ** 2, 2e-4, None),
]


def _points(backend, values, dtype_name):
    dtype = getattr(backend.xp, dtype_name)
    return backend.asarray(np.asarray(values, dtype=np.float64), dtype=dtype)


@pytest.mark.parametrize("case", ELEMENTARY, ids=[c[0] for c in ELEMENTARY])
@pytest.mark.parametrize(("dtype", "rtol"), [("float64", 1e-12), ("float32", 3e-6)])
def test_elementary_functions_to_the_stated_accuracy(backend, case, dtype, rtol):
    _, f, df, points = case
    x = _points(backend, points, dtype)
    res = derivative(f(backend.xp), x)
    exact = df(to_numpy(x).astype(np.float64))
    assert_close(res.df, exact, backend=backend, rtol=rtol, atol=rtol, dtype=x.dtype)
    assert bool(backend.xp.all(res.success))
    assert np.all(np.abs(to_numpy(res.df) - exact) <= to_numpy(res.error) + 1e-300)


@pytest.mark.parametrize("case", HARD, ids=[c[0] for c in HARD])
def test_far_from_the_origin_and_small_scales(backend, case):
    _, f, df, point, scale = case
    x = _points(backend, [point], "float64")
    res = derivative(f(backend.xp), x, scale=scale)
    assert_close(res.df, [df(point)], backend=backend, rtol=1e-10)
    assert bool(backend.xp.all(res.success))


def test_steps_across_a_pole_do_not_end_in_a_false_success(backend):
    # the first steps (0.3 in float32) cross the pole of 1/x at 0; estimates made
    # there must not be kept as the answer once the steps no longer cross it
    x = _points(backend, [1e-3], "float32")
    res = derivative(lambda t: 1 / t, x)
    exact = -1 / float(to_numpy(x)[0]) ** 2
    assert bool(res.success[0])
    assert float(res.df[0]) == pytest.approx(exact, rel=1e-4)


@pytest.mark.parametrize(("dtype", "point", "k"), [("float64", -1930.1721570363036, 50.0),
                                                   ("float32", 1424.4988, 1.0)])
def test_steps_that_alias_a_period_do_not_end_in_a_false_success(backend, dtype, point, k):
    # 50 x is close to 30720 pi here: steps x/4, x/8, x/16, ... all span whole
    # periods of sin(50 x), so halving steps agreed on a derivative near 0
    x = _points(backend, [point], dtype)
    res = derivative(lambda t: backend.xp.sin(k * t), x)
    exact = k * np.cos(k * float(to_numpy(x)[0]))
    rtol = 1e-6 if dtype == "float64" else 1e-3
    assert bool(res.success[0])
    assert float(res.df[0]) == pytest.approx(exact, rel=rtol)


def test_evaluations_stay_few_on_easy_functions(backend):
    x = _points(backend, [0.5, 1.0, 1.5, 2.0], "float64")
    res = derivative(backend.xp.exp, x)
    assert int(backend.xp.max(res.nfev)) <= 12
    assert_on_backend(res.nfev, backend, shape=(4,))


def test_a_scale_saves_evaluations(backend):
    x = _points(backend, [1.0], "float64")
    f = lambda t: backend.xp.sin(1000 * t)  # noqa: E731
    assert int(derivative(f, x, scale=1e-3).nfev[0]) < int(derivative(f, x).nfev[0])


def test_result_has_the_shape_namespace_and_device_of_x(backend):
    x = _points(backend, np.linspace(0.1, 2.0, 6).reshape(2, 3), "float64")
    res = derivative(backend.xp.sin, x)
    assert isinstance(res, DerivativeResult)
    for name in ("df", "error", "success", "status", "nfev", "nit"):
        assert_on_backend(getattr(res, name), backend, shape=(2, 3))
    assert_close(res.df, np.cos(to_numpy(x)), rtol=1e-12)


def test_one_sided_where_f_is_undefined_on_one_side(backend):
    xp = backend.xp
    x = _points(backend, [1e-3, 2.0, 3.0], "float64")
    direction = backend.asarray(np.array([1, -1, 1]))
    res = derivative(xp.sqrt, x, step_direction=direction)
    assert_close(res.df, 0.5 / np.sqrt(to_numpy(x)), backend=backend, rtol=1e-10)
    # log of a negative number is NaN: the left-only stencil never crosses 0
    x = _points(backend, [1e-3], "float64")
    assert_close(derivative(xp.log, x, step_direction=1).df, [1e3], rtol=1e-10)


def test_non_finite_values_are_reported_per_element(backend):
    x = _points(backend, [-1.0, 1.0], "float64")
    res = derivative(backend.xp.log, x)
    status = to_numpy(res.status)
    assert status[0] == -3 and status[1] == 0
    assert math.isnan(float(res.df[0])) and not bool(res.success[0])
    assert float(res.df[1]) == pytest.approx(1.0, rel=1e-12)


def test_unusable_scale_or_direction_is_reported_per_element(backend):
    x = _points(backend, [1.0, 1.0, 1.0], "float64")
    scale = backend.asarray(np.array([-1.0, 0.0, 0.5]))
    res = derivative(backend.xp.exp, x, scale=scale)
    assert to_numpy(res.status).tolist()[:2] == [-3, -3]
    assert float(res.df[2]) == pytest.approx(math.e, rel=1e-12)
    direction = backend.asarray(np.array([0.0, math.nan, 1.0]))
    res = derivative(backend.xp.exp, x, step_direction=direction)
    assert to_numpy(res.status).tolist()[1] == -3 and math.isnan(float(res.df[1]))
    assert float(res.df[2]) == pytest.approx(math.e, rel=1e-10)


def test_zero_derivative_converges_within_an_absolute_tolerance(backend):
    # no relative tolerance can be met by a derivative of 0: with atol=0 it is status -4, not a success
    x = _points(backend, [1.0], "float64")
    res = derivative(lambda t: (t - 1) ** 3, x)
    assert abs(float(res.df[0])) < 1e-14 and not bool(res.success[0])
    assert to_numpy(res.status).tolist() == [-4]
    res = derivative(lambda t: (t - 1) ** 3, x, atol=1e-12)
    assert abs(float(res.df[0])) < 1e-14 and bool(res.success[0])
    assert to_numpy(res.status).tolist() == [0]


def test_integers_become_floats_and_numbers_become_numpy():
    res = derivative(lambda x: x**99 - 1, 7)
    assert res.df.dtype == np.float64
    assert float(res.df) == pytest.approx(99 * 7.0**98, rel=1e-12)


def test_maxiter_bounds_the_work():
    res = derivative(np.exp, 1.0, maxiter=2)
    assert int(res.nfev) == 4 and int(res.status) == -2 and not bool(res.success)


def test_tolerances_trade_accuracy_for_evaluations():
    loose = derivative(np.exp, 1.0, rtol=1e-4)
    tight = derivative(np.exp, 1.0)
    assert int(loose.nfev) < int(tight.nfev)
    assert abs(float(loose.df) - math.e) <= float(loose.error)


def test_caller_arrays_are_not_changed():
    x = np.array([1.0, 2.0])
    derivative(np.exp, x)
    np.testing.assert_array_equal(x, [1.0, 2.0])


def test_f_must_be_elementwise():
    with pytest.raises(ValueError, match="`f` must be elementwise"):
        derivative(lambda x: np.sum(x), np.array([1.0, 2.0]))


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"rtol": -1.0}, ValueError, "`rtol` must be >= 0"),
    ({"atol": math.inf}, ValueError, "`atol` must be >= 0 and finite"),
    ({"rtol": "small"}, TypeError, "`rtol` must be a real number"),
    ({"maxiter": 0}, ValueError, "`maxiter` must be >= 1"),
    ({"maxiter": 2.5}, TypeError, "`maxiter` must be an integer"),
    ({"scale": np.ones(3)}, ValueError, "`scale` must broadcast"),
    ({"step_direction": np.array([True, False])}, TypeError, "`step_direction` must hold real numbers"),
])
def test_argument_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        derivative(np.exp, np.array([1.0, 2.0]), **kwargs)


def test_f_must_be_callable():
    with pytest.raises(TypeError, match="`f` must be callable"):
        derivative(3.0, 1.0)


# --- jacobian and hessian ------------------------------------------------------

def _rosen(xp):
    def f(x):
        return xp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)
    return f


def _rosen_gradient(x):
    g = np.zeros_like(x)
    g[:-1] += -400 * x[:-1] * (x[1:] - x[:-1] ** 2) - 2 * (1 - x[:-1])
    g[1:] += 200 * (x[1:] - x[:-1] ** 2)
    return g


def _rosen_hessian(x):
    n = x.size
    h = np.zeros((n, n))
    for i in range(n - 1):
        h[i, i] += 1200 * x[i] ** 2 - 400 * x[i + 1] + 2
        h[i + 1, i + 1] += 200
        h[i, i + 1] = h[i + 1, i] = -400 * x[i]
    return h


X0 = np.array([0.3, 0.7, 1.2, 0.9, -0.4])


def test_jacobian_of_rosenbrock_is_its_gradient(backend):
    x = backend.asarray(X0, dtype=backend.xp.float64)
    from xgrad import jacobian

    res = jacobian(_rosen(backend.xp), x)
    assert_close(res.df, _rosen_gradient(X0), backend=backend, rtol=1e-12, atol=1e-12)
    assert bool(backend.xp.all(res.success))


def test_jacobian_of_a_linear_map(backend):
    from xgrad import jacobian

    a = np.arange(12.0).reshape(4, 3) - 5
    a_ = backend.asarray(a, dtype=backend.xp.float64)
    x = backend.asarray([0.5, -2.0, 3.0], dtype=backend.xp.float64)
    res = jacobian(lambda v: backend.xp.matmul(a_, v), x)
    assert_close(res.df, a, backend=backend, rtol=1e-12, atol=1e-12)
    stacked = jacobian(lambda v: backend.xp.matmul(v, a_.T), x, vectorized=True)
    assert_close(stacked.df, a, backend=backend, rtol=1e-12, atol=1e-12)
    assert_on_backend(res.nfev, backend, shape=(4, 3))


def test_hessian_of_rosenbrock(backend):
    from xgrad import hessian

    x = backend.asarray(X0[:3], dtype=backend.xp.float64)
    res = hessian(_rosen(backend.xp), x)
    assert_close(res.df, _rosen_hessian(X0[:3]), backend=backend, rtol=1e-9, atol=1e-9)


def test_jacobian_shapes_follow_input_and_output():
    from xgrad import jacobian

    x = np.arange(1.0, 7.0).reshape(2, 3)
    res = jacobian(lambda v: np.stack([np.sum(v**2), np.sum(v)]), x)
    assert res.df.shape == (2, 2, 3)
    np.testing.assert_allclose(res.df[0], 2 * x, rtol=1e-12)
    np.testing.assert_allclose(res.df[1], np.ones((2, 3)), rtol=1e-12)


# --- hostile input: what f returns, options of another library, points that are not finite,
# error estimates where f cancels (each of these failed before its fix) ------------------------

def test_derivative_refuses_a_result_narrower_than_x(backend):
    # float32 values under a float64 error estimate: the estimate claimed 1e-5
    # where the error was 6e-5, and `success` was True
    xp = backend.xp
    x = backend.asarray(np.array(POINTS))
    with pytest.raises(TypeError, match=r"`f` returned a .*float32 value for an `x` of dtype .*float64"):
        derivative(lambda v: xp.sin(xp.astype(v, xp.float32)), x)


def test_derivative_refuses_a_complex_result(backend):
    xp = backend.xp
    x = backend.asarray(np.array(POINTS))
    with pytest.raises(TypeError, match=r"`f` must return a real number; got dtype .*complex128"):
        derivative(lambda v: xp.astype(v, xp.complex128) * 1j, x)


def test_derivative_refuses_a_result_of_another_library(backend):
    x = backend.asarray(np.array(POINTS))
    with pytest.raises(TypeError, match="`f` must return an array of the library of `x`"):
        derivative(lambda v: of_another_library(backend, np.sin(to_numpy(v))), x)


def test_derivative_still_takes_integer_results_and_float32_for_float32(backend):
    xp = backend.xp
    x = backend.asarray(np.array(POINTS, dtype=np.float32))
    res = derivative(xp.sin, x)
    assert_close(res.df, np.cos(POINTS), backend=backend, rtol=1e-4, dtype=xp.float32)
    steps = derivative(lambda v: xp.astype(v > 1.5, xp.int32), backend.asarray(np.array(POINTS)))
    assert_close(steps.df, [0.0, 0.0, 0.0], backend=backend)


def test_derivative_at_inf_and_nan_reports_them_without_a_warning(backend):
    # NumPy warned "invalid value encountered in subtract" from inside xgrad: status says it
    xp = backend.xp
    x = backend.asarray(np.array([np.inf, np.nan, -np.inf, 1.0]))
    res = derivative(lambda v: 2 * v, x)
    assert to_numpy(res.status).tolist() == [-3, -3, -3, 0]
    assert to_numpy(res.success).tolist() == [False, False, False, True]
    assert np.isnan(to_numpy(res.df)[:3]).all()
    assert float(res.df[3]) == pytest.approx(2.0, rel=1e-12)
    assert xp.isdtype(res.df.dtype, "real floating")


@pytest.mark.parametrize("name", ["scale", "step_direction"])
def test_derivative_options_of_another_library_are_refused(backend, name):
    # they failed deep inside ("dtype argument must be a NumPy dtype", an AttributeError)
    x = backend.asarray(np.array(POINTS))
    with pytest.raises(TypeError, match=f"`{name}` must be a number or an array of the library of `x`"):
        derivative(backend.xp.sin, x, **{name: of_another_library(backend, np.ones(3))})
    # a NumPy scalar is a number, whatever the library of x
    res = derivative(backend.xp.sin, x, **{name: np.float32(1)})
    assert_close(res.df, np.cos(POINTS), backend=backend, rtol=1e-10)


@pytest.mark.parametrize("direction", [0, 1, -1])
def test_derivative_error_estimate_bounds_the_error_where_f_cancels(backend, direction):
    # sin(10 x) near its zeros: success with an error estimate 20 times too small
    xp = backend.xp
    host = np.linspace(2.4, 2.6, 201)
    res = derivative(lambda v: xp.sin(10 * v), backend.asarray(host), step_direction=direction)
    actual = np.abs(to_numpy(res.df) - 10 * np.cos(10 * host))
    ok = to_numpy(res.success)
    assert ok.all()
    below = np.flatnonzero(to_numpy(res.error) < actual)
    assert below.size == 0, f"estimate below the error at x = {host[below][:5]}"
    assert np.all(actual < 1e-9 * 10)  # still accurate


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_derivative_lost_below_the_rounding_is_no_success(backend, dtype):
    # x**2 at 1e-300 (0 in float32), a subnormal and 1e-20: at the default scale of 1 the
    # quotients are all 0 and agree exactly; the answer 2x is below their rounding error
    points = [1e-300, 5e-324, 1e-20, 0.0, 3.0] if dtype == "float64" else [1e-30, 1e-44, 1e-20, 0.0, 3.0]
    x = _points(backend, points, dtype)
    res = derivative(lambda t: t * t, x)
    status = to_numpy(res.status).tolist()
    assert status == [-4, -4, -4, -4, 0]
    assert to_numpy(res.success).tolist() == [False, False, False, False, True]
    assert all(float(e) >= abs(float(d)) for d, e in zip(to_numpy(res.df)[:4], to_numpy(res.error)[:4], strict=True))
    assert float(res.df[4]) == pytest.approx(6.0, rel=1e-5)
    # a scale of the size of x resolves a normal-range point; an absolute tolerance accepts the rest
    # (at 1e-15: squares of 1e-20 are subnormal in float32, which JAX flushes to 0 on the CPU)
    near = derivative(lambda t: t * t, _points(backend, [1e-15], dtype), scale=1e-15)
    assert bool(near.success[0]) and float(near.df[0]) == pytest.approx(2e-15, rel=1e-4)
    loose = derivative(lambda t: t * t, x, atol=1e-6)
    assert bool(backend.xp.all(loose.success))


def test_status_minus_4_is_documented():
    from xgrad._numerics.derivative import STATUS

    assert "no relative accuracy" in STATUS[-4] and "`atol`" in STATUS[-4]
    assert "-4 no relative accuracy" in " ".join(DerivativeResult.__doc__.split())
    assert "status -4, not as a success" in " ".join(derivative.__doc__.split())


# --- a first step at which f overflows ------------------------------------------

OVERFLOWING = [
    # (name, f on a namespace, f' on the host (log of it, to stay finite), x, dtype)
    ("exp at 568", lambda xp: xp.exp, lambda x: x, 568.0, "float64"),
    ("exp at 600", lambda xp: xp.exp, lambda x: x, 600.0, "float64"),
    ("exp at 700", lambda xp: xp.exp, lambda x: x, 700.0, "float64"),
    ("cosh at 600", lambda xp: xp.cosh, lambda x: x - math.log(2), 600.0, "float64"),
    ("x**100 at 1000", lambda xp: lambda x: x**100, lambda x: math.log(100) + 99 * math.log(x), 1000.0, "float64"),
    ("exp at 70 in float32", lambda xp: xp.exp, lambda x: x, 70.0, "float32"),
]


@pytest.mark.parametrize("case", OVERFLOWING, ids=[c[0] for c in OVERFLOWING])
def test_a_first_step_that_overflows_is_shrunk_not_reported_as_converged(backend, case):
    # exp at 568 reported -1.04e272 as converged (true 4.78e246); exp at 700 failed with status -3
    _, f, log_df, point, dtype = case
    x = _points(backend, [point], dtype)
    res = derivative(f(backend.xp), x)
    exact = math.exp(log_df(point))
    rtol = 1e-10 if dtype == "float64" else 1e-5
    assert to_numpy(res.success).tolist() == [True]
    assert abs(float(res.df[0]) / exact - 1) < rtol
    assert abs(float(res.df[0]) - exact) <= float(res.error[0])


def test_a_jacobian_whose_f_overflows_at_the_first_step(backend):
    xp = backend.xp
    from xgrad import jacobian

    res = jacobian(lambda v: xp.exp(v), backend.asarray(np.array([568.0, 1.0])))
    exact = np.diag(np.exp([568.0, 1.0]))
    # the zeros off the diagonal have no relative accuracy (status -4 without an atol), the diagonal converges
    assert np.all(np.diag(to_numpy(res.status)) >= 0) and np.all(to_numpy(res.status)[[0, 1], [1, 0]] == -4)
    assert np.all(np.abs(to_numpy(res.df) - exact) <= 1e-10 * np.abs(exact).max(axis=1, keepdims=True))


def test_no_runtime_warning_reaches_the_caller_from_the_extrapolation():
    # "invalid value encountered in subtract" escaped from the noise-floor test (filterwarnings=error makes it fail)
    res = derivative(np.exp, np.array([568.0, 700.0, 1.0]))
    assert bool(np.all(res.success))


def test_one_round_gives_the_first_quotient_with_an_honest_status():
    # maxiter=1 returned NaN with status -3 for a finite f
    res = derivative(np.exp, 1.0, maxiter=1)
    assert abs(float(res.df) - math.e) < 0.1 and math.isinf(float(res.error))
    assert int(res.status) == -2 and not bool(res.success) and int(res.nfev) == 2


def test_quotients_lost_in_rounding_that_agree_by_chance_are_no_success():
    # the cdf of ksone(1000) near its median + 0.1 is 1 - 5.5e-13: its differences move in steps of eps, two
    # quotients agreed exactly and the result, 4e-3 off, was reported as converged
    from scipy import stats

    dist = stats.ksone(1000)
    x = float(dist.median()) + 0.1
    res = derivative(dist.cdf, x)
    exact = float(dist.pdf(x))
    assert abs(float(res.df) - exact) <= float(res.error)
    assert int(res.status) == -4 and not bool(res.success)
    # the survival function keeps its relative precision there: its derivative converges
    sf = derivative(lambda t: -dist.sf(t), x)
    assert bool(sf.success) and abs(float(sf.df) / exact - 1) < 1e-6
