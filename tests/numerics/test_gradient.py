"""numerical_gradient(f, x, vectorized=True): `f` must give one value per point of the stack."""

from __future__ import annotations

import concurrent.futures

import numpy as np
import pytest
from _helpers import assert_close

from xgrad import numerical_gradient

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
