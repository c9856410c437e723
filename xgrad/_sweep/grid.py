"""The grid of a sweep: settings expanded, checked up front, named, refined.

Nothing here runs a training: it turns the arguments of :func:`xgrad.sweep`
into a list of runs (one dict of :func:`xgrad.train` settings each), gives each
run a stable name (the key of its file under ``out/``), and proposes the
learning rates of a refinement round.
"""

from __future__ import annotations

import hashlib
import inspect
import itertools
import json
import math
import os
from collections.abc import Sequence
from typing import Any

from xgrad._train.config import TrainConfig
from xgrad._train.train import train

DEFAULT_LRS = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
"""Learning rates three times apart (roughly): the coarse grid."""

# settings a sweep chooses itself, or that make no sense for many runs at once
_REFUSED = {
    "seed": "give the seeds as `seeds=[...]`",
    "progress": "the sweep shows one progress bar for all runs (`progress=`)",
    "net": "every run starts from its own seeded network",
    "checkpoint": "runs are saved whole under `out=` as they finish",
    "checkpoint_every": "runs are saved whole under `out=` as they finish",
    "resume": "rerunning a sweep with the same `out=` skips the runs already done",
}
_SINGLE = ("data_dir", "device")  # one value for every run, never a grid axis
_ITERS = inspect.signature(train).parameters["iters"].default
_SHORT = {"hidden_size": "hidden", "batch_size": "batch", "activation": "act", "weight_init_std": "std"}


def grid_axes(fixed: dict[str, Any], train_settings: dict[str, Any]) -> dict[str, list[Any]]:
    """Every setting as a list of values (a list or tuple is a grid axis).

    `fixed` holds the sweep's named axes (``lr``, ..., ``seed``); the others
    come from ``**train_settings``. Unknown and refused settings raise.
    """
    params = inspect.signature(train).parameters
    for name in train_settings:
        if name in _REFUSED:
            raise TypeError(f"`{name}` is not a setting of a sweep: {_REFUSED[name]}")
        if name not in params or name == "data":
            raise TypeError(f"`{name}` is not a setting of xgrad.train; see help(xgrad.train) for the settings")
    axes: dict[str, list[Any]] = {}
    for name, value in {**train_settings, **fixed}.items():
        grid = isinstance(value, list | tuple) and name not in _SINGLE
        values = list(value) if grid else [value]
        if not values:
            raise ValueError(f"`{'seeds' if name == 'seed' else name}` must hold at least one value; got {value!r}")
        axes[name] = list(dict.fromkeys(values))  # duplicates would be the same run twice
    return axes


def expand(axes: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """All combinations, the learning rate and then the seed varying fastest,
    each checked as :func:`xgrad.train` would check it."""
    order = [k for k in axes if k not in ("lr", "seed")] + ["lr", "seed"]
    runs = [dict(zip(order, combo, strict=True)) for combo in itertools.product(*(axes[k] for k in order))]
    for run in runs:
        check_settings(run)
        if run.get("iters", _ITERS) == 0:  # checked as an integer by check_settings
            raise ValueError("`iters` must be at least 1 in a sweep; got 0: a run of no iterations has no loss "
                             "or accuracy to compare")
    return runs


def check_settings(settings: dict[str, Any]) -> None:
    """Raise the error :func:`xgrad.train` would raise for these settings."""
    defaults = {name: p.default for name, p in inspect.signature(train).parameters.items()}
    TrainConfig.build({**defaults, **settings})


def varied(axes: dict[str, list[Any]]) -> list[str]:
    """The settings that take more than one value (``lr`` and ``seed`` always)."""
    return [k for k in ("lr", "seed") if k in axes] + [
        k for k in axes if k not in ("lr", "seed") and len(axes[k]) > 1]


def fingerprint(data: Any) -> str:
    """A digest of the training data given as arrays ("" when the runs load a data set)."""
    if data is None:
        return ""
    import numpy as np  # the host edge: hashing the caller's arrays

    digest = hashlib.sha256()
    for part in data:
        for a in part:
            a = np.ascontiguousarray(a)
            digest.update(f"{a.dtype}{a.shape}".encode())
            digest.update(a.tobytes())
    return digest.hexdigest()[:16]


def jsonable(settings: dict[str, Any]) -> dict[str, Any]:
    """`settings` with anything JSON cannot hold written as its repr."""
    out = {}
    for k, v in settings.items():
        if isinstance(v, os.PathLike):
            v = os.fspath(v)
        out[k] = v if v is None or isinstance(v, bool | int | float | str) else repr(v)
    return out


def run_key(settings: dict[str, Any], names: Sequence[str], data_digest: str) -> str:
    """A file-name-safe name, readable (`names`) and unique (a digest of
    everything, the data included): ``lr=0.01_seed=0-3f2a...``."""
    label = "_".join(f"{_SHORT.get(k, k)}={_fmt(settings[k])}" for k in names)
    text = json.dumps({"settings": jsonable(settings), "data": data_digest}, sort_keys=True)
    digest = hashlib.sha256(text.encode()).hexdigest()[:10]
    safe = "".join(c if c.isalnum() or c in "=._+-" else "-" for c in label)
    return f"{safe}-{digest}"


def _fmt(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def refine_lrs(tried: Sequence[float], best: float) -> list[float]:
    """Two learning rates around `best`, halfway (on a log scale) to its
    neighbours among `tried`: grids three times apart become about 1.7 times
    apart, then 1.3. On the edge of the range the step of the other side is
    used (3 when `best` is alone), which explores beyond the edge.

    Examples
    --------
    >>> refine_lrs([0.001, 0.01, 0.1, 1.0], 0.1)
    [0.0316, 0.316]
    >>> refine_lrs([0.01, 0.03, 0.1], 0.01)
    [0.00577, 0.0173]
    """
    lrs = sorted(set(tried))
    i = lrs.index(best)
    below = best / lrs[i - 1] if i > 0 else None
    above = lrs[i + 1] / best if i + 1 < len(lrs) else None
    below = below or above or 3.0
    above = above or below
    proposals = [_round_sig(best / math.sqrt(below)), _round_sig(best * math.sqrt(above))]
    return [p for p in proposals if not any(math.isclose(p, t, rel_tol=1e-9) for t in lrs)]


def _round_sig(value: float, digits: int = 3) -> float:
    return float(f"{value:.{digits}g}")
