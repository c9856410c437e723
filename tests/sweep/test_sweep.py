"""Learning-rate sweeps: on a Dask cluster the runs equal serial ones, and
nothing is lost when a worker or the client dies; an `out` that is a file is
refused before any run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from _helpers import tiny_data

import xgrad
from xgrad import DivergenceError
from xgrad._cli.main import main
from xgrad._infra.signals import Terminated
from xgrad._sweep.executor import QUIET_HTTP, local_cluster_kind
from xgrad._sweep.grid import refine_lrs
from xgrad._sweep.worker import SweepRun, choose_backend

distributed = pytest.importorskip("distributed")

ROOT = Path(xgrad.__file__).resolve().parent.parent
FAST = {"iters": 60, "eval_every": 30, "activation": "relu"}


def _data(n=200, d=20, seed=0):
    """A small learnable problem: the class is the argmax of a linear map."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    t = (x[:, :10] @ rng.normal(size=(10, 10))).argmax(axis=1)
    return (x[:150], t[:150]), (x[150:], t[150:])


def _cluster():
    return distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, **QUIET_HTTP)


@pytest.fixture(scope="module")
def client():
    with _cluster() as cluster, distributed.Client(cluster) as c:
        yield c


def _assert_same_as_train(run: SweepRun, data) -> None:
    """`run` holds bit for bit what xgrad.train gives here with its settings."""
    try:
        expected, step = xgrad.train("numpy", **run.settings, data=data, progress=False), None
    except DivergenceError as exc:
        expected, step = exc.last_finite, exc.step
    assert isinstance(run.history, xgrad.History)
    np.testing.assert_array_equal(np.asarray(run.history.loss), expected.loss)
    assert run.history.train_acc == expected.train_acc
    assert run.history.test_acc == expected.test_acc
    assert run.history.val_acc == expected.val_acc and run.val_acc == expected.val_acc[-1]
    assert (run.diverged, run.diverged_at) == (step is not None, step)


# -- results on the cluster ------------------------------------------------------------
def test_cluster_runs_equal_serial_train_runs(client):
    data = _data()
    result = xgrad.sweep(lr=[0.1, 1.0], seeds=[0, 1], hidden_size=[8, 16], data=data, client=client,
                         progress=False, **FAST)
    assert len(result) == 8
    assert [(r.settings["hidden_size"], r.settings["lr"], r.settings["seed"]) for r in result][:4] == [
        (8, 0.1, 0), (8, 0.1, 1), (8, 1.0, 0), (8, 1.0, 1)]
    assert {r.worker for r in result} <= set(client.scheduler_info()["workers"])
    for run in result:
        _assert_same_as_train(run, data)
    assert result.best.val_acc == max(r.val_acc for r in result)  # chosen on validation, never on test


def test_a_diverging_learning_rate_is_a_result(client):
    data = _data()
    result = xgrad.sweep(lr=[1.0, 1e6], data=data, client=client, progress=False, **FAST)
    good, bad = result.runs
    assert not good.diverged and good.diverged_at is None
    assert bad.diverged and bad.diverged_at is not None and bad.diverged_at < FAST["iters"]
    assert len(bad.history.loss) == bad.diverged_at - 1  # up to the last finite loss
    _assert_same_as_train(bad, data)
    assert result.best is good
    assert f"at {bad.diverged_at}" in result.to_table()


def test_a_worker_killed_mid_sweep_loses_no_run():
    data = _data()
    settings = {"iters": 1000, "eval_every": 500, "hidden_size": 64, "activation": "relu"}
    with _cluster() as cluster, distributed.Client(cluster) as c:
        pids = c.run(os.getpid)
        killed = []

        def kill_a_busy_worker():
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not killed:
                busy = [w for w, tasks in c.processing().items() if tasks and w in pids]
                if busy:
                    time.sleep(0.1)  # well into the run
                    os.kill(pids[busy[0]], signal.SIGKILL)
                    killed.append(busy[0])
                time.sleep(0.01)

        killer = threading.Thread(target=kill_a_busy_worker)
        killer.start()
        result = xgrad.sweep(lr=[0.03, 0.1, 0.3, 1.0], data=data, client=c, progress=False, **settings)
        killer.join()
    assert killed, "no worker was killed"
    assert len(result) == 4 and not any(r.diverged for r in result)
    for run in result:
        _assert_same_as_train(run, data)


def test_a_sweep_resumes_from_out_after_the_client_is_killed(client, tmp_path):
    data = _data()
    np.savez(tmp_path / "data.npz", x=data[0][0], t=data[0][1], xt=data[1][0], tt=data[1][1])
    out = tmp_path / "sweep"
    lrs = [0.01, 0.03, 0.1, 0.3, 1.0, 3.0]
    settings = {"iters": 1200, "eval_every": 600, "hidden_size": 100, "activation": "relu"}
    script = textwrap.dedent(f"""
        import numpy as np, xgrad
        d = np.load({str(tmp_path / "data.npz")!r})
        xgrad.sweep(lr={lrs!r}, data=((d["x"], d["t"]), (d["xt"], d["tt"])), client={client.scheduler.address!r},
                    out={str(out)!r}, progress=False, **{settings!r})
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    log = tmp_path / "client.log"
    with open(log, "wb") as stderr:  # a file, not a pipe that could fill up and block the client
        proc = subprocess.Popen([sys.executable, "-c", script], env=env, stderr=stderr)
    try:
        deadline = time.monotonic() + 120
        while not list(out.glob("runs/*/history.json")):
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "no run finished in time:\n" + log.read_text()
            time.sleep(0.01)
    finally:
        proc.kill()
        proc.wait()
    finished = {p.parent.name for p in out.glob("runs/*/history.json")}
    assert 1 <= len(finished) < len(lrs), f"{len(finished)} runs finished before the client was killed"
    assert not (out / "sweep.json").exists()

    result = xgrad.sweep(lr=lrs, data=data, client=client, out=out, progress=False, **settings)
    assert {r.key for r in result if r.resumed} == finished, [(r.key, r.resumed) for r in result]
    assert len(result) == len(lrs) and len(list(out.glob("runs/*/history.json"))) == len(lrs)
    for run in result:
        if run.resumed:
            _assert_same_as_train(run, data)
    assert json.loads((out / "sweep.json").read_text())["best"] == result.best.key


def test_a_scheduler_address_and_a_local_cluster_work(client):
    data = _data()
    by_address = xgrad.sweep(lr=[0.1, 1.0], data=data, client=client.scheduler.address, progress=False, **FAST)
    local = xgrad.sweep(lr=[0.1, 1.0], data=data, progress=False, **FAST)  # started and stopped for the call
    for a, b in zip(by_address, local, strict=True):
        np.testing.assert_array_equal(a.history.loss, b.history.loss)
        assert b.worker.startswith("tcp://")


# -- in this process ----------------------------------------------------------------------
def test_out_holds_every_run_and_a_rerun_skips_them(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    data = _data()
    first = xgrad.sweep(lr=[0.1, 1.0, 1e6], data=data, client="serial", out=tmp_path, progress=False, **FAST)
    histories = sorted(tmp_path.glob("runs/*/history.json"))
    assert len(histories) == 3
    assert sorted(p.parent.name.split("-")[0] for p in histories) == ["lr=0.1_seed=0", "lr=1_seed=0", "lr=1e+06_seed=0"]
    assert (tmp_path / "sweep.png").read_bytes()[:4] == b"\x89PNG"
    saved = json.loads((tmp_path / "sweep.json").read_text())
    assert saved == first.to_dict() and saved["best"] == first.best.key
    assert not list(tmp_path.glob("**/.tmp-*"))  # no temporary file left behind
    from xgrad.plot import training_curves

    training_curves(histories[0])  # each history.json is a training history

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was run again")

    monkeypatch.setattr("xgrad._sweep.executor.run_one", no_training)
    again = xgrad.sweep(lr=[0.1, 1.0, 1e6], data=data, client="serial", out=tmp_path, progress=False, **FAST)
    assert all(r.resumed for r in again)
    for r in again.runs:
        r.resumed = False
    assert again.to_dict(history=True) == first.to_dict(history=True)


def test_a_damaged_or_different_run_file_is_run_again(tmp_path):
    data = _data()
    first = xgrad.sweep(lr=[0.1, 1.0], data=data, client="serial", out=tmp_path, progress=False, **FAST)
    (tmp_path / "runs" / first.runs[0].key / "history.json").write_text("{ half a fi")
    again = xgrad.sweep(lr=[0.1, 1.0], data=data, client="serial", out=tmp_path, progress=False, **FAST)
    assert [r.resumed for r in again] == [False, True]
    other = xgrad.sweep(lr=[0.1, 1.0], data=_data(seed=1), client="serial", out=tmp_path, progress=False, **FAST)
    assert not any(r.resumed for r in other)  # other data: other runs


def test_a_run_file_with_a_bad_history_is_run_again(tmp_path, caplog):
    """A run file read back is checked as every stored history is, not taken on trust."""
    data = _data()
    first = xgrad.sweep(lr=[0.1, 1.0], data=data, client="serial", out=tmp_path, progress=False, **FAST)
    path = tmp_path / "runs" / first.runs[0].key / "history.json"
    record = json.loads(path.read_text())
    path.write_text(json.dumps({**record, "test_acc": [1.5] * len(record["test_acc"])}))
    with caplog.at_level("WARNING", logger="xgrad"):
        again = xgrad.sweep(lr=[0.1, 1.0], data=data, client="serial", out=tmp_path, progress=False, **FAST)
    assert [r.resumed for r in again] == [False, True]
    assert "'test_acc' must hold accuracies between 0 and 1" in caplog.text
    assert again.runs[0].history == first.runs[0].history


def test_a_run_file_of_the_previous_release_reads_back(tmp_path):
    """Its history.json held the whole TrainResult.to_dict(): the History's fields are read, the rest ignored."""
    data = _data()
    first = xgrad.sweep(lr=0.1, data=data, client="serial", out=tmp_path, progress=False, **FAST)
    run = first.runs[0]
    path = tmp_path / "runs" / run.key / "history.json"
    record = json.loads(path.read_text())
    assert set(record) == {*xgrad.History().to_dict(), "val_acc", "val_loss", "sweep_run"}
    old = {**record, "timings": {"total_s": 1.0}, "config": {"lr": 0.1, "grad": "backprop"}, "interrupted": False,
           "stop_signal": None}
    path.write_text(json.dumps(old))
    again = xgrad.sweep(lr=0.1, data=data, client="serial", out=tmp_path, progress=False, **FAST)
    assert again.runs[0].resumed and again.runs[0].history == run.history


def test_a_sweep_run_keeps_its_history_through_its_dict():
    h = xgrad.History([2.3, 1.1], [2], [0.6], [0.5], 2, "numpy", "cpu", "float32")
    run = SweepRun("a", {"lr": 0.1, "seed": 0}, 0.6, 0.5, 1.7, False, None, 1.0, "local", "numpy", history=h)
    d = json.loads(json.dumps(run.to_dict(history=True)))
    assert d["history"] == h.to_dict() and "history" not in run.to_dict()
    assert SweepRun.from_dict(d) == run and SweepRun.from_dict(d).history == h
    bare = SweepRun.from_dict(run.to_dict())  # a sweep.json keeps no histories
    assert bare.history is None and bare.to_dict(history=True)["history"] is None
    with pytest.raises(ValueError, match="`history` 'eval_iters' must increase"):
        SweepRun.from_dict({**d, "history": {**d["history"], "eval_iters": [2, 1], "train_acc": [.1, .2],
                                             "test_acc": [.1, .2]}})


def test_refine_narrows_the_learning_rate_around_the_best():
    assert refine_lrs([0.001, 0.003, 0.01, 0.03], 0.01) == [0.00548, 0.0173]
    assert refine_lrs([0.01, 0.0173, 0.03], 0.0173) == [0.0132, 0.0228]
    assert refine_lrs([0.1], 0.1) == [0.0577, 0.173]  # alone: three times apart
    assert refine_lrs([0.1, 1.0], 1.0) == [0.316, 3.16]  # on the edge: beyond it
    data = _data()
    result = xgrad.sweep(lr=[0.01, 0.1, 1.0, 10.0], seeds=[0, 1], data=data, client="serial", refine=2,
                         progress=False, **FAST)
    rounds = [r.refine_round for r in result]
    assert rounds == [0] * 8 + [1] * 4 + [2] * 4
    coarse_best = max((0.01, 0.1, 1.0, 10.0), key=lambda lr: np.mean(
        [r.val_acc for r in result.runs[:8] if r.settings["lr"] == lr]))
    assert sorted({r.settings["lr"] for r in result.runs[8:12]}) == refine_lrs([0.01, 0.1, 1.0, 10.0], coarse_best)
    assert all(r.settings["seed"] in (0, 1) for r in result.runs[8:])


def test_table_json_and_figure():
    pytest.importorskip("matplotlib")
    data = _data()
    result = xgrad.sweep(lr=[0.1, 1.0, 1e6], activation=["relu", "sigmoid"], iters=60, eval_every=30,
                         data=data, client="serial", progress=False)
    table = result.to_table().splitlines()
    assert table[0].startswith("best (*) by validation accuracy; test accuracy is reported")
    assert table[1].split()[:3] == ["lr", "seed", "activation"] and len(table) == 8
    assert sum(line.startswith("*") for line in table) == 1
    back = xgrad.SweepResult.from_dict(json.loads(result.to_json()))
    assert back.to_dict() == result.to_dict()
    fig = result.figure(curves=2)
    acc_ax, loss_ax, curve_ax = fig.axes
    assert acc_ax.get_xscale() == "log" and loss_ax.get_xscale() == "log"
    crosses = [line for line in acc_ax.get_lines() if line.get_label() == "diverged"]
    n_diverged = sum(r.diverged for r in result)
    assert n_diverged >= 1 and len(crosses[0].get_xdata()) == n_diverged
    assert len(curve_ax.get_lines()) == 2


def test_runs_use_cupy_where_the_worker_has_a_gpu(monkeypatch):
    assert choose_backend("auto", 1) == "cupy"
    assert choose_backend("auto", 0) == "numpy"
    assert choose_backend("jax", 2) == "jax"
    assert local_cluster_kind(1, True) == "cuda" and local_cluster_kind(1, False) == "cpu"
    asked = []

    def fake_train(backend, **kwargs):
        asked.append(backend)
        raise RuntimeError("stop here")

    monkeypatch.setattr("xgrad._sweep.worker.train", fake_train)
    monkeypatch.setattr("xgrad._sweep.worker.visible_gpus", lambda: 1)
    with pytest.raises(RuntimeError, match="stop here"):
        xgrad.sweep(lr=0.1, data=_data(), client="serial", progress=False)
    monkeypatch.setattr("xgrad._sweep.worker.visible_gpus", lambda: 0)
    with pytest.raises(RuntimeError, match="stop here"):
        xgrad.sweep(lr=0.1, data=_data(), client="serial", progress=False)
    with pytest.raises(RuntimeError, match="stop here"):
        xgrad.sweep(lr=0.1, data=_data(), client="serial", progress=False, backend="torch")
    assert asked == ["cupy", "numpy", "torch"]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"lr": [0.1, -1.0]}, ValueError, "`lr` must be positive"),
        ({"lr": []}, ValueError, "`lr` must hold at least one value"),
        ({"seeds": []}, ValueError, "`seeds` must hold at least one value"),
        ({"seed": 3}, TypeError, "give the seeds as `seeds="),
        ({"checkpoint": "x.npz"}, TypeError, "`checkpoint` is not a setting of a sweep"),
        ({"learning_rate": 0.1}, TypeError, "`learning_rate` is not a setting of xgrad.train"),
        ({"activation": ["relu", "tanh"]}, ValueError, "`activation` must be 'sigmoid' or 'relu'"),
        ({"refine": -1}, ValueError, "`refine` must be >= 0"),
        ({"client": 42}, TypeError, "`client` must be a dask.distributed.Client"),
    ],
)
def test_bad_settings_fail_before_any_run(kwargs, error, message):
    with pytest.raises(error, match=message):
        xgrad.sweep(**{"data": _data(), "progress": False, **kwargs})


def test_without_dask_the_error_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ImportError, match=r'pip install "\.\[dask\]" in the xgrad checkout.*client="serial"'):
        xgrad.sweep(lr=0.1, data=_data(), progress=False)


def test_the_command_line_sweep(tmp_path, capsys):
    out = tmp_path / "lr"
    status = main(["sweep", "--lr", "0.1", "1", "--iters", "20", "--batch-size", "10", "--eval-every", "20",
                   "--backend", "numpy", "--scheduler", "serial", "--refine", "1",
                   "--no-progress", "--out", str(out)])
    assert status == 0
    printed = capsys.readouterr().out
    assert printed.splitlines()[1].split()[:2] == ["lr", "seed"] and "best: lr=" in printed
    assert "validation accuracy" in printed and "(the number to quote)" in printed
    report = json.loads((out / "sweep.json").read_text())
    assert len(report["runs"]) == 4 and len(list(out.glob("runs/*/history.json"))) == 4
    assert main(["sweep", "--lr", "0", "--scheduler", "serial", "--no-progress"]) == 2
    assert "`--lr` must be positive" in capsys.readouterr().err


def test_the_benchmark_script_reports_the_speedup(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_sweep.py"), "--lr", "0.1", "1",
                           "--seeds", "0", "--iters", "10", "--workers", "2", "--json", str(tmp_path / "b.json")],
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "b.json").read_text())
    assert report["runs"] == 2 and report["workers"] == 2 and report["same_results"] is True
    assert report["speedup"] == pytest.approx(report["serial_s"] / report["cluster_s"], rel=0.01)
    assert "speed-up" in done.stdout and "identical results : yes" in done.stdout


def test_the_progress_bar_counts_runs_and_shows_the_best(capsys):
    xgrad.sweep(lr=[0.1, 1.0], data=_data(), client="serial", **FAST)
    err = capsys.readouterr().err
    assert "2/2" in err and "best lr=1 val acc" in err


# --- an `out` that is a file ------------------------------------------------------------

@pytest.fixture
def tiny():
    return tiny_data()


def test_a_sweep_out_that_is_a_file_is_refused_before_any_run(tiny, tmp_path, capsys):
    # was "[Errno 17] File exists: '...'", as if the folder were there already
    afile = tmp_path / "notes.txt"
    afile.write_text("keep me")
    with pytest.raises(ValueError, match=r"`out` '.*notes.txt' is a regular file, not a folder"):
        xgrad.sweep(lr=[0.1], iters=2, batch_size=5, hidden_size=3, data=tiny, client="serial", progress=False,
                    out=afile)
    assert afile.read_text() == "keep me"
    from xgrad._cli.main import main

    assert main(["sweep", "--out", str(afile), "--scheduler", "serial", "--iters", "2", "--no-progress"]) == 2
    assert "`--out` " in capsys.readouterr().err


# --- a sweep stopped by a signal ---------------------------------------------------------

def _signal_at_step(monkeypatch, n, sig):
    from xgrad._train.stepping import Stepping

    real_step, calls = Stepping.step, []

    def step(self, params, idx):
        calls.append(1)
        if len(calls) == n:
            os.kill(os.getpid(), sig)
        return real_step(self, params, idx)

    monkeypatch.setattr(Stepping, "step", step)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_a_serial_sweep_and_keeps_no_cut_short_run(tmp_path, monkeypatch, sig):
    data = _data()
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    _signal_at_step(monkeypatch, FAST["iters"] + 7, sig)  # during the second of three runs
    try:
        with pytest.raises(KeyboardInterrupt) as caught:
            xgrad.sweep(lr=[0.1, 1.0, 3.0], data=data, client="serial", out=tmp_path, progress=False, **FAST)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert isinstance(caught.value, Terminated) == (sig == signal.SIGTERM)
    files = sorted(tmp_path.glob("runs/*/history.json"))
    assert [p.parent.name.split("-")[0] for p in files] == ["lr=0.1_seed=0"]  # only the finished run
    assert len(json.loads(files[0].read_text())["loss"]) == FAST["iters"]
    assert not (tmp_path / "sweep.json").exists()
    monkeypatch.undo()
    again = xgrad.sweep(lr=[0.1, 1.0, 3.0], data=data, client="serial", out=tmp_path, progress=False, **FAST)
    assert [r.resumed for r in again] == [True, False, False]
    assert all(len(r.history.loss) == FAST["iters"] for r in again)


@pytest.mark.parametrize(("sig", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_the_sweep_command_stopped_by_a_signal_exits_with_its_status(tmp_path, monkeypatch, capsys, sig, status):
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    _signal_at_step(monkeypatch, 25, sig)
    try:
        code = main(["sweep", "--lr", "0.1", "1", "--iters", "20", "--batch-size", "10", "--eval-every", "10",
                     "--backend", "numpy", "--scheduler", "serial", "--no-progress", "--out", str(tmp_path)])
    finally:
        signal.signal(signal.SIGINT, previous)
    assert code == status
    err = capsys.readouterr().err
    assert f"xgrad sweep: stopped by {signal.Signals(sig).name}: the run in progress is dropped" in err
    assert "with the same `--out` reads the finished runs back" in err and "Traceback" not in err
    assert len(list(tmp_path.glob("runs/*/history.json"))) == 1


# --- settings given as NumPy values ------------------------------------------------------

def test_numpy_scalars_in_a_grid_are_stored_as_plain_numbers(tmp_path):
    pytest.importorskip("matplotlib")
    from xgrad._sweep.result import SweepResult

    data = _data()
    result = xgrad.sweep(lr=[np.float32(0.5), np.float64(1.0)], seeds=[np.int64(0)], hidden_size=np.int32(8), data=data,
                         client="serial", out=tmp_path, progress=False, **FAST)
    saved = json.loads((tmp_path / "sweep.json").read_text())
    lrs = [r["settings"]["lr"] for r in saved["runs"]]
    assert lrs == [0.5, 1.0] and all(type(r.settings["lr"]) is float for r in result)  # np.float64 too
    assert all(type(r["settings"]["seed"]) is int and type(r["settings"]["hidden_size"]) is int
               for r in saved["runs"])
    back = SweepResult.from_dict(saved)
    assert [r.settings for r in back] == [r.settings for r in result]
    plain = xgrad.sweep(lr=[0.5, 1.0], seeds=[0], hidden_size=8, data=data, client="serial", out=tmp_path,
                        progress=False, **FAST)
    assert all(r.resumed for r in plain)  # the same runs, under the same keys


# --- clear errors for arrays, sets and clients --------------------------------------------

def test_a_1d_array_is_a_list_of_values():
    data = _data()
    result = xgrad.sweep(lr=np.array([0.5, 1.0]), seeds=np.arange(2), data=data, client="serial", progress=False,
                         **FAST)
    assert [(r.settings["lr"], r.settings["seed"]) for r in result] == [(0.5, 0), (0.5, 1), (1.0, 0), (1.0, 1)]
    assert all(type(r.settings["lr"]) is float and type(r.settings["seed"]) is int for r in result)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"lr": {0.1, 1.0}}, TypeError, r"`lr` is a set, which has no order; give a list or a tuple"),
        ({"seeds": {0, 1}}, TypeError, r"`seeds` is a set, which has no order"),
        ({"lr": np.ones((2, 2))}, ValueError, r"`lr` is an array of shape \(2, 2\); give one value, or a list"),
        ({"client": "Serail"}, ValueError, r"`client` 'Serail' is neither 'serial' nor a Dask scheduler's address"),
        ({"client": "tcp://localhost"}, ValueError, r"`client` 'tcp://localhost' is neither"),
    ],
)
def test_bad_grids_and_clients_are_refused_with_what_to_give(kwargs, error, message):
    with pytest.raises(error, match=message):
        xgrad.sweep(**{"data": _data(), "progress": False, **kwargs})


def test_serial_in_any_case_and_the_command_names_its_option(capsys):
    result = xgrad.sweep(lr=0.5, data=_data(), client="Serial", progress=False, **FAST)
    assert result.runs[0].worker == "local"
    assert main(["sweep", "--lr", "0.1", "--iters", "2", "--batch-size", "10", "--backend", "numpy",
                 "--scheduler", "SERIAL", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["sweep", "--lr", "0.1", "--iters", "2", "--scheduler", "seriel", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "`--scheduler` 'seriel' is neither 'serial' nor a Dask scheduler's address" in err


@pytest.mark.parametrize("damage", [{"train_acc": "0.9"}, {"val_acc": 7.0}, {"diverged": "no"}, {"seconds": None},
                                    {"refine_round": -1}, {"loss": [1.0]}])
def test_a_run_file_with_a_damaged_sweep_run_is_run_again(tmp_path, caplog, damage):
    data = _data()
    first = xgrad.sweep(lr=[0.1, 1.0], data=data, client="serial", out=tmp_path, progress=False, **FAST)
    path = tmp_path / "runs" / first.runs[0].key / "history.json"
    record = json.loads(path.read_text())
    path.write_text(json.dumps({**record, "sweep_run": {**record["sweep_run"], **damage}}))
    with caplog.at_level("WARNING", logger="xgrad"):
        again = xgrad.sweep(lr=[0.1, 1.0], data=data, client="serial", out=tmp_path, progress=False, **FAST)
    assert [r.resumed for r in again] == [False, True]
    assert f"running {first.runs[0].key} again" in caplog.text
    assert again.to_table()  # nothing damaged reaches the report
    for bad in (None, [1, 2]):
        path.write_text(json.dumps({**record, "sweep_run": bad}))
        assert not xgrad.sweep(lr=[0.1, 1.0], data=data, client="serial", out=tmp_path, progress=False,
                               **FAST).runs[0].resumed


def test_a_sweep_says_how_many_runs_it_reads_back(tmp_path, caplog):
    data = _data()
    xgrad.sweep(lr=[0.1, 1.0], data=data, client="serial", out=tmp_path, progress=False, **FAST)
    with caplog.at_level("INFO", logger="xgrad"):
        xgrad.sweep(lr=[0.1, 1.0, 3.0], data=data, client="serial", out=tmp_path, progress=False, **FAST)
    said = [r.getMessage() for r in caplog.records if "read back" in r.getMessage()]
    assert said == [f"2 of 3 runs read back from {tmp_path}"]


# --- a script without `if __name__ == "__main__":` ---------------------------------------

_SCRIPT = """
import numpy as np, xgrad
rng = np.random.default_rng(0)
x = rng.normal(size=(60, 20)).astype(np.float32)
t = (x[:, :10] @ rng.normal(size=(10, 10))).argmax(axis=1)
{call}
"""


@pytest.mark.parametrize("guard", [False, True])
def test_a_script_without_a_main_guard_stops_at_once_with_what_to_add(tmp_path, guard):
    call = "r = xgrad.sweep(lr=[0.1, 1.0], iters=5, batch_size=10, data=((x, t), (x, t)), progress=False)"
    if guard:
        call = f"if __name__ == '__main__':\n    {call}\n    print('runs', len(r))"
    script = tmp_path / "sweep_script.py"
    script.write_text(_SCRIPT.format(call=call))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, env=env,
                          cwd=tmp_path)
    if guard:
        assert done.returncode == 0 and "runs 2" in done.stdout, done.stderr
        return
    assert done.returncode == 1
    assert done.stderr.count("Traceback") == 1 and len(done.stderr.splitlines()) < 20, done.stderr
    last = done.stderr.splitlines()[-1]
    assert last.startswith("RuntimeError: xgrad.sweep() starts a local Dask cluster") and "line 6" in last
    assert 'put the sweep under `if __name__ == "__main__":`' in last and 'client="serial"' in last
