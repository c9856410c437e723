"""One run of a sweep, as a worker does it, and the record it sends back.

:func:`run_one` is what every worker executes (a Dask worker, or this process
with ``client="serial"``): it picks the backend (CuPy where the worker sees a
GPU), calls :func:`xgrad.train`, and turns the result, or the divergence, into
a :class:`SweepRun`. A divergence is a result, not an error.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from xgrad._infra.backend import auto_choice, visible_gpus
from xgrad._sweep.grid import jsonable
from xgrad._train.errors import TrainingDivergedError
from xgrad._train.record import History
from xgrad._train.train import train

_LOSS_TAIL = 10  # the final loss is the mean of the last iterations' mini-batch losses


@dataclass
class SweepRun:
    """One run of a sweep: its settings and how it ended.

    Attributes
    ----------
    key : str
        Its name, also the folder of its ``history.json`` under ``out/runs/``.
    settings : dict
        The :func:`xgrad.train` settings of the run (``lr``, ``seed``, ...).
    train_acc, test_acc : float or None
        The accuracies at the last evaluation (None without one). The test
        accuracy is reported, never used to choose among runs.
    loss : float
        The mean mini-batch loss of the last 10 iterations (NaN without any).
    diverged : bool
    diverged_at : int or None
        The iteration at which the loss became non-finite.
    seconds : float
        Wall time of the run on its worker.
    worker : str
        Where it ran: the Dask worker's address, or ``"local"``.
    backend : str
        The backend it ran on (``"cupy"`` on a GPU worker).
    refine_round : int
        0 for the coarse grid, 1, 2, ... for the refinement rounds.
    resumed : bool
        Read back from a previous sweep's ``out/`` rather than run again.
    val_acc, val_loss : float or None
        The accuracy and mean cross-entropy on the validation data at the
        last evaluation, what the sweep ranks its runs by (None without
        validation data, as in sweeps written before it had them).
    iters : int or None
        The iterations it trained: ``iters``, the end of the rung where
        successive halving stopped it, or the iteration it diverged at (None
        in sweeps written before it was recorded).
    rung : int or None
        With successive halving (``sweep(halving=...)``), the highest rung it
        reached, 0 for the first; None without halving.
    stopped : bool
        Stopped by successive halving below the top rung: it did not train
        for ``iters`` iterations, and is never the best run.
    history : History or None
        What the run recorded (loss per iteration, accuracies); for a
        diverged run, up to the last finite loss. None where it was not kept
        (runs read back from a ``sweep.json``).
    """

    key: str
    settings: dict[str, Any]
    train_acc: float | None
    test_acc: float | None
    loss: float
    diverged: bool
    diverged_at: int | None
    seconds: float
    worker: str
    backend: str
    refine_round: int = 0
    resumed: bool = False
    val_acc: float | None = None
    val_loss: float | None = None
    iters: int | None = None
    rung: int | None = None
    stopped: bool = False
    history: History | None = field(default=None, repr=False)

    def to_dict(self, *, history: bool = False) -> dict[str, Any]:
        """A JSON-able dict (NaN loss as None), with the history's fields if asked."""
        d = asdict(self)
        d["settings"] = jsonable(self.settings)
        if history:
            d["history"] = None if self.history is None else self.history.to_dict()
        else:
            d.pop("history")
        d["loss"] = None if math.isnan(self.loss) else self.loss
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SweepRun:
        """The inverse of :meth:`to_dict`; a history is checked by :meth:`History.from_dict`."""
        d = dict(d)
        _check_fields(d)
        d["loss"] = math.nan if d.get("loss") is None else float(d["loss"])
        if d.get("history") is not None:
            d["history"] = History.from_dict(d["history"])
        return cls(**d)


_FIELDS = {"key": str, "settings": dict, "diverged": bool, "worker": str, "backend": str, "resumed": bool,
           "stopped": bool}


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _check_fields(d: dict[str, Any]) -> None:
    """Raise ValueError where a stored run's field is not what a run holds (a damaged file)."""
    def bad(name: str, what: str) -> ValueError:
        return ValueError(f"the run's {name!r} must be {what}; got {d.get(name)!r}")

    for name, kind in _FIELDS.items():
        if name in d and not isinstance(d[name], kind):
            raise bad(name, kind.__name__)
    for name in ("train_acc", "test_acc", "val_acc"):
        if d.get(name) is not None and not (_number(d[name]) and 0 <= d[name] <= 1):
            raise bad(name, "an accuracy between 0 and 1, or null")
    for name in ("loss", "val_loss"):
        if d.get(name) is not None and not _number(d[name]):
            raise bad(name, "a number or null")
    for name in ("diverged_at", "refine_round", "iters", "rung"):
        if d.get(name) is not None and not (isinstance(d[name], int) and not isinstance(d[name], bool)
                                            and d[name] >= 0):
            raise bad(name, "a count")
    if not (_number(d.get("seconds")) and d["seconds"] >= 0):
        raise bad("seconds", "a number of seconds")
    if d.get("diverged") and d.get("diverged_at") is None:
        raise bad("diverged_at", "the iteration of a diverged run")


def choose_backend(requested: Any, gpus: int) -> Any:
    """The backend a run uses: ``"auto"`` means CuPy on a worker that sees a
    GPU (``gpus > 0``), NumPy otherwise; any other choice is kept.

    Examples
    --------
    >>> choose_backend("auto", 1), choose_backend("auto", 0), choose_backend("torch", 1)
    ('cupy', 'numpy', 'torch')
    """
    if requested != "auto":
        return requested
    return auto_choice(gpus)


def where() -> str:
    """The address of the Dask worker running this, or ``"local"``."""
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return "local"


def run_one(key: str, settings: dict[str, Any], data: Any = None, refine_round: int = 0) -> SweepRun:
    """Train with `settings` as they are (the grid checked them; on `data`, or
    the data set they name) and record it; the backend "auto" is chosen here."""
    backend = choose_backend(settings.get("backend", "auto"), visible_gpus())
    t0 = time.perf_counter()
    try:
        result = train(**{**settings, "backend": backend}, data=data, progress=False)
        diverged_at = None
    except TrainingDivergedError as exc:
        result, diverged_at = exc.result, exc.iteration
    seconds = time.perf_counter() - t0
    h = result.history
    tail = h.loss[-_LOSS_TAIL:]
    return SweepRun(
        key=key, settings=settings, train_acc=h.train_acc[-1] if h.train_acc else None,
        test_acc=h.test_acc[-1] if h.test_acc else None,
        loss=sum(tail) / len(tail) if tail else math.nan, diverged=diverged_at is not None,
        diverged_at=diverged_at, seconds=seconds, worker=where(), backend=result.backend,
        refine_round=refine_round, val_acc=h.val_acc[-1] if h.val_acc else None,
        val_loss=h.val_loss[-1] if h.val_loss else None, iters=diverged_at or len(h.loss), history=h,
    )
