"""Files that xgrad 0.1.0 wrote still load, and a run resumed from its checkpoint
gives the same numbers, bit for bit. A full disk while a checkpoint is written
stops the run with its partial result and keeps the previous checkpoint; a
damaged or edited checkpoint is one clear error that names the file; one that
recorded the data set as 'fashion_mnist' resumes as 'fashion-mnist'.

``tests/data`` holds a checkpoint and a ``history.json`` written before the
package was reorganised, by::

    xgrad train --backend numpy --iters 100 --hidden-size 10 --eval-every 50 --seed 3 \\
        --checkpoint checkpoint-0.1.0.npz --checkpoint-every 50 --no-progress
    xgrad train --backend numpy --iters 200 --hidden-size 10 --eval-every 50 --seed 3 --out OUT --no-progress

so the history is the run that the checkpoint stopped halfway through.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from _helpers import (
    assert_only,
    edit_meta,
    edit_npz,
    fill_the_disk,
    good_checkpoint_of,
    short_run,
    small_mnist,
    tiny_data,
    truncate,
)

import xgrad
from xgrad import CheckpointError, FileFormatError, train

DATA = Path(__file__).parent / "data"
CHECKPOINT = DATA / "checkpoint-0.1.0.npz"
HISTORY = DATA / "history-0.1.0.json"
SETTINGS = {"iters": 200, "hidden_size": 10, "eval_every": 50, "seed": 3, "progress": False}


@pytest.fixture
def stored() -> dict:
    return json.loads(HISTORY.read_text())


def _assert_the_stored_losses(got, stored, *, kept):
    """The first `kept` losses (read from the checkpoint) as stored, bit for bit;
    the rest those of the stored run to float32 rounding: since 0.1.0 the
    sigmoid is computed with one exponential, which moves a few of the 200
    losses by one unit in the last place, never more."""
    got, stored = np.asarray(got), np.asarray(stored)
    np.testing.assert_array_equal(got[:kept], stored[:kept])
    ulp = np.spacing(stored.astype(np.float32)).astype(np.float64)
    assert np.all(np.abs(got - stored) <= ulp), np.max(np.abs(got - stored) / ulp)


def test_the_stored_history_is_read_as_it_was_written(stored):
    from xgrad._train.record import read_history

    back = read_history(HISTORY)
    assert isinstance(back, xgrad.History)
    np.testing.assert_array_equal(back.loss, stored["loss"])
    assert back.eval_iters == [1, 51, 101, 151, 200]
    assert (back.train_acc, back.test_acc) == (stored["train_acc"], stored["test_acc"])
    assert (back.iters_per_epoch, back.backend, back.device, back.dtype) == (600, "numpy", "cpu", "float32")
    assert back.to_dict() == {k: stored[k] for k in back.to_dict()}


def test_the_stored_history_draws_its_figure():
    pytest.importorskip("matplotlib")
    import xgrad.plot

    fig = xgrad.plot.figure("training", history=HISTORY)
    assert len(fig.axes[0].lines[0].get_ydata()) > 0


def test_a_run_resumed_from_the_stored_checkpoint_repeats_the_stored_run(stored, tmp_path):
    checkpoint = tmp_path / "run.npz"
    shutil.copy(CHECKPOINT, checkpoint)
    resumed = xgrad.train("numpy", checkpoint=checkpoint, resume=True, **SETTINGS)
    assert len(resumed.loss) == 200
    _assert_the_stored_losses(resumed.loss, stored["loss"], kept=100)
    # the stored checkpoint ended its 100-iteration run with an evaluation, kept on resuming
    assert resumed.eval_iters == [1, 51, 100, 101, 151, 200]
    at = {i: (a, b) for i, a, b in zip(resumed.eval_iters, resumed.train_acc, resumed.test_acc, strict=True)}
    assert [at[i] for i in stored["eval_iters"]] == list(zip(stored["train_acc"], stored["test_acc"], strict=True))
    # the file holds the run's losses and evaluations; the rest of the record is the resuming run's
    h = resumed.history
    assert (h.iters_per_epoch, h.backend, h.device, h.dtype) == (600, "numpy", "cpu", "float32")


def test_a_new_checkpoint_keeps_the_layout_of_the_stored_one(tmp_path):
    path = tmp_path / "run.npz"
    xgrad.train("numpy", checkpoint=path, **{**SETTINGS, "iters": 60})
    with np.load(CHECKPOINT) as old, np.load(path) as new:
        assert new.files == old.files
        assert list(json.loads(str(new["meta"]))) == list(json.loads(str(old["meta"])))
        assert new["loss"].dtype == old["loss"].dtype == np.float64 and new["loss"].shape == (60,)


def test_a_fresh_run_repeats_the_stored_run(stored):
    fresh = xgrad.train("numpy", **SETTINGS)
    _assert_the_stored_losses(fresh.loss, stored["loss"], kept=0)


# --- a full disk, damaged and edited checkpoints ------------------------------------------

@pytest.fixture(scope="module")
def small():
    """600 training and 200 test digits of the real MNIST."""
    return small_mnist()


@pytest.fixture
def full_disk(monkeypatch):
    """Called, it makes every atomic write from then on fail with ENOSPC after 100 bytes."""
    return lambda: fill_the_disk(monkeypatch)


def test_full_disk_during_a_checkpoint_stops_with_the_partial_run(small, tmp_path, full_disk):
    ckpt = tmp_path / "run.npz"
    kw = {"data": small, "eval_every": 0, "progress": False, "checkpoint": ckpt, "checkpoint_every": 5}
    train("numpy", iters=10, **kw)
    full_disk()
    with pytest.raises(CheckpointError, match=f"cannot write checkpoint {ckpt}: No space left") as info:
        train("numpy", iters=30, resume=True, **kw)
    partial = info.value.result
    assert len(partial.loss) == 15 and partial.interrupted
    assert_only(tmp_path, {"run.npz"})
    with np.load(ckpt) as saved:
        assert json.loads(str(saved["meta"]))["iteration"] == 10
    resumed = train("numpy", iters=10, resume=True, **{**kw, "checkpoint": ckpt})
    assert len(resumed.loss) == 10


CKPT_DAMAGE = {
    "truncated": (lambda p: truncate(p), "not a readable xgrad checkpoint"),
    "empty": (lambda p: truncate(p, 0), r"empty \(0 bytes\)"),
    "meta not JSON": (lambda p: edit_npz(p, meta=np.array("{iteration")), "metadata is not JSON"),
    "meta a list": (lambda p: edit_npz(p, meta=np.array("[1, 2]")), "not a JSON object"),
    "meta missing key": (lambda p: edit_npz(p, meta=np.array('{"iteration": 10}')), "metadata lacks config"),
    "iteration a string": (lambda p: edit_meta(p, iteration="10"), "'iteration' must be a count"),
    "iteration negative": (lambda p: edit_meta(p, iteration=-1), "'iteration' must be a count"),
    "fewer losses": (lambda p: edit_meta(p, iteration=10), "holds 30 losses for iteration 10"),
    "config a list": (lambda p: edit_meta(p, config=[]), "'config' must be a JSON object"),
    "eval lists differ": (lambda p: edit_meta(p, train_acc=[0.5]), "lists of equal length"),
    "eval_iters a dict": (lambda p: edit_meta(p, eval_iters={}), "'eval_iters' must be a list of numbers; got dict"),
    "eval_iters decrease": (lambda p: edit_meta(p, eval_iters=[20, 10], train_acc=[.1, .2], test_acc=[.1, .2]),
                            "'eval_iters' must increase"),
    "eval beyond iteration": (lambda p: edit_meta(p, eval_iters=[31], train_acc=[.1], test_acc=[.1]),
                              r"'eval_iters' must be iterations in 1\.\.30"),
    "accuracy above 1": (lambda p: edit_meta(p, eval_iters=[5], train_acc=[1.5], test_acc=[.1]),
                         "'train_acc' must hold accuracies"),
    "NaN accuracy": (lambda p: edit_meta(p, eval_iters=[5], train_acc=[.1], test_acc=[float("nan")]),
                     "'test_acc' holds NaN or infinite values"),
    "eval at a fraction": (lambda p: edit_meta(p, eval_iters=[5.5], train_acc=[.1], test_acc=[.1]),
                           r"'eval_iters' must be iterations in 1\.\.30"),
    "infinite loss": (lambda p: edit_npz(p, loss=np.r_[np.ones(29), np.inf]), "'loss' holds NaN or infinite"),
    "loss 2-d": (lambda p: edit_npz(p, loss=np.zeros((30, 1))), "'loss' must be a 1-d float array"),
    "NaN loss": (lambda p: edit_npz(p, loss=np.full(30, np.nan)), "'loss' holds NaN"),
    "NaN weights": (lambda p: edit_npz(p, param_W1=np.full((784, 50), np.nan, dtype=np.float32)),
                    "W1 holds 39200 NaN"),
    "b1 wrong length": (lambda p: edit_npz(p, param_b1=np.zeros(49, dtype=np.float32)), "b1 has 49 entries"),
    "missing W2": (lambda p: edit_npz(p, param_W2=None), "missing W2"),
    "pickled meta": (lambda p: edit_npz(p, meta=np.array([{"a": 1}], dtype=object)), "not a readable"),
}


@pytest.fixture(scope="module")
def good_checkpoint(small, tmp_path_factory):
    return good_checkpoint_of(small, tmp_path_factory.mktemp("ckpt"))


@pytest.mark.parametrize("damage", list(CKPT_DAMAGE))
def test_damaged_checkpoint_gives_one_clear_error(small, tmp_path, good_checkpoint, damage):
    path = tmp_path / "run.npz"
    path.write_bytes(good_checkpoint)
    edit, match = CKPT_DAMAGE[damage]
    edit(path)
    with pytest.raises(FileFormatError, match=match) as info:
        train("numpy", data=small, iters=40, eval_every=0, progress=False, checkpoint=path, resume=True)
    assert str(path) in str(info.value)


# --- the data set's name as earlier versions recorded it ----------------------------------

@pytest.fixture
def tiny():
    return tiny_data()


def test_a_checkpoint_that_recorded_fashion_mnist_with_an_underscore_resumes(tiny, tmp_path):
    import json

    ck = tmp_path / "c.npz"
    short_run(tiny, dataset="fashion-mnist", checkpoint=ck)
    with np.load(ck) as f:
        saved = {k: f[k] for k in f}
    meta = json.loads(str(saved["meta"]))
    meta["config"]["dataset"] = "fashion_mnist"  # as the code before this fix wrote it
    np.savez(ck, **{**saved, "meta": np.array(json.dumps(meta))})
    again = xgrad.train("numpy", data=tiny, iters=6, batch_size=5, hidden_size=3, progress=False,
                        dataset="fashion-mnist", checkpoint=ck, resume=True)
    assert again.loss.shape == (6,)
