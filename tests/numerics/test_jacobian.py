"""xgrad.jacobian on hostile input, on every backend: values of another dtype,
library or kind, or whose shape changes, refused with a message naming `f`; a
vectorized `f` that returns the wrong stack; an `f` that changes its argument in
place; empty points and values; a `vectorized` that is not a bool. Each of these
failed before its fix. (The Jacobians of known functions are tested in
test_derivative.py.)"""

from __future__ import annotations

import numpy as np
import pytest
from _helpers import X0, assert_close, caller_array, doubling, of_another_library

from xgrad import jacobian
from xgrad._infra.host import to_numpy

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
        jacobian(lambda v: of_another_library(backend, A @ to_numpy(v)), backend.asarray(X2))


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


def test_jacobian_hands_f_a_copy(backend):
    # the first call doubled x in place: the Jacobian came out at 2 x, diag(16 x)
    x, before = caller_array(backend)
    res = jacobian(doubling, x)
    np.testing.assert_array_equal(to_numpy(x), before)
    assert_close(res.df, np.diag(8 * X0), backend=backend, rtol=1e-9, atol=1e-12)


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


@pytest.mark.parametrize("flag", ["no", 1, None])
def test_jacobian_vectorized_must_be_a_bool(flag):
    # "no" (or 1) was taken as True, and f failed on the stack of points it was then given
    with pytest.raises(TypeError, match="`vectorized` must be True or False; got"):
        jacobian(lambda v: A @ v, X2, vectorized=flag)


# --- a vectorized f checked, point by point ----------------------------------------

A = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])


def test_an_f_that_mixes_the_points_of_a_stack_is_refused(backend):
    xp, a = backend.xp, backend.asarray(A)
    x = backend.asarray(np.array([0.5, -1.0]))
    with pytest.raises(ValueError, match=r"one row per point, each depending on its point alone"):
        jacobian(lambda p: p @ a.T + xp.sum(p[:, 0]), x, vectorized=True)


def test_a_vectorized_f_costs_one_more_call_of_one_point(backend):
    a = backend.asarray(A)
    calls = []

    def f(p):
        calls.append(p.shape[0])
        return p @ a.T

    res = jacobian(f, backend.asarray(np.array([0.5, -1.0])), vectorized=True)
    assert np.allclose(to_numpy(res.df), A, rtol=1e-12)
    # f(x) alone, the first stack, its first point alone (the check), then stacks only
    assert calls[0] == 1 and calls[1] > 1 and calls[2] == 1 and all(k > 1 for k in calls[3:])


def test_jacobian_steps_per_input_keep_f_in_its_domain():
    # log of x[0] is undefined left of 0: a one-sided step for that input alone
    def f(v):
        return np.stack([np.log(v[0]) + v[1], v[0] * v[1]])

    x = np.array([1e-3, 2.0])
    res = jacobian(f, x, step_direction=np.array([1.0, 0.0]))
    assert np.allclose(res.df, [[1e3, 1.0], [2.0, 1e-3]], rtol=1e-8)
    with pytest.raises(ValueError, match=r"`step_direction` must be a number or an array of the shape of `x` \(2,\)"):
        jacobian(f, x, step_direction=np.array([1.0, 0.0, 0.0]))
