"""gradient_check: the network's backpropagation against its numerical gradient, entry by entry;
a property test: gradient_check and directional_check pass on any good batch and step, and refuse
any bad one with a clear error."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _helpers import NETWORK_SETTINGS, batches, net_for_batches, outcome, valid_batch
from hypothesis import assume, given
from hypothesis import strategies as st

import xgrad
from xgrad import TwoLayerNet, directional_check, gradient_check


@pytest.fixture(scope="module")
def mnist3():
    (x, t), _ = xgrad.load_mnist()
    return x[:3].astype(np.float64), t[:3]


def test_book_gradient_check_has_no_floor(mnist3):
    """Book §5.7.3: ReLU net, three MNIST samples, mean |numerical - backprop|
    of 1e-13..1e-10 per parameter (the reference code's 1e-7 inside log gives
    a floor near 1e-7 instead)."""
    x, t = mnist3
    net = TwoLayerNet(784, 50, 10, activation="relu", seed=0)
    check = gradient_check(net, x, t, h=1e-4)  # the book's step
    assert check.passed
    for k, v in check.mean_abs_diff.items():
        assert v < 1e-9, (k, v)
    best = gradient_check(net, x, t)  # the dtype's step does better still
    assert max(best.mean_abs_diff.values()) < 1e-11
    assert "W1" in str(check) and "pass" in str(check)


def test_gradient_check_catches_a_wrong_gradient(mnist3, monkeypatch):
    x, t = mnist3
    net = TwoLayerNet(784, 50, 10, activation="relu", seed=0)
    right = net.gradient

    def wrong(x, t):
        g = right(x, t)
        return {**g, "b1": 1.01 * g["b1"]}

    monkeypatch.setattr(net, "gradient", wrong)
    check = gradient_check(net, x, t)
    assert not check.passed and not check.passed_by_param["b1"] and check.passed_by_param["W1"]
    assert "FAIL" in str(check)


def median_entry(g):
    """Index of a median-sized entry among the non-zero entries of `g`."""
    a = np.abs(np.asarray(g)).ravel()
    nonzero = np.flatnonzero(a)
    k = nonzero[np.argsort(a[nonzero], kind="stable")[nonzero.size // 2]]
    return np.unravel_index(int(k), np.shape(g))


def _with_error(net, name, change):
    right = net.gradient

    def wrong(x, t):
        g = right(x, t)
        bad = np.array(g[name], copy=True)
        idx = median_entry(bad)
        bad[idx] = change(bad[idx])
        return {**g, name: bad}

    return wrong


@pytest.fixture(scope="module")
def mnist5():
    (x, t), _ = xgrad.load_mnist()
    return x[10:15], t[10:15]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", ["W1", "b1", "W2", "b2"])
@pytest.mark.parametrize(("kind", "change"), [("1%", lambda v: 1.01 * v), ("sign", lambda v: -v),
                                              ("zero", lambda v: 0 * v)])
def test_one_wrong_median_entry_fails(mnist5, monkeypatch, dtype, name, kind, change):
    """One median-sized entry off by 1% (or of the wrong sign, or zeroed) in any
    parameter fails; the norm-wise criterion passed the 1% error in float32."""
    x, t = mnist5
    net = TwoLayerNet(784, 50, 10, dtype=dtype, seed=0)
    monkeypatch.setattr(net, "gradient", _with_error(net, name, change))
    check = gradient_check(net, x, t)
    assert not check.passed_by_param[name], (kind, str(check))
    assert all(ok for k, ok in check.passed_by_param.items() if k != name), str(check)
    assert f"{name}[" in str(check) and "FAIL" in str(check)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("activation", ["sigmoid", "relu"])
@pytest.mark.parametrize(("seed", "n"), [(0, 1), (1, 7), (2, 100)])
def test_correct_gradients_pass(dtype, activation, seed, n):
    (x, t), _ = xgrad.load_mnist()
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(x), n, replace=False)
    net = TwoLayerNet(784, 50, 10, activation=activation, dtype=dtype, seed=seed)
    for xs, ts, h in ((x[idx], t[idx], None), (rng.random((n, 784)), rng.integers(0, 10, n), 1e-4)):
        check = gradient_check(net, xs, ts, h=h)
        assert check.passed, str(check)


def test_calibration_script_finds_the_tolerances_between_right_and_wrong():
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "scripts" / "calibrate_gradient_check.py"
    done = subprocess.run([sys.executable, str(script), "--seeds", "1", "--batches", "3"], capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in done.stdout.splitlines() if line.startswith(("float32", "float64"))]
    assert len(rows) == 8, done.stdout
    assert all(r[-1] == "separates" for r in rows), done.stdout


# --- property tests: bad input gives the right answer or a clear error naming the argument --

@pytest.fixture(scope="module")
def net():
    return net_for_batches()


STEPS = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True), st.integers(-1, 1), st.text(max_size=2),
                  st.just(np.float32(1e-4)), st.just([1e-4]))


@NETWORK_SETTINGS
@given(batches(), STEPS)
def test_gradient_checks(net, batch, h):
    host_x, x, host_t, t = batch
    valid, _ = valid_batch(host_x, x, host_t, t)
    bad_h = h is not None and (isinstance(h, bool | str | list) or not math.isfinite(float(h)) or float(h) <= 0)
    if h is not None and not bad_h:
        assume(1e-7 < float(h) < 1e-3)  # larger steps are inexact, smaller ones the numerics refuse
    good_h = not bad_h
    check = outcome(lambda: gradient_check(net, x, t, h=h), "x", "t", "h")
    slope = outcome(lambda: directional_check(net, x, t, h=h), "x", "t", "h")
    if not valid or not good_h:
        assert check is None and slope is None
        return
    assert check.passed, str(check)
    assert slope.passed and slope["rel_error"] < slope.tolerance
