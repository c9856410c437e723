"""A round of a sweep with successive halving: each rung of a run, on a worker and on disk.

:func:`climb` runs a round: a :class:`~xgrad._sweep.halving.Ladder` says
which run trains to which rung next, the runner (this process or Dask) runs
:func:`run_rung` for it, and each rung's result is kept, and with ``out=``
written at once: the run's state (``runs/<run>/checkpoint.npz``), what each
of its rungs gave (``rungs.json``) and its history (``history.json``), so
that the same sweep run again reads back every rung done. A run going on to
the next rung resumes from the state its last rung ended with (sent to the
worker with the job), so its numbers equal those of a run trained that long
in one go, bit for bit.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from xgrad._sweep.halving import Ladder
from xgrad._sweep.result import score, write_atomic
from xgrad._sweep.worker import SweepRun, run_one
from xgrad._train.record import History
from xgrad._train.settings import by_name

__all__ = ["RungJob", "climb", "iterations", "run_rung", "uninterrupted"]

logger = logging.getLogger("xgrad")


@dataclass(frozen=True)
class RungJob:
    """What a worker needs to train one run to the end of a rung: the run's
    `settings`, the `rung` and the iterations at its end (`iters`), the state
    the run's last rung ended with (the bytes of a checkpoint; None on the
    first rung) and the `seconds` its rungs took so far."""

    settings: dict[str, Any]
    rung: int
    iters: int
    state: bytes | None = None
    seconds: float = 0.0


def run_rung(key: str, job: RungJob, data: Any = None, refine_round: int = 0) -> tuple[SweepRun, bytes | None]:
    """Train the run `key` to the end of `job`'s rung, from the state its last rung
    ended with, and return its record and its state now (None where it diverged)."""
    with tempfile.TemporaryDirectory(prefix="xgrad-rung-") as folder:
        path = os.path.join(folder, "state.npz")
        if job.state is not None:
            Path(path).write_bytes(job.state)
        settings = {**job.settings, "iters": job.iters, "checkpoint": path, "resume": True,
                    "checkpoint_every": job.iters}
        run = run_one(key, settings, data, refine_round)
        state = None if run.diverged or not os.path.exists(path) else Path(path).read_bytes()
    assert run.history is not None
    h = uninterrupted(run.history, job.settings.get("eval_every"), job.iters)
    last = lambda values: values[-1] if values else None  # noqa: E731
    return replace(run, settings=job.settings, rung=job.rung, seconds=job.seconds + run.seconds, history=h,
                   train_acc=last(h.train_acc), test_acc=last(h.test_acc), val_acc=last(h.val_acc),
                   val_loss=last(h.val_loss)), state


def uninterrupted(history: History, eval_every: int | None, end: int) -> History:
    """`history` without the evaluations made only because an earlier rung ended there: those
    of a run trained to `end` in one go (after iterations 1, 1 + `eval_every`, ... and `end`).

    Examples
    --------
    >>> h = History(loss=[1.0] * 9, eval_iters=[1, 4, 5, 7, 9], train_acc=[0.1] * 5, test_acc=[0.1] * 5,
    ...             iters_per_epoch=3)
    >>> uninterrupted(h, None, 9).eval_iters, uninterrupted(h, 2, 9).eval_iters
    ([1, 4, 7, 9], [1, 5, 7, 9])
    """
    every = history.iters_per_epoch if eval_every is None else eval_every
    if not every:
        return history
    keep = [j for j, i in enumerate(history.eval_iters) if (i - 1) % every == 0 or i == end]
    pick = lambda values: [values[j] for j in keep] if values else values  # noqa: E731
    return replace(history, eval_iters=pick(history.eval_iters), train_acc=pick(history.train_acc),
                   test_acc=pick(history.test_acc), val_acc=pick(history.val_acc), val_loss=pick(history.val_loss))


class _Round:
    """The runs of a round as they climb: the latest record and state of each, and their files."""

    def __init__(self, todo: list[tuple[str, dict[str, Any]]], rungs: list[int], folder: Path | None,
                 write_run: Callable[[Path, SweepRun], None]) -> None:
        self.settings = dict(todo)
        self.rungs, self.folder, self.write_run = rungs, folder, write_run
        self.latest: dict[str, SweepRun] = {}
        self.state: dict[str, bytes | None] = {}
        self.stored = {key: self._read(key) for key in self.settings}

    def job(self, key: str, rung: int) -> RungJob:
        before = self.latest.get(key)
        return RungJob(self.settings[key], rung, self.rungs[rung], self.state.get(key),
                       before.seconds if before is not None else 0.0)

    def keep(self, run: SweepRun, state: bytes | None) -> None:
        """A rung done: kept, and written as the run's state, its rungs and its history."""
        self.latest[run.key], self.state[run.key] = run, state
        if self.folder is None:
            return
        base = self.folder / "runs" / run.key
        if state is not None:
            write_atomic(base / "checkpoint.npz", state)
        records: dict[int, SweepRun] = {**self.stored.get(run.key, {}), run.rung or 0: run}
        self.stored[run.key] = records
        text = {"rungs": self.rungs, "runs": [r.to_dict() for _, r in sorted(records.items())]}
        write_atomic(base / "rungs.json", json.dumps(text).encode())
        self.write_run(self.folder, run)

    def read_back(self, key: str, rung: int) -> SweepRun | None:
        """The record of `key` at `rung` from an earlier sweep's files (None where there is none);
        the run's state is read with it, for its next rung."""
        run = self.stored.get(key, {}).get(rung)
        if run is None:
            return None
        assert self.folder is not None
        base = self.folder / "runs" / key
        if rung == max(self.stored[key]):  # the files hold the history and state of its highest rung
            try:
                found = json.loads((base / "history.json").read_text())
                found.pop("sweep_run", None)
                history = History.from_dict(found)
                if run.diverged or len(history.loss) == run.iters:  # not that of a later sweep without halving
                    run = replace(run, history=history)
            except (OSError, ValueError, TypeError) as exc:
                logger.warning("%s: its history.json is unreadable (%s); its loss curve is left out", key, exc)
            checkpoint = base / "checkpoint.npz"
            self.state[key] = checkpoint.read_bytes() if checkpoint.exists() else None
        self.latest[key] = run
        return run

    def _read(self, key: str) -> dict[int, SweepRun]:
        """The rungs of `key` that an earlier sweep with these rungs wrote, by rung (none for a
        damaged file, or other rungs)."""
        if self.folder is None:
            return {}
        path = self.folder / "runs" / key / "rungs.json"
        if not path.exists():
            return {}
        try:
            found = json.loads(path.read_text())
            if found["rungs"] != self.rungs:
                return {}
            runs = [SweepRun.from_dict({**r, "settings": self.settings[key], "resumed": True}) for r in found["runs"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            logger.warning("running %s again: its rungs.json is unreadable (%s)", key, exc)
            return {}
        return {r.rung: r for r in runs if r.key == key and r.rung is not None}


def climb(pool: Any, todo: list[tuple[str, dict[str, Any]]], data: Any, folder: Path | None, bar: Any,
          round_: int, *, rungs: list[int], halving: int, write_run: Callable[[Path, SweepRun], None]
          ) -> list[SweepRun]:
    """Run the round `todo` with successive halving over `rungs` on `pool` (a runner of
    :mod:`~xgrad._sweep.executor`), reading back the rungs found in `folder` and writing each
    rung done there with `write_run`; the latest record of each run comes back in the order
    of `todo`, those stopped below the top rung marked ``stopped``."""
    state = _Round(todo, rungs, folder, write_run)
    ladder = Ladder([key for key, _ in todo], rungs, halving, asynchronous=getattr(pool, "concurrent", True))
    read = 0

    def jobs() -> tuple[str, RungJob] | None:
        nonlocal read
        while (job := ladder.next()) is not None:
            key, rung = job
            bar.add(1, [])
            run = state.read_back(key, rung)
            if run is None:
                return key, state.job(key, rung)
            read += 1
            ladder.done(key, rung, score(run))
            bar.add(0, [run])
        return None

    for run, saved in pool.stream(jobs, data, round_, run_rung):
        state.keep(run, saved)
        ladder.done(run.key, run.rung, score(run))
        bar.add(0, [run])
    if read:
        logger.info("%d rungs read back from %s", read, folder)
    top = len(rungs) - 1
    out = []
    for key, _ in todo:
        run = state.latest[key]
        out.append(replace(run, stopped=not run.diverged and (run.rung or 0) < top))
    return out


def iterations(runs: list[SweepRun]) -> int:
    """The iterations trained by `runs` (each run's `iters`; a run without the field: its settings')."""
    full = by_name()["iters"].default
    return sum(r.iters if r.iters is not None else int(r.settings.get("iters", full)) for r in runs)
