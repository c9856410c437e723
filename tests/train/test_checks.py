"""The one check of each setting of a run (xgrad._train.checks), in train and
sweep: a switch is True or False (a truthy "no" is not True), and a setting that
would have no effect is refused (`checkpoint_every` without `checkpoint`,
`data_dir` beside `data`) rather than ignored without a word; `checkpoint_every`
is 100 where a checkpoint is given."""

from __future__ import annotations

import pytest
from _helpers import short_run, tiny_data

import xgrad


@pytest.fixture
def tiny():
    return tiny_data()


@pytest.mark.parametrize("value", ["no", "False", 0.0, None])
def test_resume_must_be_a_bool_not_a_truthy_string(tiny, tmp_path, value):
    # resume="no" was truthy: it continued the checkpoint it was meant not to
    ck = tmp_path / "c.npz"
    short_run(tiny, checkpoint=ck)
    with pytest.raises(TypeError, match=r"`resume` must be True or False; got"):
        short_run(tiny, checkpoint=ck, resume=value)


@pytest.mark.parametrize("value", ["no", "False", 1, None])
def test_progress_must_be_a_bool(tiny, value):
    with pytest.raises(TypeError, match=r"`progress` must be True or False; got"):
        xgrad.train("numpy", data=tiny, iters=2, batch_size=5, hidden_size=3, progress=value)
    with pytest.raises(TypeError, match=r"`progress` must be True or False; got"):
        xgrad.sweep(lr=[0.1], data=tiny, iters=2, batch_size=5, hidden_size=3, client="serial", progress=value)


def test_checkpoint_every_without_a_checkpoint_is_refused(tiny):
    # it was ignored without a word: the run saved nothing while its caller
    # believed it saved every 2 iterations
    with pytest.raises(ValueError, match=r"`checkpoint_every` \(2\) has no effect without `checkpoint`"):
        short_run(tiny, checkpoint_every=2)


def test_checkpoint_every_defaults_to_100_with_a_checkpoint(tiny, tmp_path, monkeypatch):
    import xgrad._train.run as trainrun

    saved = []
    monkeypatch.setattr(trainrun, "save_checkpoint", lambda path, state, cfg: saved.append(state.iteration))
    xgrad.train("numpy", data=tiny, iters=250, batch_size=5, hidden_size=3, eval_every=0, progress=False,
                checkpoint=tmp_path / "c.npz")
    assert saved == [100, 200, 250]
    with pytest.raises(ValueError, match=r"`checkpoint_every` \(2\) has no effect"):
        short_run(tiny, checkpoint_every=2)  # the same check, whatever the value


def test_data_dir_with_data_is_refused(tiny, tmp_path):
    # the folder was ignored without a word: the run trained on `data`
    with pytest.raises(ValueError, match=r"`data_dir` has no effect when `data` is given"):
        short_run(tiny, data_dir=tmp_path)
    with pytest.raises(ValueError, match=r"`data_dir` has no effect when `data` is given"):
        xgrad.sweep(lr=[0.1], iters=2, batch_size=5, hidden_size=3, data=tiny, data_dir=tmp_path, client="serial",
                    progress=False)
