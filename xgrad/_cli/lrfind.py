"""``xgrad lr-find``: the learning-rate range test from a shell.

Its options are made from the range test's settings
(:func:`~xgrad._train.lrfind.lr_find_settings`: its own, and those it shares
with ``xgrad train``, spelled the same); it prints the summary and the
suggested learning rate, and with ``--out`` writes the record
(``lr_find.json``) and the figure (``lr_find.png``).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from xgrad._cli.options import add_settings, cli_terms, given
from xgrad._infra.files import atomic_write, check_output_dir
from xgrad._infra.signals import EXIT_CODES
from xgrad._train.lrfind import lr_find_settings
from xgrad._train.settings import Setting

__all__ = ["OUTPUTS", "add_lr_find_parser", "lr_find_command", "lr_find_options", "lr_find_terms"]

logger = logging.getLogger("xgrad")

OUTPUTS = ("lr_find.json", "lr_find.png")
"""What ``--out`` holds after a run: the record and the figure."""


def lr_find_options() -> list[Setting]:
    """The settings ``xgrad lr-find`` takes as options."""
    return [s for s in lr_find_settings() if s.option is not None]


def add_lr_find_parser(sub: Any) -> None:
    """The ``lr-find`` subcommand on the subparsers `sub` of ``xgrad``."""
    p = sub.add_parser("lr-find", help="suggest a learning rate from one short run whose rate grows",
                       description="The learning-rate range test: one short training run whose learning rate "
                       "grows geometrically from --start to --stop, stopping when the smoothed loss blows up. "
                       "Prints the suggested learning rate: one tenth of the rate at the minimum of the "
                       "smoothed loss.")
    add_settings(p, lr_find_options())
    p.add_argument("--out", type=Path, default=None,
                   help="write lr_find.json and lr_find.png into this folder (default: none)")


def lr_find_terms(message: str) -> str:
    """A message of :func:`xgrad.lr_find` in the command's terms: `start` -> `--start`."""
    return cli_terms(message.replace("lr_find() got an unexpected keyword argument", "unknown option"),
                     lr_find_options())


def lr_find_command(args: argparse.Namespace) -> int:
    """Run the range test the options ask for; print its summary and the suggestion. After Ctrl-C or
    SIGTERM the partial test is printed and written, and the status is 130 or 143."""
    from xgrad._train.lrfind import lr_find

    data_dir = getattr(args, "data_dir", None)
    if data_dir is not None and not data_dir.is_dir():
        what = "does not exist" if not data_dir.exists() else "is not a folder"
        raise ValueError(f"`--data-dir` {str(data_dir)!r} {what}; give the folder holding the data set")
    if args.out is not None:
        check_output_dir(args.out, "`--out`", OUTPUTS)
    result = lr_find(**given(args, lr_find_options()))
    print(result.summary())
    print("suggested lr:", "none" if result.suggestion is None else f"{result.suggestion:.3g}")
    if args.out is not None:
        _write(result, args.out)
    return 0 if result.interrupted is None else EXIT_CODES[result.interrupted]


def _write(result: Any, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with atomic_write(out / "lr_find.json", text=True) as f:
        f.write(result.to_json())
    try:
        from xgrad.plot import lr_find_curve

        fig = lr_find_curve(result)
    except ImportError as exc:
        logger.warning("no lr_find.png: %s", exc)
    else:
        with atomic_write(out / "lr_find.png") as f:
            fig.savefig(f, format="png", dpi=120)
    logger.info("wrote %s: %s", out, ", ".join(name for name in OUTPUTS if (out / name).exists()))
