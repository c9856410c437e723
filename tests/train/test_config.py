"""TrainConfig: the record's recorded settings of a run, each checked once, and the
data it is given (NumPy's masked arrays refused)."""

from __future__ import annotations

import collections
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

import xgrad
from xgrad._train.config import TrainConfig, check_settings
from xgrad._train.settings import record

STORED = Path(__file__).parent / "data" / "history-0.1.0.json"


def test_the_config_holds_the_recorded_settings_and_the_output_size():
    cfg = TrainConfig.build({"iters": 3, "lr": 1})
    stored = json.loads(STORED.read_text())["config"]
    assert list(cfg.as_dict()) == [s.name for s in record() if s.recorded] + ["output_size"]
    # history.json and checkpoints keep their keys, and gain those recorded since (read as their default)
    assert set(cfg.as_dict()) == set(stored) | {"validation"}
    assert (cfg.iters, cfg.lr, cfg.activation, cfg.hidden_size, cfg.output_size) == (3, 1.0, "sigmoid", 50, 10)
    assert isinstance(cfg.lr, float)  # normalised by its check
    with pytest.raises(AttributeError, match="no attribute 'threads'"):
        _ = cfg.threads  # a setting that is not recorded


def test_the_config_is_read_only_and_compares_by_value():
    cfg = TrainConfig.build({"iters": 3})
    with pytest.raises(AttributeError, match="read-only"):
        cfg.iters = 4
    assert cfg == TrainConfig.build({"iters": 3}) and cfg != TrainConfig.build({"iters": 4})
    assert hash(cfg) == hash(TrainConfig.build({"iters": 3}))
    assert "iters=3" in repr(cfg)


def test_with_a_net_the_config_holds_the_nets_own_settings():
    net = xgrad.TwoLayerNet(4, 7, 3, activation="relu", dtype="float64", seed=0)
    cfg = TrainConfig.build({}, net)
    assert (cfg.activation, cfg.hidden_size, cfg.dtype, cfg.weight_init_std, cfg.output_size) == (
        "relu", 7, "float64", None, 3)
    assert TrainConfig.build({"hidden_size": 7, "activation": "relu"}, net) == cfg  # agreeing: fine
    with pytest.raises(ValueError, match=r"`hidden_size` is 8 but the `net` given has hidden_size 7; leave"):
        TrainConfig.build({"hidden_size": 8}, net)
    with pytest.raises(ValueError, match="`weight_init_std` only sets up a new network"):
        TrainConfig.build({"weight_init_std": 0.1}, net)
    with pytest.raises(TypeError, match="`net` must be a TwoLayerNet; got str"):
        TrainConfig.build({}, "net.npz")


def test_every_setting_is_checked_once_in_the_records_order():
    checked = check_settings({"dataset": "fashion_mnist", "batch_size": 10})
    assert list(checked) == ["net"] + [s.name for s in record() if s.name != "net"]
    assert checked["dataset"] == "fashion-mnist" and checked["checkpoint_every"] == 100
    with pytest.raises(ValueError, match=r"`h` \(0.001\) is the step of the numerical gradient"):
        check_settings({"h": 1e-3})  # the check of `h` reads `gradient`
    assert check_settings({"h": 1e-3, "gradient": "numerical"})["h"] == 1e-3


def test_train_checks_each_setting_once(monkeypatch):
    from xgrad._train import settings

    calls: collections.Counter = collections.Counter()

    def counted(s):
        def check(name, value, given):
            calls[name] += 1
            return s.check(name, value, given)

        return dataclasses.replace(s, check=check) if s.check is not None else s

    monkeypatch.setattr(settings, "TRAIN_SETTINGS", tuple(counted(s) for s in settings.TRAIN_SETTINGS))
    x = np.random.default_rng(0).random((40, 4))
    t = np.arange(40) % 3
    xgrad.train("numpy", data=((x, t), (x, t)), iters=3, batch_size=5, hidden_size=3, progress=False)
    assert calls == {s.name: 1 for s in settings.TRAIN_SETTINGS if s.check is not None}


def test_train_refuses_masked_data():
    rng = np.random.default_rng(0)
    x = np.ma.array(rng.random((20, 4)), mask=np.zeros((20, 4), dtype=bool))
    x.mask[:, 0] = True
    t = np.arange(20) % 3
    with pytest.raises(TypeError, match="`x_train` is a NumPy masked array"):
        xgrad.train("numpy", data=((x, t), (x.filled(0.0), t)), iters=1, batch_size=5, hidden_size=3,
                    progress=False)
