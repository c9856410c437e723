"""Faults a training run must survive: full disks, signals at any moment, damaged files."""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest

import xgrad
from xgrad import CheckpointError, FileFormatError, TwoLayerNet, train
from xgrad._cli.main import main
from xgrad._infra import files as _files

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def small():
    """600 training and 200 test digits of the real MNIST."""
    (x, t), (xt, tt) = xgrad.load_mnist()
    return (x[:600], t[:600]), (xt[:200], tt[:200])


# -- a disk that fills up in the middle of a write -----------------------------
class _FullFile:
    """A file that takes `budget` bytes, then fails as a full disk does."""

    def __init__(self, f, budget: int) -> None:
        self._f, self._budget = f, budget

    def write(self, data):
        if len(data) > self._budget:
            self._f.write(data[: self._budget])
            self._budget = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._budget -= len(data)
        return self._f.write(data)

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self._f.__exit__(*exc)


@pytest.fixture
def full_disk(monkeypatch):
    """From now on, every atomic write fails with ENOSPC after 100 bytes."""
    fake = types.SimpleNamespace(**{k: getattr(os, k) for k in dir(os) if not k.startswith("__")})
    fake.fdopen = lambda fd, *a, **kw: _FullFile(os.fdopen(fd, *a, **kw), 100)
    return lambda: monkeypatch.setattr(_files, "os", fake)


def _assert_only(folder: Path, names: set[str]) -> None:
    assert {p.name for p in folder.iterdir()} == names  # no temporary file left


def test_full_disk_keeps_the_previous_network_file(tmp_path, full_disk):
    net = TwoLayerNet(6, 4, 3, seed=1)
    net.save(tmp_path / "net.npz")
    full_disk()
    with pytest.raises(OSError, match="No space left"):
        TwoLayerNet(6, 4, 3, seed=2).save(tmp_path / "net.npz")
    _assert_only(tmp_path, {"net.npz"})
    again = TwoLayerNet.load(tmp_path / "net.npz")
    for k, v in net.params.items():
        np.testing.assert_array_equal(again.params[k], v)


def test_full_disk_during_a_checkpoint_stops_with_the_partial_run(small, tmp_path, full_disk):
    ckpt = tmp_path / "run.npz"
    kw = {"data": small, "eval_every": 0, "progress": False, "checkpoint": ckpt, "checkpoint_every": 5}
    train("numpy", iters=10, **kw)
    full_disk()
    with pytest.raises(CheckpointError, match=f"cannot write checkpoint {ckpt}: No space left") as info:
        train("numpy", iters=30, resume=True, **kw)
    partial = info.value.result
    assert len(partial.loss) == 15 and partial.interrupted
    _assert_only(tmp_path, {"run.npz"})
    with np.load(ckpt) as saved:
        assert json.loads(str(saved["meta"]))["iteration"] == 10
    resumed = train("numpy", iters=10, resume=True, **{**kw, "checkpoint": ckpt})
    assert len(resumed.loss) == 10


def test_full_disk_on_the_outputs_keeps_the_previous_ones(tmp_path, full_disk, capsys):
    out = tmp_path / "run"
    argv = ["train", "--backend", "numpy", "--iters", "20", "--eval-every", "10", "--no-progress", "--out", str(out)]
    assert main(argv) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    full_disk()
    assert main([*argv[:4], "30", *argv[5:]]) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and err.splitlines()[-1].startswith("xgrad train: error: cannot write")
    after = {p.name: p.read_bytes() for p in out.iterdir()}
    assert after == before  # every file still the whole previous one, no temporary file
    assert len(json.loads(after["history.json"])["loss"]) == 20


# -- signals at random moments of a real run ---------------------------------
# `python -m xgrad`, with Ctrl-C and SIGTERM answered as in a terminal's foreground job even
# when this suite runs as a background job (which starts with Ctrl-C ignored, and a run
# rightly keeps an ignored Ctrl-C); set in the child itself, since a pre-exec hook would
# make subprocess fork, which JAX, when loaded here, warns against
_XGRAD_WITH_DEFAULT_SIGNALS = (
    "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "signal.signal(signal.SIGTERM, signal.SIG_DFL); from xgrad._cli.main import main; sys.exit(main(sys.argv[1:]))"
)


def _run_and_stop(tmp: Path, sig: int, extra: list[str], rng: random.Random) -> tuple[int, Path, Path]:
    out, ckpt = tmp / "out", tmp / "run.npz"
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-c", _XGRAD_WITH_DEFAULT_SIGNALS, "train", "--backend", "numpy", "--iters", "100000",
           "--no-progress",
           "--out", str(out), "--checkpoint", str(ckpt), *extra]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not ckpt.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert ckpt.exists(), proc.communicate()[1] if proc.poll() is not None else "no checkpoint"
        time.sleep(rng.uniform(0.0, 0.4))
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "Traceback" not in err, err
    return proc.returncode, out, ckpt


@pytest.mark.parametrize(
    ("sig", "extra"),
    [
        (signal.SIGTERM, ["--eval-every", "1", "--checkpoint-every", "5"]),  # mostly evaluating
        (signal.SIGINT, ["--eval-every", "1", "--checkpoint-every", "5"]),
        (signal.SIGTERM, ["--eval-every", "0", "--checkpoint-every", "1"]),  # mostly writing checkpoints
        (signal.SIGINT, ["--eval-every", "7", "--checkpoint-every", "3"]),
    ],
    ids=["term-eval", "int-eval", "term-checkpoint", "int-mixed"],
)
def test_a_signal_at_any_moment_leaves_consistent_outputs(tmp_path, sig, extra):
    pytest.importorskip("matplotlib")
    from xgrad import plot

    rng = random.Random(f"{sig}{extra}{time.time_ns()}")
    status, out, ckpt = _run_and_stop(tmp_path, sig, extra, rng)
    assert status == {signal.SIGTERM: 143, signal.SIGINT: 130}[sig]
    history = json.loads((out / "history.json").read_text())
    assert history["interrupted"] is True and history["stop_signal"] == signal.Signals(sig).name
    assert len(history["eval_iters"]) == len(history["train_acc"]) == len(history["test_acc"])
    plot.training_curves(out / "history.json")
    assert main(["plot", "training", "--history", str(out / "history.json"), "--out", str(tmp_path / "t.png")]) == 0
    net = TwoLayerNet.load(out / "net.npz", dtype="float32")
    with np.load(ckpt) as saved:  # the last checkpoint is the state of the outputs
        meta = json.loads(str(saved["meta"]))
        assert meta["iteration"] == len(history["loss"]) == len(saved["loss"])
        for k, v in net.params.items():
            np.testing.assert_array_equal(saved[f"param_{k}"], v)
    more = train("numpy", iters=meta["iteration"] + 2, checkpoint=ckpt, resume=True, eval_every=0,
                 progress=False)
    assert len(more.loss) == meta["iteration"] + 2
    np.testing.assert_array_equal(more.loss[: meta["iteration"]], history["loss"])


# -- damaged and edited files ------------------------------------------------
def _edit_npz(path: Path, **changes) -> None:
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    arrays.update(changes)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    path.unlink()
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def _edit_meta(path: Path, **changes) -> None:
    with np.load(path) as data:
        meta = json.loads(str(data["meta"]))
    meta.update(changes)
    _edit_npz(path, meta=np.array(json.dumps(meta)))


def _truncate(path: Path, size: int | None = None) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2 if size is None else size])


NET_DAMAGE = {
    "truncated": (lambda p: _truncate(p), "not a readable"),
    "empty": (lambda p: _truncate(p, 0), r"empty \(0 bytes\)"),
    "not a zip": (lambda p: p.write_text("hello"), "not a readable"),
    "NaN weights": (lambda p: _edit_npz(p, W2=np.full((4, 3), np.nan)), "W2 holds 12 NaN or infinite"),
    "b1 too short": (lambda p: _edit_npz(p, b1=np.zeros(3)), "b1 has 3 entries but the network's shapes need 4"),
    "W2 rows": (lambda p: _edit_npz(p, W2=np.zeros((5, 3))), "W2 rows has 5 entries"),
    "b2 length": (lambda p: _edit_npz(p, b2=np.zeros(2)), "b2 has 2 entries"),
    "W1 1-d": (lambda p: _edit_npz(p, W1=np.zeros(6)), r"W1 has shape \(6,\)"),
    "integer weights": (lambda p: _edit_npz(p, W1=np.zeros((6, 4), dtype=np.int64)), "W1 has dtype int64"),
    "activation": (lambda p: _edit_npz(p, activation=np.array("tanh")), "activation must be 'sigmoid' or 'relu'"),
    "activation number": (lambda p: _edit_npz(p, activation=np.array(3.0)), "activation must be"),
    "missing b2": (lambda p: _edit_npz(p, b2=None), "missing b2"),
}


@pytest.mark.parametrize("damage", list(NET_DAMAGE))
def test_damaged_network_file_gives_one_clear_error(tmp_path, damage):
    path = tmp_path / "net.npz"
    TwoLayerNet(6, 4, 3).save(path)
    edit, match = NET_DAMAGE[damage]
    edit(path)
    with pytest.raises(FileFormatError, match=match) as info:
        TwoLayerNet.load(path)
    assert str(path) in str(info.value) and info.value.path == str(path)
    assert isinstance(info.value, ValueError)


CKPT_DAMAGE = {
    "truncated": (lambda p: _truncate(p), "not a readable xgrad checkpoint"),
    "empty": (lambda p: _truncate(p, 0), r"empty \(0 bytes\)"),
    "meta not JSON": (lambda p: _edit_npz(p, meta=np.array("{iteration")), "metadata is not JSON"),
    "meta a list": (lambda p: _edit_npz(p, meta=np.array("[1, 2]")), "not a JSON object"),
    "meta missing key": (lambda p: _edit_npz(p, meta=np.array('{"iteration": 10}')), "metadata lacks config"),
    "iteration a string": (lambda p: _edit_meta(p, iteration="10"), "'iteration' must be a count"),
    "iteration negative": (lambda p: _edit_meta(p, iteration=-1), "'iteration' must be a count"),
    "fewer losses": (lambda p: _edit_meta(p, iteration=10), "holds 30 losses for iteration 10"),
    "config a list": (lambda p: _edit_meta(p, config=[]), "'config' must be a JSON object"),
    "eval lists differ": (lambda p: _edit_meta(p, train_acc=[0.5]), "lists of equal length"),
    "eval_iters a dict": (lambda p: _edit_meta(p, eval_iters={}), "'eval_iters' must be a list of numbers; got dict"),
    "eval_iters decrease": (lambda p: _edit_meta(p, eval_iters=[20, 10], train_acc=[.1, .2], test_acc=[.1, .2]),
                            "'eval_iters' must increase"),
    "eval beyond iteration": (lambda p: _edit_meta(p, eval_iters=[31], train_acc=[.1], test_acc=[.1]),
                              r"'eval_iters' must be iterations in 1\.\.30"),
    "accuracy above 1": (lambda p: _edit_meta(p, eval_iters=[5], train_acc=[1.5], test_acc=[.1]),
                         "'train_acc' must hold accuracies"),
    "NaN accuracy": (lambda p: _edit_meta(p, eval_iters=[5], train_acc=[.1], test_acc=[float("nan")]),
                     "'test_acc' holds NaN or infinite values"),
    "eval at a fraction": (lambda p: _edit_meta(p, eval_iters=[5.5], train_acc=[.1], test_acc=[.1]),
                           r"'eval_iters' must be iterations in 1\.\.30"),
    "infinite loss": (lambda p: _edit_npz(p, loss=np.r_[np.ones(29), np.inf]), "'loss' holds NaN or infinite"),
    "loss 2-d": (lambda p: _edit_npz(p, loss=np.zeros((30, 1))), "'loss' must be a 1-d float array"),
    "NaN loss": (lambda p: _edit_npz(p, loss=np.full(30, np.nan)), "'loss' holds NaN"),
    "NaN weights": (lambda p: _edit_npz(p, param_W1=np.full((784, 50), np.nan, dtype=np.float32)),
                    "W1 holds 39200 NaN"),
    "b1 wrong length": (lambda p: _edit_npz(p, param_b1=np.zeros(49, dtype=np.float32)), "b1 has 49 entries"),
    "missing W2": (lambda p: _edit_npz(p, param_W2=None), "missing W2"),
    "pickled meta": (lambda p: _edit_npz(p, meta=np.array([{"a": 1}], dtype=object)), "not a readable"),
}


@pytest.fixture(scope="module")
def good_checkpoint(small, tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "run.npz"
    train("numpy", data=small, iters=30, eval_every=0, progress=False, checkpoint=path, checkpoint_every=10)
    return path.read_bytes()


@pytest.mark.parametrize("damage", list(CKPT_DAMAGE))
def test_damaged_checkpoint_gives_one_clear_error(small, tmp_path, good_checkpoint, damage):
    path = tmp_path / "run.npz"
    path.write_bytes(good_checkpoint)
    edit, match = CKPT_DAMAGE[damage]
    edit(path)
    with pytest.raises(FileFormatError, match=match) as info:
        train("numpy", data=small, iters=40, eval_every=0, progress=False, checkpoint=path, resume=True)
    assert str(path) in str(info.value)


def test_a_checkpoint_and_a_history_json_refuse_the_same_damage_alike(small, tmp_path, good_checkpoint):
    """The history in a checkpoint is read by the one reader of stored histories."""
    from xgrad._train.record import read_history

    path = tmp_path / "run.npz"
    path.write_bytes(good_checkpoint)
    evals = {"eval_iters": [5, 9], "train_acc": [0.2, 1.5], "test_acc": [0.1, 0.2]}
    _edit_meta(path, **evals)
    with pytest.raises(FileFormatError) as from_checkpoint:
        train("numpy", data=small, iters=40, eval_every=0, progress=False, checkpoint=path, resume=True)
    with np.load(path) as saved:
        loss = saved["loss"].tolist()
    (tmp_path / "history.json").write_text(json.dumps({"loss": loss, **evals, "iters_per_epoch": 1}))
    with pytest.raises(FileFormatError) as from_json:
        read_history(tmp_path / "history.json")
    reason = ": `history` 'train_acc' must hold accuracies between 0 and 1"
    assert str(from_checkpoint.value).endswith(reason) and str(from_json.value).endswith(reason)


def test_damaged_checkpoint_is_one_line_in_the_command(tmp_path, capsys):
    path = tmp_path / "run.npz"
    path.write_bytes(b"")
    status = main(["train", "--backend", "numpy", "--iters", "5", "--no-progress", "--checkpoint", str(path),
                   "--resume"])
    assert status == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("xgrad train: error: ") and str(path) in err[-1]
