"""The learning-rate range test's curve: its schedule, its smoothing, its rule, its record.

Plain functions of host numbers (lists of floats), apart from the run
(:mod:`xgrad._train.lrfind`): the learning rates grow geometrically from
`start` to `stop` (:func:`lr_schedule`); the minibatch losses are smoothed by
an exponential moving average with bias correction (:func:`smoothed`); the run
stops when the smoothed loss blows up (:func:`blew_up`); and the suggested
learning rate follows one rule (:func:`suggest`, :data:`RULE`).
:class:`LRFindResult` is what :func:`xgrad.lr_find` returns.

Examples
--------
>>> lr_schedule(1e-3, 10.0, 5)
[0.001, 0.01, 0.1, 1.0, 10.0]
>>> [round(v, 3) for v in smoothed([2.0, 1.0, 0.0], beta=0.5)]
[2.0, 1.333, 0.571]
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from xgrad._infra.files import FileFormatError, check_input_file

__all__ = ["RULE", "LRFindResult", "Smoother", "blew_up", "lr_schedule", "read_lr_find", "smoothed", "steepest",
           "suggest"]

RULE = "one tenth of the learning rate at the minimum of the smoothed loss"
"""The rule of the suggested learning rate, in words (:func:`suggest`)."""


def lr_schedule(start: float, stop: float, iters: int) -> list[float]:
    """`iters` learning rates from `start` to `stop`, each the last times a constant factor.

    Iteration ``i`` (0-based) runs at ``start * (stop / start) ** (i / (iters - 1))``:
    a straight line on a log axis, both ends included (exactly).

    Examples
    --------
    >>> lr_schedule(1e-5, 10.0, 7)
    [1e-05, 0.0001, 0.001, 0.01, 0.1, 1.0, 10.0]
    """
    ratio = stop / start
    out = [start * ratio ** (i / (iters - 1)) for i in range(iters)]
    out[0], out[-1] = start, stop  # no rounding at the ends
    # decades come out as the numbers written (1e-05 * 10 ** 1 is 0.00010000000000000002)
    return [float(f"{v:.15g}") for v in out]


def smoothed(losses: Sequence[float], *, beta: float) -> list[float]:
    """The exponential moving average of `losses` with factor `beta`, bias-corrected.

    ``avg_i = beta * avg_(i-1) + (1 - beta) * loss_i`` from ``avg_(-1) = 0``,
    divided by ``1 - beta ** (i + 1)`` so that the first values are not pulled
    towards zero: the first smoothed value is the first loss, and a constant
    loss stays constant. ``beta=0`` is no smoothing.

    Examples
    --------
    >>> smoothed([3.0, 3.0, 3.0], beta=0.5)
    [3.0, 3.0, 3.0]
    """
    smoother = Smoother(beta)
    return [smoother.add(loss) for loss in losses]


class Smoother:
    """The bias-corrected moving average of :func:`smoothed`, one loss at a time.

    Examples
    --------
    >>> s = Smoother(0.5)
    >>> s.add(2.0), s.add(1.0)
    (2.0, 1.3333333333333333)
    """

    def __init__(self, beta: float) -> None:
        self.beta, self.avg, self.n = beta, 0.0, 0

    def add(self, loss: float) -> float:
        """Take the next loss; the smoothed loss so far."""
        self.n += 1
        self.avg = self.beta * self.avg + (1 - self.beta) * loss
        return self.avg / (1 - self.beta ** self.n)


def blew_up(loss: float, smooth: float, lowest: float, factor: float) -> bool:
    """Whether the range test stops here: a loss or smoothed loss that is not
    finite, or a smoothed loss above `factor` times the `lowest` so far.

    Examples
    --------
    >>> blew_up(2.0, 2.0, 0.4, 4.0), blew_up(2.0, 1.5, 0.4, 4.0), blew_up(math.nan, 1.0, 0.4, 4.0)
    (True, False, True)
    """
    return not (math.isfinite(loss) and math.isfinite(smooth)) or smooth > factor * lowest


def suggest(lrs: Sequence[float], smooth: Sequence[float]) -> float | None:
    """The suggested learning rate: one tenth of the rate at the minimum of the smoothed loss.

    The minimum is taken over the finite smoothed losses (the first, if
    several are equal). None when the smoothed loss never fell below its
    first value (the range starts too high, or is too short to learn
    anything): the curve then says nothing about a good rate.

    Examples
    --------
    >>> suggest([0.01, 0.1, 1.0, 10.0], [2.3, 1.5, 0.9, 5.0])
    0.1
    >>> suggest([0.01, 0.1], [2.3, 2.5]) is None
    True
    """
    finite = [(v, i) for i, v in enumerate(smooth) if math.isfinite(v)]
    if not finite:
        return None
    best, at = min(finite)
    if at == 0 or not best < smooth[0]:
        return None
    return float(f"{lrs[at] / 10:.15g}")


def steepest(lrs: Sequence[float], smooth: Sequence[float]) -> float | None:
    """The learning rate where the smoothed loss falls fastest against log(lr), before its minimum.

    The other common rule, kept for comparison (``scripts/compare_lr_find.py``):
    the slope between neighbouring points, steepest negative one; None
    without a fall.

    Examples
    --------
    >>> steepest([0.01, 0.1, 1.0, 10.0], [2.3, 2.2, 0.9, 5.0])
    0.1
    """
    finite = [(v, i) for i, v in enumerate(smooth) if math.isfinite(v)]
    if len(finite) < 2:
        return None
    _, at = min(finite)
    slopes = [(smooth[i + 1] - smooth[i]) / math.log(lrs[i + 1] / lrs[i]) for i in range(at)]
    if not slopes or min(slopes) >= 0:
        return None
    return lrs[slopes.index(min(slopes))]


@dataclass(frozen=True)
class LRFindResult:
    """The record of a learning-rate range test (:func:`xgrad.lr_find`).

    Attributes
    ----------
    lrs : list of float
        The learning rate of each iteration run (geometric from `start`;
        fewer than `iters` when the test stopped early).
    loss : list of float
        Each iteration's minibatch loss, computed before its step (so it
        shows the effect of the rates before it).
    smoothed_loss : list of float
        `loss` smoothed (:attr:`smoothing`, bias-corrected).
    suggestion : float or None
        One tenth of the learning rate at the minimum of `smoothed_loss`
        (:attr:`rule`); None when the smoothed loss never fell.
    rule : str
        The rule of `suggestion`, in words.
    stopped_at : int or None
        The iteration (1-based) at which the smoothed loss blew up (see
        `blowup`) or a loss was not finite; None when the test ran to `stop`.
    start, stop : float
        The range of learning rates asked for.
    iters : int
        The iterations asked for.
    smoothing, blowup : float
        The smoothing factor and the blow-up factor used.
    settings : dict
        The run's other settings (backend, dataset, dtype, seed, ...).
    seconds : float
        Wall time of the iterations.
    interrupted : str or None
        ``"SIGINT"`` or ``"SIGTERM"`` when a signal stopped the test before
        its end (the record holds the iterations run); else None.
    """

    lrs: list[float]
    loss: list[float]
    smoothed_loss: list[float]
    suggestion: float | None
    rule: str
    stopped_at: int | None
    start: float
    stop: float
    iters: int
    smoothing: float
    blowup: float
    settings: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    interrupted: str | None = None

    @property
    def lr_at_min(self) -> float | None:
        """The learning rate at the minimum of the smoothed loss (None without a finite one)."""
        finite = [(v, i) for i, v in enumerate(self.smoothed_loss) if math.isfinite(v)]
        return self.lrs[min(finite)[1]] if finite else None

    def summary(self) -> str:
        """One line: where the test stopped and the suggestion, with its rule.

        Examples
        --------
        >>> r = LRFindResult([0.01, 0.1, 1.0], [2.3, 1.5, 9.0], [2.3, 1.9, 4.1], 0.01, RULE, None, 0.01,
        ...                  1.0, 3, 0.5, 4.0)
        >>> for part in r.summary().split("; "):
        ...     print(part)
        ran 3 of 3 iterations, lr 0.01 to 1
        suggested lr 0.01: one tenth of the learning rate at the minimum of the smoothed loss (0.1)
        """
        ran = (f"stopped at iteration {self.stopped_at} of {self.iters} (the smoothed loss blew up)"
               if self.stopped_at is not None else f"ran {len(self.lrs)} of {self.iters} iterations")
        if self.interrupted is not None:
            ran += f" (stopped by {self.interrupted})"
        span = f"lr {self.lrs[0]:g} to {self.lrs[-1]:g}" if self.lrs else "no iteration"
        if self.suggestion is None:
            return (f"{ran}, {span}; no suggestion: the smoothed loss never fell below its first value "
                    "(give a lower `start`, or more `iters`)")
        line = f"{ran}, {span}; suggested lr {self.suggestion:.3g}: {self.rule} ({self.lr_at_min:.3g})"
        if self.stopped_at is None and self.smoothed_loss and self.lr_at_min == self.lrs[-1]:
            line += "; the loss was still falling at the last rate: give a larger `stop`"
        return line

    def to_dict(self) -> dict[str, Any]:
        """The record as plain JSON types (non-finite losses as None)."""
        out = asdict(self)
        for key in ("loss", "smoothed_loss"):
            out[key] = [v if math.isfinite(v) else None for v in out[key]]
        return out

    def to_json(self) -> str:
        """:meth:`to_dict` as JSON text."""
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LRFindResult:
        """The record written by :meth:`to_dict` (None losses read back as NaN)."""
        try:
            values = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
            for key in ("loss", "smoothed_loss"):
                values[key] = [math.nan if v is None else float(v) for v in values[key]]
            values["lrs"] = [float(v) for v in values["lrs"]]
            if not len(values["lrs"]) == len(values["loss"]) == len(values["smoothed_loss"]):
                raise ValueError("`lrs`, `loss` and `smoothed_loss` differ in length")
            return cls(**values)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not the record of a learning-rate range test: {exc!r}") from None


def read_lr_find(record: Any) -> LRFindResult:
    """An :class:`LRFindResult` from itself, its :meth:`~LRFindResult.to_dict`, or the path of the
    JSON file ``xgrad lr-find --out`` writes (any problem with the file's content raises
    :class:`~xgrad._infra.files.FileFormatError` naming it)."""
    if isinstance(record, LRFindResult):
        return record
    if isinstance(record, (str, os.PathLike)):
        p = os.fspath(record)
        check_input_file(p, "`result`", "the lr_find.json that xgrad lr-find --out DIR writes")
        try:
            with open(p, encoding="utf-8") as fh:
                return LRFindResult.from_dict(json.load(fh))
        except (ValueError, TypeError, UnicodeDecodeError) as exc:
            raise FileFormatError(f"{p!r} is not the record of a learning-rate range test: {exc}", path=p) from None
    if isinstance(record, Mapping):
        return LRFindResult.from_dict(record)
    raise TypeError("`result` must be what lr_find returns, its to_dict(), or the path of the JSON file "
                    f"`xgrad lr-find --out` writes; got {type(record).__name__}")
