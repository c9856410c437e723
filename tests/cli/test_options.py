"""The options of ``xgrad train`` and ``xgrad sweep``, made from the settings record."""

from __future__ import annotations

import argparse
import re

import pytest
from _helpers import add_setting, made_up_setting

from xgrad._cli.main import _parser, main
from xgrad._cli.options import cli_terms, given, sweep_settings, train_settings
from xgrad._sweep.sweep import SWEEP_OPTIONS
from xgrad._train.settings import NAMED, record


def _sub(name: str) -> argparse.ArgumentParser:
    action = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices[name]


def _options(name: str) -> dict[str, argparse.Action]:
    return {a.dest: a for a in _sub(name)._actions if a.option_strings and a.dest != "help"}


def test_train_has_one_option_per_setting_of_the_record():
    shown = [a for a in _sub("train")._actions if a.option_strings and a.help != argparse.SUPPRESS]
    assert [a.dest for a in shown[1:-1]] == [s.name for s in record() if s.option is not None]  # -h ... --out
    assert [a.option_strings for a in shown if a.dest in ("progress", "batch_size", "resume")] == [
        ["--batch-size"], ["--no-progress"], ["--resume"]]
    hidden = [a for a in _sub("train")._actions if a.help == argparse.SUPPRESS]
    assert [(a.option_strings, a.dest) for a in hidden] == [(["--grad"], "gradient")]  # the old name


def test_sweep_has_the_settings_a_sweep_takes_and_its_own_options():
    options = _options("sweep")
    refused = {"seed", "net", "checkpoint", "checkpoint_every", "resume", "data", "device"}
    assert set(options) == {s.name for s in record() if s.name not in refused} | {o.name for o in SWEEP_OPTIONS}
    for s in record():
        if s.name in options:
            assert (options[s.name].nargs == "+") is (s.sweep == NAMED), s.name
    assert options["client"].option_strings == ["--scheduler"] and options["seeds"].nargs == "+"


@pytest.mark.parametrize("command", ["train", "sweep"])
def test_every_option_shows_its_default(command):
    for action in _sub(command)._actions:
        if action.option_strings and action.help not in (None, argparse.SUPPRESS) and action.nargs != 0 \
                and action.dest != "help":
            assert "(default: " in action.help, (command, action.dest)


def test_the_command_hands_on_only_what_was_given():
    args = _parser().parse_args(["train", "--iters", "5", "--threads", "default", "--no-progress"])
    assert given(args, train_settings()) == {"iters": 5, "threads": None, "progress": False}
    args = _parser().parse_args(["sweep", "--lr", "0.1", "1", "--scheduler", "serial", "--seeds", "3"])
    assert given(args, sweep_settings()) == {"lr": [0.1, 1.0], "client": "serial", "seeds": [3]}


def test_messages_spell_keywords_as_the_options():
    assert cli_terms("`batch_size` must be >= 1", train_settings()) == "`--batch-size` must be >= 1"
    assert cli_terms("`threads` must be a positive integer, 'auto' or None", train_settings()) == (
        "`--threads` must be a positive integer, 'auto' or 'default'")
    assert cli_terms("`resume=True` needs `checkpoint`", train_settings()) == "`--resume` needs `--checkpoint`"
    assert cli_terms("`seed` must be >= 0; `client` must be", sweep_settings()) == (
        "`--seeds` must be >= 0; `--scheduler` must be")
    assert cli_terms("`progress` must be True or False", train_settings()) == "`progress` must be True or False"


def test_the_checkpoint_checks_of_train_are_the_commands(tmp_path, capsys):
    ckpt = tmp_path / "c.npz"
    ckpt.write_bytes(b"x")
    assert main(["train", "--backend", "numpy", "--no-progress", "--checkpoint", str(ckpt)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"xgrad train: error: `--checkpoint` {str(ckpt)!r} already holds a run; pass `--resume` to "
                   "continue it, or remove it or give another path to start anew"]


def test_an_added_setting_is_an_option_of_train_and_sweep(monkeypatch, capsys):
    add_setting(monkeypatch, made_up_setting())
    for command in ("train", "sweep"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "--momentum MOMENTUM momentum of the SGD update (default: 0.0)" in text, command
    assert given(_parser().parse_args(["train", "--momentum", "0.5"]), train_settings()) == {"momentum": 0.5}
    assert given(_parser().parse_args(["sweep", "--momentum", "0.5"]), sweep_settings()) == {"momentum": 0.5}
    assert cli_terms("`momentum` must be a real number", train_settings()) == "`--momentum` must be a real number"


def test_sweep_help_names_the_default_of_every_option(capsys):
    with pytest.raises(SystemExit):
        main(["sweep", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    options = [o for a in _sub("sweep")._actions for o in a.option_strings if a.help != argparse.SUPPRESS]
    for option, after in zip(options, [*options[1:], None], strict=True):
        if option in ("-h", "--help"):
            continue
        entry = text[text.index(f" {option} ", text.index("options:")):]
        entry = entry[:entry.index(f" {after} ")] if after else entry
        assert "(default: " in entry, (option, entry)
    for shown in ("--no-progress no progress bar (default: a progress bar on stderr)", "(default: 2)",
                  "(default: a local cluster for this command)", "(default: 0.001 0.003 0.01 0.03 0.1 0.3 1 3)"):
        assert shown in text


# -- every option with a bad value: the message names the option, as typed ----
_PYTHON = re.compile(r"\b[a-z][a-z0-9]*(_[a-z0-9]+)*=|\b(True|False|None)\b|\bclient\b|\bdata_dir\b")

_TRAIN_BAD = [
    ("--backend", ["foo"]), ("--dataset", ["cifar"]), ("--activation", ["tanh"]), ("--hidden-size", ["0"]),
    ("--hidden-size", ["many"]), ("--iters", ["-1"]), ("--batch-size", ["0"]), ("--batch-size", ["70000"]),
    ("--lr", ["0"]), ("--lr", ["fast"]), ("--gradient", ["exact"]), ("--h", ["0"]), ("--h", ["1e-4"]),
    ("--eval-every", ["-1"]), ("--validation", ["2"]), ("--validation", ["most"]), ("--seed", ["-1"]),
    ("--dtype", ["float16"]), ("--weight-init-std", ["-1"]), ("--threads", ["0"]), ("--threads", ["many"]),
    ("--data-dir", ["{tmp}/nowhere"]), ("--data-dir", ["{tmp}/file"]), ("--checkpoint", ["{tmp}"]),
    ("--checkpoint-every", ["0", "--checkpoint", "{tmp}/c.npz"]), ("--checkpoint-every", ["5"]), ("--resume", []),
    ("--compile-step", ["sometimes"]), ("--compile-step", ["on"]),
    ("--compile-step", ["on", "--gradient", "numerical"]), ("--out", ["{tmp}/file"]),
]
_SWEEP_BAD = [
    ("--backend", ["foo"]), ("--hidden-size", ["0"]), ("--iters", ["0"]), ("--batch-size", ["0"]), ("--lr", ["0"]),
    ("--validation", ["2"]), ("--seeds", ["-1"]), ("--data-dir", ["{tmp}/nowhere"]), ("--compile-step", ["on"]),
    ("--scheduler", ["serially"]), ("--refine", ["-1"]), ("--retries", ["-1"]), ("--out", ["{tmp}/file"]),
    ("--threads", ["0"]), ("--h", ["0"]), ("--eval-every", ["-1"]), ("--weight-init-std", ["0"]), ("--halving", ["1"]),
]


def _error_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    try:
        status = main(argv)
    except SystemExit as exc:  # argparse's own refusals
        status = exc.code
    assert status == 2, argv
    return capsys.readouterr().err.strip().splitlines()[-1]


@pytest.mark.parametrize(("command", "option", "values"),
                         [("train", o, v) for o, v in _TRAIN_BAD] + [("sweep", o, v) for o, v in _SWEEP_BAD],
                         ids=lambda v: " ".join(v) if isinstance(v, list) else v)
def test_every_option_with_a_bad_value_is_named_as_the_option(command, option, values, tmp_path, capsys,
                                                              monkeypatch):
    from xgrad._train import run as _trainrun

    monkeypatch.setattr(_trainrun.Run, "loop", lambda *a: pytest.fail("trained before refusing"))
    (tmp_path / "file").write_text("x")
    argv = [command, option, *(v.replace("{tmp}", str(tmp_path)) for v in values), "--no-progress"]
    if command == "sweep" and option != "--scheduler":
        argv += ["--scheduler", "serial"]
    if option not in ("--iters", "--backend"):
        argv += ["--backend", "numpy"]
    line = _error_line(argv, capsys)
    assert f"{option}" in line, line
    assert _PYTHON.search(line) is None, line
    assert "`" + option.lstrip("-").replace("-", "_") + "`" not in line, line


def test_python_spellings_become_the_options_words():
    terms = cli_terms("`compile_step` is True; leave `compile_step` at None or pass False", train_settings())
    assert terms == "`--compile-step` is on; leave `--compile-step` at auto or pass off"
    assert cli_terms("pass batch_size=5 or `lr=0.1`", train_settings()) == "pass `--batch-size 5` or `--lr 0.1`"
    assert cli_terms('or pass client="serial" to run', sweep_settings()) == "or pass `--scheduler serial` to run"
    assert cli_terms("`validation` must be a fraction, or None for none", train_settings()) == (
        "`--validation` must be a fraction, or 'none' for none")
    # a constant in a message about another setting stays
    assert cli_terms("`lr` is None", train_settings()) == "`--lr` is None"
