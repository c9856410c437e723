"""The grid of a sweep: settings expanded, checked up front, named, refined.

Nothing here runs a training: it turns the arguments of :func:`xgrad.sweep`
into a list of runs (one dict of :func:`xgrad.train` settings each), gives each
run a stable name (the key of its file under ``out/``), and proposes the
learning rates of a refinement round.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
from collections.abc import Sequence
from typing import Any

from xgrad._train.config import check_held_out, check_settings, current_keywords
from xgrad._train.settings import DEFAULT_LRS, REFUSED, SHARED, SINGLE, by_name

__all__ = ["DEFAULT_LRS", "checked_run", "expand", "fingerprint", "grid_axes", "jsonable", "plain", "refine_lrs",
           "run_key", "varied"]

_SHORT = {"hidden_size": "hidden", "batch_size": "batch", "activation": "act", "weight_init_std": "std"}


def grid_axes(fixed: dict[str, Any], train_settings: dict[str, Any]) -> dict[str, list[Any]]:
    """Every setting as a list of values (a list or tuple is a grid axis,
    but for the settings of the record that take one value for every run).

    `fixed` holds the sweep's named axes (``lr``, ..., ``seed``); the others
    come from ``**train_settings``. Unknown and refused settings raise.
    """
    train_settings = current_keywords(train_settings, "sweep", stacklevel=3)
    entries = by_name()
    for name in train_settings:
        s = entries.get(name)
        if s is not None and s.sweep == REFUSED:
            raise TypeError(f"`{name}` is not a setting of a sweep: {s.refused}")
        if s is None or s.sweep == SHARED:
            raise TypeError(f"`{name}` is not a setting of xgrad.train; see help(xgrad.train) for the settings")
    axes: dict[str, list[Any]] = {}
    for name, value in {**train_settings, **fixed}.items():
        single = entries[name].sweep == SINGLE
        value = _as_axis(name, value) if not single else value
        grid = isinstance(value, list | tuple) and not single
        values = [plain(v) for v in value] if grid else [plain(value)]
        if not values:
            raise ValueError(f"`{'seeds' if name == 'seed' else name}` must hold at least one value; got {value!r}")
        axes[name] = list(dict.fromkeys(values))  # duplicates would be the same run twice
    return axes


def _as_axis(name: str, value: Any) -> Any:
    """A 1-d array as the list of its values; a set (which has no order) and an array of more
    dimensions refused, with what to give instead."""
    shown = "seeds" if name == "seed" else name
    if isinstance(value, set | frozenset):
        raise TypeError(f"`{shown}` is a set, which has no order; give a list or a tuple of its values")
    shape = getattr(value, "shape", None)
    if isinstance(value, str) or not isinstance(shape, tuple) or len(shape) == 0:
        return value
    if len(shape) > 1:
        raise ValueError(f"`{shown}` is an array of shape {tuple(shape)}; give one value, or a list or 1-d "
                         "array of values (one run each)")
    return [value[i] for i in range(shape[0])]


def plain(value: Any) -> Any:
    """`value` as a Python number where it is a NumPy (or other array library's) scalar or 0-d
    array, so that the runs, their keys and the JSON files hold ``0.1``, never ``np.float32(0.1)``.

    Examples
    --------
    >>> import numpy as np
    >>> plain(np.float32(0.5)), plain(np.float64(0.5)), plain(np.int64(3)), plain(np.bool_(True)), plain("relu")
    (0.5, 0.5, 3, True, 'relu')
    """
    if value is None or type(value) in (bool, int, float, str):  # np.float64 is a float, np.str_ a str
        return value
    if isinstance(value, str):
        return str(value)
    if getattr(value, "shape", None) != ():
        return value
    if callable(getattr(value, "item", None)):
        item = value.item()
    else:  # the array API has no item(): by the dtype's kind
        kind = str(getattr(value, "dtype", ""))
        item = bool(value) if "bool" in kind else int(value) if "int" in kind else float(value) if "float" in \
            kind else None
    return item if isinstance(item, bool | int | float) else value


def expand(axes: dict[str, list[Any]], data: Any = None) -> list[dict[str, Any]]:
    """All combinations, the learning rate and then the seed varying fastest,
    each checked as :func:`xgrad.train` checks it (:func:`checked_run`)."""
    order = [k for k in axes if k not in ("lr", "seed")] + ["lr", "seed"]
    return [checked_run(dict(zip(order, combo, strict=True)), data)
            for combo in itertools.product(*(axes[k] for k in order))]


def checked_run(settings: dict[str, Any], data: Any = None) -> dict[str, Any]:
    """`settings`, the settings of one run, once checked by the record's checks (the error
    :func:`xgrad.train` would raise, before any run starts); kept as the caller wrote them
    (``lr=1`` stays 1), the run's worker hands them to ``train`` as they are, and its record
    and its key hold them."""
    checked = check_settings({**settings, "data": data})
    if checked["iters"] == 0:
        raise ValueError("`iters` must be at least 1 in a sweep; got 0: a run of no iterations has no loss "
                         "or accuracy to compare")
    if data is not None and isinstance(checked["validation"], float):  # the data set's size is known here
        check_held_out(checked["validation"], len(data[0][0]), checked["batch_size"])
    return settings


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
