"""xgrad.numerical_gradient and xgrad.directional_derivative on hostile input:
an `f` that changes its argument in place gets copies, with every method,
vectorized or not, and in the check for a closure that ignores its argument;
property tests: any point, dtype, library, direction and step gives the right
answer or a clear error, and a step lost along the direction is refused. (Their
accuracy and argument errors are tested in test_diff.py, beside numerical_diff's.)"""

from __future__ import annotations

import concurrent.futures
import math

import numpy as np
import pytest
from _helpers import (
    BAD_STEPS,
    NUMERICS_SETTINGS,
    ODD_STEPS,
    X0,
    any_points,
    assert_close,
    caller_array,
    check_call,
    doubling,
    doubling_sum,
    dquad,
    result_dtype,
    rounding_bound,
    steps_taken,
)
from hypothesis import assume, given
from hypothesis import strategies as st

from xgrad import directional_derivative, numerical_gradient
from xgrad._infra.host import to_numpy


def _doubling_rows(v):
    import array_api_compat

    return array_api_compat.array_namespace(v).sum(doubling(v), axis=-1)


@pytest.mark.parametrize("method", ["central", "forward", "backward"])
@pytest.mark.parametrize("vectorized", [False, True])
def test_numerical_gradient_hands_f_copies(backend, method, vectorized):
    # forward differences gave 4e9 instead of 12: f(x) doubled the point in place
    x, before = caller_array(backend)
    f = _doubling_rows if vectorized else doubling_sum
    g = numerical_gradient(f, x, method=method, vectorized=vectorized)
    np.testing.assert_array_equal(to_numpy(x), before)
    assert_close(g, 8 * X0, backend=backend, rtol=1e-6)


def test_the_closure_check_hands_f_a_copy(backend):
    # f constant in its argument: the closure warning, and the caller's array as it was
    x, before = caller_array(backend)
    xp = backend.xp

    def constant(v):
        v *= 0
        return xp.sum(v)

    with pytest.warns(RuntimeWarning, match="returned the same value at every perturbed point"):
        g = numerical_gradient(constant, x)
    np.testing.assert_array_equal(to_numpy(x), before)
    assert_close(g, np.zeros(3), backend=backend)


# --- property tests: bad and unusual input gives the right answer or a clear error ---------

def _sum_f(v):
    import array_api_compat

    return array_api_compat.array_namespace(v).sum(v**2 + v)


@NUMERICS_SETTINGS
@given(point=any_points(), h=st.sampled_from(BAD_STEPS + ODD_STEPS), vectorized=st.booleans())
def test_numerical_gradient(point, h, vectorized):
    host, lib, x = point
    assume(not (vectorized and lib == "scalar"))
    f = _vectorized_f if vectorized else _sum_f
    g = check_call(lambda: numerical_gradient(f, x, h=h, vectorized=vectorized), host, lib, h, ("x", "h", "f"), x)
    finite = host.dtype.kind != "f" or bool(np.all(np.isfinite(host)))
    if not (finite and (h is None or (math.isfinite(h) and h > 0))):
        assert g is None, "a NaN/inf point or a bad step gave a result"
        return
    dtype = result_dtype(host, lib, x)
    if g is None:
        assert h is not None or dtype == np.float16, "the default step was refused"
        return
    xd = host.astype(dtype).astype(np.float64)
    eps = float(np.finfo(dtype).eps)
    steps = steps_taken(xd, h, eps)
    n = max(1, xd.size)
    with np.errstate(over="ignore"):
        total = float(np.sum((np.abs(xd) + steps) ** 2 + np.abs(xd) + steps))
    assert g.shape == host.shape
    np.testing.assert_array_less(np.abs(g - dquad(xd)), rounding_bound(xd, steps, eps, n=n, total=total) + 1e-300)


def _vectorized_f(v):
    import array_api_compat

    xp = array_api_compat.array_namespace(v)
    flat = xp.reshape(v, (v.shape[0], -1))
    return xp.sum(flat**2 + flat, axis=-1)


@NUMERICS_SETTINGS
@given(point=any_points(shapes=[(), (1,), (3,), (2, 2)]), data=st.data(), h=st.sampled_from([*BAD_STEPS, None, 1e-3]))
def test_directional_derivative(point, data, h):
    host, lib, x = point
    u_host = np.array(data.draw(st.lists(st.sampled_from([0.0, 1.0, -2.0, 0.5, 1e-3, 40.0]),
                                         min_size=host.size, max_size=host.size))).reshape(host.shape)
    wrong_shape = data.draw(st.booleans()) and host.ndim > 0
    if wrong_shape:
        u_host = u_host.reshape(-1)[:-1] if host.size > 1 else np.zeros((2, 2))
    _check_directional(host, lib, x, u_host, h, wrong_shape)


# Refusals that the test once took for unjustified, because it checked x + h == x where
# directional_derivative moves x by h*u: a float32 x of 40 does not move by 1e-3 * 1e-3, nor a
# float16 x of 3 by 1e-3 * 0.5 (hypothesis drew such cases only now and then: a flaky test).
@pytest.mark.parametrize(("values", "dtype", "u"), [
    ([40.0], "float32", [1e-3]),
    ([-3.0, 40.0, -49.9], "float32", [-2.0, 1.0, 1e-3]),
    ([3.0], "float16", [0.5]),
    ([0.7, -1.0, 0.0], "float16", [1e-3, 0.5, 40.0]),
])
def test_directional_derivative_refuses_a_step_lost_along_u(values, dtype, u):
    host = np.array(values, dtype=dtype)
    _check_directional(host, "numpy", host, np.array(u), 1e-3, False)
    with pytest.raises(ValueError, match=r"`h` = 0\.001 is too small for `x`"):
        directional_derivative(_sum_f, host, np.array(u), h=1e-3)


def _check_directional(host, lib, x, u_host, h, wrong_shape):
    u = _like(u_host, lib, x)
    s = check_call(lambda: directional_derivative(_sum_f, x, u, h=h), host, lib, h, ("x", "u", "h", "f"), x,
                   u=u_host)
    finite = host.dtype.kind != "f" or bool(np.all(np.isfinite(host)))
    if wrong_shape or not finite or not np.any(u_host != 0) or not (h is None or (math.isfinite(h) and h > 0)):
        assert s is None, "a bad point, direction or step gave a result"
        return
    dtype = result_dtype(host, lib, x)
    if s is None:
        assert h is not None or dtype == np.float16, "the default step was refused"
        return
    xd = host.astype(dtype).astype(np.float64)
    eps = float(np.finfo(dtype).eps)
    norm_x, norm_u = max(1.0, float(np.linalg.norm(xd))), float(np.linalg.norm(u_host))
    t = h if h is not None else eps ** (1 / 3) * norm_x / norm_u
    exact = float(np.sum(dquad(xd) * u_host))
    tol = 64 * (xd.size + 1) * eps * (norm_x + t * norm_u) ** 2 * norm_u / (t * norm_u) + 64 * eps * abs(exact)
    assert abs(float(s) - exact) <= tol


def _like(u_host, lib, x):
    if lib == "torch":
        import torch

        return torch.asarray(u_host)
    if lib == "jax":
        import jax.numpy as jnp

        return jnp.asarray(u_host)
    if lib == "scalar":
        return float(u_host.reshape(-1)[0]) if u_host.size == 1 else u_host
    return u_host.tolist() if lib == "list" else u_host


# --- a vectorized f checked, point by point ----------------------------------------

ONE_PER_POINT = r"must map a stack of points of shape \(k, \*x.shape\) to k values.*one per point"


def _wrong_axis(xp):
    return lambda p: xp.sum(p**2, axis=0)  # over the stack, not over the point


def _centred(xp):  # each value depends on the whole stack (the sum of its first coordinates)
    return lambda p: xp.sum(p**2, axis=-1) + xp.sum(xp.reshape(p, (p.shape[0], -1))[:, 0])


@pytest.mark.parametrize("make", [_wrong_axis, _centred])
@pytest.mark.parametrize("method", ["central", "forward", "backward"])
def test_an_f_that_mixes_the_points_of_a_stack_is_refused(backend, make, method):
    x = backend.asarray(np.array([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match=ONE_PER_POINT):
        numerical_gradient(make(backend.xp), x, vectorized=True, method=method)


@pytest.mark.parametrize("how", [{"chunk_size": 2}, {"per_row": True}, {"executor": "pool", "chunk_size": 2}])
def test_every_path_refuses_it(how):
    x = np.arange(1.0, 10.0).reshape(3, 3)
    kwargs = dict(how)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        if kwargs.get("executor") == "pool":
            kwargs["executor"] = pool
        with pytest.raises(ValueError, match=ONE_PER_POINT):
            numerical_gradient(_centred(np), x if kwargs.get("per_row") else x[0], vectorized=True, **kwargs)


def test_the_check_costs_one_call_of_one_point_per_gradient(backend):
    xp = backend.xp
    calls = []

    def f(p):
        calls.append(p.shape[0])
        return xp.sum(xp.sin(p) * p, axis=-1)

    host = np.array([0.3, -1.2, 2.0, 0.5])
    g = numerical_gradient(f, backend.asarray(host), vectorized=True)
    assert_close(g, np.sin(host) + host * np.cos(host), backend=backend, rtol=1e-8, atol=1e-10)
    assert sorted(calls) == [1, 4, 4]  # the two stacks of central differences, and the first point alone
    calls.clear()
    numerical_gradient(f, backend.asarray(host[:1]), vectorized=True)
    assert calls == [1, 1]  # a stack of one point is its own check


def test_a_stack_rounded_otherwise_than_one_point_passes():
    # a matrix product over a stack may round otherwise than over one point: not a mixing f
    rng = np.random.default_rng(0)
    a, x = rng.standard_normal((200, 200)), rng.standard_normal(200)
    g = numerical_gradient(lambda p: np.sum((p @ a) * p, axis=-1), x, vectorized=True)
    np.testing.assert_allclose(g, (a + a.T) @ x, rtol=1e-6, atol=1e-6)


def test_the_books_gradient_field_without_per_row_names_the_keyword():
    # the book's listing: numerical_gradient(function_2, np.array([X, Y]).T), a point per row
    def function_2(x):
        return x[0] ** 2 + x[1] ** 2

    X, Y = (a.flatten() for a in np.meshgrid(np.arange(-2, 2.5, 0.25), np.arange(-2, 2.5, 0.25)))
    points = np.array([X, Y]).T
    with pytest.raises(ValueError, match=r"must return a scalar.*Or, if each row of the 2-d `x` \(324, 2\) is a "
                       r"point .*pass per_row=True for one gradient per row"):
        numerical_gradient(function_2, points)
    field = numerical_gradient(function_2, points, per_row=True)
    np.testing.assert_allclose(field, 2 * points, atol=1e-6)
    with pytest.raises(ValueError, match=r"must return a scalar") as info:  # a 1-d x has no rows to speak of
        numerical_gradient(lambda v: v * 2, np.array([1.0, 2.0]))
    assert "per_row" not in str(info.value)
