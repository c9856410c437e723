"""xgrad.hessian: known Hessians on every backend, the calls of `f` it
reports against the calls it made, its cost on Rosenbrock's function, entries
that are exactly 0, and its argument errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _helpers import assert_close

from xgrad import hessian
from xgrad._infra.host import to_numpy

X5 = np.array([0.3, 0.7, 1.2, 0.9, -0.4])


def _rosen(xp):
    def f(x):
        return xp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)
    return f


def _rosen_hessian(x):
    n = x.size
    h = np.zeros((n, n))
    for i in range(n - 1):
        h[i, i] += 1200 * x[i] ** 2 - 400 * x[i + 1] + 2
        h[i + 1, i + 1] += 200
        h[i, i + 1] = h[i + 1, i] = -400 * x[i]
    return h


def _counted(f):
    """`f`, counting its calls; it reads an element as a Python bool, so that a
    library with a compiler (JAX) cannot trace it and calls it once per point."""
    def g(x):
        bool(x[0] == x[0])
        g.calls += 1
        return f(x)
    g.calls = 0
    return g


def test_rosenbrock_in_five_variables_is_accurate_cheap_and_counted(backend):
    # it took 14,477 calls of f (scipy 7,425, numdifftools 751) and reported nfev 14 per entry
    f = _counted(_rosen(backend.xp))
    x = backend.asarray(X5, dtype=backend.xp.float64)
    res = hessian(f, x)
    exact = _rosen_hessian(X5)
    assert_close(res.df, exact, backend=backend, rtol=1e-11, atol=1e-9)
    assert bool(backend.xp.all(res.success))
    assert np.all(np.abs(to_numpy(res.df) - exact) <= to_numpy(res.error))
    nfev = to_numpy(res.nfev)
    assert int(np.triu(nfev).sum()) == f.calls
    assert f.calls <= 200
    assert np.array_equal(nfev, nfev.T)
    # an f that traces (on JAX: the points of a round in one compiled call) is evaluated at the same points
    batched = hessian(_rosen(backend.xp), x)
    # (a compiled f rounds otherwise: the same accuracy, each within its error estimate)
    np.testing.assert_array_equal(to_numpy(batched.nfev), nfev)
    assert_close(batched.df, exact, backend=backend, rtol=1e-11, atol=1e-9)
    assert np.all(np.abs(to_numpy(batched.df) - exact) <= to_numpy(batched.error))


def test_a_hessian_too_large_for_one_call_a_round_takes_the_same_steps(backend, monkeypatch):
    # on JAX a round is one compiled call while its points fit in BLOCK_ELEMENTS numbers;
    # beyond, the host's rounds evaluate f in chunks: the same entries, steps and evaluations
    from xgrad._numerics import hessian as module

    f, x = _rosen(backend.xp), backend.asarray(X5, dtype=backend.xp.float64)
    whole = hessian(f, x)
    monkeypatch.setattr(module, "BLOCK_ELEMENTS", 8)
    parts = hessian(f, x)
    np.testing.assert_array_equal(to_numpy(parts.nfev), to_numpy(whole.nfev))
    np.testing.assert_array_equal(to_numpy(parts.nit), to_numpy(whole.nit))
    assert_close(parts.df, _rosen_hessian(X5), backend=backend, rtol=1e-11, atol=1e-9)


def test_an_entry_that_is_exactly_zero_is_a_success():
    # H[1, 1] of x0**2 x1 is 0: it was reported as a failure
    res = hessian(lambda x: x[0] ** 2 * x[1], np.array([1.0, 2.0]))
    assert res.success.tolist() == [[True, True], [True, True]]
    assert np.allclose(res.df, [[4.0, 2.0], [2.0, 0.0]], rtol=1e-11, atol=1e-11)
    zero_diagonal = hessian(lambda x: x[0] * x[1], np.array([1.0, 2.0]))
    assert bool(zero_diagonal.success.all())
    assert np.allclose(zero_diagonal.df, [[0.0, 1.0], [1.0, 0.0]], atol=1e-11)


def test_a_non_polynomial_hessian_with_covering_errors():
    x = np.array([1.0, 2.0])
    res = hessian(lambda v: np.exp(v[0]) * np.sin(v[1]), x)
    e, s, c = math.e, math.sin(2.0), math.cos(2.0)
    exact = np.array([[e * s, e * c], [e * c, -e * s]])
    assert bool(res.success.all())
    assert np.all(np.abs(res.df - exact) <= res.error)
    assert np.all(np.abs(res.df - exact) <= 1e-9 * np.abs(exact))


def test_a_step_lost_in_rounding_is_a_reported_failure(backend):
    # x0 + 1e-3 == x0 at 1e20: the quotients divided by a step of 0 and raised ZeroDivisionError
    res = hessian(lambda v: v[0] * v[1] + v[1] ** 2, backend.asarray(np.array([1e20, 1.0])), initial_step=1e-3)
    status, df = to_numpy(res.status), to_numpy(res.df)
    assert not bool(backend.xp.any(res.success))
    assert (status[0, :] == -3).all() and (status[:, 0] == -3).all() and np.isnan(df[0, :]).all()
    assert status[1, 1] == -4  # the x1**2 term is lost beside 1e20: no relative accuracy, said so


def test_float32_and_a_shape_of_x():
    x = np.array([[0.3, 0.7], [1.2, 0.9]], dtype=np.float32)
    res = hessian(lambda v: np.sum(v**3), x)
    assert res.df.shape == (2, 2, 2, 2) and res.df.dtype == np.float32
    exact = np.diag(6 * x.ravel().astype(np.float64)).reshape(2, 2, 2, 2)
    assert np.allclose(res.df, exact, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"rtol": -1.0}, ValueError, "`rtol` must be >= 0"),
    ({"maxiter": 0}, ValueError, "`maxiter` must be >= 1"),
    ({"initial_step": 0.0}, ValueError, "`initial_step` must be > 0"),
    ({"step_factor": 1.0}, ValueError, "`step_factor` must be a finite number > 1"),
    ({"order": 0}, ValueError, "`order` must be >= 1"),
])
def test_argument_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        hessian(lambda v: np.sum(v**2), np.ones(2), **kwargs)


def test_f_must_return_a_scalar():
    with pytest.raises(ValueError, match="`f` must return a scalar"):
        hessian(lambda v: v**2, np.ones(2))


def test_the_documented_costs_are_the_costs():
    # the docstring said about 100 calls per entry where Rosenbrock in 5 variables took 580
    f = _counted(lambda v: np.exp(v[0]) * np.sin(v[1]))
    hessian(f, np.array([1.0, 2.0]))
    assert f.calls == 39
    g = _counted(_rosen(np))
    hessian(g, X5)
    assert g.calls == 109
    assert "109 calls" in (hessian.__doc__ or "") and "39" in (hessian.__doc__ or "")


def test_step_factor_and_order_reach_every_entry():
    x = np.array([1.0, 2.0])
    f = lambda v: np.exp(v[0]) * np.sin(v[1])  # noqa: E731
    exact = np.exp(1.0) * np.array([[np.sin(2.0), np.cos(2.0)], [np.cos(2.0), -np.sin(2.0)]])
    res = hessian(f, x, step_factor=2.0, order=6)
    assert bool(res.success.all()) and np.all(np.abs(res.df - exact) <= res.error)
    assert not np.array_equal(res.nfev, hessian(f, x).nfev)
