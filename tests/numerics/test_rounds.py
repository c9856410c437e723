"""The rounds of derivative's iteration as compiled programs (``_numerics/rounds.py``):
the state packed into three arrays and back exactly, and on JAX a round compiled
as one program after the values of `f` gives the same bits as the round taken
step by step (the quotient, then the rest of the round): `df`, `error`, `status`,
`nfev` and `nit`, on cases that stop for each reason and on each option that
shapes the rounds.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from xgrad import derivative
from xgrad._infra.host import to_numpy
from xgrad._numerics import rounds

FIELDS = ("df", "error", "success", "status", "nfev", "nit")


def _cases(backend):
    xp = backend.xp

    def a(values):
        return backend.asarray(np.asarray(values, dtype=np.float64))

    x = a(np.linspace(-2.0, 2.0, 16))

    def bump(v):
        return xp.exp(-v * v / 2) * xp.sin(3 * v)  # a product: fused with the difference after it, rounded once

    return {
        "converged": lambda: derivative(bump, x),
        "square": lambda: derivative(lambda v: v * v, a([1e-300, 1e-200, 1e-160, 1e-100, 1.0])),
        "one-sided": lambda: derivative(xp.log, a([1e-3, 1.0, 2.0]), step_direction=a([1.0, 0.0, -1.0])),
        "forward": lambda: derivative(bump, x, method="forward"),
        "order 4": lambda: derivative(bump, x, order=4),
        "order 2": lambda: derivative(bump, x, order=2),
        "step factor": lambda: derivative(bump, x, step_factor=2.0),
        "tolerances": lambda: derivative(bump, x, rtol=1e-6, atol=1e-9),
        "maxiter 1": lambda: derivative(bump, x, maxiter=1),
        "maxiter 3": lambda: derivative(bump, x, maxiter=3),
        "pole": lambda: derivative(lambda v: 1.0 / v, a([1e-3, 0.3, -2.0])),
        "non-finite": lambda: derivative(xp.exp, a([math.inf, -math.inf, math.nan, 1.0, 700.0])),
        "scale": lambda: derivative(lambda v: xp.sin(50 * v), a([0.1, -1930.17, 85.0]), scale=1e-2),
        "initial step": lambda: derivative(bump, a([0.1, 0.2, 0.3]), initial_step=a([0.1, -1.0, math.inf])),
        "float32": lambda: derivative(bump, backend.asarray(np.linspace(-2, 2, 16), dtype=xp.float32)),
        "args": lambda: derivative(lambda v, p: v**p, a(2.0), args=(a([2.0, 3.0]),)),
    }


def _result(res):
    return {name: to_numpy(getattr(res, name)) for name in FIELDS}


def test_compiled_rounds_give_the_bits_of_rounds_taken_step_by_step(backend, monkeypatch):
    cases = _cases(backend)
    compiled = {name: _result(run()) for name, run in cases.items()}
    monkeypatch.setattr(rounds, "split_round", lambda *args: None)  # the quotient, then the rest of the round
    for name, run in cases.items():
        stepwise = _result(run())
        for field in FIELDS:
            got, expected = compiled[name][field], stepwise[field]
            assert got.dtype == expected.dtype and got.shape == expected.shape, (name, field)
            assert got.tobytes() == expected.tobytes(), (name, field, got, expected)


def test_a_first_step_at_which_f_overflows_is_still_shrunk(backend):
    xp = backend.xp
    res = derivative(xp.exp, backend.asarray(np.array([700.0, 1.0])))
    assert to_numpy(res.status).tolist() == [0, 0]
    np.testing.assert_allclose(to_numpy(res.df), np.exp([700.0, 1.0]), rtol=1e-10)
    assert to_numpy(res.nfev)[0] > to_numpy(res.nfev)[1]  # the shrunk first steps cost evaluations


@pytest.mark.parametrize("rounds_done", [1, 2, 3, 6, 7, 9])
def test_the_packed_state_unpacks_exactly(backend, rounds_done):
    xp, depth = backend.xp, 6
    rng = np.random.default_rng(rounds_done)

    def floats():
        return backend.asarray(rng.normal(size=5))

    def ints():
        return backend.asarray(rng.integers(-5, 20, size=5).astype(np.int32))

    k, m = min(rounds_done - 1, depth) + 1, min(rounds_done, depth)  # after `rounds_done` rounds
    carry = ((floats(), floats(), ints(), ints(), ints()), backend.asarray(rng.random(5) < 0.5), ints(),
             ([floats() for _ in range(k)], [floats() for _ in range(k)]), [floats() for _ in range(m)])
    back = rounds.unpack(rounds.pack(carry, xp), depth, xp)
    flat = [*carry[0], carry[1], carry[2], *carry[3][0], *carry[3][1], *carry[4]]
    again = [*back[0], back[1], back[2], *back[3][0], *back[3][1], *back[4]]
    assert len(flat) == len(again)
    for before, after in zip(flat, again, strict=True):
        assert before.dtype == after.dtype
        assert to_numpy(before).tobytes() == to_numpy(after).tobytes()


def test_a_state_of_mixed_dtypes_is_not_packed(backend):
    xp = backend.xp
    f64, f32 = backend.asarray(np.zeros(3)), backend.asarray(np.zeros(3), dtype=xp.float32)
    i32 = backend.asarray(np.zeros(3, dtype=np.int32))
    carry = ((f64, f32, i32, i32, i32), f64 > 0, i32, ([f64], [f64]), [f64])
    with pytest.raises(TypeError, match="mixes dtypes"):
        rounds.pack(carry, xp)
