"""What a sweep returns: its runs, the best one, a table, JSON and a figure."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from xgrad._infra.files import atomic_write
from xgrad._sweep.worker import SweepRun

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_COLUMNS = ("train acc", "val acc", "test acc", "loss", "diverged", "seconds", "worker")
BY_VALIDATION = "validation accuracy"
BY_LOSS = "final training loss"


def score(run: SweepRun) -> float:
    """How good a run is: its final validation accuracy, or without validation
    data, minus its final training loss; never its test accuracy (choosing on
    the test set would make the test accuracy of the choice optimistic). A
    diverged run is the worst."""
    if run.diverged:
        return -math.inf
    if run.val_acc is not None:
        return run.val_acc
    return -run.loss if math.isfinite(run.loss) else -math.inf


def ranked_by(runs: list[SweepRun]) -> str:
    """What :func:`score` ranks `runs` by: :data:`BY_VALIDATION` when they have validation
    scores, else :data:`BY_LOSS`."""
    return BY_VALIDATION if any(r.val_acc is not None for r in runs) else BY_LOSS


@dataclass
class SweepResult:
    """The runs of :func:`xgrad.sweep`, one per combination of settings.

    Attributes
    ----------
    runs : list of SweepRun
        In grid order (the learning rate, then the seed, varying fastest),
        refinement rounds after the coarse grid.
    varied : list of str
        The settings that take several values (``lr`` and ``seed`` always):
        the columns of the table.
    halving : int or None
        The factor of successive halving (``sweep(halving=...)``), or None.
    rungs : list of int or None
        With halving, the iterations at the end of each rung of the coarse
        grid, the last ``iters``.
    """

    runs: list[SweepRun]
    varied: list[str] = field(default_factory=lambda: ["lr", "seed"])
    halving: int | None = None
    rungs: list[int] | None = None

    def __len__(self) -> int:
        return len(self.runs)

    def __iter__(self) -> Iterator[SweepRun]:
        return iter(self.runs)

    @property
    def best(self) -> SweepRun | None:
        """The run with the highest final validation accuracy, or without
        validation data (``validation=None``) the lowest final training loss
        (see :attr:`ranked_by`); never chosen by test accuracy, which is the
        number to quote for it. Chosen among the runs trained to the end:
        never one stopped early by successive halving. None if all diverged."""
        finite = [r for r in self.runs if score(r) > -math.inf and not r.stopped]
        return max(finite, key=score) if finite else None

    @property
    def ranked_by(self) -> str:
        """``"validation accuracy"``, or ``"final training loss"`` for runs without validation data."""
        return ranked_by(self.runs)

    def summary(self) -> str:
        """The best run, what chose it, and apart, its test accuracy: the number to quote.

        Examples
        --------
        >>> from xgrad import SweepRun
        >>> runs = [SweepRun(str(lr), {"lr": lr, "seed": 0}, 0.9, test, 0.4, False, None, 1.5, "local", "numpy",
        ...                  val_acc=val) for lr, val, test in [(0.1, 0.87, 0.85), (1.0, 0.86, 0.88)]]
        >>> print(SweepResult(runs).summary())
        best: lr=0.1, validation accuracy 0.8700; its test accuracy 0.8500 (the number to quote)
        """
        best = self.best
        if best is None:
            return "every run diverged: try smaller learning rates"
        chosen = (f"validation accuracy {best.val_acc:.4f}" if best.val_acc is not None else
                  f"final training loss {best.loss:.4g} (no validation data)")
        test = "no evaluation" if best.test_acc is None else f"{best.test_acc:.4f} (the number to quote)"
        return f"best: lr={best.settings['lr']:g}, {chosen}; its test accuracy {test}"

    def to_dict(self, *, history: bool = False) -> dict[str, Any]:
        """A JSON-able dict: the varied settings, the best run's key, the runs
        (with their loss curves if `history`)."""
        best = self.best
        halving = {} if self.halving is None else {"halving": self.halving, "rungs": self.rungs}
        return {"varied": list(self.varied), "best": None if best is None else best.key, **halving,
                "runs": [r.to_dict(history=history) for r in self.runs]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SweepResult:
        """The inverse of :meth:`to_dict`, e.g. from a ``sweep.json``."""
        rungs = d.get("rungs")
        return cls([SweepRun.from_dict(r) for r in d["runs"]], list(d["varied"]), d.get("halving"),
                   None if rungs is None else [int(n) for n in rungs])

    def to_json(self, path: str | os.PathLike[str] | None = None) -> str:
        """The JSON text of :meth:`to_dict`; also written (atomically) to `path` if given."""
        text = json.dumps(self.to_dict(), indent=1)
        if path is not None:
            write_atomic(path, text.encode())
        return text

    def to_table(self) -> str:
        """The runs as a plain-text table, the best marked with ``*``, under a
        line that says what chose it.

        Examples
        --------
        >>> from xgrad import SweepRun
        >>> run = SweepRun("a", {"lr": 0.1, "seed": 0}, 0.9, 0.85, 0.4, False, None, 1.5, "local", "numpy",
        ...                val_acc=0.87, val_loss=0.45)
        >>> print(SweepResult([run]).to_table())
        best (*) by validation accuracy; test accuracy is reported, never used to choose
           lr   seed  train acc  val acc  test acc  loss  diverged  seconds  worker
        *  0.1  0     0.9000     0.8700   0.8500    0.4             1.5      local
        """
        best = self.best
        by = self.ranked_by
        note = (f"best (*) by {by}; test accuracy is reported, never used to choose" if by == BY_VALIDATION else
                f"best (*) by the {by}: no validation data (validation=None); test accuracy is reported, never "
                "used to choose")
        halved = self.halving is not None
        if halved:
            note += (f"\nsuccessive halving by {self.halving}: rungs end at "
                     f"{', '.join(map(str, self.rungs or []))} iterations; a stopped run is never the best")
        header = ["", *self.varied, *_COLUMNS, *(["stopped"] if halved else [])]
        rows = [["*" if r is best else "", *(_cell(r.settings.get(k)) for k in self.varied), *_cells(r),
                 *([f"at {r.iters}" if r.stopped else ""] if halved else [])] for r in self.runs]
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                 for row in [header, *rows]]
        return "\n".join([note, *lines])

    def figure(self, *, curves: int = 3) -> Figure:
        """Final validation accuracy (test accuracy without validation data)
        and loss against the learning rate (log axis), diverged runs marked,
        the best starred, and the loss curves of the `curves` best runs
        (see :func:`xgrad._plot.sweep.sweep_figure`). Needs matplotlib."""
        from xgrad._plot.sweep import sweep_figure

        ranked = sorted((r for r in self.runs if score(r) > -math.inf and not r.stopped), key=score, reverse=True)
        return sweep_figure(self.runs, self.varied, ranked, curves=curves)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return "" if value is None else str(value)


def _cells(r: SweepRun) -> list[str]:
    acc = lambda v: "" if v is None else f"{v:.4f}"  # noqa: E731
    return [acc(r.train_acc), acc(r.val_acc), acc(r.test_acc), "nan" if math.isnan(r.loss) else f"{r.loss:.4g}",
            f"at {r.diverged_at}" if r.diverged else "", f"{r.seconds:.1f}", r.worker]


def write_atomic(path: str | os.PathLike[str], payload: bytes) -> None:
    """Write `payload` with :func:`~xgrad._infra.files.atomic_write` (a reader sees the
    old file or the new one, never half of one), making its folder first."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_write(path) as f:
        f.write(payload)
