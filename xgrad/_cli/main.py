"""The ``xgrad`` command: ``xgrad train``, ``xgrad plot``, ``xgrad backends``."""

from __future__ import annotations

import argparse
import json
import logging
import re
import shlex
import sys
from pathlib import Path
from typing import Any

from xgrad._cli.lrfind import add_lr_find_parser, lr_find_command, lr_find_terms
from xgrad._cli.options import add_settings, cli_terms, given, sweep_settings, train_settings
from xgrad._cli.plot import PLOT_OPTIONS, add_plot_options, check_image_file, plot_kwargs
from xgrad._infra.backend import BACKENDS, BackendUnavailableError, resolve_backend
from xgrad._infra.files import atomic_write, check_output_dir, check_output_file
from xgrad._infra.signals import EXIT_CODES, Terminated, stop_signals
from xgrad._train.checkpoint import CheckpointError
from xgrad._train.errors import TrainingDivergedError
from xgrad.plot import FIGURES, draw_figure, figure_key

logger = logging.getLogger("xgrad")

class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg,unused-ignore]
    """Writes to whatever `sys.stderr` is at the time of the message."""

    @property  # type: ignore[override,unused-ignore]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="xgrad", description="Chapter 4 of Deep Learning from Scratch, "
                                 "on NumPy, CuPy, PyTorch or JAX.")
    sub = ap.add_subparsers(dest="command", required=True)

    tr = sub.add_parser("train", help="train the two-layer network on MNIST",
                        description="Train the two-layer network with minibatch SGD and print a summary.")
    add_settings(tr, train_settings())
    tr.add_argument("--out", type=Path, default=None,
                    help="write history.json, training.png and net.npz into this folder (default: none)")

    pl = sub.add_parser("plot", help="draw one of the chapter's figures to a file",
                        description="Draw one of the chapter's figures to an image file. Each figure takes "
                        "only the options that concern it: " + "; ".join(
                            f"{k}: " + ", ".join(f"--{o}" for o in v) for k, v in PLOT_OPTIONS.items()) + ".")
    pl.add_argument("name", metavar="{" + ",".join(FIGURES) + "}", help="the figure to draw")
    pl.add_argument("--out", type=Path, required=True, help="the image file (.png, .svg, .pdf)")
    pl.add_argument("--history", type=Path, default=None,
                    help="history.json of a training run (for 'training')")
    add_plot_options(pl)

    sub.add_parser("backends", help="list the backends and whether they work here",
                   description="List every backend xgrad knows and whether it works here, with its device.")
    _add_sweep_parser(sub)
    add_lr_find_parser(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``xgrad`` command; returns the exit status.

    0 on success, 1 when training diverged, 2 on a bad argument or a file
    that cannot be read or written (one line on stderr), 130 after Ctrl-C and
    143 after SIGTERM (the outputs of the partial run are written first).
    """
    args = _parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("xgrad: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        return {"train": _train, "plot": _plot, "backends": _backends, "sweep": _sweep,
                "lr-find": lr_find_command}[args.command](args)
    except (ValueError, TypeError, OSError, BackendUnavailableError, ImportError) as exc:
        message = _cli_terms(str(exc), args.command)
        print(f"xgrad {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        name = "SIGTERM" if isinstance(exc, Terminated) else "SIGINT"
        detail = f": {_cli_terms(str(exc), args.command)}" if str(exc) else ""
        print(f"xgrad {args.command}: stopped by {name}{detail}", file=sys.stderr)
        return EXIT_CODES[name]


# the keywords of the figure functions that ``xgrad plot``'s options set
_PLOT_TERMS = {"lrs": "lr", "step_num": "steps", "init_x": "x0", "x": "x0", "xlim": "xlim", "ylim": "ylim",
               "spacing": "spacing"}


def _cli_terms(message: str, command: str) -> str:
    """A library message in the command's terms: `batch_size` -> `--batch-size`."""
    if command == "plot":
        for keyword, option in _PLOT_TERMS.items():
            message = message.replace(f"`{keyword}`", f"`--{option}`")
            message = re.sub(rf"`?\b{keyword}=([^`\s,;)]*)`?", rf"`--{option} \1`", message)
        return message
    if command == "sweep":
        return cli_terms(message, sweep_settings())
    if command == "train":
        return cli_terms(message, train_settings())
    if command == "lr-find":
        return lr_find_terms(message)
    return message


_OUTPUTS = ("history.json", "net.npz", "training.png")


def _check_outputs(args: argparse.Namespace) -> None:
    """Refuse, before any work, what only the command has: a missing `--data-dir`, an `--out` that
    cannot be written or that would overwrite the checkpoint (train checks its settings itself)."""
    data_dir, checkpoint = getattr(args, "data_dir", None), getattr(args, "checkpoint", None)
    if data_dir is not None and not data_dir.is_dir():
        what = "does not exist" if not data_dir.exists() else "is not a folder"
        raise ValueError(f"`--data-dir` {str(data_dir)!r} {what}; give the folder holding the data set")
    if args.out is not None:
        check_output_dir(args.out, "`--out`", _OUTPUTS)
        if checkpoint is not None and checkpoint.resolve() in {(args.out / n).resolve() for n in _OUTPUTS}:
            raise ValueError(f"`--checkpoint` {str(checkpoint)!r} is one of the outputs of `--out`; "
                             "give it another name")


def _train(args: argparse.Namespace) -> int:
    from xgrad._train.train import train

    _check_outputs(args)
    status, failure = 0, None
    with stop_signals() as stop:
        try:
            result = train(**given(args, train_settings()))
        except TrainingDivergedError as exc:
            print(f"xgrad train: {exc}", file=sys.stderr)
            result, status = exc.result, 1
        except CheckpointError as exc:
            if exc.result is None:
                raise
            result, failure = exc.result, exc
        print(_cli_terms(result.summary(), "train"))
        if args.out is not None:
            _write_outputs(result, args.out)
    if result.interrupted and status == 0 and getattr(args, "checkpoint", None) is not None and failure is None:
        print(f"xgrad train: stopped by {result.stop_signal or 'SIGINT'}; {args.checkpoint} holds the run: resume it "
              f"with {_resume_command(args.argv)}", file=sys.stderr)
    if failure is not None:
        raise failure
    if stop.signal is not None and status == 0:
        return EXIT_CODES[stop.signal]
    return 130 if result.interrupted and status == 0 else status


def _resume_command(argv: list[str]) -> str:
    """The command that continues the run of `argv` from its checkpoint."""
    return shlex.join(["xgrad", *argv, *([] if "--resume" in argv else ["--resume"])])


def _write_outputs(result: Any, out: Path) -> None:
    """history.json, net.npz and training.png, each atomically; every one is tried."""
    out.mkdir(parents=True, exist_ok=True)
    failed: list[str] = []

    def attempt(name: str, write: Any) -> None:
        try:
            write(out / name)
        except OSError as exc:
            failed.append(f"{out / name}: {exc.strerror or exc}")

    def history(path: Path) -> None:
        with atomic_write(path, text=True) as f:
            f.write(json.dumps(result.to_dict(), indent=1))

    attempt("history.json", history)
    attempt("net.npz", result.net.save)
    try:
        from xgrad.plot import training_curves

        fig = training_curves(result)
    except ImportError as exc:
        logger.warning("no training.png: %s", exc)
    else:
        def figure(path: Path) -> None:
            with atomic_write(path) as f:
                fig.savefig(f, format="png", dpi=120)

        attempt("training.png", figure)
    if failed:
        raise OSError(f"cannot write {'; '.join(failed)}")
    print(f"wrote {out}: " + ", ".join(name for name in _OUTPUTS if (out / name).exists()))


def _plot(args: argparse.Namespace) -> int:
    key = figure_key(args.name)
    kwargs = plot_kwargs(key, args)
    check_output_file(args.out, "`--out`")
    fmt = check_image_file(args.out)
    fig = draw_figure(key, **kwargs)
    with atomic_write(args.out) as f:
        fig.savefig(f, format=fmt, dpi=120)
    print(f"wrote {args.out}")
    return 0


def _backends(args: argparse.Namespace) -> int:
    for name in BACKENDS:
        try:
            b = resolve_backend(name)
        except BackendUnavailableError as exc:
            print(f"{name:17} unavailable: {exc}")
        else:
            print(f"{name:17} ok: {b.describe()}")
    return 0


def _add_sweep_parser(sub: Any) -> None:
    sw = sub.add_parser("sweep", help="train once per learning rate (and other settings), in parallel",
                        description="A grid of training runs on a local Dask cluster (one worker per core) "
                        "or on the cluster at --scheduler; prints a table of the runs, the best marked with *.")
    add_settings(sw, sweep_settings(), sweep=True)


def _sweep(args: argparse.Namespace) -> int:
    from xgrad._sweep.sweep import sweep

    try:
        result = sweep(**given(args, sweep_settings()))
    except OSError as exc:  # a scheduler that does not answer: distributed's own words, then what to do
        address = getattr(args, "client", None)
        if address in (None, "serial") or str(address) not in str(exc):
            raise
        raise OSError(f"`--scheduler` {address!r} cannot be reached: {exc}. Start a scheduler there (dask scheduler) "
                      "and its workers, leave `--scheduler` out for a local cluster, or give 'serial'") from None
    print(result.to_table())
    print(result.summary())
    out = getattr(args, "out", None)
    if out is not None:
        print(f"wrote {out}: " + ", ".join(sorted(p.name for p in out.iterdir())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
