"""The grid of a sweep, made from the settings record, in this process (no Dask);
a sweep of no iterations refused before any run."""

from __future__ import annotations

import inspect
import re

import numpy as np
import pytest
from _helpers import add_setting, made_up_setting, tiny_data

import xgrad
from xgrad._sweep.grid import grid_axes
from xgrad._sweep.sweep import SWEEP_OPTIONS, named_axes
from xgrad._train.settings import DEFAULT_LRS, REFUSED, SINGLE, record


def _data(n=60, d=6, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    t = (x[:, :3] @ rng.normal(size=(3, 3))).argmax(axis=1)
    return (x[:40], t[:40]), (x[40:], t[40:])


FAST = {"iters": 4, "eval_every": 0, "batch_size": 5, "hidden_size": 3, "client": "serial", "progress": False}


def test_the_signature_of_sweep_is_the_named_axes_and_its_own_arguments():
    params = inspect.signature(xgrad.sweep).parameters
    assert list(params) == [s.name for s in named_axes()] + [o.name for o in SWEEP_OPTIONS] + ["train_settings"]
    assert params["lr"].default == DEFAULT_LRS and params["hidden_size"].default == 50
    assert params["seeds"].default == (0,) and params["retries"].default == 2
    assert params["train_settings"].kind is inspect.Parameter.VAR_KEYWORD
    assert "activation, hidden_size, batch_size, lr : value or list" in xgrad.sweep.__doc__


@pytest.mark.parametrize("s", [s for s in record() if s.sweep == REFUSED and s.name not in
                               {o.name for o in SWEEP_OPTIONS}], ids=lambda s: s.name)
def test_a_refused_setting_says_why(s):
    with pytest.raises(TypeError, match=f"`{s.name}` is not a setting of a sweep: " + re.escape(s.refused)):
        xgrad.sweep(data=_data(), **{s.name: s.default}, **FAST)


def test_a_list_is_an_axis_but_for_settings_of_one_value():
    assert [s.name for s in record() if s.sweep == SINGLE] == ["validation", "data_dir", "device"]
    axes = grid_axes({"lr": 0.1, "seed": (0, 1)}, {"iters": [5, 10], "data_dir": ("a", "b"), "dtype": "float64"})
    assert axes == {"iters": [5, 10], "data_dir": [("a", "b")], "dtype": ["float64"], "lr": [0.1], "seed": [0, 1]}


def test_the_workers_get_the_settings_as_they_are(monkeypatch):
    calls = []

    def fake_train(**kwargs):
        calls.append(kwargs)
        return xgrad.train(**kwargs)

    monkeypatch.setattr("xgrad._sweep.worker.train", fake_train)
    monkeypatch.setattr("xgrad._sweep.worker.visible_gpus", lambda: 0)
    data = _data()
    result = xgrad.sweep(lr=[0.1, 1], seeds=[0, 1], data=data, **FAST)
    assert len(result) == len(calls) == 4
    for run, kwargs in zip(result, calls, strict=True):
        assert kwargs == {**run.settings, "backend": "numpy", "data": data, "progress": False}
    assert result.runs[2].settings == {"iters": 4, "eval_every": 0, "batch_size": 5, "hidden_size": 3,
                                       "activation": "sigmoid", "validation": 0.1, "lr": 1, "seed": 0}  # lr=1 stays 1


def test_an_added_setting_is_a_grid_axis(monkeypatch):
    from xgrad._sweep import worker

    add_setting(monkeypatch, made_up_setting())
    configs = []
    real = worker.train
    monkeypatch.setattr(worker, "train", lambda *a, **k: configs.append((r := real(*a, **k)).config) or r)
    result = xgrad.sweep(lr=0.1, momentum=[0.0, 0.5], data=_data(), **FAST)
    assert [r.settings["momentum"] for r in result] == [0.0, 0.5]
    assert [c["momentum"] for c in configs] == [0.0, 0.5]  # each run's train recorded it
    assert result.varied == ["lr", "seed", "momentum"]
    with pytest.raises(TypeError, match="`momentum` must be a real number; got str"):
        xgrad.sweep(lr=0.1, momentum=["fast"], data=_data(), **FAST)


# --- a sweep of no iterations --------------------------------------------------------------

@pytest.fixture
def tiny():
    return tiny_data()


@pytest.mark.parametrize("iters", [0, [0, 5]])
def test_a_sweep_of_no_iterations_is_refused_not_reported_as_diverged(tiny, iters):
    # every run of 0 iterations had a NaN loss and no accuracy, so the sweep had
    # no best run and `xgrad sweep` printed "every run diverged"
    with pytest.raises(ValueError, match=r"`iters` must be at least 1 in a sweep; got 0"):
        xgrad.sweep(lr=[0.1], iters=iters, batch_size=5, hidden_size=3, data=tiny, client="serial", progress=False)


@pytest.mark.parametrize("library", ["torch", "jax.numpy", "array_api_strict"])
def test_scalars_and_1d_arrays_of_any_array_library_are_plain_numbers(library):
    xp = pytest.importorskip(library)
    axes = grid_axes({"lr": xp.asarray([0.5, 1.0]), "seed": [xp.asarray(2)]}, {"hidden_size": xp.asarray(8)})
    assert axes["lr"] == [0.5, 1.0] and axes["seed"] == [2] and axes["hidden_size"] == [8]
    assert [type(v) for v in (*axes["lr"], *axes["seed"], *axes["hidden_size"])] == [float, float, int, int]
