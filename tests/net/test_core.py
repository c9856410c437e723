"""Faster forms of the training step's maths give the very same numbers."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

import xgrad
from xgrad import sigmoid, to_numpy, train
from xgrad._net.core import ACTIVATIONS, activation_named, loss_and_gradient, sgd_step, sgd_stepper, sgd_update
from xgrad._train.plan import MINIBATCH_STREAM, PLAN_BLOCK


def _sigmoid_as_written(x, xp):
    """The sigmoid the network trains with, as the book writes it."""
    return 1 / (1 + xp.exp(-x))


def _sigmoid_two_exponentials(x, xp):
    """The form the network trained with before: two exponentials, no overflow."""
    e = xp.exp(-xp.abs(x))
    return xp.exp(xp.minimum(x, 0.0)) / (1 + e)


def _edges_and_randoms(dtype):
    tiny = np.finfo(dtype).tiny
    edges = [0.0, -0.0, np.inf, -np.inf, tiny, -tiny, tiny / 4, -tiny / 4, 1e-30, -1e-30, 88.0, -88.0,
             104.0, -104.0, 710.0, -710.0, 3e38, -3e38]
    rng = np.random.default_rng(7)
    return np.concatenate([np.array(edges), rng.standard_normal(40_000) * 20, rng.standard_normal(982)])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sigmoid_is_the_formula_as_written_without_a_warning(backend, dtype):
    x = backend.asarray(_edges_and_randoms(dtype).astype(dtype).reshape(1000, 41))
    got = to_numpy(sigmoid(x))  # the public call: no overflow warning (pytest turns warnings into errors)
    with np.errstate(over="ignore"):  # the hot path leaves NumPy's warning to its callers
        expected, hot = to_numpy(_sigmoid_as_written(x, backend.xp)), to_numpy(sigmoid(x, xp=backend.xp))
    assert got.dtype == expected.dtype == hot.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(hot, expected)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sigmoid_is_within_a_few_units_in_the_last_place(dtype):
    # against 50-digit values: the one-exponential form loses only the
    # subnormal tail, where exp(-x) overflows and the result is 0
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 50
    host = _edges_and_randoms(dtype).astype(dtype)
    host = host[np.isfinite(host)][::7]
    got = sigmoid(host)
    exact = np.array([float(1 / (1 + mpmath.exp(-mpmath.mpf(float(v))))) for v in host])
    normal = exact >= np.finfo(dtype).tiny
    ulps = np.abs(got[normal] - exact[normal]) / np.spacing(exact[normal].astype(dtype)).astype(np.float64)
    assert ulps.max() <= 3, f"{ulps.max()} units in the last place"
    assert np.all(got[~normal] <= np.finfo(dtype).tiny)
    # the two-exponential form it replaced agrees to the same few units
    old = _sigmoid_two_exponentials(host, np)
    assert np.max(np.abs(old[normal] - got[normal]) / np.spacing(got[normal])) <= 4


def test_sigmoid_keeps_nan(backend):
    x = backend.asarray(np.array([np.nan, 1.0, -np.nan]))
    assert np.isnan(to_numpy(sigmoid(x, xp=backend.xp))[[0, 2]]).all()


def _hand_loop(x, t, *, iters, dtype, seed=0, lr=0.1, batch_size=100):
    """The training loop as it was written: over the normalised numbers, a
    one-hot table and the sigmoid as the book writes it."""
    x = x.astype(dtype)
    targets = np.eye(10, dtype=dtype)[t]
    params = dict(xgrad.TwoLayerNet(784, 50, 10, dtype=dtype, seed=seed).params)
    act, losses = replace(activation_named("sigmoid"), apply=_sigmoid_as_written), []
    idx = np.random.default_rng([seed, MINIBATCH_STREAM, 0]).integers(0, len(x), size=(PLAN_BLOCK, batch_size))
    with xgrad.thread_limits(1):  # as train's threads="auto" for this network: the same BLAS sums
        for i in range(iters):
            loss, steps = loss_and_gradient(params, x[idx[i]], targets[idx[i]], activation=act, xp=np, scale=lr,
                                            rows_sum_to_one=True)
            losses.append(float(loss))
            params = {k: params[k] - steps[k] for k in params}
    return losses, params


@pytest.mark.parametrize("given", [False, True], ids=["loaded", "given"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_training_gives_the_numbers_it_gave_before(dtype, given):
    # loaded: 8-bit levels normalised per minibatch; given: the numbers as passed
    data = xgrad.load_mnist()
    losses, params = _hand_loop(*data[0], iters=40, dtype=dtype)
    run = train("numpy", data=data if given else None, iters=40, eval_every=0, dtype=dtype, progress=False)
    np.testing.assert_array_equal(run.loss, losses)
    for k, v in params.items():
        np.testing.assert_array_equal(run.net.params[k], v)


# -- the SGD update, written once in the core -------------------------------------
def _step_inputs(backend, dtype):
    rng = np.random.default_rng(11)
    net = xgrad.TwoLayerNet(12, 5, 3, dtype=dtype, seed=2, xp=backend.xp, device=backend.device)
    x = backend.asarray(rng.standard_normal((7, 12)).astype(dtype))
    target = backend.asarray(np.eye(3, dtype=dtype)[rng.integers(0, 3, 7)])
    return net.params, x, target


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("activation", ["sigmoid", "relu"])
def test_sgd_step_is_the_backward_pass_scaled_by_lr_then_the_subtraction(backend, dtype, activation):
    params, x, target = _step_inputs(backend, dtype)
    act, xp = ACTIVATIONS[activation], backend.xp
    loss, new = sgd_step(params, x, target, lr=0.3, activation=act, xp=xp, rows_sum_to_one=True)
    want_loss, steps = loss_and_gradient(params, x, target, activation=act, xp=xp, scale=0.3,
                                         rows_sum_to_one=True)
    np.testing.assert_array_equal(to_numpy(loss), to_numpy(want_loss))
    assert sorted(new) == sorted(params)
    for k in params:
        np.testing.assert_array_equal(to_numpy(new[k]), to_numpy(params[k] - steps[k]))
        assert new[k].dtype == params[k].dtype
    moved = [not np.array_equal(to_numpy(new[k]), to_numpy(params[k])) for k in params]
    assert all(moved), "every parameter takes a step"


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_learning_rate_on_the_update_is_the_book_update_and_the_same_step_to_rounding(backend, dtype):
    # lr_on_update (what a compiled step uses): gradients, then W - lr * g, bit for bit;
    # against the learning rate in the output error, the same numbers to rounding
    params, x, target = _step_inputs(backend, dtype)
    act, xp = ACTIVATIONS["sigmoid"], backend.xp
    loss, new = sgd_step(params, x, target, lr=0.3, activation=act, xp=xp, rows_sum_to_one=True, lr_on_update=True)
    want_loss, grads = loss_and_gradient(params, x, target, activation=act, xp=xp, rows_sum_to_one=True)
    want = sgd_update(params, grads, lr=0.3)
    np.testing.assert_array_equal(to_numpy(loss), to_numpy(want_loss))
    early_loss, early = sgd_step(params, x, target, lr=0.3, activation=act, xp=xp, rows_sum_to_one=True)
    np.testing.assert_array_equal(to_numpy(loss), to_numpy(early_loss))  # the loss does not involve lr
    eps = np.finfo(dtype).eps
    for k in want:
        np.testing.assert_array_equal(to_numpy(new[k]), to_numpy(want[k]))
        size = float(np.max(np.abs(to_numpy(params[k])))) + float(np.max(np.abs(to_numpy(early[k]))))
        np.testing.assert_allclose(to_numpy(new[k]), to_numpy(early[k]), rtol=0, atol=8 * eps * size)
    assert any(not np.array_equal(to_numpy(new[k]), to_numpy(early[k])) for k in want)  # two forms, two roundings


@pytest.mark.parametrize("keep_ones", [False, True])
def test_a_bound_step_is_sgd_step_whatever_batches_come(backend, keep_ones):
    # a step bound once for a run gives sgd_step's bits, also when the batch
    # size or the dtype changes between calls (a kept row of ones is made again)
    act, xp = ACTIVATIONS["sigmoid"], backend.xp
    step = sgd_stepper(lr=0.3, activation=act, xp=xp, rows_sum_to_one=True, keep_ones=keep_ones)
    for dtype, rows in [("float64", 7), ("float64", 7), ("float64", 5), ("float32", 5), ("float64", 7)]:
        params, x, target = _step_inputs(backend, dtype)
        x, target = x[:rows, ...], target[:rows, ...]
        loss, new = step(params, x, target)
        want_loss, want = sgd_step(params, x, target, lr=0.3, activation=act, xp=xp, rows_sum_to_one=True)
        np.testing.assert_array_equal(to_numpy(loss), to_numpy(want_loss))
        for k in want:
            np.testing.assert_array_equal(to_numpy(new[k]), to_numpy(want[k]))
            assert new[k].dtype == want[k].dtype


def test_sgd_update_scales_unscaled_gradients_by_lr(backend):
    params, x, target = _step_inputs(backend, "float64")
    _, grads = loss_and_gradient(params, x, target, activation=ACTIVATIONS["sigmoid"], xp=backend.xp)
    before = {k: to_numpy(v).copy() for k, v in params.items()}
    new = sgd_update(params, grads, lr=0.7)
    for k in params:
        np.testing.assert_array_equal(to_numpy(new[k]), to_numpy(params[k] - 0.7 * grads[k]))
        np.testing.assert_array_equal(to_numpy(params[k]), before[k])  # the arrays given are left alone
    assert not np.array_equal(to_numpy(new["W1"]), before["W1"])
