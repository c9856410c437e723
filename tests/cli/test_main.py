"""The ``xgrad`` command as a person uses it, and the faults a run must survive:
a full disk keeps the previous outputs, Ctrl-C or SIGTERM at any moment leaves
outputs that agree with the last checkpoint, and a damaged checkpoint is one
line of error."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from _helpers import fill_the_disk

import xgrad
from xgrad import TwoLayerNet, train
from xgrad._cli.main import main


def test_train_writes_history_curves_and_weights(tmp_path, capsys):
    out = tmp_path / "run"
    status = main(["train", "--backend", "numpy", "--iters", "120", "--eval-every", "60", "--no-progress",
                   "--out", str(out)])
    assert status == 0
    summary = capsys.readouterr().out
    assert "120 iterations on numpy" in summary and "test accuracy" in summary
    history = json.loads((out / "history.json").read_text())
    assert len(history["loss"]) == 120 and history["eval_iters"] == [1, 61, 120]
    assert history["config"]["lr"] == 0.1
    assert (out / "training.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from xgrad import TwoLayerNet

    assert TwoLayerNet.load(out / "net.npz").sizes == (784, 50, 10)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--lr", "-1", "--backend", "numpy"], "`--lr` must be positive"),
        (["train", "--backend", "nope"], "unknown backend 'nope'"),
        (["train", "--backend", "numpy", "--threads", "many"], "`--threads` must be"),
        (["train", "--backend", "numpy", "--batch-size", "70000"], "larger than the training set"),
        (["plot", "nothing", "--out", "x.png"], "nothing"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_divergence_exits_1_and_keeps_the_partial_run(tmp_path, capsys):
    status = main(["train", "--backend", "numpy", "--iters", "50", "--lr", "1e38", "--no-progress",
                   "--out", str(tmp_path)])
    assert status == 1
    assert "diverged at iteration" in capsys.readouterr().err
    assert json.loads((tmp_path / "history.json").read_text())["interrupted"] is True


@pytest.mark.parametrize("name", ["tangent", "gradient-field", "descent", "step-error"])
def test_plot_writes_an_image(name, tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / f"{name}.png"
    assert main(["plot", name, "--out", str(path)]) == 0
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_plot_training_from_history(tmp_path):
    pytest.importorskip("matplotlib")
    history = {"loss": [2.3, 2.0, 1.5], "eval_iters": [1, 3], "train_acc": [0.1, 0.5],
               "test_acc": [0.1, 0.4], "iters_per_epoch": 2}
    (tmp_path / "h.json").write_text(json.dumps(history))
    assert main(["plot", "training", "--history", str(tmp_path / "h.json"), "--out", str(tmp_path / "t.png")]) == 0
    assert (tmp_path / "t.png").exists()


def test_backends_lists_every_backend(capsys):
    assert main(["backends"]) == 0
    out = capsys.readouterr().out
    for name in ("numpy", "cupy", "torch", "jax", "array_api_strict"):
        assert name in out
    assert "numpy             ok" in out


def test_module_entry_point():
    done = subprocess.run([sys.executable, "-m", "xgrad", "--help"], capture_output=True, text=True, check=True)
    assert "train" in done.stdout and "plot" in done.stdout


def test_train_help_shows_every_default_of_train(capsys):
    import inspect

    import xgrad

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    signature = inspect.signature(xgrad.train).parameters
    shown = {"activation": "sigmoid", "hidden_size": 50, "dtype": "float32", "weight_init_std": 0.01}
    for name in ("dataset", "iters", "batch_size", "lr", "gradient", "seed", "threads"):
        shown[name] = signature[name].default
    shown["checkpoint_every"] = 100  # train's None: 100 with a checkpoint, refused without one
    for name, default in shown.items():
        assert f"--{name.replace('_', '-')}" in text
        assert f"(default: {default})" in text, name
    assert "(default: one epoch)" in text


# -- refused before any training ----------------------------------------------
@pytest.fixture
def no_training(monkeypatch):
    from xgrad._train import run as _trainrun

    monkeypatch.setattr(_trainrun.Run, "loop", lambda *a: pytest.fail("trained before refusing"))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--out", "/dev/null"], "`--out` '/dev/null' is a character device, not a folder"),
        (["--out", "{tmp}/file"], "is a regular file, not a folder"),
        (["--out", "/proc/xgrad-none"], "`--out` '/proc/xgrad-none' cannot be written"),
        (["--out", "{tmp}/dir-with-folder"], "'{tmp}/dir-with-folder/net.npz' is a folder, not a regular file"),
        (["--checkpoint", "/dev/null"], "`--checkpoint` '/dev/null' is a character device"),
        (["--checkpoint", "{tmp}/file/run.npz"], "`--checkpoint` '{tmp}/file/run.npz' cannot be used: Not a dir"),
        (["--data-dir", "{tmp}/nowhere"], "`--data-dir` '{tmp}/nowhere' does not exist"),
        (["--resume"], "`--resume` needs `--checkpoint`"),
        (["--out", "{tmp}/o", "--checkpoint", "{tmp}/o/net.npz"], "is one of the outputs of `--out`"),
        (["--gradient", "numerical", "--h", "1e30"], "`--h` must be at most 1"),
        (["--h", "1e-4"], "no effect when `--gradient` is 'backprop'; leave `--h` out, or set `--gradient` to"),
        (["--batch-size", "0"], "`--batch-size` must be >= 1; got 0"),
        (["--checkpoint-every", "0", "--checkpoint", "{tmp}/c.npz"], "`--checkpoint-every` must be >= 1"),
    ],
)
def test_unusable_paths_and_settings_exit_2_before_training(extra, message, tmp_path, capsys, no_training):
    (tmp_path / "file").write_text("x")
    (tmp_path / "dir-with-folder" / "net.npz").mkdir(parents=True)
    argv = ["train", "--backend", "numpy", "--iters", "50", "--no-progress",
            *(a.replace("{tmp}", str(tmp_path)) for a in extra)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message.replace("{tmp}", str(tmp_path)) in err[0]
    assert (tmp_path / "file").read_text() == "x"


def test_a_failing_checkpoint_exits_2_and_writes_the_partial_run(tmp_path, capsys, monkeypatch):
    from xgrad._train import checkpoint as _checkpoint

    calls, real = [], _checkpoint.atomic_write

    def atomic_write(path, **kw):
        calls.append(1)
        if len(calls) == 2:  # at iteration 20
            raise OSError(28, "No space left on device")
        return real(path, **kw)

    monkeypatch.setattr(_checkpoint, "atomic_write", atomic_write)
    out = tmp_path / "out"
    status = main(["train", "--backend", "numpy", "--iters", "30", "--no-progress", "--checkpoint",
                   str(tmp_path / "c.npz"), "--checkpoint-every", "10", "--out", str(out)])
    assert status == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"xgrad train: error: cannot write checkpoint {tmp_path / 'c.npz'}: No space left on device"
    assert len(json.loads((out / "history.json").read_text())["loss"]) == 20
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.npz", "out"]


def test_plot_training_refuses_a_bad_history_in_one_line(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    bad = tmp_path / "history.json"
    for content in ("not json {", '{"loss": [1, 2]}', json.dumps({"loss": [1.0], "eval_iters": [1, 2],
                    "train_acc": [0.1], "test_acc": [0.1], "iters_per_epoch": 1})):
        bad.write_text(content)
        assert main(["plot", "training", "--history", str(bad), "--out", str(tmp_path / "t.png")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(bad) in err[0] and "not a training history" in err[0]
    assert not (tmp_path / "t.png").exists()


# -- `--gradient`, once called `--grad` ----------------------------------------
@pytest.mark.parametrize(("option", "warned"), [("--gradient", False), ("--grad", True)])
def test_gradient_option_and_its_old_name(option, warned, tmp_path, capsys):
    argv = ["train", "--backend", "numpy", "--iters", "2", "--eval-every", "0", "--batch-size", "10",
            "--no-progress", "--out", str(tmp_path), option, "numerical"]
    assert main(argv) == 0
    config = json.loads((tmp_path / "history.json").read_text())["config"]
    assert config["gradient"] == "numerical" and "grad" not in config
    err = capsys.readouterr().err
    assert ("xgrad train: warning: `--grad` is deprecated; use `--gradient`" in err) is warned


def test_help_shows_gradient_and_hides_the_old_name(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    assert "--gradient {backprop,numerical}" in text
    assert "--grad " not in text and "--grad\n" not in text and "[--grad " not in text


@pytest.mark.parametrize(("value", "got"), [
    ("0", "0"), ("-1", "-1"), ("1.5", "str '1.5'"), ("many", "str 'many'"), ("True", "str 'True'"),
])
def test_bad_threads_have_the_library_message(value, got, capsys, no_training):
    assert main(["train", "--backend", "numpy", "--no-progress", "--threads", value]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"xgrad train: error: `--threads` must be a positive integer, 'auto' or 'default'; got {got}"]


@pytest.mark.parametrize("extra", [["--lr", "-1"], ["--h", "1e-4"], ["--iters", "-2"]])
def test_a_refused_run_leaves_no_new_folder(extra, tmp_path, capsys, no_training):
    out, ckpt = tmp_path / "new" / "run", tmp_path / "other" / "deep" / "c.npz"
    argv = ["train", "--backend", "numpy", "--no-progress", "--out", str(out), "--checkpoint", str(ckpt), *extra]
    assert main(argv) == 2
    assert "error" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_outputs_go_into_folders_that_do_not_exist_yet(tmp_path):
    pytest.importorskip("matplotlib")
    import xgrad

    image = tmp_path / "figs" / "deep" / "tangent.png"
    assert main(["plot", "tangent", "--out", str(image)]) == 0
    assert image.stat().st_size > 0
    net = xgrad.TwoLayerNet(4, 3, 2, seed=0)
    net.save(tmp_path / "nets" / "a" / "net.npz")
    assert (tmp_path / "nets" / "a" / "net.npz").exists()


# --- a disk that fills up in the middle of writing the outputs ---------------------------

@pytest.fixture
def full_disk(monkeypatch):
    """Called, it makes every atomic write from then on fail with ENOSPC after 100 bytes."""
    return lambda: fill_the_disk(monkeypatch)


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


# --- signals at random moments of a real run ----------------------------------------------

ROOT = Path(__file__).resolve().parents[2]

# `python -m xgrad`, with Ctrl-C and SIGTERM answered as in a terminal's foreground job even
# when this suite runs as a background job (which starts with Ctrl-C ignored, and a run
# rightly keeps an ignored Ctrl-C); set in the child itself, since a pre-exec hook would
# make subprocess fork, which JAX, when loaded here, warns against
_XGRAD_WITH_DEFAULT_SIGNALS = (
    "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "signal.signal(signal.SIGTERM, signal.SIG_DFL); from xgrad._cli.main import main; sys.exit(main(sys.argv[1:]))"
)


def _run_and_stop(tmp: Path, sig: int, extra: list[str], rng: random.Random) -> tuple[int, Path, Path, str]:
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
    return proc.returncode, out, ckpt, err


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
    status, out, ckpt, err = _run_and_stop(tmp_path, sig, extra, rng)
    assert status == {signal.SIGTERM: 143, signal.SIGINT: 130}[sig]
    # the last line says how to go on: the same command with --resume
    assert err.strip().splitlines()[-1] == (
        f"xgrad train: stopped by {signal.Signals(sig).name}; {ckpt} holds the run: resume it with xgrad train "
        f"--backend numpy --iters 100000 --no-progress --out {out} --checkpoint {ckpt} {' '.join(extra)} --resume")
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


# --- a damaged checkpoint -----------------------------------------------------------------

def test_damaged_checkpoint_is_one_line_in_the_command(tmp_path, capsys):
    path = tmp_path / "run.npz"
    path.write_bytes(b"")
    status = main(["train", "--backend", "numpy", "--iters", "5", "--no-progress", "--checkpoint", str(path),
                   "--resume"])
    assert status == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("xgrad train: error: ") and str(path) in err[-1]


# --- settings refused in the command's terms ---------------------------------------------

def test_the_sweep_command_refuses_no_iterations(capsys):
    from xgrad._cli.main import main

    assert main(["sweep", "--iters", "0", "--lr", "0.1", "--scheduler", "serial", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "`--iters` must be at least 1 in a sweep; got 0" in err and "diverged" not in err


def test_the_train_command_refuses_checkpoint_every_without_checkpoint(capsys):
    from xgrad._cli.main import main

    assert main(["train", "--checkpoint-every", "50", "--iters", "1", "--no-progress", "--backend", "numpy"]) == 2
    assert "`--checkpoint-every` (50) has no effect without `--checkpoint`" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["other files", "fifo"])
def test_a_data_dir_without_the_data_set_exits_2_instead_of_training_on_another_copy(
        kind, tmp_path, capsys, no_training):
    if kind == "fifo":
        data_dir = tmp_path / "data"
        data_dir.mkdir()
        for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte"):
            (data_dir / f"{stem}.gz").symlink_to(Path(xgrad.__file__).parent / "_data" / "mnist" / f"{stem}.gz")
        os.mkfifo(data_dir / "t10k-labels-idx1-ubyte")
        problem = "t10k-labels-idx1-ubyte is a FIFO, not a regular file"
    else:
        data_dir, problem = Path("/etc"), "train-images-idx3-ubyte (raw or .gz) is missing"
    argv = ["train", "--backend", "numpy", "--iters", "5", "--no-progress", "--data-dir", str(data_dir)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert f"`--data-dir` {str(data_dir)!r} does not hold the mnist data set: {problem}" in err[0]
    assert "leave `--data-dir` out" in err[0]


# --- what a run says at its end ----------------------------------------------------

def test_resuming_a_finished_run_says_it_is_complete(tmp_path, capsys):
    ckpt = str(tmp_path / "run.npz")
    argv = ["train", "--backend", "numpy", "--iters", "20", "--eval-every", "0", "--no-progress", "--checkpoint", ckpt]
    assert main(argv) == 0
    capsys.readouterr()
    assert main([*argv, "--resume"]) == 0
    out = capsys.readouterr().out
    assert out.strip() == ("20 iterations on numpy (cpu, float32): no evaluation; the run was already complete: "
                           "nothing left to train (give a larger `--iters` to train on)")
    assert main([*argv[:4], "25", *argv[5:], "--resume"]) == 0
    assert "25 iterations on numpy" in capsys.readouterr().out


def test_train_and_plot_report_what_they_wrote_on_stdout(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "run"
    assert main(["train", "--backend", "numpy", "--iters", "5", "--eval-every", "0", "--no-progress",
                 "--out", str(out)]) == 0
    written = capsys.readouterr()
    assert f"wrote {out}: history.json, net.npz, training.png" in written.out.splitlines()
    assert "wrote" not in written.err
    assert main(["plot", "training", "--history", str(out / "history.json"), "--out", str(tmp_path / "t.png")]) == 0
    written = capsys.readouterr()
    assert written.out.strip() == f"wrote {tmp_path / 't.png'}" and "wrote" not in written.err


@pytest.mark.parametrize(("argv", "message"), [
    (["training", "--history", "{tmp}/missing.json"], "`--history` '{tmp}/missing.json' does not exist; give the "
     "history.json that `xgrad train --out DIR` writes in DIR"),
    (["training", "--history", "{tmp}"], "`--history` '{tmp}' is a folder, not a regular file; give the history.json"),
    (["tangent", "--out", "{tmp}/f.xyz"], "`--out` '{tmp}/f.xyz': matplotlib cannot write .xyz files; end the name "
     "with one of "),
])
def test_plot_names_a_file_it_cannot_use_and_what_to_give(argv, message, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    out = [] if "--out" in argv else ["--out", str(tmp_path / "f.png")]
    assert main(["plot", *argv, *out]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("xgrad plot: error: " + message.replace("{tmp}", str(tmp_path)))
    assert "Errno" not in err[0] and not (tmp_path / "f.xyz").exists()


def test_a_scheduler_that_does_not_answer_is_named_as_the_option(monkeypatch, capsys):
    distributed = pytest.importorskip("distributed")

    def unreachable(address, *args, **kwargs):
        raise OSError(f"Timed out trying to connect to {address} after 30 s")

    monkeypatch.setattr(distributed, "Client", unreachable)
    assert main(["sweep", "--backend", "numpy", "--iters", "1", "--lr", "0.1", "--no-progress",
                 "--scheduler", "tcp://nowhere:8786"]) == 2
    assert capsys.readouterr().err.strip() == (
        "xgrad sweep: error: `--scheduler` 'tcp://nowhere:8786' cannot be reached: Timed out trying to connect to "
        "tcp://nowhere:8786 after 30 s. Start a scheduler there (dask scheduler) and its workers, leave "
        "`--scheduler` out for a local cluster, or give 'serial'")
