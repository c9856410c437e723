"""Successive halving in a sweep: the rungs, which runs go on, and in what order.

With ``sweep(halving=3)`` every run of a round first trains for the shortest
rung of iterations; the best third of them (by :func:`~xgrad._sweep.result.score`)
go on to the next rung, three times longer, and so on up to ``iters``. Nothing
here trains: :func:`rung_lengths` and :func:`check_rungs` turn the settings into
rungs (or refuse them before any run starts), :func:`promotable` says which runs
finished at a rung may go on, and :class:`Ladder` hands out the next job, a new
run at the bottom rung or a run promoted to the next one, as a worker frees up.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from xgrad._train.settings import by_name

__all__ = ["Ladder", "check_halving", "check_rungs", "promotable", "rung_count", "rung_lengths"]


def check_halving(name: str, value: Any, given: Any = None) -> int | None:
    """`value` as the factor of successive halving: None (off), or an integer of at least 2.

    Examples
    --------
    >>> check_halving("halving", 3), check_halving("halving", None)
    (3, None)
    >>> check_halving("halving", 1)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: `halving` must be an integer of at least 2 ...; got 1, which would stop no run
    """
    if value is None:
        return None
    what = ("an integer of at least 2 (3 keeps the best third of the runs at each rung, 2 the best half); "
            "leave it out for no halving")
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{name}` must be {what}; got {value!r}")
    if value < 2:
        raise ValueError(f"`{name}` must be {what}; got {value}, which would stop no run")
    return int(value)


def rung_count(n_runs: int, halving: int) -> int:
    """How many rungs `n_runs` runs make: one more than the times the best
    ``1/halving`` of them (rounded down) can be kept before none is left, so
    that at least one run reaches the top rung.

    Examples
    --------
    >>> rung_count(8, 3), rung_count(9, 3), rung_count(2, 3), rung_count(8, 2)
    (2, 3, 1, 4)
    """
    count = 1
    while n_runs // halving >= 1:
        n_runs //= halving
        count += 1
    return count


def rung_lengths(iters: int, halving: int, n_runs: int) -> list[int]:
    """The iterations at the end of each rung: ``iters`` divided by ``halving``
    once per rung above it (rounded down), the last ``iters``.

    Examples
    --------
    >>> rung_lengths(10_000, 3, 8), rung_lengths(10_000, 3, 9), rung_lengths(1000, 2, 8)
    ([3333, 10000], [1111, 3333, 10000], [125, 250, 500, 1000])
    """
    count = rung_count(n_runs, halving)
    return [iters // halving ** (count - 1 - k) for k in range(count)]


def check_rungs(halving: int, runs: Sequence[Mapping[str, Any]], data: Any = None, *, most: int | None = None
                ) -> list[int]:
    """The rungs of a round of `runs` (one dict of settings each), or a ValueError naming
    ``halving`` that shows the rungs it would use: a grid of ``iters``, or a first rung
    shorter than one iteration or than one evaluation interval (``eval_every``, or one epoch
    of `data`, or of MNIST's 60,000 training images, where it is None). The rungs are those
    of `most` runs where there are more (a refinement round: no more rungs than the grid's)."""
    iters = sorted({r.get("iters", by_name()["iters"].default) for r in runs})
    if len(iters) > 1:
        raise ValueError(f"`halving` needs one `iters` for every run (the length of the top rung); got a grid of "
                         f"`iters` {iters}: give one value, or sweep without `halving`")
    rungs = rung_lengths(iters[0], halving, min(len(runs), most or len(runs)))
    said = (f"`halving` {halving} cuts the {len(runs)} runs' {iters[0]} iterations into rungs ending at "
            f"{', '.join(map(str, rungs))} iterations")
    if rungs[0] < 1:
        least = halving ** (len(rungs) - 1)
        raise ValueError(f"{said}: the first rung is shorter than one iteration; give `iters` of at least {least}, "
                         "or a smaller `halving`")
    for r in runs:
        interval = _eval_interval(r, data)
        if interval is not None and rungs[0] < interval:
            which = "`eval_every`" if r.get("eval_every") is not None else "one epoch, as `eval_every` is not given"
            raise ValueError(f"{said}: the first rung is shorter than one evaluation interval ({interval} "
                             f"iterations, {which}); give more `iters`, a smaller `eval_every` or a smaller "
                             "`halving`")
    return rungs


_NAMED_TRAIN = 60_000  # the training images of MNIST and of Fashion-MNIST, the data sets a run may name


def _eval_interval(settings: Mapping[str, Any], data: Any) -> int | None:
    """Iterations between a run's evaluations: `eval_every`, or one epoch where it is None
    (None for no evaluations)."""
    every = settings.get("eval_every")
    if every is not None:
        return int(every) if every > 0 else None
    n = _NAMED_TRAIN if data is None else len(data[0][0])
    fraction = settings.get("validation")
    if isinstance(fraction, float):
        n -= round(fraction * n)
    return max(n // int(settings.get("batch_size", 100)), 1)


def promotable(finished: Mapping[str, float], promoted: Collection[str], halving: int) -> list[str]:
    """The runs finished at a rung that may go on to the next one now, best first: those in
    the best ``1/halving`` (rounded down) of the `finished` ones (run key -> score, higher is
    better), less those already `promoted`; a diverged run (score -inf) never. Ties keep the
    order of `finished`.

    Examples
    --------
    >>> promotable({"a": 0.5, "b": 0.9, "c": 0.7}, set(), 3)
    ['b']
    >>> promotable({"a": 0.5, "b": 0.9, "c": 0.7, "d": 0.8, "e": 0.1, "f": 0.2}, {"b"}, 3)
    ['d']
    >>> promotable({"a": 0.5, "b": 0.9}, set(), 3)
    []
    """
    best = sorted(finished, key=lambda key: -finished[key])[:len(finished) // halving]
    return [key for key in best if finished[key] > -math.inf and key not in promoted]


class Ladder:
    """Which job comes next in a round of successive halving.

    `keys` are the runs of the round, `rungs` the iterations at the end of
    each rung. :meth:`next` hands out ``(key, rung)``; :meth:`done` takes its
    score once it ran. Asynchronous (for a cluster), a free worker is given
    a promotion whenever a run is in the best ``1/halving`` of those finished
    at its rung so far (the highest rung first), else a new run, so that no
    worker waits for a rung to fill; a promotion made early stands. Else
    (``asynchronous=False``, one run at a time), every run does the bottom
    rung first, and a rung promotes once all of its runs are in: successive
    halving in rounds, whose promotions do not depend on the order of the runs.

    Examples
    --------
    >>> ladder = Ladder(["a", "b", "c"], [10, 30], 3, asynchronous=False)
    >>> for score in (0.5, 0.9, 0.7):
    ...     key, rung = ladder.next()
    ...     ladder.done(key, rung, score)
    >>> ladder.next(), ladder.next()
    (('b', 1), None)
    """

    def __init__(self, keys: Sequence[str], rungs: Sequence[int], halving: int, *, asynchronous: bool) -> None:
        self.rungs, self.halving, self.asynchronous = list(rungs), halving, asynchronous
        self.waiting = list(keys)
        self.finished: list[dict[str, float]] = [{} for _ in self.rungs]
        self.promoted: list[set[str]] = [set() for _ in self.rungs]
        self.running: dict[str, int] = {}

    @property
    def top(self) -> int:
        return len(self.rungs) - 1

    def next(self) -> tuple[str, int] | None:
        """The next job, ``(key, rung)``, or None while none may start (all done, or
        waiting for the runs in progress)."""
        if not self.asynchronous and self.waiting:
            return self._start()
        order = range(self.top - 1, -1, -1) if self.asynchronous else range(self.top)
        for rung in order:
            if not self.asynchronous and any(r <= rung for r in self.running.values()):
                break  # the rung is not complete yet
            for key in promotable(self.finished[rung], self.promoted[rung], self.halving):
                self.promoted[rung].add(key)
                self.running[key] = rung + 1
                return key, rung + 1
        return self._start() if self.waiting else None

    def _start(self) -> tuple[str, int]:
        key = self.waiting.pop(0)
        self.running[key] = 0
        return key, 0

    def done(self, key: str, rung: int, score: float) -> None:
        """Record that `key` finished `rung` with `score` (-inf: it diverged)."""
        self.running.pop(key, None)
        self.finished[rung][key] = score

    def reached(self, key: str) -> int:
        """The highest rung `key` finished (-1 for none)."""
        return max((k for k, f in enumerate(self.finished) if key in f), default=-1)
