"""The record of a training run: :class:`History`, one record for the loop, the
checkpoint, ``history.json``, a sweep's runs and the figures, and its checked
reader; :class:`TrainResult`, what :func:`xgrad.train` returns, holding one."""

from __future__ import annotations

import itertools
import json
import math
import numbers
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from xgrad._infra.files import FileFormatError
from xgrad._infra.host import to_numpy
from xgrad._net.net import TwoLayerNet

__all__ = ["HISTORY_KEYS", "VALIDATION_KEYS", "History", "TrainResult", "read_history"]

HISTORY_KEYS = ("loss", "eval_iters", "train_acc", "test_acc", "iters_per_epoch")
"""The fields every stored history holds (:meth:`History.from_dict`)."""
_WHERE = ("backend", "device", "dtype")  # optional: where the run computed
VALIDATION_KEYS = ("val_acc", "val_loss")
"""The fields of a run with validation data: absent from a stored history without them."""


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
        Iterations in one epoch; None only in a history not yet filled by a
        run (a stored one always has it).
    backend, device, dtype : str or None
        Where the run computed: the backend's name, the device's name, the dtype.
    val_acc, val_loss : list of float
        The accuracy and mean cross-entropy on the validation data at each
        evaluation (``train(validation=...)``); empty without validation.

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
    val_acc: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)

    def __repr__(self) -> str:
        """Iterations, the last loss and accuracies, where it ran; never every loss.

        Examples
        --------
        >>> History(loss=[2.3, 0.41], eval_iters=[2], train_acc=[0.9], test_acc=[0.89], backend="numpy",
        ...         device="cpu", dtype="float32")
        History(2 iterations, loss=0.41, train_acc=0.9, test_acc=0.89, backend='numpy', device='cpu', dtype='float32')
        """
        return f"History({_described(self)})"

    def with_losses(self, values: list[float]) -> History:
        """This history with more losses recorded."""
        return replace(self, loss=[*self.loss, *values])

    def with_evaluation(self, done: int, train_acc: float, test_acc: float, val_acc: float | None = None,
                        val_loss: float | None = None) -> History:
        """This history with one more evaluation: the lists grow together (the validation
        lists when the run has validation data)."""
        out = replace(self, eval_iters=[*self.eval_iters, done], train_acc=[*self.train_acc, train_acc],
                      test_acc=[*self.test_acc, test_acc])
        if val_acc is not None and val_loss is not None:
            out = replace(out, val_acc=[*self.val_acc, val_acc], val_loss=[*self.val_loss, val_loss])
        return out

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (the fields of ``history.json``; the validation fields only with validation)."""
        out = {"loss": [float(v) for v in self.loss], "eval_iters": [int(i) for i in self.eval_iters],
               "train_acc": [float(v) for v in self.train_acc], "test_acc": [float(v) for v in self.test_acc],
               "iters_per_epoch": self.iters_per_epoch, "backend": self.backend, "device": self.device,
               "dtype": self.dtype}
        if self.val_acc or self.val_loss:
            out.update(val_acc=[float(v) for v in self.val_acc], val_loss=[float(v) for v in self.val_loss])
        return out

    @classmethod
    def from_dict(cls, found: Mapping[str, Any]) -> History:
        """The history stored as `found`, checked: the one reader of every stored
        history (``history.json``, a checkpoint's, a sweep run's).

        `found` needs the fields of :data:`HISTORY_KEYS`; ``backend``,
        ``device`` and ``dtype`` are optional, and so are ``val_acc`` and
        ``val_loss`` (one per evaluation when present), other keys (a result's
        ``config``, ``timings``...) are ignored. Losses and accuracies may be
        lists or 1-d arrays of any backend.

        Raises
        ------
        TypeError
            If `found` is not a mapping.
        ValueError
            Naming the field: one missing, lists that are not lists of
            numbers, accuracies outside 0..1 or not one per evaluation,
            evaluations that do not increase within the losses, an
            ``iters_per_epoch`` that is not a positive integer.

        Examples
        --------
        >>> h = History.from_dict({"loss": [2.3, 1.9], "eval_iters": [2], "train_acc": [0.5],
        ...                        "test_acc": [0.4], "iters_per_epoch": 2})
        >>> h.loss, h.backend
        ([2.3, 1.9], None)
        >>> History.from_dict({**h.to_dict(), "eval_iters": [3]})
        Traceback (most recent call last):
        ...
        ValueError: `history` 'eval_iters' must be iterations in 1..2 (one per loss)
        """
        if not isinstance(found, Mapping):
            raise TypeError(f"`history` must be a JSON object; got {type(found).__name__}")
        missing = [k for k in HISTORY_KEYS if k not in found]
        if missing:
            raise ValueError(f"`history` lacks {', '.join(map(repr, missing))}")
        loss = _numbers(found["loss"], "loss", finite=False)  # a user's curve may hold a NaN
        iters = _numbers(found["eval_iters"], "eval_iters")
        accs = {}
        for k in ("train_acc", "test_acc"):
            accs[k] = _numbers(found[k], k)
            if len(accs[k]) != len(iters):
                raise ValueError(f"`history` {k!r} has {len(accs[k])} values but 'eval_iters' has {len(iters)}: "
                                 "'eval_iters', 'train_acc' and 'test_acc' must be lists of equal length")
            if not all(0 <= v <= 1 for v in accs[k]):
                raise ValueError(f"`history` {k!r} must hold accuracies between 0 and 1")
        val = {k: _numbers(found[k], k, finite=k == "val_acc") if found.get(k) is not None else []
               for k in VALIDATION_KEYS}
        for k, values in val.items():
            if values and len(values) != len(iters):
                raise ValueError(f"`history` {k!r} has {len(values)} values but 'eval_iters' has {len(iters)}: "
                                 "validation scores come one per evaluation")
        if bool(val["val_acc"]) != bool(val["val_loss"]):
            raise ValueError("`history` 'val_acc' and 'val_loss' must both be there or both be empty")
        if not all(0 <= v <= 1 for v in val["val_acc"]):
            raise ValueError("`history` 'val_acc' must hold accuracies between 0 and 1")
        if not all(i == round(i) and 1 <= i <= len(loss) for i in iters):
            raise ValueError(f"`history` 'eval_iters' must be iterations in 1..{len(loss)} (one per loss)")
        if any(a >= b for a, b in itertools.pairwise(iters)):
            raise ValueError("`history` 'eval_iters' must increase")
        ipe = found["iters_per_epoch"]
        if isinstance(ipe, bool) or not isinstance(ipe, numbers.Integral) or ipe < 1:
            raise ValueError(f"`history` 'iters_per_epoch' must be a positive integer; got {ipe!r}")
        where = {k: found.get(k) for k in _WHERE}
        for k, v in where.items():
            if v is not None and not isinstance(v, str):
                raise ValueError(f"`history` {k!r} must be a string or null; got {type(v).__name__}")
        return cls(loss, [int(i) for i in iters], accs["train_acc"], accs["test_acc"], int(ipe), where["backend"],
                   where["device"], where["dtype"], val["val_acc"], val["val_loss"])


def _described(h: History) -> str:
    """The few fields a repr shows: iterations, the last loss and accuracies, where it ran."""
    parts = [f"{len(h.loss)} iterations"] + ([f"loss={h.loss[-1]:.4g}"] if h.loss else [])
    parts += [f"{k}={getattr(h, k)[-1]:.4g}" for k in ("train_acc", "test_acc", "val_acc") if getattr(h, k)]
    parts += [f"{k}={getattr(h, k)!r}" for k in ("backend", "device", "dtype") if getattr(h, k) is not None]
    return ", ".join(parts)


def read_history(history: Any) -> History:
    """The checked :class:`History` of a ``history.json``, a dict, a result or a history.

    `history` is the path of a ``history.json`` (read as JSON; any problem
    with its content raises :class:`~xgrad._infra.files.FileFormatError`
    naming the file), a dict of its fields, a :class:`History`, or anything
    holding one as ``.history`` (a :class:`TrainResult`, a sweep's run): all
    go through :meth:`History.from_dict`, whose ValueError names the field.
    """
    if isinstance(history, (str, os.PathLike)):
        p = os.fspath(history)
        if not os.path.exists(p):
            raise FileNotFoundError(f"no training history at {p!r}; give the history.json that a run wrote "
                                    "(xgrad train --out DIR writes DIR/history.json)")
        if os.path.isdir(p):
            raise FileFormatError(f"{p!r} is a folder, not a training history; give the history.json in it "
                                  f"({os.path.join(p, 'history.json')!r})", path=p)
        try:
            with open(p, encoding="utf-8") as fh:
                return History.from_dict(json.load(fh))
        except (ValueError, TypeError, UnicodeDecodeError) as exc:
            raise FileFormatError(f"{p!r} is not a training history (history.json): {exc}", path=p) from None
    if isinstance(history, Mapping):
        return History.from_dict(history)
    record = getattr(history, "history", history)  # a TrainResult holds one
    if isinstance(record, History):
        return History.from_dict({f.name: getattr(record, f.name) for f in fields(History)})
    raise TypeError(
        "`history` must be a TrainResult, a History, its to_dict(), or the path of a "
        f"history.json; got {type(history).__name__}"
    )


def _numbers(value: Any, name: str, *, finite: bool = True) -> list[float]:
    """A flat list of floats from a list or a 1-d array of any backend."""
    import numpy as np  # the host edge

    if isinstance(value, (str, bytes, Mapping)) or value is None or isinstance(value, bool):
        raise ValueError(f"`history` {name!r} must be a list of numbers; got {type(value).__name__}")
    try:
        arr = np.asarray(to_numpy(value) if hasattr(value, "shape") else value, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"`history` {name!r} must be a list of numbers") from None
    if arr.ndim != 1:
        raise ValueError(f"`history` {name!r} must be a 1-d float array or a flat list of numbers; "
                         f"got shape {arr.shape}")
    values: list[float] = arr.tolist()
    if finite and not all(math.isfinite(v) for v in values):
        raise ValueError(f"`history` {name!r} holds NaN or infinite values")
    return values


_THROUGH = tuple(f.name for f in fields(History) if f.name != "loss")  # what TrainResult reads from its history


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
    val_acc, val_loss : list
        The validation accuracy and loss at each evaluation; empty without
        validation data.
    iters_per_epoch : int
    timings : dict
        Seconds spent in total, training and evaluating, and iterations per
        second of the training steps; ``compile_s``, the part of the training
        seconds spent compiling the step (JAX; 0 where the step is not
        compiled, or its program was compiled by an earlier run).
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

    def __repr__(self) -> str:
        """What :class:`History` shows, how the run ended, its time and network; never every loss.

        Examples
        --------
        >>> from xgrad import TwoLayerNet
        >>> h = History(loss=[2.3, 0.41], eval_iters=[2], train_acc=[0.9], test_acc=[0.89], backend="numpy",
        ...             device="cpu", dtype="float64")
        >>> TrainResult(TwoLayerNet(4, 3, 2), h, {"total_s": 1.25}, interrupted=True, stop_signal="SIGINT")
        TrainResult(2 iterations, loss=0.41, train_acc=0.9, test_acc=0.89, backend='numpy', device='cpu', \
dtype='float64', interrupted by SIGINT, 1.2 s, net=TwoLayerNet(4, 3, 2, activation='sigmoid', dtype='float64', \
backend='numpy', device='cpu'))
        """
        stopped = f", interrupted by {self.stop_signal}" if self.stop_signal else ", interrupted" if self.interrupted \
            else ""
        return (f"TrainResult({_described(self.history)}{stopped}, {self.timings.get('total_s', 0.0):.1f} s, "
                f"net={self.net!r})")

    @property
    def loss(self) -> Any:
        """The minibatch loss of every iteration, as a NumPy array."""
        import numpy as np

        return np.asarray(self.history.loss, dtype=np.float64)

    def __getattr__(self, name: str) -> Any:
        # the history's other fields read through the result: result.test_acc is result.history.test_acc
        if name in _THROUGH:
            return getattr(self.history, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *_THROUGH})

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict of everything but the network: the history's
        fields, then the timings, the settings and how the run ended."""
        return {**self.history.to_dict(), "timings": dict(self.timings), "config": dict(self.config),
                "interrupted": self.interrupted, "stop_signal": self.stop_signal}

    def summary(self) -> str:
        """A few lines for people: accuracy, time, where it ran."""
        h = self.history
        done = len(h.loss)
        val = f", validation accuracy {h.val_acc[-1]:.4f}" if h.val_acc else ""
        acc = (f"train accuracy {h.train_acc[-1]:.4f}{val}, test accuracy {h.test_acc[-1]:.4f}"
               if h.test_acc else "no evaluation")
        if h.eval_iters and h.eval_iters[-1] != done:
            acc += f" (measured at iteration {h.eval_iters[-1]})"
        stopped = f" by {self.stop_signal}" if self.stop_signal else ""
        state = f" (interrupted{stopped})" if self.interrupted else ""
        t = self.timings
        if done and not self.interrupted and not t.get("iters_per_s") and done == self.config.get("iters"):
            # resumed from a checkpoint that held every iteration: no step was taken
            return (f"{done} iterations on {h.backend} ({h.device}, {h.dtype}): {acc}; the run was already "
                    "complete: nothing left to train (give a larger `iters` to train on)")
        return (f"{done} iterations{state} on {h.backend} ({h.device}, {h.dtype}): {acc}; "
                f"{t.get('total_s', 0.0):.1f} s in total: {t.get('train_s', 0.0):.1f} s training at "
                f"{t.get('iters_per_s', 0.0):.0f} it/s, {t.get('eval_s', 0.0):.1f} s evaluating")

