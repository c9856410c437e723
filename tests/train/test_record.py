"""The record of a run: one checked reader of every stored history (a checkpoint's
too), and the result that holds one."""

from __future__ import annotations

import json

import numpy as np
import pytest
from _helpers import edit_meta, good_checkpoint_of, small_mnist

import xgrad
from xgrad import FileFormatError, History, train
from xgrad._train.record import HISTORY_KEYS, read_history

GOOD = {"loss": [2.3, 1.9, 1.2], "eval_iters": [1, 3], "train_acc": [0.4, 0.7], "test_acc": [0.35, 0.65],
        "iters_per_epoch": 3, "backend": "numpy", "device": "cpu", "dtype": "float32"}


def test_a_history_survives_its_dict():
    h = History.from_dict(GOOD)
    assert h == History([2.3, 1.9, 1.2], [1, 3], [0.4, 0.7], [0.35, 0.65], 3, "numpy", "cpu", "float32")
    assert History.from_dict(h.to_dict()) == h
    assert json.loads(json.dumps(h.to_dict())) == GOOD


def test_other_keys_are_ignored_and_where_is_optional():
    found = {k: GOOD[k] for k in HISTORY_KEYS} | {"config": {"lr": 0.1}, "timings": {}, "interrupted": False}
    h = History.from_dict(found)
    assert (h.backend, h.device, h.dtype) == (None, None, None)
    assert h.eval_iters == [1, 3] and all(type(i) is int for i in h.eval_iters)


def test_arrays_of_a_backend_are_read_as_host_lists(backend):
    h = History.from_dict({**GOOD, "loss": backend.asarray(np.array([2.5, 2.0, 1.5])),
                           "eval_iters": np.array([1.0, 3.0]), "iters_per_epoch": np.int64(3)})
    assert h.loss == [2.5, 2.0, 1.5] and h.eval_iters == [1, 3] and h.iters_per_epoch == 3
    assert type(h.iters_per_epoch) is int


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"loss": None}, ValueError, "`history` 'loss' must be a list of numbers; got NoneType"),
        ({"loss": [[1.0], [2.0], [3.0]]}, ValueError, r"'loss' must be a 1-d float array .*got shape \(3, 1\)"),
        ({"train_acc": [0.4]}, ValueError, "'train_acc' has 1 values but 'eval_iters' has 2: 'eval_iters', "
                                           "'train_acc' and 'test_acc' must be lists of equal length"),
        ({"test_acc": [0.3, np.nan]}, ValueError, "'test_acc' holds NaN or infinite values"),
        ({"eval_iters": [1, 4]}, ValueError, r"'eval_iters' must be iterations in 1\.\.3 \(one per loss\)"),
        ({"eval_iters": [1.5, 3]}, ValueError, r"'eval_iters' must be iterations in 1\.\.3"),
        ({"eval_iters": [3, 3]}, ValueError, "'eval_iters' must increase"),
        ({"iters_per_epoch": 2.0}, ValueError, "'iters_per_epoch' must be a positive integer; got 2.0"),
        ({"iters_per_epoch": True}, ValueError, "'iters_per_epoch' must be a positive integer; got True"),
        ({"iters_per_epoch": None}, ValueError, "'iters_per_epoch' must be a positive integer; got None"),
        ({"backend": 3}, ValueError, "`history` 'backend' must be a string or null; got int"),
        ({"dtype": ["float32"]}, ValueError, "'dtype' must be a string or null; got list"),
    ],
)
def test_each_field_is_checked_once_with_a_message_naming_it(change, error, match):
    with pytest.raises(error, match=match):
        History.from_dict({**GOOD, **change})


def test_a_missing_field_or_a_non_mapping_is_refused():
    with pytest.raises(ValueError, match="`history` lacks 'eval_iters', 'iters_per_epoch'"):
        History.from_dict({k: v for k, v in GOOD.items() if k not in ("eval_iters", "iters_per_epoch")})
    with pytest.raises(TypeError, match="`history` must be a JSON object; got list"):
        History.from_dict([GOOD])


def test_a_users_loss_curve_may_hold_nan():
    # training stops at a non-finite loss, so a run's record never holds one; a curve given to plot may
    assert np.isnan(History.from_dict({**GOOD, "loss": [2.0, np.nan, 1.0]}).loss[1])


def test_read_history_gives_one_checked_record_from_every_kind(tmp_path):
    path = tmp_path / "history.json"
    path.write_text(json.dumps({**GOOD, "config": {"lr": 0.1}}))
    want = History.from_dict(GOOD)
    result = xgrad.TrainResult(net=xgrad.TwoLayerNet(2, 2, 2), history=want, timings={})
    for given in (path, str(path), GOOD, want, result):
        got = read_history(given)
        assert got == want and isinstance(got, History)
    assert read_history(want) is not want  # a copy, checked
    with pytest.raises(ValueError, match="'eval_iters' must increase"):
        read_history(History([1.0, 1.0], [2, 1], [0.1, 0.2], [0.1, 0.2], 1))
    with pytest.raises(TypeError, match="`history` must be a TrainResult, a History"):
        read_history(3)


def test_a_damaged_history_file_is_one_error_naming_it(tmp_path):
    path = tmp_path / "history.json"
    path.write_text(json.dumps({**GOOD, "backend": 7}))
    with pytest.raises(xgrad.FileFormatError, match="'backend' must be a string or null") as info:
        read_history(path)
    assert info.value.path == str(path) and str(path) in str(info.value)


def test_a_result_reads_its_history_through_one_delegation():
    h = History.from_dict(GOOD)
    result = xgrad.TrainResult(net=xgrad.TwoLayerNet(2, 2, 2), history=h, timings={"train_s": 1.0})
    for name in ("eval_iters", "train_acc", "test_acc", "iters_per_epoch", "backend", "device", "dtype"):
        assert getattr(result, name) is getattr(h, name)
        assert name not in vars(type(result)), f"TrainResult mirrors {name} field by field"
        assert name in dir(result)
    assert isinstance(result.loss, np.ndarray) and result.loss.dtype == np.float64
    np.testing.assert_array_equal(result.loss, h.loss)
    with pytest.raises(AttributeError, match="'TrainResult' object has no attribute 'accuracy'"):
        result.accuracy  # noqa: B018
    assert {k: result.to_dict()[k] for k in h.to_dict()} == h.to_dict()
    assert list(result.to_dict())[len(h.to_dict()):] == ["timings", "config", "interrupted", "stop_signal"]


# --- the history in a checkpoint ---------------------------------------------------------

@pytest.fixture(scope="module")
def small():
    """600 training and 200 test digits of the real MNIST."""
    return small_mnist()


@pytest.fixture(scope="module")
def good_checkpoint(small, tmp_path_factory):
    return good_checkpoint_of(small, tmp_path_factory.mktemp("ckpt"))


def test_a_checkpoint_and_a_history_json_refuse_the_same_damage_alike(small, tmp_path, good_checkpoint):
    """The history in a checkpoint is read by the one reader of stored histories."""
    from xgrad._train.record import read_history

    path = tmp_path / "run.npz"
    path.write_bytes(good_checkpoint)
    evals = {"eval_iters": [5, 9], "train_acc": [0.2, 1.5], "test_acc": [0.1, 0.2]}
    edit_meta(path, **evals)
    with pytest.raises(FileFormatError) as from_checkpoint:
        train("numpy", data=small, iters=40, eval_every=0, progress=False, checkpoint=path, resume=True)
    with np.load(path) as saved:
        loss = saved["loss"].tolist()
    (tmp_path / "history.json").write_text(json.dumps({"loss": loss, **evals, "iters_per_epoch": 1}))
    with pytest.raises(FileFormatError) as from_json:
        read_history(tmp_path / "history.json")
    reason = ": `history` 'train_acc' must hold accuracies between 0 and 1"
    assert str(from_checkpoint.value).endswith(reason) and str(from_json.value).endswith(reason)


def test_a_results_repr_is_a_line_however_long_the_run():
    from _helpers import tiny_data

    result = train("numpy", data=tiny_data(), iters=500, batch_size=5, hidden_size=3, eval_every=250,
                   validation=0.2, progress=False)
    h = result.history
    shown = repr(result)
    assert shown.startswith(f"TrainResult(500 iterations, loss={h.loss[-1]:.4g}, train_acc={h.train_acc[-1]:.4g}, "
                            f"test_acc={h.test_acc[-1]:.4g}, val_acc={h.val_acc[-1]:.4g}, backend='numpy', "
                            "device='cpu', dtype='float32', ")
    assert shown.endswith(f" s, net={result.net!r})") and len(shown) < 400 and "\n" not in shown
    assert repr(h) == (f"History(500 iterations, loss={h.loss[-1]:.4g}, train_acc={h.train_acc[-1]:.4g}, "
                       f"test_acc={h.test_acc[-1]:.4g}, val_acc={h.val_acc[-1]:.4g}, backend='numpy', device='cpu', "
                       "dtype='float32')")
    assert repr(History()) == "History(0 iterations)"


def test_a_missing_history_or_a_folder_is_named_with_what_to_give(tmp_path):
    with pytest.raises(FileNotFoundError, match=rf"^no training history at '{tmp_path}/h\.json'; give the "
                       r"history\.json that a run wrote \(xgrad train --out DIR writes DIR/history\.json\)$"):
        read_history(tmp_path / "h.json")
    with pytest.raises(FileFormatError, match=rf"^'{tmp_path}' is a folder, not a training history; give the "
                       rf"history\.json in it \('{tmp_path}/history\.json'\)$"):
        read_history(tmp_path)
