"""An outside tester's attacks on the network, training, sweeps, files and CLI.

Each test here failed on the code before its fix: a wrong answer without an
error, a misleading message, or a setting that was silently misread.
"""

from __future__ import annotations

import numpy as np
import pytest

import xgrad
from xgrad import TwoLayerNet


# -- inputs beyond the network's dtype ------------------------------------------
def _float32_net(backend):
    return TwoLayerNet(4, 3, 2, seed=0, weight_init_std=1.0, dtype="float32", xp=backend.xp, device=backend.device)


@pytest.mark.parametrize("method", ["accuracy", "loss", "predict", "scores"])
def test_float64_inputs_beyond_float32_are_refused_by_a_float32_net(backend, method):
    # 1e300 is a finite float64 but infinite in float32: the network used to
    # cast it silently (an accuracy of 0.5 from NaN scores), or blame NaN in `x`
    net = _float32_net(backend)
    if not hasattr(backend.xp, "float64") or backend.name == "jax" and not _jax_x64():
        pytest.skip("no float64 here")
    x = backend.asarray([[1e300, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]], dtype=backend.xp.float64)
    t = backend.asarray([0, 1])
    args = (x, t) if method in ("accuracy", "loss") else (x,)
    with pytest.raises(ValueError, match=r"`x` has values up to 1e\+300, beyond the range of float32"):
        getattr(net, method)(*args)
    # just below float32's largest value is still taken, and an empty batch has no largest value
    fits = backend.asarray([[3e38, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]], dtype=backend.xp.float64)
    getattr(net, method)(*((fits, t) if method in ("accuracy", "loss") else (fits,)))
    assert net.predict(backend.asarray(np.zeros((0, 4)), dtype=backend.xp.float64)).shape == (0, 2)


def _jax_x64():
    import jax

    return bool(jax.config.jax_enable_x64)


# -- sweeps -----------------------------------------------------------------------
@pytest.fixture
def tiny():
    rng = np.random.default_rng(0)
    x = rng.random((40, 4))
    t = np.arange(40) % 3
    return (x, t), (x[:10], t[:10])


@pytest.mark.parametrize("iters", [0, [0, 5]])
def test_a_sweep_of_no_iterations_is_refused_not_reported_as_diverged(tiny, iters):
    # every run of 0 iterations had a NaN loss and no accuracy, so the sweep had
    # no best run and `xgrad sweep` printed "every run diverged"
    with pytest.raises(ValueError, match=r"`iters` must be at least 1 in a sweep; got 0"):
        xgrad.sweep(lr=[0.1], iters=iters, batch_size=5, hidden_size=3, data=tiny, client="serial", progress=False)


def test_the_sweep_command_refuses_no_iterations(capsys):
    from xgrad._cli import main

    assert main(["sweep", "--iters", "0", "--lr", "0.1", "--scheduler", "serial", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "`--iters` must be at least 1 in a sweep; got 0" in err and "diverged" not in err


# -- switches of train() ----------------------------------------------------------
def _train(data, **kwargs):
    return xgrad.train("numpy", data=data, iters=4, batch_size=5, hidden_size=3, progress=False, **kwargs)


@pytest.mark.parametrize("value", ["no", "False", 0.0, None])
def test_resume_must_be_a_bool_not_a_truthy_string(tiny, tmp_path, value):
    # resume="no" was truthy: it continued the checkpoint it was meant not to
    ck = tmp_path / "c.npz"
    _train(tiny, checkpoint=ck)
    with pytest.raises(TypeError, match=r"`resume` must be True or False; got"):
        _train(tiny, checkpoint=ck, resume=value)


@pytest.mark.parametrize("value", ["no", "False", 1, None])
def test_progress_must_be_a_bool(tiny, value):
    with pytest.raises(TypeError, match=r"`progress` must be True or False; got"):
        xgrad.train("numpy", data=tiny, iters=2, batch_size=5, hidden_size=3, progress=value)
    with pytest.raises(TypeError, match=r"`progress` must be True or False; got"):
        xgrad.sweep(lr=[0.1], data=tiny, iters=2, batch_size=5, hidden_size=3, client="serial", progress=value)
