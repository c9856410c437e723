"""The options of ``xgrad train`` and ``xgrad sweep``, made from the settings record.

Each :class:`~xgrad._train.settings.Setting` with a command-line spelling
becomes one option: its parser, choices, help and default as ``--help`` shows
it. An option's value reaches the namespace only when it is given
(``argparse.SUPPRESS``), so the command hands ``train`` or ``sweep`` what was
typed and the record's defaults apply, the same as in Python. The command's
messages spell keywords as options (:func:`cli_terms`).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from xgrad._sweep.sweep import SWEEP_OPTIONS
from xgrad._train.settings import NAMED, REFUSED, SHARED, Setting, record

__all__ = ["add_settings", "cli_terms", "given", "sweep_settings", "train_settings"]


def train_settings() -> list[Setting]:
    """The settings that ``xgrad train`` takes, in the record's order."""
    return [s for s in record() if s.option is not None]


def sweep_settings() -> list[Setting]:
    """The settings that ``xgrad sweep`` takes: the record's that a sweep takes, then the sweep's own."""
    return [s for s in record() if s.option is not None and s.sweep not in (REFUSED, SHARED)] + list(SWEEP_OPTIONS)


def _switch(s: Setting) -> bool:
    return s.annotation == "bool"


def _shown(value: Any) -> str:
    if isinstance(value, list | tuple):  # values of an axis: 0.001 0.003 ... 1 3
        return " ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    return str(value)


class _OldName(argparse.Action):
    """A setting's option under its old name: sets the setting, warns on stderr."""

    def __init__(self, *args: Any, new: str, prog: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.new, self.prog = new, prog

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        print(f"{self.prog}: warning: `{option_string}` is deprecated; use `{self.new}`", file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_settings(parser: argparse.ArgumentParser, settings: Iterable[Setting], *, sweep: bool = False) -> None:
    """One option per setting; in a sweep (`sweep`), the named axes take a list of values and the
    sweep's help and defaults. Old names of renamed settings are still read, hidden from --help."""
    for s in settings:
        if s.option is None:
            continue
        text = s.sweep_help if sweep and s.sweep_help else s.help
        if _switch(s):
            parser.add_argument(s.option, dest=s.name, action="store_false" if s.default else "store_true",
                                default=argparse.SUPPRESS, help=f"{text} (default: {s.shown})" if s.shown else text)
            continue
        many = sweep and s.sweep == NAMED
        default = s.sweep_value if sweep else s.default
        choices = None if s.choices is None else list(s.choices)  # read now: a table may have grown
        metavar = None if choices or s.option[2:] == s.name.replace("_", "-") else s.option[2:].upper()
        parser.add_argument(s.option, dest=s.name, type=s.parse or str, choices=choices, nargs="+" if many else None,
                            metavar=metavar, default=argparse.SUPPRESS,
                            help=f"{text} (default: {s.shown or _shown(default)})")
        for old in s.old_names:
            parser.add_argument("--" + old.replace("_", "-"), dest=s.name, type=s.parse or str, choices=choices,
                                nargs="+" if many else None, action=_OldName, new=s.option, prog=parser.prog,
                                default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def given(args: argparse.Namespace, settings: Iterable[Setting]) -> dict[str, Any]:
    """The settings given on the command line, by keyword."""
    return {s.name: getattr(args, s.name) for s in settings if hasattr(args, s.name)}


# the words an option may take for a Python constant (``--compile-step auto`` for None)
_WORDS = ("auto", "on", "off", "none", "default")


def _spellings(s: Setting) -> dict[str, str]:
    """How the option spells the Python constants its parser makes: {'None': 'auto', 'True': 'on', ...}."""
    out: dict[str, str] = {}
    for word in _WORDS:
        try:
            value = s.parse(word) if s.parse is not None else None
        except (TypeError, ValueError, argparse.ArgumentTypeError):
            continue
        if s.parse is not None and (value is None or isinstance(value, bool)):
            out.setdefault(repr(value), word)
    return out


def cli_terms(message: str, settings: Sequence[Setting]) -> str:
    """A library message in the command's terms: `batch_size` -> `--batch-size`,
    ``batch_size=0`` -> ``--batch-size 0``, and in a message about an option that
    spells None, True or False as a word (``--compile-step auto``), that word."""
    for s in settings:
        for phrase, spelled in s.terms:
            message = message.replace(phrase, spelled)
        if s.option is None or _switch(s):
            continue
        about = f"`{s.name}`" in message or re.search(rf"\b{s.name}=", message) is not None
        message = message.replace(f"`{s.name}`", f"`{s.option}`")
        message = re.sub(rf"`?\b{s.name}=[\"']?([^`\s,;)\"']*)[\"']?`?", rf"`{s.option} \1`", message)
        if about:
            for constant, word in _spellings(s).items():
                message = re.sub(rf"\b{constant}\b", repr(word) if constant == "None" and word == "none" else word,
                                 message)
    return message
