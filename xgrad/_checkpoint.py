"""Checkpoints of a training run: one ``.npz`` file, written atomically."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from xgrad._host import to_host

if TYPE_CHECKING:
    from xgrad._backend import Backend
    from xgrad._net import TwoLayerNet
    from xgrad._trainargs import TrainConfig

# settings that may differ between a run and its resumption
_FREE = ("iters", "progress", "eval_every")


@dataclass
class Checkpoint:
    params: dict[str, Any]
    iteration: int
    loss: list[float]
    eval_iters: list[int]
    train_acc: list[float]
    test_acc: list[float]


def save_checkpoint(path: str | os.PathLike[str], state: Checkpoint, cfg: TrainConfig) -> None:
    """Write `state` so that a crash mid-write leaves the previous file intact."""
    import numpy as np

    meta = {"iteration": state.iteration, "config": cfg.as_dict(), "eval_iters": state.eval_iters,
            "train_acc": state.train_acc, "test_acc": state.test_acc}
    arrays = {f"param_{k}": to_host(v) for k, v in state.params.items()}
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp.npz")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, meta=np.array(json.dumps(meta)), loss=np.asarray(state.loss, dtype=np.float64), **arrays)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def load_checkpoint(path: str | os.PathLike[str], cfg: TrainConfig, b: Backend, net: TwoLayerNet) -> Checkpoint:
    """Read a checkpoint for a run with settings `cfg`, or explain why not."""
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            loss = [float(v) for v in data["loss"]]
            params = {k: b.asarray(data[f"param_{k}"], dtype=net.dtype) for k in net.params}
    except (OSError, KeyError, ValueError) as exc:
        raise ValueError(f"cannot resume from {os.fspath(path)!r}: not a readable xgrad checkpoint ({exc})") from exc
    saved, now = meta["config"], cfg.as_dict()
    differ = [k for k in now if k not in _FREE and saved.get(k) != now[k]]
    if differ:
        detail = ", ".join(f"{k}: {saved.get(k)!r} there, {now[k]!r} now" for k in differ)
        raise ValueError(f"cannot resume from {os.fspath(path)!r}: its settings differ ({detail})")
    for k, v in params.items():
        if tuple(v.shape) != tuple(net.params[k].shape):
            raise ValueError(f"cannot resume from {os.fspath(path)!r}: {k} has shape {tuple(v.shape)}")
    return Checkpoint(params, int(meta["iteration"]), loss, meta["eval_iters"], meta["train_acc"], meta["test_acc"])
