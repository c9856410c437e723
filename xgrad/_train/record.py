"""The record of a training run: :class:`History`, one record for the loop, the
checkpoint, ``history.json``, a sweep's runs and the figures, and its checked
reader; :class:`TrainResult`, what :func:`xgrad.train` returns, holding one."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from xgrad._infra.files import FileFormatError
from xgrad._infra.host import to_numpy
from xgrad._net.net import TwoLayerNet
from xgrad._train.settings import current_names

__all__ = ["HISTORY_KEYS", "History", "TrainResult", "read_history"]

HISTORY_KEYS = ("loss", "eval_iters", "train_acc", "test_acc", "iters_per_epoch")


@dataclass
class History:
    """What a training run recorded, on the host.

    Attributes
    ----------
    loss : list of float
        The minibatch loss of every iteration done.
    eval_iters, train_acc, test_acc : list
        Iterations done at each evaluation, and the train and test accuracy then.
    iters_per_epoch : int or None
        None in a checkpoint, which leaves it to the run.
    backend, device, dtype : str or None
        Where the run computed: the backend's name, the device's name, the dtype.

    Examples
    --------
    >>> from xgrad import History
    >>> h = History().with_losses([2.3, 1.9]).with_evaluation(2, 0.5, 0.4)
    >>> h.to_dict()["eval_iters"], h.test_acc
    ([2], [0.4])
    """

    loss: list[float] = field(default_factory=list)
    eval_iters: list[int] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    iters_per_epoch: int | None = None
    backend: str | None = None
    device: str | None = None
    dtype: str | None = None

    def with_losses(self, values: list[float]) -> History:
        """This history with more losses recorded."""
        return replace(self, loss=[*self.loss, *values])

    def with_evaluation(self, done: int, train_acc: float, test_acc: float) -> History:
        """This history with one more evaluation: all three lists grow together."""
        return replace(self, eval_iters=[*self.eval_iters, done], train_acc=[*self.train_acc, train_acc],
                       test_acc=[*self.test_acc, test_acc])

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (the fields of ``history.json``)."""
        return {"loss": [float(v) for v in self.loss], "eval_iters": [int(i) for i in self.eval_iters],
                "train_acc": [float(v) for v in self.train_acc], "test_acc": [float(v) for v in self.test_acc],
                "iters_per_epoch": self.iters_per_epoch, "backend": self.backend, "device": self.device,
                "dtype": self.dtype}


def read_history(history: Any) -> dict[str, Any]:
    """The history's fields as host values, checked for schema and agreement.

    A path is read as JSON; any problem with its content raises
    :class:`~xgrad._infra.files.FileFormatError` naming the file. A dict or result
    with a problem raises :class:`ValueError`.
    """
    if isinstance(history, (str, os.PathLike)):
        p = os.fspath(history)
        try:
            with open(p, encoding="utf-8") as fh:
                found = json.load(fh)
            return _checked(found)
        except (ValueError, TypeError, UnicodeDecodeError) as exc:
            raise FileFormatError(f"{p!r} is not a training history (history.json): {exc}", path=p) from None
    if isinstance(history, Mapping):
        return _checked(dict(history))
    record = getattr(history, "history", history)  # a TrainResult holds one
    if isinstance(record, History):
        return _checked(record.to_dict())
    raise TypeError(
        "`history` must be a TrainResult, its to_dict(), or the path of a "
        f"history.json; got {type(history).__name__}"
    )


def _checked(found: Any) -> dict[str, Any]:
    import numpy as np  # the host edge

    if not isinstance(found, Mapping):
        raise TypeError(f"`history` must be a JSON object; got {type(found).__name__}")
    missing = [k for k in HISTORY_KEYS if k not in found]
    if missing:
        raise ValueError(f"`history` lacks {', '.join(map(repr, missing))}")
    out = dict(found)
    if isinstance(found.get("config"), Mapping):  # a history.json written before a setting was renamed
        out["config"] = current_names(found["config"])
    out["loss"] = _numbers(found["loss"], "loss")
    iters = _numbers(found["eval_iters"], "eval_iters")
    for k in ("train_acc", "test_acc"):
        out[k] = _numbers(found[k], k)
        if out[k].shape != iters.shape:
            raise ValueError(f"`history` {k!r} has {out[k].size} values but 'eval_iters' has {iters.size}")
        if not np.all((out[k] >= 0) & (out[k] <= 1)):
            raise ValueError(f"`history` {k!r} must hold accuracies between 0 and 1")
    if not np.all(np.isfinite(iters) & (iters == np.round(iters)) & (iters >= 1) & (iters <= out["loss"].size)):
        raise ValueError(f"`history` 'eval_iters' must be iterations in 1..{out['loss'].size} (one per loss)")
    if np.any(np.diff(iters) <= 0):
        raise ValueError("`history` 'eval_iters' must increase")
    out["eval_iters"] = iters
    ipe = found["iters_per_epoch"]
    if isinstance(ipe, bool) or not isinstance(ipe, (int, np.integer)) or ipe < 1:
        raise ValueError(f"`history` 'iters_per_epoch' must be a positive integer; got {ipe!r}")
    return out


def _numbers(value: Any, name: str) -> Any:
    """A 1-d float array from a list or an array of any backend."""
    import numpy as np  # the host edge

    if isinstance(value, (str, bytes, Mapping)) or value is None or isinstance(value, bool):
        raise ValueError(f"`history` {name!r} must be a list of numbers; got {type(value).__name__}")
    try:
        arr = np.asarray(to_numpy(value) if hasattr(value, "shape") else value, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"`history` {name!r} must be a list of numbers") from None
    if arr.ndim != 1:
        raise ValueError(f"`history` {name!r} must be a flat list of numbers; got shape {arr.shape}")
    if name != "loss" and not all(math.isfinite(v) for v in arr):
        raise ValueError(f"`history` {name!r} holds NaN or infinite values")
    return arr


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes
    ----------
    net : TwoLayerNet
        The trained network (its parameters on the training device).
    history : History
        What the run recorded; the attributes below read it.
    loss : numpy.ndarray
        The minibatch training loss of every iteration done.
    eval_iters, train_acc, test_acc : list
        Iterations done at each evaluation, and the train and test accuracy
        then (one evaluation per epoch, and one at the end).
    iters_per_epoch : int
    timings : dict
        Seconds spent in total, training and evaluating, and iterations per
        second of the training steps.
    backend, device, dtype : str
    config : dict
        The settings of the run.
    interrupted : bool
        True when the run was stopped early (Ctrl-C, SIGTERM); the result
        holds what was done until then.
    stop_signal : str or None
        ``"SIGINT"`` or ``"SIGTERM"`` when a signal stopped the run.
    """

    net: TwoLayerNet
    history: History
    timings: dict[str, float]
    config: dict[str, Any] = field(default_factory=dict)
    interrupted: bool = False
    stop_signal: str | None = None

    @property
    def loss(self) -> Any:
        """The minibatch loss of every iteration, as a NumPy array."""
        import numpy as np

        return np.asarray(self.history.loss, dtype=np.float64)

    eval_iters = property(lambda self: self.history.eval_iters, doc="Iterations done at each evaluation.")
    train_acc = property(lambda self: self.history.train_acc, doc="Training accuracy at each evaluation.")
    test_acc = property(lambda self: self.history.test_acc, doc="Test accuracy at each evaluation.")
    iters_per_epoch = property(lambda self: self.history.iters_per_epoch, doc="Iterations in one epoch.")
    backend = property(lambda self: self.history.backend, doc="The backend's name.")
    device = property(lambda self: self.history.device, doc="The device's name.")
    dtype = property(lambda self: self.history.dtype, doc="The parameters' dtype.")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict of everything but the network: the history's
        fields, then the timings, the settings and how the run ended."""
        return {**self.history.to_dict(), "timings": dict(self.timings), "config": dict(self.config),
                "interrupted": self.interrupted, "stop_signal": self.stop_signal}

    def summary(self) -> str:
        """A few lines for people: accuracy, time, where it ran."""
        done = len(self.loss)
        acc = (f"train accuracy {self.train_acc[-1]:.4f}, test accuracy {self.test_acc[-1]:.4f}"
               if self.test_acc else "no evaluation")
        if self.eval_iters and self.eval_iters[-1] != done:
            acc += f" (measured at iteration {self.eval_iters[-1]})"
        stopped = f" by {self.stop_signal}" if self.stop_signal else ""
        state = f" (interrupted{stopped})" if self.interrupted else ""
        t = self.timings
        return (f"{done} iterations{state} on {self.backend} ({self.device}, {self.dtype}): {acc}; "
                f"{t.get('total_s', 0.0):.1f} s in total: {t.get('train_s', 0.0):.1f} s training at "
                f"{t.get('iters_per_s', 0.0):.0f} it/s, {t.get('eval_s', 0.0):.1f} s evaluating")
