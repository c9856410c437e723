"""A sweep chooses on validation data, never on the test set."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

import xgrad
from xgrad._cli.main import main
from xgrad._sweep.grid import refine_lrs
from xgrad._train.record import History, TrainResult

LRS = [0.01, 0.1, 1.0]
# per learning rate: validation accuracy, test accuracy, last loss; each picks another best
SCORES = {0.01: (0.9, 0.5, 0.8), 0.1: (0.6, 0.95, 0.9), 1.0: (0.5, 0.6, 0.1)}


def _data(n=200, d=20, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    t = (x[:, :10] @ rng.normal(size=(10, 10))).argmax(axis=1)
    return (x[:150], t[:150]), (x[150:], t[150:])


@pytest.fixture
def scripted(monkeypatch):
    """Runs whose scores are SCORES (near learning rates get the nearest's), without training."""
    calls = []

    def fake_train(**settings):
        calls.append(settings)
        lr = min(SCORES, key=lambda k: abs(np.log(k) - np.log(settings["lr"])))
        val, test, loss = SCORES[lr]
        scored = settings.get("validation") is not None
        h = History([2.3, loss], [2], [0.7], [test], 1, "numpy", "cpu", "float32",
                    [val] if scored else [], [1.0] if scored else [])
        return TrainResult(net=None, history=h, timings={})  # type: ignore[arg-type]

    monkeypatch.setattr("xgrad._sweep.worker.train", fake_train)
    return calls


def test_the_best_run_is_chosen_on_validation_not_test(scripted):
    result = xgrad.sweep(lr=LRS, data=_data(), client="serial", progress=False)
    assert all(call["validation"] == 0.1 for call in scripted)  # held out by default
    assert [r.val_acc for r in result] == [0.9, 0.6, 0.5]
    assert result.best.settings["lr"] == 0.01 and result.ranked_by == "validation accuracy"
    assert max(result, key=lambda r: r.test_acc).settings["lr"] == 0.1  # the test set would pick another
    assert result.summary() == ("best: lr=0.01, validation accuracy 0.9000; its test accuracy 0.5000 "
                                "(the number to quote)")
    table = result.to_table().splitlines()
    assert "by validation accuracy" in table[0] and table[2].startswith("*  0.01")
    assert json.loads(result.to_json())["best"] == result.runs[0].key


def test_refinement_narrows_around_the_validation_pick(scripted):
    result = xgrad.sweep(lr=LRS, seeds=[0, 1], data=_data(), client="serial", refine=1, progress=False)
    second = sorted({r.settings["lr"] for r in result if r.refine_round == 1})
    assert second == refine_lrs(LRS, 0.01) and refine_lrs(LRS, 0.01) != refine_lrs(LRS, 0.1)


def test_without_validation_the_sweep_ranks_by_loss_and_says_so(scripted, caplog):
    with caplog.at_level(logging.WARNING, logger="xgrad"):
        result = xgrad.sweep(lr=LRS, data=_data(), client="serial", validation=None, progress=False)
    assert "ranked by their final training loss" in caplog.text
    assert all(call["validation"] is None for call in scripted) and all(r.val_acc is None for r in result)
    assert result.best.settings["lr"] == 1.0 and result.ranked_by == "final training loss"
    assert "by the final training loss: no validation data (validation=None)" in result.to_table().splitlines()[0]
    assert result.summary().startswith("best: lr=1, final training loss 1.2 (no validation data); its test accuracy")


def test_the_figure_shows_and_stars_validation_accuracy(scripted):
    pytest.importorskip("matplotlib")
    acc_ax = xgrad.sweep(lr=LRS, data=_data(), client="serial", progress=False).figure().axes[0]
    assert acc_ax.get_ylabel() == "final validation accuracy"
    star = next(line for line in acc_ax.get_lines() if line.get_label() == "best run")
    assert (list(star.get_xdata()), list(star.get_ydata())) == ([0.01], [0.9])


def test_the_command_prints_the_test_accuracy_apart_as_the_number_to_quote(scripted, capsys):
    assert main(["sweep", "--lr", "0.01", "0.1", "1", "--scheduler", "serial", "--no-progress",
                 "--backend", "numpy"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[-1] == "best: lr=0.01, validation accuracy 0.9000; its test accuracy 0.5000 (the number to quote)"
    assert main(["sweep", "--lr", "0.01", "1", "--validation", "none", "--scheduler", "serial", "--no-progress",
                 "--backend", "numpy"]) == 0
    assert scripted[-1]["validation"] is None and "final training loss" in capsys.readouterr().out


def test_a_real_sweep_records_each_runs_validation_scores():
    data = _data()
    result = xgrad.sweep(lr=[0.1, 1.0], data=data, client="serial", progress=False, iters=60, eval_every=30,
                         activation="relu")
    for run in result:
        expected = xgrad.train("numpy", **run.settings, data=data, progress=False)
        assert (run.val_acc, run.val_loss) == (expected.val_acc[-1], expected.val_loss[-1])
    assert result.best is max(result, key=lambda r: r.val_acc)


def test_sweeps_written_before_validation_still_read(scripted, tmp_path):
    result = xgrad.sweep(lr=LRS, data=_data(), client="serial", progress=False)
    old = result.to_dict()
    for run in old["runs"]:
        del run["val_acc"], run["val_loss"]
    back = xgrad.SweepResult.from_dict(old)
    assert all(r.val_acc is None for r in back) and back.ranked_by == "final training loss"
    assert back.best.settings["lr"] == 1.0  # by loss: nothing else chooses without validation scores


def test_a_sweep_refuses_validation_arrays():
    (x, t), _ = data = _data()
    with pytest.raises(TypeError, match="`validation` in a sweep must be a fraction"):
        xgrad.sweep(lr=0.1, data=data, client="serial", validation=(x[:10], t[:10]), progress=False)


def test_a_validation_fraction_the_data_cannot_take_is_refused_before_any_run(scripted):
    with pytest.raises(ValueError, match=r"`validation` \(0.001\) holds out no sample of the 150"):
        xgrad.sweep(lr=LRS, data=_data(), client="serial", validation=0.001, progress=False)
    with pytest.raises(ValueError, match=r"`validation` \(0.5\) leaves 75 of the 150 training samples, fewer than "
                                         r"`batch_size` \(100\)"):
        xgrad.sweep(lr=LRS, data=_data(), client="serial", validation=0.5, progress=False)
    assert scripted == []
