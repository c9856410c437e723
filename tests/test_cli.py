"""The ``xgrad`` command as a person uses it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from xgrad._cli import main


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
