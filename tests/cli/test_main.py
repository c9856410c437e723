"""The ``xgrad`` command as a person uses it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import xgrad
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
