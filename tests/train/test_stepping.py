"""Stepping a run: blocks of steps, the losses looked at later, the replay to the last finite loss."""

from __future__ import annotations

import math

import numpy as np
import pytest

import xgrad
from xgrad import resolve_backend, to_numpy
from xgrad._infra.signals import StopRequest
from xgrad._train.config import TrainConfig
from xgrad._train.plan import MinibatchPlan
from xgrad._train.run import device_data
from xgrad._train.stepping import CHECK_EVERY, Stepping


@pytest.fixture(scope="module")
def small():
    (x, t), (xt, tt) = xgrad.load_mnist()
    return (x[:500], t[:500]), (xt[:100], tt[:100])


def _stepping(small, gradient="backprop"):
    b = resolve_backend("numpy")
    cfg = TrainConfig.build({"dataset": "mnist", "activation": "sigmoid", "hidden_size": 8, "iters": 30,
                             "batch_size": 10, "lr": 0.5, "gradient": gradient, "h": None, "eval_every": 0,
                             "seed": 2, "dtype": "float64", "weight_init_std": 0.01, "progress": False,
                             "threads": None})
    net = xgrad.TwoLayerNet(784, 8, 10, dtype="float64", seed=2)
    (x, t), (xt, tt) = small
    data = device_data(cfg, b, net, x, t, xt, tt)
    plan = MinibatchPlan(seed=2, n_train=data.n_train, batch_size=10, backend=b).block(0)
    return Stepping(cfg, b, net, data.train), net.params, plan


def _by_hand(stepping, params, plan, n):
    """The parameters each of the first `n` steps ran on, and their losses."""
    ran_on, losses = [], []
    for r in range(n):
        ran_on.append(params)
        loss, params = stepping.step(params, plan[r, ...])
        losses.append(float(loss))
    return ran_on, losses, params


@pytest.mark.parametrize("gradient", ["backprop", "numerical"])
def test_blocks_step_as_the_step_does_and_are_looked_at_later(small, gradient):
    stepping, params, plan = _stepping(small, gradient)
    stepping.start(params, plan, StopRequest())
    assert not stepping.compiled and stepping.check_every == CHECK_EVERY
    ran_on, losses, last = _by_hand(stepping, params, plan, 12)
    p, done = stepping.advance(params, plan, 0, 0, 7)
    p, more = stepping.advance(p, plan, 7, 7, 12)
    assert (done, more, stepping.pending()) == (7, 5, 12)
    assert stepping.look(keep=1) == (losses[:7], None)  # the last block waits
    assert stepping.pending() == 5
    assert stepping.look() == (losses[7:], None)
    assert stepping.look() == ([], None) and stepping.pending() == 0
    for k in last:
        np.testing.assert_array_equal(p[k], last[k])
    for it in (0, 3, 6, 7, 11):  # the parameters each iteration ran on, stepped again from its block's start
        replayed = stepping.replay(it)
        for k in params:
            np.testing.assert_array_equal(replayed[k], ran_on[it][k])


def test_a_non_finite_loss_ends_what_is_looked_at(small, monkeypatch):
    stepping, params, plan = _stepping(small)
    real, calls = Stepping.step, []

    def step(self, params, idx):
        loss, new = real(self, params, idx)
        calls.append(1)
        return (np.float64(math.inf) if len(calls) == 9 else loss), new

    monkeypatch.setattr(Stepping, "step", step)
    stepping.start(params, plan, StopRequest())  # the stepper steps with the step as it is now
    p, _ = stepping.advance(params, plan, 0, 0, 5)
    stepping.advance(p, plan, 5, 5, 10)
    values, bad = stepping.look()
    assert len(values) == 8 and all(math.isfinite(v) for v in values)
    assert bad == (8, math.inf)  # iteration 8 (0-based), the ninth step
    assert stepping.pending() == 0


def test_the_step_ends_in_the_cores_update(small, monkeypatch):
    """The step writes no arithmetic of its own: the parameters come out of the
    core's SGD step, its settings bound once for the run."""
    import xgrad._train.stepping as module

    seen = []
    real = module.sgd_stepper

    def stepper(**settings):
        step = real(**settings)
        return lambda *a: seen.append(settings["lr"]) or step(*a)

    monkeypatch.setattr(module, "sgd_stepper", stepper)
    stepping, params, plan = _stepping(small)
    loss, new = stepping.step(params, plan[0, ...])
    assert seen == [0.5]
    assert to_numpy(loss).shape == () and all(not np.array_equal(new[k], params[k]) for k in params)
