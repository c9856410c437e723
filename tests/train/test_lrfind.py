"""The learning-rate range test: its schedule, its stop, its rule, its run."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from _helpers import assert_close

import xgrad
from xgrad import FileFormatError, LRFindResult, lr_find, train
from xgrad._train.lrcurve import RULE, blew_up, lr_schedule, read_lr_find, smoothed, steepest, suggest

QUIET = {"progress": False}


@pytest.fixture(scope="module")
def small():
    """2,000 training and 500 test digits of the real MNIST."""
    (x, t), (xt, tt) = xgrad.load_mnist()
    return (x[:2000], t[:2000]), (xt[:500], tt[:500])


def test_schedule_is_geometric_from_start_to_stop():
    assert lr_schedule(1e-5, 10.0, 7) == [1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0]
    assert lr_schedule(0.5, 2.0, 3) == [0.5, 1.0, 2.0]
    lrs = lr_schedule(1e-5, 10.0, 300)
    assert len(lrs) == 300 and (lrs[0], lrs[-1]) == (1e-5, 10.0)
    ratios = np.array(lrs[1:]) / np.array(lrs[:-1])
    np.testing.assert_allclose(ratios, 1e6 ** (1 / 299), rtol=1e-12)
    assert lrs[100] == pytest.approx(1e-5 * 1e6 ** (100 / 299), rel=1e-14)


def test_smoothing_is_a_bias_corrected_moving_average():
    # avg: 0.1*2 = 0.2 -> /0.1 = 2; 0.9*0.2 + 0.1*1 = 0.28 -> /0.19
    assert smoothed([2.0, 1.0], beta=0.9) == pytest.approx([2.0, 0.28 / 0.19])
    assert smoothed([2.0, 1.0, 5.0], beta=0.0) == [2.0, 1.0, 5.0]
    assert smoothed([4.0] * 50, beta=0.98) == pytest.approx([4.0] * 50)


def test_blow_up_is_a_factor_over_the_lowest_smoothed_loss_or_not_finite():
    assert not blew_up(9.0, 3.9, 1.0, 4.0)
    assert blew_up(1.0, 4.1, 1.0, 4.0)
    assert blew_up(math.inf, 1.0, 1.0, 4.0) and blew_up(1.0, math.nan, 1.0, 4.0)
    assert not blew_up(2.3, 2.3, math.inf, 4.0)  # the first iteration


def test_suggestion_is_a_tenth_of_the_rate_at_the_smoothed_minimum_of_a_known_curve():
    lrs = lr_schedule(1e-4, 100.0, 61)  # ten points per decade
    # a valley in log(lr) with its bottom at lr = 1, then a blow-up
    curve = [2.0 - math.exp(-(math.log10(lr)) ** 2) + (50.0 if lr > 30 else 0.0) for lr in lrs]
    assert suggest(lrs, curve) == pytest.approx(0.1)
    # the steepest descent of the same curve: where its slope against log10(lr) is most negative
    slopes = np.diff(curve) / np.diff(np.log10(lrs))
    assert steepest(lrs, curve) == lrs[int(np.argmin(slopes[:np.argmin(curve)]))]
    assert steepest(lrs, curve) == pytest.approx(10 ** -0.75, rel=0.15)  # the inflection of the valley: 1/sqrt(2)


def test_no_suggestion_where_the_smoothed_loss_never_falls():
    assert suggest([0.1, 1.0, 10.0], [2.3, 2.4, 9.0]) is None
    assert suggest([0.1, 1.0], [math.nan, math.nan]) is None
    assert suggest([0.1, 1.0, 10.0], [2.3, 2.3, 2.3]) is None
    assert suggest([0.1, 1.0, 10.0], [2.3, math.nan, 2.0]) == 1.0  # the minimum of the finite values


def test_a_run_records_every_rate_loss_and_smoothed_loss(small):
    r = lr_find("numpy", data=small, start=1e-4, stop=1.0, iters=40, **QUIET)
    assert isinstance(r, LRFindResult)
    assert r.lrs == lr_schedule(1e-4, 1.0, 40) and r.stopped_at is None
    assert len(r.loss) == len(r.smoothed_loss) == 40
    assert r.smoothed_loss == smoothed(r.loss, beta=0.9)
    assert r.loss[0] == pytest.approx(math.log(10), rel=1e-2)  # small random weights: chance
    assert r.rule == RULE and r.settings["backend"] == "numpy" and r.settings["seed"] == 0
    assert r.suggestion == suggest(r.lrs, r.smoothed_loss)


def test_each_step_is_the_training_step_at_its_rate(small):
    """The first step runs at `start` on train's first minibatch; its loss is train's."""
    r = lr_find("numpy", data=small, start=0.5, stop=2.0, iters=3, dtype="float64", seed=4, **QUIET)
    t = train("numpy", data=small, lr=0.5, iters=2, eval_every=0, dtype="float64", seed=4, **QUIET)
    assert r.loss[:2] == list(t.loss)  # bit for bit: the same network, minibatches and SGD step


def test_a_huge_stop_stops_early_where_the_smoothed_loss_blows_up(small):
    r = lr_find("numpy", data=small, start=1e-3, stop=1e6, iters=200, **QUIET)
    assert r.stopped_at is not None and r.stopped_at < 200
    assert len(r.lrs) == len(r.loss) == r.stopped_at
    last, before = r.smoothed_loss[-1], r.smoothed_loss[:-1]
    assert not math.isfinite(r.loss[-1]) or not math.isfinite(last) or last > 4 * min(before)
    assert all(s <= 4 * min(before[:i + 1]) for i, s in enumerate(before))  # not before
    assert r.suggestion is not None and r.suggestion < r.lrs[-1] / 10
    assert "stopped at iteration" in r.summary()


def test_the_blowup_factor_sets_the_stop(small):
    common = {"data": small, "start": 1e-3, "stop": 1e6, "iters": 200, **QUIET}
    early, late = lr_find("numpy", blowup=1.5, **common), lr_find("numpy", blowup=20, **common)
    assert early.stopped_at is not None and (late.stopped_at is None or early.stopped_at < late.stopped_at)


def test_same_seed_same_curve_and_another_seed_another(small):
    kw = {"data": small, "start": 1e-3, "stop": 10.0, "iters": 50, **QUIET}
    a, b, c = lr_find("numpy", seed=7, **kw), lr_find("numpy", seed=7, **kw), lr_find("numpy", seed=8, **kw)
    assert a.loss == b.loss and a.suggestion == b.suggestion
    assert a.loss != c.loss


def test_progress_bar_shows_the_rate_and_the_loss(small, capsys):
    lr_find("numpy", data=small, iters=20)
    err = capsys.readouterr().err
    assert "lr-find (numpy)" in err and "20/20" in err and "lr=" in err and "loss=" in err


@pytest.mark.parametrize("threads", [1, None, "auto"])
def test_threads_as_train_takes_them(small, threads):
    a = lr_find("numpy", data=small, iters=10, threads=threads, dtype="float64", **QUIET)
    b = lr_find("numpy", data=small, iters=10, dtype="float64", **QUIET)
    assert a.loss == b.loss


def _signal_at(monkeypatch, n, signum):
    import os

    import xgrad._train.lrfind as module

    real, calls = module.sgd_step, []

    def step(*args, **kwargs):
        calls.append(1)
        if len(calls) == n:
            os.kill(os.getpid(), signum)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, "sgd_step", step)


@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM"])
def test_a_stop_signal_returns_the_test_so_far(small, monkeypatch, name):
    import signal

    _signal_at(monkeypatch, 7, getattr(signal, name))
    r = lr_find("numpy", data=small, start=1e-3, stop=10.0, iters=50, **QUIET)
    assert r.interrupted == name and len(r.loss) == len(r.lrs) == 7 and r.stopped_at is None
    assert f"(stopped by {name})" in r.summary()
    whole = lr_find("numpy", data=small, start=1e-3, stop=10.0, iters=50, **QUIET)
    assert whole.interrupted is None and whole.loss[:7] == r.loss


def test_inputs_are_left_as_they_were(small):
    copies = [(x.copy(), t.copy()) for x, t in small]
    lr_find("numpy", data=small, iters=20, **QUIET)
    for (x, t), (x0, t0) in zip(small, copies, strict=True):
        np.testing.assert_array_equal(x, x0)
        np.testing.assert_array_equal(t, t0)


def test_same_curve_on_every_backend(small, backend):
    kw = {"data": small, "start": 1e-2, "stop": 10.0, "iters": 30, "dtype": "float64", "seed": 2, **QUIET}
    ref = lr_find("numpy", **kw)
    got = lr_find(backend, **kw)
    assert got.settings["backend"] == backend.name
    np.testing.assert_allclose(got.loss, ref.loss, rtol=1e-10)
    assert_close(np.asarray(got.smoothed_loss), np.asarray(ref.smoothed_loss), rtol=1e-10)
    assert got.lrs == ref.lrs


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"start": 1.0, "stop": 1.0}, ValueError, r"`stop` \(1.0\) must be larger than `start` \(1.0\)"),
        ({"start": 10.0, "stop": 1e-3}, ValueError, "range of learning rates is empty"),
        ({"start": 0.0}, ValueError, "`start` must be positive and finite"),
        ({"start": -1e-5}, ValueError, "`start` must be positive"),
        ({"stop": math.inf}, ValueError, "`stop` must be positive and finite"),
        ({"start": math.nan}, ValueError, "`start` must be positive and finite"),
        ({"stop": "10"}, TypeError, "`stop` must be a real number"),
        ({"iters": 1}, ValueError, "`iters` must be >= 2"),
        ({"iters": 2.5}, TypeError, "`iters` must be an integer"),
        ({"smoothing": 1.0}, ValueError, "`smoothing` must be at least 0"),
        ({"smoothing": -0.1}, ValueError, "`smoothing`"),
        ({"blowup": 1.0}, ValueError, "`blowup` must be larger than 1"),
        ({"batch_size": 0}, ValueError, "`batch_size` must be >= 1"),
        ({"batch_size": 5000}, ValueError, "larger than the training set"),
        ({"dtype": "float16"}, ValueError, "`dtype` must be"),
        ({"activation": "tanh"}, ValueError, "`activation` must be"),
        ({"data_dir": "/tmp"}, ValueError, "`data_dir` has no effect when `data` is given"),
        ({"lr": 0.1}, TypeError, "unexpected keyword argument 'lr'.*give `start` and `stop`"),
        ({"checkpoint": "c.npz"}, TypeError, "unexpected keyword argument 'checkpoint'"),
    ],
)
def test_bad_input_is_refused_before_the_run(small, kwargs, error, match, monkeypatch):
    import xgrad._train.lrfind as module

    def no_run(*args, **kw):
        raise AssertionError("the run started")

    monkeypatch.setattr(module, "_run", no_run)
    with pytest.raises(error, match=match):
        lr_find("numpy", data=small, **kwargs, **QUIET)


def test_auto_backend_runs_where_train_would(small):
    r = lr_find("auto", data=small, iters=5, **QUIET)
    b = xgrad.resolve_backend("auto")
    assert (r.settings["backend"], r.settings["device"]) == (b.name, b.device_name)


def test_bad_backend_is_refused(small):
    with pytest.raises(ValueError, match="unknown backend 'nope'"):
        lr_find("nope", data=small, **QUIET)


def test_signature_and_docstring_come_from_the_settings():
    import inspect

    sig = inspect.signature(lr_find)
    assert list(sig.parameters)[:6] == ["backend", "start", "stop", "iters", "smoothing", "blowup"]
    assert sig.parameters["start"].default == 1e-5 and sig.parameters["stop"].default == 10.0
    assert sig.parameters["iters"].default == 300 and sig.parameters["batch_size"].default == 100
    assert "lr" not in sig.parameters and "checkpoint" not in sig.parameters
    doc = lr_find.__doc__ or ""
    assert "    start : float\n" in doc and "Default: ``300``." in doc
    assert "one tenth of the learning rate at the" in " ".join(doc.split())


def test_record_round_trips_through_json_and_its_file(small, tmp_path):
    r = lr_find("numpy", data=small, start=1e-3, stop=1e6, iters=100, **QUIET)
    back = LRFindResult.from_dict(json.loads(r.to_json()))
    assert back.lrs == r.lrs and back.suggestion == r.suggestion and back.stopped_at == r.stopped_at
    np.testing.assert_array_equal(back.loss, r.loss)  # a non-finite loss comes back as NaN
    path = tmp_path / "lr_find.json"
    path.write_text(r.to_json())
    assert read_lr_find(path).loss[:5] == r.loss[:5]
    assert read_lr_find(r.to_dict()).rule == RULE and read_lr_find(r) is r


def test_a_damaged_record_is_named():
    with pytest.raises(ValueError, match="differ in length"):
        LRFindResult.from_dict({**_record(), "loss": [1.0]})
    with pytest.raises(ValueError, match="not the record of a learning-rate range test"):
        LRFindResult.from_dict({"lrs": [1.0]})
    with pytest.raises(TypeError, match="`result` must be"):
        read_lr_find(3)


def test_a_damaged_file_is_a_file_format_error(tmp_path):
    path = tmp_path / "lr_find.json"
    path.write_text("{not json")
    with pytest.raises(FileFormatError, match=r"lr_find\.json") as info:
        read_lr_find(path)
    assert info.value.path == str(path)


def test_summary_says_when_the_loss_was_still_falling_at_stop():
    r = LRFindResult.from_dict({**_record(), "smoothed_loss": [2.3, 2.0, 1.0]})
    assert "still falling at the last rate: give a larger `stop`" in r.summary()
    none = LRFindResult.from_dict({**_record(), "smoothed_loss": [2.3, 2.4, 2.5], "suggestion": None})
    assert "no suggestion" in none.summary() and "lower `start`" in none.summary()


def _record():
    return {"lrs": [0.1, 1.0, 10.0], "loss": [2.3, 1.0, 3.0], "smoothed_loss": [2.3, 1.5, 2.0], "suggestion": 0.1,
            "rule": RULE, "stopped_at": None, "start": 0.1, "stop": 10.0, "iters": 3, "smoothing": 0.5,
            "blowup": 4.0}


def test_read_lr_find_names_a_missing_file_or_a_folder(tmp_path):
    with pytest.raises(ValueError, match=r"`result` '.*nowhere.json' does not exist; give the lr_find.json"):
        read_lr_find(tmp_path / "nowhere.json")
    with pytest.raises(ValueError, match=r"is a folder, not a regular file; give the lr_find.json"):
        read_lr_find(tmp_path)
