"""Successive halving in a sweep: which runs go on, a run continued through its rungs
equals one trained in one go, bad settings are refused before any run, the command's
option, and a sweep run again reads back the rungs done."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import xgrad
from xgrad._cli.main import main
from xgrad._sweep.halving import Ladder, check_halving, promotable, rung_count, rung_lengths
from xgrad._sweep.result import SweepResult
from xgrad._sweep.rungs import iterations, uninterrupted

NINE = [0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 1e6]  # nine runs: rungs of iters/9, iters/3, iters
FAST = {"iters": 90, "eval_every": 7, "activation": "relu", "client": "serial", "progress": False}


def _data(n=200, d=20, seed=0):
    """A small learnable problem: the class is the argmax of a linear map."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    t = (x[:, :10] @ rng.normal(size=(10, 10))).argmax(axis=1)
    return (x[:150], t[:150]), (x[150:], t[150:])


def _assert_same_as_train(run, data, iters):
    """`run` holds bit for bit what xgrad.train gives for `iters` iterations in one go."""
    expected = xgrad.train("numpy", **{**run.settings, "iters": iters}, data=data, progress=False)
    np.testing.assert_array_equal(np.asarray(run.history.loss), expected.loss)
    np.testing.assert_array_equal(np.asarray(run.history.loss), np.asarray(expected.history.loss))
    assert run.history.eval_iters == expected.eval_iters
    assert run.history.train_acc == expected.train_acc and run.history.test_acc == expected.test_acc
    assert run.history.val_acc == expected.history.val_acc and run.history.val_loss == expected.history.val_loss
    assert (run.val_acc, run.test_acc, run.iters) == (expected.history.val_acc[-1], expected.test_acc[-1], iters)


# -- the rungs and the promotions, without training ------------------------------------------
def test_rungs_grow_by_the_factor_up_to_iters_and_keep_one_run_to_the_top():
    assert [rung_count(n, 3) for n in (1, 2, 3, 8, 9, 26, 27)] == [1, 1, 2, 2, 3, 3, 4]
    assert rung_lengths(10_000, 3, 8) == [3333, 10_000]
    assert rung_lengths(90, 3, 9) == [10, 30, 90]
    assert rung_lengths(1000, 2, 8) == [125, 250, 500, 1000]
    assert rung_lengths(1000, 3, 2) == [1000]  # too few runs to stop any


def test_only_the_best_fraction_of_a_rung_goes_on_and_never_twice():
    scores = {"a": 0.5, "b": 0.9, "c": 0.7, "d": 0.8, "e": 0.1, "f": 0.2}
    assert promotable(scores, set(), 3) == ["b", "d"]
    assert promotable(scores, {"b"}, 3) == ["d"]
    assert promotable(scores, set(), 2) == ["b", "d", "c"]
    assert promotable({"a": 0.5, "b": 0.9}, set(), 3) == []  # fewer than 3: none is in the best third yet
    assert promotable({"a": 0.5, "b": 0.5, "c": 0.5}, set(), 3) == ["a"]  # a tie: the first


def test_a_diverged_run_never_goes_on():
    assert promotable({"a": -math.inf, "b": -math.inf, "c": -math.inf}, set(), 3) == []
    assert promotable({"a": -math.inf, "b": 0.2, "c": -math.inf, "d": -math.inf}, set(), 2) == ["b"]


def _drive(ladder, scores, slots):
    """Run `ladder` with `slots` workers, the oldest job finishing first; the jobs in order."""
    done, running = [], []
    while True:
        while len(running) < slots and (job := ladder.next()) is not None:
            running.append(job)
        if not running:
            return done
        key, rung = running.pop(0)
        ladder.done(key, rung, scores[key][rung])
        done.append((key, rung))


def test_one_at_a_time_every_run_does_a_rung_before_the_best_go_on():
    scores = {k: [s, 10 + s, 20 + s] for k, s in zip("abcdefghi", [1, 9, 2, 8, 3, 7, 4, 6, 5], strict=True)}
    jobs = _drive(Ladder(list("abcdefghi"), [10, 30, 90], 3, asynchronous=False), scores, 1)
    assert jobs == [(k, 0) for k in "abcdefghi"] + [("b", 1), ("d", 1), ("f", 1), ("b", 2)]


def test_asynchronously_a_free_worker_promotes_at_once_else_starts_a_new_run():
    scores = {k: [s, 10 + s, 20 + s] for k, s in zip("abcdefghi", [1, 9, 2, 8, 3, 7, 4, 6, 5], strict=True)}
    ladder = Ladder(list("abcdefghi"), [10, 30, 90], 3, asynchronous=True)
    jobs = _drive(ladder, scores, 2)
    # b is the best of a, b, c when c ends: it goes on before d, e... start
    assert jobs.index(("b", 1)) < jobs.index(("e", 0))
    assert {k for k, r in jobs if r == 0} == set("abcdefghi")
    assert {k for k, r in jobs if r == 1} >= {"b", "d", "f"}  # at least the best third, once all are in
    assert ("b", 2) in jobs and len(jobs) == len(set(jobs))
    assert ladder.next() is None
    # nothing promotable and no run left to start: a free worker waits for the running ones
    ladder = Ladder(["a", "b"], [10, 30], 2, asynchronous=True)
    assert ladder.next() == ("a", 0) and ladder.next() == ("b", 0) and ladder.next() is None
    ladder.done("a", 0, 0.5)
    assert ladder.next() is None  # one of two in: none is in the best half yet
    ladder.done("b", 0, 0.7)
    assert ladder.next() == ("b", 1) and ladder.next() is None


def test_an_evaluation_made_only_because_a_rung_ended_is_dropped():
    h = xgrad.History(loss=[1.0] * 12, eval_iters=[1, 4, 6, 7, 10, 12], train_acc=[0.1] * 6, test_acc=[0.2] * 6,
                      iters_per_epoch=3, val_acc=[0.3] * 6, val_loss=[0.4] * 6)
    kept = uninterrupted(h, None, 12)
    assert kept.eval_iters == [1, 4, 7, 10, 12] and len(kept.val_acc) == len(kept.val_loss) == 5
    assert uninterrupted(h, 0, 12) is h


# -- bad settings, before any run --------------------------------------------------------------
@pytest.mark.parametrize("value", [1, 0, -3])
def test_halving_below_2_is_refused(value):
    with pytest.raises(ValueError, match="`halving` must be an integer of at least 2"):
        xgrad.sweep(lr=[0.1, 1.0], halving=value, data=_data(), **FAST)


@pytest.mark.parametrize("value", [2.5, 3.0, "3", True])
def test_halving_that_is_not_an_integer_is_refused(value):
    with pytest.raises(TypeError, match="`halving` must be an integer"):
        xgrad.sweep(lr=[0.1, 1.0], halving=value, data=_data(), **FAST)


def test_a_first_rung_shorter_than_an_evaluation_interval_is_refused_with_the_rungs():
    with pytest.raises(ValueError, match=r"rungs ending at 10, 30, 90 iterations: the first rung is shorter than "
                                         r"one evaluation interval \(20 iterations, `eval_every`\)"):
        xgrad.sweep(lr=NINE, halving=3, data=_data(), **{**FAST, "eval_every": 20})
    # without eval_every, one epoch: 135 training samples in batches of 10 -> 13 iterations
    with pytest.raises(ValueError, match=r"interval \(13 iterations, one epoch"):
        xgrad.sweep(lr=NINE, halving=3, data=_data(), batch_size=10, **{**FAST, "eval_every": None})
    # on MNIST (54,000 training images after the validation split, batches of 100): 540
    with pytest.raises(ValueError, match=r"`halving` 3 cuts the 8 runs' 1000 iterations into rungs ending at 333, "
                                         r"1000 iterations: .* \(540 iterations, one epoch"):
        xgrad.sweep(halving=3, iters=1000, client="serial")


def test_a_first_rung_shorter_than_one_iteration_is_refused_with_the_rungs():
    with pytest.raises(ValueError, match=r"`halving` 3 cuts the 9 runs' 8 iterations into rungs ending at 0, 2, 8 "
                                         r"iterations: the first rung is shorter than one iteration; give `iters` "
                                         "of at least 9"):
        xgrad.sweep(lr=NINE, halving=3, data=_data(), **{**FAST, "iters": 8, "eval_every": 1})


def test_a_grid_of_iters_is_refused():
    with pytest.raises(ValueError, match=r"`halving` needs one `iters` for every run"):
        xgrad.sweep(lr=[0.1, 1.0, 3.0], halving=2, data=_data(), **{**FAST, "iters": [60, 90]})


def test_the_check_itself():
    assert check_halving("halving", None) is None and check_halving("halving", np.int64(4)) == 4


# -- a sweep with halving ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def nine():
    data = _data()
    return data, xgrad.sweep(lr=NINE, halving=3, data=data, **FAST)


def test_a_run_continued_through_its_rungs_equals_one_trained_in_one_go(nine):
    data, result = nine
    assert result.rungs == [10, 30, 90] and result.halving == 3
    top = [r for r in result if r.rung == 2]
    assert len(top) == 1 and not top[0].stopped and result.best is top[0]
    _assert_same_as_train(top[0], data, 90)  # through two rungs, from their checkpoints
    for run in result:
        if run.stopped:  # stopped at the end of its rung: a run of that length
            _assert_same_as_train(run, data, result.rungs[run.rung])
    assert sorted(r.rung for r in result if not r.diverged) == [0] * 5 + [1] * 2 + [2]


def test_stopped_runs_are_shown_stopped_and_never_best(nine):
    _, result = nine
    stopped = [r for r in result if r.stopped]
    assert len(stopped) == 7 and all(r.iters in (10, 30) for r in stopped)
    assert all(not r.stopped for r in result if r.diverged)
    by_val = max(result, key=lambda r: r.val_acc or 0)
    assert result.best is not by_val or not by_val.stopped
    table = result.to_table()
    assert "successive halving by 3: rungs end at 10, 30, 90 iterations" in table
    assert table.splitlines()[2].split()[-1] == "stopped"
    assert sum(line.rstrip().endswith(("at 10", "at 30")) for line in table.splitlines()) == 7
    again = SweepResult.from_dict(json.loads(result.to_json()))
    assert (again.halving, again.rungs, again.best.key) == (3, [10, 30, 90], result.best.key)
    assert [(r.rung, r.iters, r.stopped) for r in again] == [(r.rung, r.iters, r.stopped) for r in result]
    diverged = [r for r in result if r.diverged]
    assert len(diverged) == 1 and diverged[0].rung == 0 and diverged[0].iters == diverged[0].diverged_at < 10
    assert iterations(result.runs) == 5 * 10 + 2 * 30 + 90 + diverged[0].iters


def test_the_figure_draws_stopped_runs_apart(nine):
    pytest.importorskip("matplotlib")
    from xgrad._plot.sweep import STOPPED

    _, result = nine
    fig = result.figure()
    squares = [line for line in fig.axes[0].lines if line.get_label() == STOPPED]
    assert len(squares) == 1 and len(squares[0].get_xdata()) == 7
    main_line = fig.axes[0].lines[0]
    assert list(main_line.get_xdata()) == [3.0]  # only the run trained to the end on the line


def test_without_validation_the_runs_go_on_by_their_loss():
    data = _data()
    result = xgrad.sweep(lr=[0.01, 0.1, 1.0], halving=3, validation=None, data=data,
                         **{**FAST, "iters": 60, "eval_every": 10})
    assert [r.rung for r in result] == [0, 0, 1]
    assert min((r for r in result if r.rung == 0), key=lambda r: r.loss).loss > 0  # ranked, not by accuracy
    _assert_loss_only(result, data)


def _assert_loss_only(result, data):
    best = result.best
    expected = xgrad.train("numpy", **best.settings, data=data, progress=False)
    np.testing.assert_array_equal(np.asarray(best.history.loss), expected.loss)


def test_out_holds_each_rung_and_a_rerun_reads_them_back(tmp_path, monkeypatch):
    data = _data()
    lrs = NINE[:8]  # eight runs: rungs of 30 and 90
    first = xgrad.sweep(lr=lrs, halving=3, data=data, out=tmp_path, **FAST)
    assert first.rungs == [30, 90]
    best = first.best
    stored = json.loads((tmp_path / "runs" / best.key / "rungs.json").read_text())
    assert stored["rungs"] == [30, 90] and [r["rung"] for r in stored["runs"]] == [0, 1]
    assert (tmp_path / "runs" / best.key / "checkpoint.npz").exists()

    def no_training(*args, **kwargs):
        raise AssertionError("a rung done was run again")

    monkeypatch.setattr("xgrad._sweep.rungs.run_rung", no_training)
    again = xgrad.sweep(lr=lrs, halving=3, data=data, out=tmp_path, **FAST)
    assert all(r.resumed for r in again)
    assert [(r.key, r.rung, r.stopped, r.val_acc) for r in again] == [
        (r.key, r.rung, r.stopped, r.val_acc) for r in first]
    assert again.best.key == best.key
    np.testing.assert_array_equal(again.best.history.loss, best.history.loss)
    monkeypatch.undo()

    # the top rung lost (a sweep stopped during it): the rungs below are read back, the best goes on
    # from its checkpoint, and its numbers are those of a run trained in one go
    stored["runs"] = stored["runs"][:1]
    (tmp_path / "runs" / best.key / "rungs.json").write_text(json.dumps(stored))
    calls = []
    from xgrad._sweep import rungs

    real = rungs.run_rung

    def counted(key, job, *args):
        calls.append((key, job.rung, job.state is not None))
        return real(key, job, *args)

    monkeypatch.setattr("xgrad._sweep.rungs.run_rung", counted)
    third = xgrad.sweep(lr=lrs, halving=3, data=data, out=tmp_path, **FAST)
    assert calls == [(best.key, 1, True)]
    assert third.best.key == best.key and not third.best.resumed
    _assert_same_as_train(third.best, data, 90)


def test_a_full_sweep_does_not_take_a_stopped_run_for_a_finished_one(tmp_path):
    data = _data()
    lrs = [0.1, 1.0, 3.0]
    halved = xgrad.sweep(lr=lrs, halving=3, data=data, out=tmp_path, **{**FAST, "iters": 60})
    full = xgrad.sweep(lr=lrs, data=data, out=tmp_path, **{**FAST, "iters": 60})
    assert [r.resumed for r in full] == [not r.stopped for r in halved] == [False, False, True]
    for run in full:
        _assert_same_as_train(run, data, 60)
    # and the same halving sweep again reads its rungs back, without the full runs' longer histories
    again = xgrad.sweep(lr=lrs, halving=3, data=data, out=tmp_path, **{**FAST, "iters": 60})
    assert all(r.resumed for r in again) and [r.iters for r in again] == [20, 20, 60]
    assert [None if r.history is None else len(r.history.loss) for r in again] == [None, None, 60]


def test_on_a_cluster_runs_go_on_as_workers_free_up_with_the_numbers_of_serial_runs():
    distributed = pytest.importorskip("distributed")
    from xgrad._sweep.executor import QUIET_HTTP

    data = _data()
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, **QUIET_HTTP) as cluster, \
            distributed.Client(cluster) as client:
        result = xgrad.sweep(lr=NINE, halving=3, data=data, **{**FAST, "client": client})
    assert result.rungs == [10, 30, 90] and len(result) == 9
    assert all(r.worker.startswith("tcp://") for r in result)
    assert sum(r.rung == 2 for r in result) >= 1 and sum(r.rung >= 1 for r in result) >= 3
    assert result.best is not None and result.best.rung == 2 and not result.best.stopped
    for run in result:
        if not run.diverged:
            _assert_same_as_train(run, data, result.rungs[run.rung])


def test_the_command_takes_halving(capsys):
    assert main(["sweep", "--halving", "1", "--scheduler", "serial", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "`--halving` must be an integer of at least 2" in err and "Traceback" not in err
    with pytest.raises(SystemExit) as exc:
        main(["sweep", "--halving", "2.5"])
    assert exc.value.code == 2 and "--halving: invalid int value" in capsys.readouterr().err
    assert main(["sweep", "--halving", "3", "--iters", "5", "--eval-every", "4", "--scheduler", "serial"]) == 2
    err = capsys.readouterr().err
    assert "rungs ending at 1, 5 iterations" in err and "`--eval-every`" in err and "`--iters`" in err
    with pytest.raises(SystemExit):
        main(["sweep", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "--halving HALVING successive halving: only the best 1/N of the runs go on" in shown
    assert "rung of N times more iterations (default: off)" in shown


def test_the_command_runs_a_sweep_with_halving(tmp_path, capsys, monkeypatch):
    calls = {}

    def fake_sweep(**kwargs):
        calls.update(kwargs)
        raise SystemExit(0)

    monkeypatch.setattr("xgrad._sweep.sweep.sweep", fake_sweep)
    with pytest.raises(SystemExit):
        main(["sweep", "--halving", "3", "--scheduler", "serial"])
    assert calls["halving"] == 3


def test_a_refinement_round_climbs_rungs_no_shorter_than_the_grids():
    data = _data()
    # 4 runs halved by 2: rungs of 20, 40, 80; the round after has 8 runs, which alone would make a
    # first rung of 10 iterations, shorter than eval_every
    result = xgrad.sweep(lr=[1.0], seeds=[0, 1, 2, 3], halving=2, refine=1, data=data,
                         **{**FAST, "iters": 80, "eval_every": 20})
    assert result.rungs == [20, 40, 80] and len(result) == 12
    assert {r.iters for r in result if not r.diverged} <= {20, 40, 80}
    refined = [r for r in result if r.refine_round == 1]
    assert sorted(r.rung for r in refined if not r.diverged)[-1] == 2 and any(r.stopped for r in refined)
    assert not result.best.stopped and result.best.iters == 80


def test_a_signal_during_a_rung_keeps_the_rungs_done_and_drops_the_one_cut_short(tmp_path, monkeypatch):
    import os
    import signal

    from xgrad._train.stepping import Stepping

    data = _data()
    real_step, calls = Stepping.step, []

    def step(self, params, idx):
        calls.append(1)
        if len(calls) == 3 * 30 + 10:  # ten iterations into the best run's second rung
            os.kill(os.getpid(), signal.SIGINT)
        return real_step(self, params, idx)

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    monkeypatch.setattr(Stepping, "step", step)
    lrs = [0.1, 1.0, 3.0]  # three runs halved by 3: rungs of 30 and 90
    try:
        with pytest.raises(KeyboardInterrupt):
            xgrad.sweep(lr=lrs, halving=3, data=data, out=tmp_path, **FAST)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert len(calls) == 3 * 30 + 10
    stored = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("runs/*/rungs.json"))]
    assert [[r["rung"] for r in s["runs"]] for s in stored] == [[0], [0], [0]]  # the cut-short rung is not there
    assert not (tmp_path / "sweep.json").exists()
    monkeypatch.undo()
    again = xgrad.sweep(lr=lrs, halving=3, data=data, out=tmp_path, **FAST)
    assert [(r.rung, r.resumed) for r in again] == [(0, True), (0, True), (1, False)]
    _assert_same_as_train(again.best, data, 90)  # from the checkpoint of its first rung


def test_a_damaged_rungs_file_is_run_again(tmp_path, caplog):
    data = _data()
    lrs = [0.1, 1.0, 3.0]
    first = xgrad.sweep(lr=lrs, halving=3, data=data, out=tmp_path, **FAST)
    (tmp_path / "runs" / first.runs[0].key / "rungs.json").write_text("{ half a fi")
    again = xgrad.sweep(lr=lrs, halving=3, data=data, out=tmp_path, **FAST)
    assert [r.resumed for r in again] == [False, True, True]
    assert "rungs.json is unreadable" in caplog.text
    assert [(r.rung, r.val_acc) for r in again] == [(r.rung, r.val_acc) for r in first]
