"""derivative's options from scipy.differentiate: args and kwargs broadcast
with x, order, initial_step, step_factor, a callback that can stop the
iteration, method, preserve_shape; each refused with a clear message when out
of range."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _helpers import assert_close

from xgrad import derivative
from xgrad._infra.host import to_numpy


def test_args_broadcast_with_x_and_step_direction(backend):
    xp = backend.xp
    x = xp.reshape(backend.asarray(np.array([1.0, 2.0, 3.0, 4.0])), (-1, 1, 1))
    direction = xp.reshape(backend.asarray(np.array([-1.0, 0.0, 1.0])), (1, -1, 1))
    p = xp.reshape(backend.asarray(np.array([2.0, 3.0])), (1, 1, -1))
    res = derivative(lambda t, q: t**q, x, step_direction=direction, args=(p,))
    xs, ps = np.array([1.0, 2.0, 3.0, 4.0]).reshape(-1, 1, 1), np.array([2.0, 3.0]).reshape(1, 1, -1)
    exact = np.broadcast_to(ps * xs ** (ps - 1), (4, 3, 2))
    assert_close(res.df, exact, backend=backend, rtol=1e-9)


def test_kwargs_and_a_lone_array_as_args():
    res = derivative(lambda t, c, *, k: k * c * t, np.array([1.0, 2.0]), args=np.array(3.0), kwargs={"k": 2.0})
    assert np.allclose(res.df, 6.0, rtol=1e-14)


def test_order_bounds_the_extrapolation():
    # order 2: the plain quotient, which for exp never meets rtol=1e-14; a line converges at once
    res = derivative(lambda t, j: np.where(j == 0, t - 2.5, np.exp(t)), np.ones(2), args=(np.arange(2),),
                     order=2, rtol=1e-14)
    assert res.status.tolist()[0] == 0 and res.status.tolist()[1] != 0
    high = derivative(np.exp, 1.0, order=4)
    assert abs(float(high.df) - math.e) < 1e-10


def test_initial_step_is_absolute_and_broadcasts():
    h0 = np.logspace(-3, 0, 5).reshape(-1, 1)
    res = derivative(np.exp, 0.0, initial_step=h0, order=2, maxiter=1, step_direction=np.array([-1.0, 0.0, 1.0]))
    err = np.abs(res.df - 1.0)
    assert res.df.shape == (5, 3) and np.all(err[:-1] < err[1:])
    # a step that is not positive is no step: status -3, as in scipy
    bad = derivative(np.exp, np.array([1.0, 1.0]), initial_step=np.array([0.0, 0.5]))
    assert bad.status.tolist()[0] == -3 and math.isnan(float(bad.df[0])) and bool(bad.success[1])


def test_step_factor_fixes_the_ratio():
    seen = []

    def f(x):
        seen.append(float(x[0] - 1.0))
        return np.exp(x)

    derivative(f, 1.0, initial_step=0.5, step_factor=4.0, maxiter=3)
    assert seen == pytest.approx([0.5, 0.125, 0.03125])


def test_a_callback_sees_every_round_and_can_stop():
    snapshots = []

    def callback(res):
        snapshots.append((res.status.tolist(), float(res.df)))
        if len(snapshots) == 3:
            raise StopIteration

    res = derivative(np.exp, 1.0, rtol=1e-15, callback=callback)
    assert [s[0] for s in snapshots] == [2, 2, 2]  # 2: still iterating
    assert int(res.status) == -5 and not bool(res.success) and int(res.nit) == 3
    ref = derivative(np.exp, 1.0, rtol=1e-15, maxiter=3)
    assert float(res.df) == float(ref.df) == snapshots[-1][1] and int(ref.status) == -2


@pytest.mark.parametrize(("method", "sign"), [("forward", 1.0), ("backward", -1.0)])
def test_one_sided_methods(method, sign):
    points = []

    def f(x):
        points.append(x)
        return np.log(sign * x)  # defined on one side of 0 only

    res = derivative(f, sign * 1e-3, method=method)
    assert abs(float(res.df) - 1 / (sign * 1e-3)) < 1e-6 and bool(res.success)
    assert all(np.all(sign * (p - sign * 1e-3) >= 0) for p in points)


def test_preserve_shape_for_a_stack_of_functions():
    def f(x):
        return np.stack([x, np.sin(3 * x), x + np.sin(10 * x), np.sin(20 * x) * (x - 1) ** 2])

    calls = []

    def counted(x):
        calls.append(x.shape[-1])
        return f(x)

    res = derivative(counted, 0.0, preserve_shape=True)
    assert int(np.max(res.nfev)) == sum(calls)  # the first call, at x alone, counts too
    assert res.df.shape == (4,)
    assert np.allclose(res.df, [1.0, 3.0, 11.0, 20.0], rtol=1e-10)
    assert bool(res.success.all())


def test_preserve_shape_refuses_a_wrong_shape():
    with pytest.raises(ValueError, match="preserve_shape=True"):
        derivative(lambda x: np.sum(x), np.array([1.0, 2.0]), preserve_shape=True)


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"method": "sideways"}, ValueError, "`method` must be one of"),
    ({"method": "forward", "step_direction": -1}, ValueError, "`step_direction` applies to method='central'"),
    ({"order": 0}, ValueError, "`order` must be >= 1"),
    ({"order": 1.5}, TypeError, "`order` must be an integer"),
    ({"order": 16}, ValueError, "`order` must be at most 14"),
    ({"step_factor": 0.5}, ValueError, "`step_factor` must be a finite number > 1"),
    ({"step_factor": "big"}, TypeError, "`step_factor` must be a real number"),
    ({"callback": "shrubbery"}, TypeError, "`callback` must be callable"),
    ({"preserve_shape": "herring"}, TypeError, "`preserve_shape` must be True or False"),
    ({"kwargs": [1]}, TypeError, "`kwargs` must be a dict"),
    ({"args": (np.ones(3),)}, ValueError, r"`args\[0\]` of shape \(3,\) does not broadcast"),
    ({"initial_step": np.ones(3)}, ValueError, "`initial_step` of shape"),
])
def test_argument_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        derivative(lambda x, *a: np.exp(x), np.array([1.0, 2.0]), **kwargs)


def test_status_codes_and_their_scipy_counterparts_are_documented():
    from xgrad import DerivativeResult
    from xgrad._numerics.derivative import STATUS

    assert set(STATUS) == {0, 1, -2, -3, -4, -5}
    assert "in progress" in (DerivativeResult.__doc__ or "")
    assert to_numpy(derivative(np.exp, 1.0).status).dtype == np.int32


def test_the_options_on_every_backend(backend):
    xp = backend.xp
    x = backend.asarray(np.array([0.5, 1.0]))
    seen = []
    res = derivative(lambda t, p, *, k: k * xp.exp(p * t), x, args=(backend.asarray(np.array([1.0, 2.0])),),
                     kwargs={"k": 3.0}, callback=lambda r: seen.append(r), method="forward", initial_step=0.1,
                     step_factor=3.0, order=8)
    assert_close(res.df, 3 * np.array([1.0, 2.0]) * np.exp([0.5, 2.0]), backend=backend, rtol=1e-8)
    assert len(seen) == int(xp.max(res.nit)) and seen[0].status.dtype == res.status.dtype
    stacked = derivative(lambda t: xp.stack([t, xp.sin(3 * t)]), x, preserve_shape=True)
    assert_close(stacked.df, np.stack([np.ones(2), 3 * np.cos(3 * np.array([0.5, 1.0]))]), backend=backend,
                 rtol=1e-10)


def test_an_order_equal_to_the_degree_converges_on_a_polynomial():
    # with the extrapolation capped, the top entry had nothing of higher order to be compared with:
    # 2 x**3 with order=3 ran to the noise floor, 4e-13 off
    res = derivative(lambda t: 2 * t**3, 1.5, order=3)
    assert int(res.status) == 0 and int(res.nit) <= 3
    assert abs(float(res.df) / 13.5 - 1) < 1e-15
