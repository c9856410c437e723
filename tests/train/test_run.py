"""The pieces a run's loop composes: its timer and its data on the device; a run
resumed on another backend says so."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from _helpers import short_run, tiny_data

import xgrad
from xgrad._train import run as run_module
from xgrad._train.run import Timer


def test_the_timer_counts_an_evaluation_only_when_it_ends(monkeypatch):
    clock = iter([0.0, 1.0, 3.0, 4.0, 10.0, 12.0])
    monkeypatch.setattr(run_module, "time", SimpleNamespace(perf_counter=lambda: next(clock)))
    timer = Timer()  # 0
    timer.restart()  # 1: the loop starts
    with timer.evaluating():  # 3 to 4
        pass
    with pytest.raises(KeyboardInterrupt), timer.evaluating():  # from 10, never ended
        raise KeyboardInterrupt
    timer.finish()  # 12
    assert timer.timings(20) == {"train_s": 10.0, "eval_s": 1.0, "total_s": 11.0, "iters_per_s": 2.0,
                                 "compile_s": 0.0}
    assert timer.timings(20, 0.5)["compile_s"] == 0.5
    monkeypatch.undo()
    assert Timer().timings(5)["iters_per_s"] == 0.0  # nothing timed yet: no rate


def test_the_data_go_to_the_device_once_as_the_steps_and_evaluations_read_them(backend):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(30, 6)).astype(np.float32) / 255
    t, xt, tt = rng.integers(0, 3, 30), x[:12], rng.integers(0, 3, 12)
    cfg = SimpleNamespace(output_size=3)
    net = xgrad.TwoLayerNet(6, 4, 3, dtype="float64", xp=backend.xp, device=backend.device)
    data = run_module.device_data(cfg, backend, net, x, t, xt, tt)
    assert data.n_train == 30 and tuple(data.x_test.shape) == (12, 6)
    assert data.x_train.dtype == data.train.dtype == net.dtype
    np.testing.assert_array_equal(xgrad.to_numpy(data.t_test), tt)
    assert data.fingerprint == run_module.data_id(x, t, xt, tt)
    train_acc, test_acc = run_module.evaluate(net, data)
    assert 0 <= train_acc <= 1 and 0 <= test_acc <= 1
    assert test_acc * 12 == round(test_acc * 12)


# --- resuming elsewhere ------------------------------------------------------------------

@pytest.fixture
def tiny():
    return tiny_data()


def test_resuming_on_another_backend_says_so(tiny, tmp_path, caplog):
    # a run checkpointed on NumPy continued on PyTorch without a word, and its
    # result named PyTorch alone
    import logging

    pytest.importorskip("torch")
    ck = tmp_path / "c.npz"
    short_run(tiny, checkpoint=ck)
    caplog.set_level(logging.INFO, logger="xgrad")
    xgrad.train("torch", data=tiny, iters=6, batch_size=5, hidden_size=3, progress=False, checkpoint=ck,
                resume=True)
    said = [r.getMessage() for r in caplog.records if r.name == "xgrad" and r.levelno >= logging.WARNING]
    assert any("its first 4 iterations ran on numpy (cpu), the rest on torch (cpu)" in m for m in said), said
    caplog.clear()
    xgrad.train("torch", data=tiny, iters=8, batch_size=5, hidden_size=3, progress=False, checkpoint=ck,
                resume=True)  # made on torch now: nothing to say
    assert not [r for r in caplog.records if r.name == "xgrad" and r.levelno >= logging.WARNING]
