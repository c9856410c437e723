"""Hostile input to the numerical-differentiation API, on every backend.

Each test here failed before its fix: a user function returning a complex, a
narrower float, an array of another library or values whose shape changes; a
user function that changes its argument in place; a gradient of another
library or of complex dtype; a seed that is not a seed; float16 and empty
arrays in a gradient check; a jump where no derivative exists; error
estimates where f cancels to near zero; complex NumPy scalars as options; a
device without float64. The right behaviour is a clear error that names the
argument, or the right answer (checked against analytic derivatives).
"""

from __future__ import annotations

import numpy as np
import pytest
from _helpers import assert_close

from xgrad import (
    check_gradient,
    derivative,
    gradient_descent,
    jacobian,
    numerical_diff,
    numerical_gradient,
    tangent_line,
)
from xgrad._infra.host import to_numpy

POINTS = [0.3, 1.0, 2.0]


def _foreign(backend, host):
    """`host` as an array of a library other than the backend's."""
    if backend.name != "numpy":
        return np.asarray(host)
    import array_api_strict

    return array_api_strict.asarray(host)


# --- derivative: what f returns ----------------------------------------------------------------------


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
        derivative(lambda v: _foreign(backend, np.sin(to_numpy(v))), x)


def test_derivative_still_takes_integer_results_and_float32_for_float32(backend):
    xp = backend.xp
    x = backend.asarray(np.array(POINTS, dtype=np.float32))
    res = derivative(xp.sin, x)
    assert_close(res.df, np.cos(POINTS), backend=backend, rtol=1e-4, dtype=xp.float32)
    steps = derivative(lambda v: xp.astype(v > 1.5, xp.int32), backend.asarray(np.array(POINTS)))
    assert_close(steps.df, [0.0, 0.0, 0.0], backend=backend)


# --- jacobian: what f returns -----------------------------------------------------------------------

A = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
X2 = np.array([0.5, -1.0])


def test_jacobian_refuses_a_result_narrower_than_x(backend):
    # float32 values under a float64 error estimate: success with a wrong error bound
    xp = backend.xp
    a = backend.asarray(A)
    with pytest.raises(TypeError, match=r"`f` returned a .*float32 value for an `x` of dtype .*float64"):
        jacobian(lambda v: xp.astype(a @ v, xp.float32), backend.asarray(X2))


def test_jacobian_refuses_a_complex_result(backend):
    xp = backend.xp
    a = backend.asarray(A)
    with pytest.raises(TypeError, match=r"`f` must return a real number; got dtype .*complex128"):
        jacobian(lambda v: xp.astype(a @ v, xp.complex128), backend.asarray(X2))


def test_jacobian_refuses_a_result_of_another_library(backend):
    with pytest.raises(TypeError, match="`f` must return an array of the library of `x`"):
        jacobian(lambda v: _foreign(backend, A @ to_numpy(v)), backend.asarray(X2))


def test_jacobian_refuses_none():
    with pytest.raises(TypeError, match="`f` must return an array or a number; got NoneType"):
        jacobian(lambda v: None, X2)


def test_jacobian_refuses_values_whose_shape_changes(backend):
    a = backend.asarray(A)
    x = backend.asarray(X2)
    with pytest.raises(ValueError, match=r"`f` must return an array of shape \(3,\) at every point, as at `x`; "
                                         r"got shape \(2,\)"):
        jacobian(lambda v: (a @ v)[:2] if float(v[0]) != 0.5 else a @ v, x)


def test_jacobian_vectorized_refuses_the_transposed_stack(backend):
    # f maps (k, 2) to (3, k) instead of (k, 3)
    a = backend.asarray(A)
    with pytest.raises(ValueError, match=r"`f` must map a stack of k points.*returned shape \(3, 1\)"):
        jacobian(lambda v: a @ v.T, backend.asarray(X2), vectorized=True)
    calls = []

    def later_wrong(v):  # right at the first call, then a stack of another length
        calls.append(v.shape[0])
        return v @ a.T if len(calls) == 1 else (v @ a.T)[:1, ...]

    with pytest.raises(ValueError, match=r"`f` must return an array of shape \(\d+, 3\) \(k, \*out_shape\)"):
        jacobian(later_wrong, backend.asarray(X2), vectorized=True)


def test_jacobian_still_takes_numbers_lists_and_integer_results():
    res = jacobian(lambda v: float(v[0] * v[1]), X2)
    np.testing.assert_allclose(res.df, [-1.0, 0.5], rtol=1e-10)
    res = jacobian(lambda v: [float(v[0]), 2 * float(v[1])], X2)
    np.testing.assert_allclose(res.df, [[1.0, 0.0], [0.0, 2.0]], rtol=1e-10, atol=1e-12)
    res = jacobian(lambda v: (A @ v > 0).astype(np.int64), X2)
    np.testing.assert_allclose(res.df, np.zeros((3, 2)))


# --- check_gradient: what f and grad return, and the seed -----------------------------------------


def _sin_sum(xp):
    return lambda v: xp.sum(xp.sin(v))


def test_check_gradient_refuses_an_f_narrower_than_x(backend):
    # float32 values of f checked with float64 tolerances: the verdict meant nothing
    xp = backend.xp
    x = backend.asarray(np.array(POINTS))
    with pytest.raises(TypeError, match=r"`f` returned a .*float32 value for an `x` of dtype .*float64"):
        check_gradient(lambda v: xp.sum(xp.sin(xp.astype(v, xp.float32))), xp.cos, x)


def test_check_gradient_refuses_a_complex_f(backend):
    xp = backend.xp
    x = backend.asarray(np.array(POINTS))
    with pytest.raises(TypeError, match=r"`f` must return a real number; got (dtype|the complex number) .*complex128"):
        check_gradient(lambda v: xp.astype(xp.sum(xp.sin(v)), xp.complex128), xp.cos, x)


@pytest.mark.parametrize(("value", "error", "match"), [
    (lambda v: np.sin(v), ValueError, r"`f` must return a scalar \(one number\); got an array of shape \(3,\)"),
    (lambda v: None, TypeError, "`f` must return a number or a 0-d array; got NoneType"),
    (lambda v: "1.0", TypeError, "`f` must return a number or a 0-d array; got str"),
])
def test_check_gradient_refuses_an_f_that_is_not_scalar(value, error, match):
    with pytest.raises(error, match=match):
        check_gradient(value, np.cos, np.array(POINTS))


def test_check_gradient_refuses_a_complex_grad(backend):
    xp = backend.xp
    x = backend.asarray(np.array(POINTS))
    with pytest.raises(TypeError, match=r"`grad` must hold real numbers; got dtype .*complex128"):
        check_gradient(_sin_sum(xp), lambda v: xp.astype(xp.cos(v), xp.complex128), x)


def test_check_gradient_refuses_a_grad_of_another_library(backend):
    x = backend.asarray(np.array(POINTS))
    with pytest.raises(TypeError, match="`grad` must be an array of the library of `x`"):
        check_gradient(_sin_sum(backend.xp), lambda v: _foreign(backend, np.cos(to_numpy(v))), x)
    with pytest.raises(TypeError, match="`grad` must be an array \\(or return one\\); got NoneType"):
        check_gradient(_sin_sum(backend.xp), lambda v: None, x)


@pytest.mark.parametrize(("seed", "error", "match"), [
    (-1, ValueError, "`seed` must be >= 0; got -1"),
    (1.5, TypeError, "`seed` must be an integer; got float"),
    (None, TypeError, "`seed` must be an integer; got NoneType"),  # None would draw unseeded directions
    (True, TypeError, "`seed` must be an integer; got bool"),
])
def test_check_gradient_refuses_a_seed_that_is_not_a_seed(seed, error, match):
    with pytest.raises(error, match=match):
        check_gradient(np.sum, np.ones_like, np.ones(100), seed=seed)


def test_check_gradient_still_takes_numbers_lists_and_other_libraries_scalars(backend):
    xp = backend.xp
    x = backend.asarray(np.array(POINTS))
    assert check_gradient(lambda v: float(xp.sum(xp.sin(v))), xp.cos, x).passed
    assert check_gradient(lambda v: _foreign(backend, float(xp.sum(xp.sin(v)))), xp.cos, x).passed
    assert check_gradient(_sin_sum(np), np.cos(POINTS).tolist(), np.array(POINTS)).passed
    assert not check_gradient(_sin_sum(xp), lambda v: xp.cos(v) * (1 + 1e-6), x).passed


# --- user functions that change their argument in place ---------------------------------------------
# Such an f is a function of its argument all the same: f(v) = sum((2 v)**2), gradient 8 v. xgrad
# must hand it copies, so that neither the caller's array nor the point it differences around moves.

X0 = np.array([1.5, -0.5, 2.0])


def _doubling(v):
    v *= 2  # in place (JAX rebinds the name instead: nothing to see there)
    return v**2


def _doubling_sum(v):
    import array_api_compat

    return array_api_compat.array_namespace(v).sum(_doubling(v))


def _doubling_rows(v):
    import array_api_compat

    return array_api_compat.array_namespace(v).sum(_doubling(v), axis=-1)


def _caller_array(backend):
    x = backend.asarray(X0.copy())  # not a view of X0, on NumPy or PyTorch
    return x, to_numpy(x).copy()


@pytest.mark.parametrize("method", ["central", "forward", "backward"])
def test_numerical_diff_hands_f_copies(backend, method):
    x, before = _caller_array(backend)
    d = numerical_diff(_doubling, x, method=method)
    np.testing.assert_array_equal(to_numpy(x), before)
    assert_close(d, 8 * X0, backend=backend, rtol=1e-6)
    d, _ = numerical_diff(_doubling, x, method=method, return_error=True)
    np.testing.assert_array_equal(to_numpy(x), before)
    assert_close(d, 8 * X0, backend=backend, rtol=1e-6)


@pytest.mark.parametrize("method", ["central", "forward", "backward"])
@pytest.mark.parametrize("vectorized", [False, True])
def test_numerical_gradient_hands_f_copies(backend, method, vectorized):
    # forward differences gave 4e9 instead of 12: f(x) doubled the point in place
    x, before = _caller_array(backend)
    f = _doubling_rows if vectorized else _doubling_sum
    g = numerical_gradient(f, x, method=method, vectorized=vectorized)
    np.testing.assert_array_equal(to_numpy(x), before)
    assert_close(g, 8 * X0, backend=backend, rtol=1e-6)


def test_numerical_gradient_on_an_executor_hands_f_copies(backend):
    from concurrent.futures import ThreadPoolExecutor

    x, before = _caller_array(backend)
    with ThreadPoolExecutor(2) as pool:
        g = numerical_gradient(_doubling_sum, x, method="forward", executor=pool)
    np.testing.assert_array_equal(to_numpy(x), before)
    assert_close(g, 8 * X0, backend=backend, rtol=1e-6)


def test_the_closure_check_hands_f_a_copy(backend):
    # f constant in its argument: the closure warning, and the caller's array as it was
    x, before = _caller_array(backend)
    xp = backend.xp

    def constant(v):
        v *= 0
        return xp.sum(v)

    with pytest.warns(RuntimeWarning, match="returned the same value at every perturbed point"):
        g = numerical_gradient(constant, x)
    np.testing.assert_array_equal(to_numpy(x), before)
    assert_close(g, np.zeros(3), backend=backend)


def test_jacobian_hands_f_a_copy(backend):
    # the first call doubled x in place: the Jacobian came out at 2 x, diag(16 x)
    x, before = _caller_array(backend)
    res = jacobian(_doubling, x)
    np.testing.assert_array_equal(to_numpy(x), before)
    assert_close(res.df, np.diag(8 * X0), backend=backend, rtol=1e-9, atol=1e-12)


def test_tangent_line_hands_f_a_copy(backend):
    # y = f(x) - d * x read x after f had doubled it: the tangent missed the curve
    x = backend.asarray(np.array([1.5]))
    line = tangent_line(_doubling, x)
    np.testing.assert_array_equal(to_numpy(x), [1.5])
    assert_close(line(backend.asarray(np.array([1.5]))), [9.0], backend=backend, rtol=1e-9)
    assert_close(line(backend.asarray(np.array([2.5]))), [9.0 + 12.0], backend=backend, rtol=1e-9)


def test_check_gradient_hands_grad_a_copy(backend):
    xp = backend.xp
    x, before = _caller_array(backend)

    def grad(v):  # right, but scales its argument in place on the way
        v *= 3
        return 2 * v / 3

    assert check_gradient(lambda v: xp.sum(v**2), grad, x).passed
    np.testing.assert_array_equal(to_numpy(x), before)


def test_gradient_descent_hands_f_and_grad_copies(backend):
    xp = backend.xp
    x, before = _caller_array(backend)

    def grad(v):  # the gradient of sum(v**2), scaling its argument in place on the way
        v *= 3
        return 2 * v / 3

    out, path = gradient_descent(lambda v: xp.sum(v**2), x, lr=0.25, step_num=2, grad=grad, return_path=True)
    np.testing.assert_array_equal(to_numpy(x), before)
    assert_close(path, [X0, X0 / 2, X0 / 4], backend=backend, rtol=1e-12)
    out = gradient_descent(_doubling_sum, x, lr=0.0625, step_num=1)  # gradient 8 x
    np.testing.assert_array_equal(to_numpy(x), before)
    assert_close(out, X0 / 2, backend=backend, rtol=1e-8)


def test_gradient_descent_never_returns_the_callers_array():
    x = np.array([1.0, 2.0])
    out = gradient_descent(lambda v: (v**2).sum(), x, step_num=0)
    out += 1  # the caller works on the result
    np.testing.assert_array_equal(x, [1.0, 2.0])


@pytest.mark.parametrize("method", ["central", "forward", "backward"])
def test_read_only_arrays_and_a_function_that_writes_to_its_argument(method):
    x = X0.copy()
    x.flags.writeable = False
    np.testing.assert_allclose(numerical_diff(_doubling, x, method=method), 8 * X0, rtol=1e-6)
    np.testing.assert_allclose(numerical_gradient(_doubling_sum, x, method=method), 8 * X0, rtol=1e-6)


def test_copies_of_torch_tensors_that_require_grad_raise_no_warning():
    torch = pytest.importorskip("torch")
    x = torch.tensor(X0, requires_grad=True)
    g = numerical_gradient(lambda v: torch.sum(v.detach() ** 2), x, method="forward")
    np.testing.assert_allclose(to_numpy(g.detach()), 2 * X0, rtol=1e-6)


@pytest.mark.parametrize("factor", [1.0, 1.2])
def test_check_gradient_refuses_float16_where_a_20_percent_error_passed(backend, factor):
    if backend.name == "array_api_strict":
        pytest.skip("array-api-strict has no float16")
    xp = backend.xp
    x = backend.asarray(np.array([0.7, -1.3], dtype=np.float16))
    with pytest.raises(TypeError, match=r"`x` of dtype .*float16 is too coarse for a gradient check"):
        check_gradient(lambda v: xp.sum(v**2), lambda v: 2 * factor * v, x)
    # in float32 the same 20% error fails and the right gradient passes
    x32 = xp.astype(x, xp.float32)
    assert check_gradient(lambda v: xp.sum(v**2), lambda v: 2 * factor * v, x32).passed == (factor == 1.0)


# --- numbers given as options ------------------------------------------------------------------------


@pytest.mark.parametrize("make", [np.complex128, lambda v: np.asarray(v, dtype=np.complex64)])
def test_complex_numpy_scalars_are_not_real_numbers(make):
    # float() of a NumPy complex only warns and drops the imaginary part
    with pytest.raises(TypeError, match=r"`h` must be a real number; got"):
        numerical_diff(np.sin, np.array([1.0]), h=make(1e-4 + 1e-3j))
    with pytest.raises(TypeError, match=r"`lr` must be a real number; got"):
        gradient_descent(lambda v: (v**2).sum(), np.array([1.0]), lr=make(0.1 + 0j))
    with pytest.raises(TypeError, match=r"`rtol` must be a real number; got"):
        derivative(np.sin, np.array([1.0]), rtol=make(1e-8 + 0j))



# --- empty arrays ---------------------------------------------------------------------------------


def test_jacobian_of_an_empty_x_or_an_empty_f_is_empty(backend):
    # both failed with "need at least one array to stack"
    xp = backend.xp
    empty = backend.asarray(np.zeros((0,)))
    res = jacobian(lambda v: 2 * v, empty)
    assert tuple(res.df.shape) == (0, 0)
    res = jacobian(lambda v: xp.sum(v), empty)
    assert tuple(res.df.shape) == (0,)
    res = jacobian(lambda v: v[:0], backend.asarray(X2))
    assert tuple(res.df.shape) == (0, 2)


def test_check_gradient_refuses_an_empty_x(backend):
    # it failed with "need at least one array to stack"; a pass would check nothing
    with pytest.raises(ValueError, match=r"`x` is empty \(shape \(0, 3\)\): there is no gradient to check"):
        check_gradient(backend.xp.sum, backend.xp.ones_like, backend.asarray(np.zeros((0, 3))))


# --- gradient_descent keeps the dtype of its start ----------------------------------------------------


def test_gradient_descent_keeps_float32_when_grad_returns_float64(backend):
    # the point silently became float64 after the first step
    xp = backend.xp
    x = backend.asarray(np.array([1.0, -2.0], dtype=np.float32))
    out, path = gradient_descent(lambda v: xp.sum(v**2), x, lr=0.25, step_num=2,
                                 grad=lambda v: 2 * xp.astype(v, xp.float64), return_path=True)
    assert_close(out, [0.25, -0.5], backend=backend, dtype=xp.float32)
    assert_close(path, [[1.0, -2.0], [0.5, -1.0], [0.25, -0.5]], backend=backend, dtype=xp.float32)


# --- derivative at points that are not finite ---------------------------------------------------------


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


def test_check_gradient_of_a_flat_step_raises_no_warning(backend):
    # a zero allowed difference (f flat, gradient zero) divided 0 by 0 inside the report
    xp = backend.xp
    x = backend.asarray(np.array([1e-9, 0.5]))
    assert check_gradient(lambda v: xp.sum(xp.floor(v)), xp.zeros_like, x).passed
    report = check_gradient(lambda v: xp.sum(xp.floor(v)), lambda v: xp.full_like(v, 3.0), x)
    assert not report.passed


# --- check_gradient where no derivative exists ----------------------------------------------------


@pytest.mark.parametrize("given", [0.0, 3.0, -10.0, 30.0, 1e3])
def test_check_gradient_fails_at_a_jump_whatever_the_gradient(backend, given):
    # at a jump the derivative does not converge, its error estimate grows, and any
    # value within it passed: floor at 0 with a gradient of 0, 3, -10 or 30
    xp = backend.xp
    x = backend.asarray(np.array([0.0, 0.5]))
    report = check_gradient(lambda v: xp.sum(xp.floor(v)), lambda v: xp.full_like(v, given), x)
    assert not report.passed
    if abs(given) <= 30:  # within the error estimate: failed as unresolved (1e3 is simply too far)
        assert report.worst[0][0] == 0
        assert report.unresolved == [0]
        assert "no converged numerical derivative" in str(report)



@pytest.mark.parametrize("flag", ["no", 1, None])
def test_jacobian_vectorized_must_be_a_bool(flag):
    # "no" (or 1) was taken as True, and f failed on the stack of points it was then given
    with pytest.raises(TypeError, match="`vectorized` must be True or False; got"):
        jacobian(lambda v: A @ v, X2, vectorized=flag)


@pytest.mark.parametrize("name", ["scale", "step_direction"])
def test_derivative_options_of_another_library_are_refused(backend, name):
    # they failed deep inside ("dtype argument must be a NumPy dtype", an AttributeError)
    x = backend.asarray(np.array(POINTS))
    with pytest.raises(TypeError, match=f"`{name}` must be a number or an array of the library of `x`"):
        derivative(backend.xp.sin, x, **{name: _foreign(backend, np.ones(3))})
    # a NumPy scalar is a number, whatever the library of x
    res = derivative(backend.xp.sin, x, **{name: np.float32(1)})
    assert_close(res.df, np.cos(POINTS), backend=backend, rtol=1e-10)


# --- numerical_diff's error estimate where f cancels to near zero ----------------------------------


@pytest.mark.parametrize("method", ["central", "forward", "backward"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_error_estimate_bounds_the_error_where_f_cancels(backend, method, dtype):
    # f's rounding is eps (|f| + |x f'|), not eps |f|: near sqrt(2), x*x - 2 is tiny but
    # carries the rounding of x*x; the estimate was 36 times too small there
    xp = backend.xp
    host = np.linspace(1.3, 1.5, 201).astype(dtype)
    cases = [(lambda v: v * v - 2, lambda v: 2 * v), (lambda v: xp.sin(10 * v), lambda v: 10 * np.cos(10 * v))]
    for f, df in cases:
        d, err = numerical_diff(f, backend.asarray(host), method=method, return_error=True)
        actual = np.abs(to_numpy(d).astype(np.float64) - df(host.astype(np.float64)))
        below = np.flatnonzero(to_numpy(err) < actual)
        assert below.size == 0, f"estimate below the error at x = {host[below][:5]}"
        assert np.median(to_numpy(err) / np.maximum(actual, 1e-300)) < 1e4  # and not absurdly loose


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


# --- devices without float64 ----------------------------------------------------------------------


@pytest.mark.parametrize("factor", [1.0, 1.01])
def test_check_gradient_on_a_device_without_float64(factor):
    # it summed the given slopes in float64 and failed on such a device (JAX without x64,
    # PyTorch on MPS, array-api-strict's no_float64 device)
    xs = pytest.importorskip("array_api_strict")
    x = xs.asarray([1.0, 2.0], dtype=xs.float32, device=xs.Device("no_float64"))
    report = check_gradient(lambda v: xs.sum(v**3), lambda v: 3 * factor * v**2, x)
    assert report.passed == (factor == 1.0)
