"""Training with validation data: rows held out with the seed, or arrays given, scored at each evaluation."""

from __future__ import annotations

import json

import numpy as np
import pytest

import xgrad
from xgrad._cli.main import _parser
from xgrad._cli.options import given, train_settings
from xgrad._train.config import TrainConfig, hold_out, prepare_data, validation_rows
from xgrad._train.plan import PLAN_BLOCK
from xgrad._train.run import Run

QUICK = dict(iters=40, eval_every=10, batch_size=10, hidden_size=8, progress=False)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(120, 12)).astype(np.float32)
    x[:, 0] = np.arange(120)  # each row says which it is
    t = (x[:, 1:11] @ rng.normal(size=(10, 10))).argmax(axis=1)
    return (x, t), (x[:40], t[:40])


def test_the_plan_never_draws_a_held_out_row(data):
    cfg = TrainConfig.build({**QUICK, "validation": 0.25, "seed": 4})
    train_set, (xt, tt) = prepare_data(cfg, data, None)
    (x, t), (x_val, t_val) = hold_out(cfg, 0.25, train_set)
    kept, held = validation_rows(4, 120, 0.25)
    assert len(held) == 30 and len(kept) == 90 and not set(kept) & set(held)
    np.testing.assert_array_equal(x_val[:, 0], held)
    np.testing.assert_array_equal(t_val, data[0][1][held])
    net = xgrad.TwoLayerNet(12, 8, 10)
    run = Run(cfg, xgrad.resolve_backend("numpy"), net, x, t, xt, tt, validation=(x_val, t_val))
    assert run.data.n_train == 90 and run.history.iters_per_epoch == 9
    for b in range(3):
        rows = xgrad.to_numpy(run.data.x_train)[xgrad.to_numpy(run.plan.block(b)), 0]  # the original rows drawn
        assert rows.shape == (PLAN_BLOCK, 10) and not set(rows.ravel().astype(int)) & set(held)
    assert set(xgrad.to_numpy(run.data.x_train)[:, 0].astype(int)) == set(kept)


def test_the_same_seed_holds_out_the_same_rows_apart_from_the_weights_and_the_plan():
    _, held = validation_rows(0, 1000, 0.1)
    assert np.array_equal(held, validation_rows(0, 1000, 0.1)[1])
    assert not np.array_equal(held, validation_rows(1, 1000, 0.1)[1])
    # its own stream: not the first rows the weights' or the plan's generator would give
    assert not np.array_equal(held, np.sort(np.random.default_rng(0).permutation(1000)[:100]))
    assert not np.array_equal(held, np.sort(np.random.default_rng([0, 1]).permutation(1000)[:100]))


def test_validation_accuracy_and_loss_are_the_networks_on_the_held_out_rows(data):
    result = xgrad.train("numpy", data=data, validation=0.25, seed=2, **QUICK)
    _, held = validation_rows(2, 120, 0.25)
    x, t = data[0][0][held], data[0][1][held]
    assert result.eval_iters == [1, 11, 21, 31, 40] and len(result.val_acc) == len(result.val_loss) == 5
    assert result.val_acc[-1] == result.net.accuracy(x, t)
    assert result.val_loss[-1] == pytest.approx(float(result.net.loss(x, t)), rel=1e-6)
    assert result.history.iters_per_epoch == 9  # epochs of the 90 rows trained on
    assert result.config["validation"] == 0.25
    assert f"validation accuracy {result.val_acc[-1]:.4f}" in result.summary()
    again = xgrad.train("numpy", data=data, validation=0.25, seed=2, **QUICK)
    assert again.history == result.history  # the same seed, the same rows


def test_explicit_validation_arrays(data):
    (x, t), _ = data
    result = xgrad.train("numpy", data=data, validation=(x[:25], t[:25]), **QUICK)
    assert result.val_acc[-1] == result.net.accuracy(x[:25], t[:25])
    assert result.history.iters_per_epoch == 12  # every training row is trained on
    assert result.config["validation"] == "arrays" and json.dumps(result.to_dict())


def test_without_validation_nothing_is_recorded(data):
    result = xgrad.train("numpy", data=data, **QUICK)
    assert result.val_acc == [] and result.val_loss == [] and "val_acc" not in result.to_dict()
    assert "validation" not in result.summary() and result.config["validation"] is None


def test_a_resumed_run_with_validation_is_the_uninterrupted_run(data, tmp_path):
    whole = xgrad.train("numpy", data=data, validation=0.2, **QUICK)
    ckpt = tmp_path / "run.npz"
    first = xgrad.train("numpy", data=data, validation=0.2, checkpoint=ckpt, **{**QUICK, "iters": 31})
    assert first.val_acc == whole.val_acc[:4] and first.val_loss == whole.val_loss[:4]
    resumed = xgrad.train("numpy", data=data, validation=0.2, checkpoint=ckpt, resume=True, **QUICK)
    assert resumed.history == whole.history
    np.testing.assert_array_equal(resumed.loss, whole.loss)
    with pytest.raises(ValueError, match=r"settings differ \(validation: 0.2 there, 0.3 now\)"):
        xgrad.train("numpy", data=data, validation=0.3, checkpoint=ckpt, resume=True, **QUICK)
    with pytest.raises(ValueError, match=r"settings differ \(validation: 0.2 there, None now\)"):
        xgrad.train("numpy", data=data, checkpoint=ckpt, resume=True, **QUICK)


def test_a_resumed_run_with_other_validation_arrays_is_refused(data, tmp_path):
    (x, t), _ = data
    ckpt = tmp_path / "run.npz"
    xgrad.train("numpy", data=data, validation=(x[:20], t[:20]), checkpoint=ckpt, **{**QUICK, "iters": 20})
    with pytest.raises(ValueError, match="trained on other data"):
        xgrad.train("numpy", data=data, validation=(x[20:40], t[20:40]), checkpoint=ckpt, resume=True, **QUICK)


def _bad(data):
    (x, t), _ = data
    return [
        (0, ValueError, "strictly between 0 and 1"),
        (1.0, ValueError, "strictly between 0 and 1"),
        (-0.1, ValueError, "strictly between 0 and 1"),
        (float("nan"), ValueError, "strictly between 0 and 1"),
        (0.001, ValueError, "holds out no sample of the 120 training samples"),
        (0.95, ValueError, r"leaves 6 of the 120 training samples, fewer than `batch_size` \(10\)"),
        ("0.1", TypeError, "must be a fraction of the training set"),
        (True, TypeError, "must be a fraction of the training set"),
        ((x,), TypeError, "must be a fraction of the training set"),
        ((x[:5, :4], t[:5]), ValueError, "x_val has 4 features, the training data 12"),
        ((x[:5, 0], t[:5]), ValueError, "x_val must be 2-d"),
        ((x[:5], t[:4]), ValueError, r"t_val must hold one integer class label per sample, shape \(5,\)"),
        ((x[:5], t[:5].astype(float)), ValueError, "t_val must hold one integer class label"),
        ((x[:5].astype(complex), t[:5]), TypeError, "x_val must hold real numbers"),
        ((np.where(np.arange(5)[:, None] == 3, np.nan, x[:5]), t[:5]), ValueError,
         "x_val has NaN or infinite values, first in sample 3"),
        ((x[:5], np.array([0, 1, 2, 10, 1])), ValueError, "t_val has a label out of range 0..9: 10 at sample 3"),
        ((x[:5].astype(np.float64) * 1e300, t[:5]), ValueError, "beyond the range of float32"),
    ]


def test_bad_validation_is_refused_before_any_run_naming_it(data, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("a run started")

    monkeypatch.setattr(Run, "loop", never)
    for value, error, message in _bad(data):
        with pytest.raises(error, match="`validation`") as info:
            xgrad.train("numpy", data=data, validation=value, **QUICK)
        assert info.match(message), (value, str(info.value))


def test_history_reads_and_writes_the_validation_lists():
    h = xgrad.History([2.3, 1.9], [2], [0.5], [0.4], 2).with_evaluation(2, 0.5, 0.4, 0.45, 1.2)
    assert h.val_acc == [0.45] and h.val_loss == [1.2]
    h = xgrad.History([2.3, 1.9], [2], [0.5], [0.4], 2, val_acc=[0.45], val_loss=[1.2])
    d = json.loads(json.dumps(h.to_dict()))
    assert d["val_acc"] == [0.45] and xgrad.History.from_dict(d) == h
    old = {k: v for k, v in d.items() if not k.startswith("val_")}  # a file written before validation
    assert xgrad.History.from_dict(old).val_acc == []
    with pytest.raises(ValueError, match="'val_acc' has 2 values but 'eval_iters' has 1"):
        xgrad.History.from_dict({**d, "val_acc": [0.1, 0.2]})
    with pytest.raises(ValueError, match="'val_acc' must hold accuracies between 0 and 1"):
        xgrad.History.from_dict({**d, "val_acc": [1.5]})
    with pytest.raises(ValueError, match="'val_acc' and 'val_loss' must both be there"):
        xgrad.History.from_dict({**d, "val_loss": []})


def test_the_training_figure_draws_the_validation_curve():
    pytest.importorskip("matplotlib")
    from xgrad.plot import training_curves

    h = {"loss": [2.3, 1.1, 0.6, 0.4], "eval_iters": [2, 4], "train_acc": [0.8, 0.9], "test_acc": [0.78, 0.88],
         "iters_per_epoch": 2}
    labels = [line.get_label() for line in training_curves(h).axes[1].get_lines()]
    assert labels == ["train", "test"]
    with_val = training_curves({**h, "val_acc": [0.7, 0.85], "val_loss": [1.0, 0.5]}).axes[1].get_lines()
    assert [line.get_label() for line in with_val] == ["train", "validation", "test"]
    assert list(with_val[1].get_ydata()) == [0.7, 0.85]


def test_the_command_takes_validation_from_the_record():
    args = _parser().parse_args(["train", "--validation", "0.1"])
    assert given(args, train_settings()) == {"validation": 0.1}
    args = _parser().parse_args(["train", "--validation", "none"])
    assert given(args, train_settings()) == {"validation": None}
    with pytest.raises(SystemExit):
        _parser().parse_args(["train", "--validation", "some"])


def test_validation_scores_on_every_backend(backend, data):
    result = xgrad.train(backend, data=data, validation=0.25, seed=2, dtype="float64", **QUICK)
    _, held = validation_rows(2, 120, 0.25)
    x, t = data[0][0][held], data[0][1][held]
    assert result.val_acc[-1] == result.net.accuracy(backend.asarray(x, dtype=result.net.dtype), backend.asarray(t))
    loss = float(result.net.loss(backend.asarray(x, dtype=result.net.dtype), backend.asarray(t)))
    assert result.val_loss[-1] == pytest.approx(loss, rel=1e-12)
    numpy = xgrad.train("numpy", data=data, validation=0.25, seed=2, dtype="float64", **QUICK)
    assert result.history.iters_per_epoch == numpy.history.iters_per_epoch == 9
