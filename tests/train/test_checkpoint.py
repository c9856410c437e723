"""Files that xgrad 0.1.0 wrote still load, and a run resumed from its checkpoint
gives the same numbers, bit for bit.

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

import xgrad

DATA = Path(__file__).parent / "data"
CHECKPOINT = DATA / "checkpoint-0.1.0.npz"
HISTORY = DATA / "history-0.1.0.json"
SETTINGS = {"iters": 200, "hidden_size": 10, "eval_every": 50, "seed": 3, "progress": False}


@pytest.fixture
def stored() -> dict:
    return json.loads(HISTORY.read_text())


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
    np.testing.assert_array_equal(resumed.loss, np.asarray(stored["loss"]))
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
    np.testing.assert_array_equal(fresh.loss, np.asarray(stored["loss"]))
