"""The settings of a training run, once: names, defaults, choices and help.

:func:`xgrad.train`'s defaults, the checks of :class:`TrainConfig` and the
options of ``xgrad train`` (their types, choices, help and defaults) are all
read from :data:`TRAIN_SETTINGS`.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from xgrad._datasets.mnist import DATASETS
from xgrad._net.args import DTYPES
from xgrad._net.core import ACTIVATIONS

__all__ = ["DEFAULTS", "GRADS", "RENAMED", "TRAIN_SETTINGS", "Setting", "add_options", "check_choice",
           "current_names", "on_off_auto"]

GRADS = ("backprop", "numerical")


@dataclass(frozen=True)
class Setting:
    """One setting: its name (a keyword of ``train``), default, help and choices."""

    name: str
    default: Any
    help: str
    type: Any = None  # how the command line reads it (None: as text)
    choices: tuple[str, ...] | None = None

    @property
    def option(self) -> str:
        """The command-line option: ``batch_size`` -> ``--batch-size``."""
        return "--" + self.name.replace("_", "-")


_ON_OFF = {"auto": None, "on": True, "off": False}


def on_off_auto(text: str) -> bool | None:
    """A command-line switch: ``auto`` -> None, ``on`` -> True, ``off`` -> False.

    Examples
    --------
    >>> on_off_auto("on"), on_off_auto("auto")
    (True, None)
    """
    try:
        return _ON_OFF[text.strip().lower()]
    except KeyError:
        raise argparse.ArgumentTypeError(f"choose auto, on or off; got {text!r}") from None


TRAIN_SETTINGS = (
    Setting("dataset", "mnist", "the data set", choices=DATASETS),
    Setting("activation", "sigmoid", "the hidden layer's activation", choices=tuple(ACTIVATIONS)),
    Setting("hidden_size", 50, "units in the hidden layer", int),
    Setting("weight_init_std", 0.01, "standard deviation of the initial weights", float),
    Setting("iters", 10_000, "SGD iterations", int),
    Setting("batch_size", 100, "samples per minibatch, drawn with replacement", int),
    Setting("lr", 0.1, "learning rate", float),
    Setting("gradient", "backprop", "backpropagation, or central differences (slower, exact)", choices=GRADS),
    Setting("h", None, "step of the numerical gradient (default: by each parameter's dtype and size)", float),
    Setting("eval_every", None, "iterations between evaluations, 0 for none (default: one epoch)", int),
    Setting("seed", 0, "seeds the initial weights and the minibatch order", int),
    Setting("dtype", "float32", "floating type of the run", choices=DTYPES),
    Setting("threads", "auto", "CPU threads (BLAS, OpenMP, torch): auto, a number or 'default'"),
    Setting("checkpoint_every", 100, "iterations between checkpoints", int),
    Setting("compile_step", None, "compile the training step: auto (the default: on JAX), on (JAX, CuPy) or "
            "off", on_off_auto),
)
DEFAULTS: dict[str, Any] = {s.name: s.default for s in TRAIN_SETTINGS}
_BY_NAME = {s.name: s for s in TRAIN_SETTINGS}


def check_choice(name: str, value: Any) -> Any:
    """`value` if it is one of the setting's choices; a ValueError lists them."""
    choices = _BY_NAME[name].choices
    assert choices is not None
    if not isinstance(value, str) or value not in choices:
        listed = ", ".join(repr(c) for c in choices[:-1]) + f" or {choices[-1]!r}"
        raise ValueError(f"`{name}` must be {listed}; got {value!r}")
    return value


def add_options(parser: argparse.ArgumentParser) -> None:
    """One option per setting, with its type, choices, help and default."""
    for s in TRAIN_SETTINGS:
        shown = "" if s.default is None else f" (default: {s.default})"
        parser.add_argument(s.option, dest=s.name, type=s.type, default=s.default, choices=s.choices,
                            help=s.help + shown)


RENAMED = {"grad": "gradient"}
"""Old setting names and their current ones: checkpoints and ``history.json``
files written before a rename store the old name in their ``config``."""


def current_names(config: Mapping[str, Any]) -> dict[str, Any]:
    """`config` (a stored run's settings) with every old name in :data:`RENAMED`
    replaced by the current one; a current name already there wins."""
    out = dict(config)
    for old, new in RENAMED.items():
        if old in out:
            value = out.pop(old)
            out.setdefault(new, value)
    return out
