"""Hostile input to the numerical-differentiation API, on every backend.

Each test here failed before its fix: a user function returning a complex, a
narrower float or an array of another library; a user function that changes
its argument in place; a gradient of another library or of complex dtype; a
seed that is not a seed. The right behaviour is a clear error that names the
argument, or the right answer (checked against analytic derivatives).
"""

from __future__ import annotations

import numpy as np
import pytest
from _helpers import assert_close

from xgrad import check_gradient, derivative, jacobian
from xgrad._host import to_numpy

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
    with pytest.raises(TypeError, match="`f` must return a real number; got dtype .*complex128"):
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
    with pytest.raises(TypeError, match="`f` must return a real number; got dtype .*complex128"):
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
    with pytest.raises(TypeError, match="`f` must return a real number; got (dtype|the complex number) .*complex128"):
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
    with pytest.raises(TypeError, match="`grad` must hold real numbers; got dtype .*complex128"):
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
