"""The one check of each setting of a training run, named by its entry in
:data:`~xgrad._train.settings.TRAIN_SETTINGS`.

A check takes the keyword's name (for its messages), the value, and every
setting as given (the few that depend on another read it there: ``h`` on
``gradient``, ``resume`` on ``checkpoint``); it returns the value normalised
or raises a TypeError or ValueError that names the keyword and says what to
do instead. A choice among names is checked by :func:`check_choice`.
"""

from __future__ import annotations

import argparse
import numbers
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from xgrad._infra import validate
from xgrad._infra.files import check_output_file
from xgrad._infra.threads import check_threads
from xgrad._infra.validate import check_count, check_flag, check_optional_positive, check_positive, listed
from xgrad._net.args import known_dtype

__all__ = ["CHECKPOINT_EVERY", "GRADS", "MAX_H", "Check", "check_choice", "check_net", "checkpoint",
           "checkpoint_every", "compile_step", "count", "data_dir", "flag", "listed", "net_dtype_name", "on_off_auto",
           "optional_count", "positive", "resume", "step", "stored_validation", "threads", "threads_option",
           "validation", "validation_option"]

Check = Callable[[str, Any, Mapping[str, Any]], Any]
"""``check(name, value, given) -> value``: one setting's check (see the module's docstring)."""

GRADS = ("backprop", "numerical")
MAX_H = 1.0  # a larger step of the numerical gradient measures no derivative of the loss
CHECKPOINT_EVERY = 100  # what `checkpoint_every=None` means with a checkpoint


def check_choice(name: str, value: Any, choices: Iterable[str]) -> str:
    """`value` if it is one of `choices` (:func:`~xgrad._infra.validate.check_choice`)."""
    return validate.check_choice(value, name, choices)


def count(minimum: int = 0) -> Check:
    """The check of an integer >= `minimum`."""
    return lambda name, value, given: check_count(value, name, minimum=minimum)


def optional_count(minimum: int = 0) -> Check:
    """The check of None or an integer >= `minimum`."""
    return lambda name, value, given: None if value is None else check_count(value, name, minimum=minimum)


def positive(name: str, value: Any, given: Mapping[str, Any]) -> float:
    return check_positive(value, name)


def flag(name: str, value: Any, given: Mapping[str, Any]) -> bool:
    return check_flag(value, name)


def threads(name: str, value: Any, given: Mapping[str, Any]) -> int | str | None:
    return check_threads(value, auto=True)


def step(name: str, value: Any, given: Mapping[str, Any]) -> float | None:
    """`h`: the step of the numerical gradient, refused where it would change nothing."""
    h = check_optional_positive(value, name)
    if h is not None and h > MAX_H:
        raise ValueError(f"`{name}` must be at most {MAX_H:g} (a step of the numerical gradient); got {value!r}")
    gradient = given["gradient"]
    if h is not None and gradient != "numerical":
        # a step that changes nothing would be ignored without a word
        raise ValueError(f"`{name}` ({h!r}) is the step of the numerical gradient and has no effect when "
                         f"`gradient` is {gradient!r}; leave `{name}` out, or set `gradient` to 'numerical'")
    return h


def compile_step(name: str, value: Any, given: Mapping[str, Any]) -> bool | None:
    """True, False or None; True only with backpropagation (the backend is checked as it is resolved)."""
    if value is not None and not isinstance(value, bool):
        raise TypeError(f"`{name}` must be True, False or None (compile where it helps); got {value!r}")
    gradient = given["gradient"]
    if value and gradient != "backprop":
        raise ValueError(f"`{name}` is True, but only the backpropagation step compiles, not `gradient` "
                         f"{gradient!r} (it checks its inputs on the host); set `gradient` to 'backprop', or leave "
                         f"`{name}` at None")
    return value


def check_net(name: str, value: Any, given: Mapping[str, Any]) -> Any:
    """None or a :class:`~xgrad.TwoLayerNet` (its data and backend are checked as the run starts)."""
    from xgrad._net.net import TwoLayerNet

    if value is not None and not isinstance(value, TwoLayerNet):
        raise TypeError(f"`{name}` must be a TwoLayerNet; got {type(value).__name__}")
    return value


def net_dtype_name(net: Any) -> str:
    """'float32' or 'float64': the dtype of a network's parameters."""
    return known_dtype(net.xp, net.dtype)


def data_dir(name: str, value: Any, given: Mapping[str, Any]) -> Any:
    """Refuse a folder beside `data`: it would be ignored without a word."""
    if value is not None and given.get("data") is not None:
        raise ValueError(f"`{name}` has no effect when `data` is given (the run trains on `data`); got "
                         f"{os.fspath(value)!r}. Leave out one of them")
    return value


def checkpoint(name: str, value: Any, given: Mapping[str, Any]) -> Any:
    """A file that can be written, checked before training starts."""
    if value is not None:
        check_output_file(value, f"`{name}`")
    return value


def checkpoint_every(name: str, value: Any, given: Mapping[str, Any]) -> int:
    """Iterations between checkpoints: :data:`CHECKPOINT_EVERY` for None; refused without a checkpoint."""
    every = check_count(CHECKPOINT_EVERY if value is None else value, name, minimum=1)
    if value is not None and given.get("checkpoint") is None:  # it would be ignored without a word
        raise ValueError(f"`{name}` ({value!r}) has no effect without `checkpoint`: nothing would be saved. "
                         f"Give `checkpoint`, the file to save to, or leave `{name}` out")
    return every


def resume(name: str, value: Any, given: Mapping[str, Any]) -> bool:
    """True or False (a truthy "no" must not continue a run); a checkpoint is needed to resume, and one
    already there is refused rather than overwritten without it."""
    value = check_flag(value, name)
    path = given.get("checkpoint")
    if value and path is None:
        raise ValueError(f"`{name}=True` needs `checkpoint`, the file to resume from")
    if not value and path is not None and os.path.exists(path):
        raise ValueError(f"`checkpoint` {os.fspath(path)!r} already holds a run; pass `{name}=True` to continue "
                         "it, or remove it or give another path to start anew")
    return value


def validation(name: str, value: Any, given: Mapping[str, Any]) -> Any:
    """None, a fraction in (0, 1) of the training set, or ``(x_val, t_val)``: a pair of arrays, checked
    with the data (:func:`~xgrad._train.config.hold_out`), as are the samples a fraction leaves."""
    if value is None:
        return None
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        fraction = float(value)
        if not 0 < fraction < 1:  # NaN too
            raise ValueError(f"`{name}` must be a fraction of the training set strictly between 0 and 1 (e.g. "
                             f"0.1), explicit (x_val, t_val) arrays, or None for no validation; got {value!r}")
        return fraction
    if isinstance(value, tuple | list) and len(value) == 2:
        return tuple(value)
    raise TypeError(f"`{name}` must be a fraction of the training set (e.g. 0.1), a pair of arrays "
                    f"(x_val, t_val), or None for no validation; got {type(value).__name__}")


def stored_validation(value: Any) -> float | str | None:
    """`validation` as a run's config records it: the fraction, None, or ``"arrays"`` for explicit
    arrays (the data's fingerprint tells them apart)."""
    return "arrays" if isinstance(value, tuple) else value


def validation_option(text: str) -> float | None:
    """``--validation`` as ``train`` takes it: 'none' is None, a number a fraction.

    Examples
    --------
    >>> validation_option("0.1"), validation_option("none")
    (0.1, None)
    """
    if text.strip().lower() == "none":
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"give a fraction such as 0.1, or 'none'; got {text!r}") from None


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


def threads_option(text: str) -> int | str | None:
    """`--threads` as ``train`` takes it: 'default' is None, a whole number an
    int; anything else goes as it is, to be refused by :func:`threads`.

    Examples
    --------
    >>> threads_option("default"), threads_option("2"), threads_option("auto")
    (None, 2, 'auto')
    """
    if text == "default":
        return None
    try:
        return int(text)
    except ValueError:
        return text
