"""``xgrad lr-find``: options in the command's terms, its files, its errors."""

from __future__ import annotations

import json

import pytest

from xgrad import lr_find
from xgrad._cli.main import main


def test_writes_the_record_and_the_figure_and_prints_the_suggestion(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "lr"
    status = main(["lr-find", "--backend", "numpy", "--start", "1e-3", "--stop", "10", "--iters", "60",
                   "--seed", "3", "--no-progress", "--out", str(out)])
    assert status == 0
    printed = capsys.readouterr().out
    record = json.loads((out / "lr_find.json").read_text())
    assert len(record["lrs"]) == len(record["loss"]) and record["lrs"][0] == 1e-3
    assert record["settings"]["seed"] == 3 and record["iters"] == 60
    assert (out / "lr_find.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    same = lr_find("numpy", start=1e-3, stop=10, iters=60, seed=3, progress=False)  # the command is the function
    assert record["loss"] == same.loss and record["suggestion"] == same.suggestion
    assert f"suggested lr: {same.suggestion:.3g}" in printed
    assert "one tenth of the learning rate at the minimum of the smoothed loss" in printed


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--start", "10", "--stop", "1"], "`--stop` (1.0) must be larger than `--start` (10.0)"),
        (["--start", "0"], "`--start` must be positive and finite"),
        (["--stop", "nan"], "`--stop` must be positive and finite"),
        (["--iters", "1"], "`--iters` must be >= 2"),
        (["--batch-size", "0"], "`--batch-size` must be >= 1"),
        (["--smoothing", "1"], "`--smoothing` must be at least 0"),
        (["--data-dir", "/no/such/folder"], "`--data-dir` '/no/such/folder' does not exist"),
    ],
)
def test_bad_options_exit_2_with_a_message_in_option_terms(argv, message, capsys, monkeypatch):
    import xgrad._train.lrfind as module

    monkeypatch.setattr(module, "_run", lambda *a, **k: pytest.fail("the run started"))
    assert main(["lr-find", "--backend", "numpy", "--no-progress", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.startswith("xgrad lr-find: error:")


def test_an_out_that_is_a_file_is_refused_before_the_run(tmp_path, capsys, monkeypatch):
    import xgrad._train.lrfind as module

    monkeypatch.setattr(module, "_run", lambda *a, **k: pytest.fail("the run started"))
    (tmp_path / "file").write_text("")
    assert main(["lr-find", "--backend", "numpy", "--no-progress", "--out", str(tmp_path / "file")]) == 2
    assert "`--out`" in capsys.readouterr().err


def test_help_lists_the_range_and_the_shared_training_options(capsys):
    with pytest.raises(SystemExit):
        main(["lr-find", "--help"])
    text = capsys.readouterr().out
    for option in ("--start", "--stop", "--iters", "--backend", "--data-dir", "--out", "--dataset", "--seed"):
        assert option in text
    assert "(default: 1e-05)" in text and "(default: 300)" in text
    assert "--lr " not in text and "--checkpoint" not in text


def test_ctrl_c_prints_and_writes_the_partial_test_and_exits_130(tmp_path, capsys, monkeypatch):
    pytest.importorskip("matplotlib")
    import os
    import signal

    import xgrad._train.lrfind as module

    real, calls = module.sgd_step, []

    def step(*args, **kwargs):
        calls.append(1)
        if len(calls) == 5:
            os.kill(os.getpid(), signal.SIGINT)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, "sgd_step", step)
    out = tmp_path / "lr"
    assert main(["lr-find", "--backend", "numpy", "--iters", "40", "--no-progress", "--out", str(out)]) == 130
    assert "(stopped by SIGINT)" in capsys.readouterr().out
    record = json.loads((out / "lr_find.json").read_text())
    assert record["interrupted"] == "SIGINT" and len(record["loss"]) == 5
