"""The settings record: train's keywords, its documentation, the config of a run
and its files all come from it, so that adding a setting is adding an entry.
The data set's name is checked and recorded in one spelling."""

from __future__ import annotations

import inspect
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from _helpers import add_setting, made_up_setting, short_run, tiny_data

import xgrad
from xgrad._train.settings import NAMED, REFUSED, RENAMED, TRAIN_SETTINGS, record

STORED = Path(__file__).parent / "data"


@pytest.fixture
def momentum(monkeypatch):
    entry = made_up_setting()
    add_setting(monkeypatch, entry)
    return entry


@pytest.fixture
def tiny():
    return tiny_data()


def _documented(function) -> list[str]:
    """The names of the Parameters section of `function`'s docstring."""
    section = function.__doc__.split("Parameters\n    ----------\n")[1].split("\n\n")[0]
    return re.findall(r"^    (\w+) :", section, flags=re.MULTILINE)


def test_the_signature_of_train_is_the_record():
    params = inspect.signature(xgrad.train).parameters
    assert list(params) == [s.name for s in record()] + list(RENAMED)
    assert params["backend"].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for name, p in params.items() if name != "backend")
    for s in record():
        assert params[s.name].default == (None if s.net_own else s.default), s.name
    assert params["iters"].default == 10_000 and params["activation"].default is None
    assert params["hidden_size"].annotation == "int | None" and params["grad"].default is None
    assert inspect.signature(xgrad.train).return_annotation == "TrainResult"


def test_the_docstring_of_train_documents_every_setting_and_nothing_else():
    assert _documented(xgrad.train) == [s.name for s in record()] + list(RENAMED)
    doc = " ".join(xgrad.train.__doc__.split())
    assert 'activation : {"sigmoid", "relu"}, optional' in doc
    assert "Default: ``10000``." in doc and 'Default: ``"sigmoid"`` for a new network.' in doc
    assert "Deprecated: the old name of `gradient` (it warns)." in doc
    for part in ("Returns -------", "Raises ------", "Notes -----", "Examples --------"):
        assert part in doc


def test_an_unknown_keyword_is_refused_as_python_refuses_it():
    with pytest.raises(TypeError, match=r"^train\(\) got an unexpected keyword argument 'learning_rate'$"):
        xgrad.train("numpy", learning_rate=0.1)
    with pytest.raises(TypeError, match="positional argument"):
        xgrad.train("numpy", 0.1)
    with pytest.raises(TypeError, match="multiple values for argument 'backend'"):
        xgrad.train("numpy", backend="numpy")


def test_the_roles_of_the_settings():
    def names(test):
        return {s.name for s in TRAIN_SETTINGS if test(s)}

    stored = json.loads((STORED / "history-0.1.0.json").read_text())["config"]
    assert names(lambda s: s.recorded) == set(stored) - {"output_size"} | {"validation"}  # validation: since 0.1.0
    assert names(lambda s: s.free) == {"iters", "progress", "eval_every", "compile_step"}
    assert names(lambda s: s.net_own) == {"activation", "hidden_size", "dtype", "weight_init_std"}
    assert names(lambda s: s.sweep == NAMED) == {"lr", "hidden_size", "batch_size", "activation"}
    assert names(lambda s: s.sweep == REFUSED) == {"seed", "progress", "net", "checkpoint", "checkpoint_every",
                                                   "resume"}
    assert all(s.refused for s in TRAIN_SETTINGS if s.sweep == REFUSED)
    assert names(lambda s: s.option is None) == {"data", "net", "device"}


# -- a setting added to the record ----------------------------------------------------------
def test_an_added_setting_is_a_keyword_of_train(momentum, tiny):
    params = inspect.signature(xgrad.train).parameters
    assert params["momentum"].default == 0.0 and params["momentum"].kind is inspect.Parameter.KEYWORD_ONLY
    assert "momentum" in _documented(xgrad.train)
    result = xgrad.train("numpy", data=tiny, iters=3, batch_size=5, hidden_size=3, progress=False, momentum=0.5)
    assert result.config["momentum"] == 0.5
    assert xgrad.train("numpy", data=tiny, iters=3, batch_size=5, hidden_size=3, progress=False
                       ).config["momentum"] == 0.0  # the record's default
    with pytest.raises(TypeError, match="`momentum` must be a real number; got str"):
        xgrad.train("numpy", data=tiny, iters=3, batch_size=5, hidden_size=3, progress=False, momentum="high")


def test_an_added_setting_is_written_to_the_checkpoint_and_history(momentum, tiny, tmp_path):
    from xgrad._cli.main import main

    ckpt = tmp_path / "run.npz"
    xgrad.train("numpy", data=tiny, iters=3, batch_size=5, hidden_size=3, progress=False, momentum=0.5,
                checkpoint=ckpt)
    with np.load(ckpt) as f:
        assert json.loads(str(f["meta"]))["config"]["momentum"] == 0.5
    with pytest.raises(ValueError, match=r"settings differ \(momentum: 0.5 there, 0.25 now\)"):
        xgrad.train("numpy", data=tiny, iters=6, batch_size=5, hidden_size=3, progress=False, momentum=0.25,
                    checkpoint=ckpt, resume=True)
    out = tmp_path / "out"
    argv = ["train", "--backend", "numpy", "--iters", "2", "--eval-every", "0", "--momentum", "0.5",
            "--no-progress", "--out", str(out)]
    assert main(argv) == 0
    assert json.loads((out / "history.json").read_text())["config"]["momentum"] == 0.5


def test_a_checkpoint_older_than_an_added_setting_resumes_with_its_default(momentum, tmp_path):
    ckpt = tmp_path / "run.npz"
    shutil.copy(STORED / "checkpoint-0.1.0.npz", ckpt)
    settings = {"iters": 200, "hidden_size": 10, "eval_every": 50, "seed": 3, "progress": False}
    with pytest.raises(ValueError, match=r"settings differ \(momentum: 0.0 there, 0.9 now\)"):
        xgrad.train("numpy", checkpoint=ckpt, resume=True, momentum=0.9, **settings)
    resumed = xgrad.train("numpy", checkpoint=ckpt, resume=True, **settings)
    stored = np.asarray(json.loads((STORED / "history-0.1.0.json").read_text())["loss"])
    # the 100 losses the checkpoint holds, bit for bit; then the stored run's to float32 rounding
    # (the sigmoid's form changed since 0.1.0: tests/train/test_checkpoint.py)
    np.testing.assert_array_equal(resumed.loss[:100], stored[:100])
    np.testing.assert_array_less(np.abs(resumed.loss - stored), np.spacing(stored.astype(np.float32)) * 1.0001)
    assert resumed.config["momentum"] == 0.0


# --- the data set's name, in one spelling ----------------------------------------------

def test_the_data_set_name_is_recorded_in_one_spelling(tiny, tmp_path):
    # "fashion_mnist" (which load_mnist accepts) was recorded as given, so a
    # checkpoint of the run refused to resume under "fashion-mnist", the same data
    ck = tmp_path / "c.npz"
    first = short_run(tiny, dataset="fashion_mnist", checkpoint=ck)
    assert first.config["dataset"] == "fashion-mnist"
    again = xgrad.train("numpy", data=tiny, iters=6, batch_size=5, hidden_size=3, progress=False,
                        dataset="fashion-mnist", checkpoint=ck, resume=True)
    assert again.loss.shape == (6,)


@pytest.mark.parametrize(("value", "error"), [("cifar", ValueError), (None, ValueError), (3, ValueError)])
def test_an_unknown_data_set_is_refused_even_with_data(tiny, value, error):
    # with data= it was recorded in the run's config unchecked
    with pytest.raises(error, match=r"`dataset` must be 'mnist' or 'fashion-mnist'"):
        short_run(tiny, dataset=value)
