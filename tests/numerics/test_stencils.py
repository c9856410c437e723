"""derivative(n=2..4): higher derivatives on every backend, central and
one-sided, with error estimates that cover the true error; an `n` beyond what
the dtype can deliver is refused."""

from __future__ import annotations

import numpy as np
import pytest
from _helpers import assert_close

from xgrad import derivative
from xgrad._infra.host import to_numpy

# (name, f on a namespace, [f'', f''', f''''] on the host, points)
CASES = [
    ("exp", lambda xp: xp.exp, [np.exp] * 3, [-1.0, 0.65, 0.7, 2.0]),
    ("sin", lambda xp: xp.sin, [lambda x: -np.sin(x), lambda x: -np.cos(x), np.sin], [0.5, 1.0, 2.5]),
    ("log", lambda xp: xp.log, [lambda x: -1 / x**2, lambda x: 2 / x**3, lambda x: -6 / x**4], [0.5, 2.0]),
    ("x**5", lambda xp: lambda x: 2 * x**5, [lambda x: 40 * x**3, lambda x: 120 * x**2, lambda x: 240 * x], [1.5]),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize(("n", "rtol"), [(2, 1e-9), (3, 1e-7), (4, 1e-5)])
def test_central_higher_derivatives_with_covering_errors(backend, case, n, rtol):
    _, f, refs, points = case
    x = backend.asarray(np.array(points))
    res = derivative(f(backend.xp), x, n=n)
    exact = refs[n - 2](np.array(points))
    assert_close(res.df, exact, backend=backend, rtol=rtol, atol=rtol)
    status = to_numpy(res.status)
    if n < 4:
        assert np.all(status >= 0)
    else:  # a fourth difference can sink into rounding before it settles: then status -4 says so
        assert np.all((status >= 0) | (status == -4))
    assert np.all(np.abs(to_numpy(res.df) - exact) <= to_numpy(res.error))


@pytest.mark.parametrize("direction", [1, -1])
def test_one_sided_second_derivatives(backend, direction):
    x = backend.asarray(np.array([-1.0, 0.65, 2.0]))
    res = derivative(backend.xp.exp, x, n=2, step_direction=direction)
    exact = np.exp([-1.0, 0.65, 2.0])
    assert_close(res.df, exact, backend=backend, rtol=1e-7)
    assert np.all(np.abs(to_numpy(res.df) - exact) <= to_numpy(res.error))


def test_mixed_directions_in_one_call():
    x = np.array([0.5, 0.5, 0.5])
    res = derivative(np.exp, x, n=2, step_direction=np.array([-1.0, 0.0, 1.0]))
    assert np.all(np.abs(res.df - np.exp(0.5)) <= res.error)
    assert np.all(np.abs(res.df / np.exp(0.5) - 1) < 1e-7)


def test_the_value_at_x_is_evaluated_once():
    calls = []

    def f(x):
        calls.append(x.shape[0])
        return np.exp(x)

    res = derivative(f, 1.0, n=2)
    # three points at the first step (x - h, x, x + h), two at every later one
    assert calls[0] == 3 and set(calls[1:]) == {2}
    assert int(res.nfev) == sum(calls)


def test_float32_second_derivative(backend):
    x = backend.asarray(np.array([0.5, 2.0]), dtype=backend.xp.float32)
    res = derivative(backend.xp.exp, x, n=2)
    assert_close(res.df, np.exp([0.5, 2.0]), backend=backend, rtol=1e-3, dtype=backend.xp.float32)
    assert np.all(np.abs(to_numpy(res.df).astype(np.float64) - np.exp([0.5, 2.0])) <= to_numpy(res.error))


@pytest.mark.parametrize(("n", "dtype", "match"), [
    (5, np.float64, "n <= 4"), (3, np.float32, "n <= 2"), (0, np.float64, "`n` must be >= 1"),
])
def test_an_order_the_dtype_cannot_deliver_is_refused(n, dtype, match):
    with pytest.raises(ValueError, match=match):
        derivative(np.exp, np.ones(2, dtype=dtype), n=n)
