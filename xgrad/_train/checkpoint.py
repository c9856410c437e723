"""Checkpoints of a training run: one ``.npz`` file, written atomically, read checked."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from xgrad._datasets.mnist import dataset_spelling
from xgrad._infra.files import FileFormatError, atomic_write
from xgrad._infra.host import to_numpy
from xgrad._net.file import PARAM_NAMES, check_host_params, read_npz
from xgrad._train.record import History
from xgrad._train.settings import current_names, record

if TYPE_CHECKING:
    from xgrad._infra.backend import Backend
    from xgrad._net.net import TwoLayerNet
    from xgrad._train.config import TrainConfig

__all__ = ["Checkpoint", "CheckpointError", "data_id", "load_checkpoint", "save_checkpoint"]

_WHAT = "xgrad checkpoint"
# the history's evaluations, kept in the metadata; its losses are the array 'loss', the rest is the run's
_IN_META = ("eval_iters", "train_acc", "test_acc")
_VAL_META = ("val_acc", "val_loss")  # only in the checkpoints of runs with validation data


class CheckpointError(OSError):
    """A checkpoint could not be written; training stopped there.

    Attributes
    ----------
    path : str
        The checkpoint's path.
    result : TrainResult or None
        The partial result of the run, up to the failed save.
    """

    def __init__(self, message: str, *, path: str, result: Any = None) -> None:
        super().__init__(message)
        self.path = path
        self.result = result

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass
class Checkpoint:
    params: dict[str, Any]
    iteration: int
    history: History
    data: dict[str, Any] | None = None  # what identifies the training data (see data_id)
    made_on: str | None = None  # "backend (device)" of the run that wrote it; None in older files


def data_id(x_train: Any, t_train: Any, x_test: Any, t_test: Any) -> dict[str, Any]:
    """Shapes and a CRC-32 of the labels and a few samples: a cheap fingerprint
    that tells a run's data from other data (another data set, another subset)."""
    import zlib

    import numpy as np

    crc = 0
    for a in (t_train, t_test, x_train[:64], x_train[-64:], x_test[:64]):
        crc = zlib.crc32(np.ascontiguousarray(a, dtype=np.float64).tobytes(), crc)
    return {"train": list(x_train.shape), "test": list(x_test.shape), "crc32": crc}


def save_checkpoint(path: str | os.PathLike[str], state: Checkpoint, cfg: TrainConfig) -> None:
    """Write `state` so that a crash mid-write leaves the previous file intact.

    Raises :class:`CheckpointError` (``cannot write checkpoint PATH: reason``)
    if the file cannot be written.
    """
    import numpy as np

    fields = state.history.to_dict()
    meta = {"iteration": state.iteration, "config": cfg.as_dict(),
            **{k: fields[k] for k in (*_IN_META, *_VAL_META) if k in fields},
            "data": state.data, "made_on": state.made_on}
    arrays = {f"param_{k}": to_numpy(v) for k, v in state.params.items()}
    p = os.fspath(path)
    try:
        os.makedirs(os.path.dirname(os.path.abspath(p)), exist_ok=True)
        with atomic_write(p) as f:
            loss = np.asarray(fields["loss"], dtype=np.float64)
            np.savez(f, meta=np.array(json.dumps(meta)), loss=loss, **arrays)
    except OSError as exc:
        raise CheckpointError(f"cannot write checkpoint {p}: {exc.strerror or exc}", path=p) from exc


def load_checkpoint(path: str | os.PathLike[str], cfg: TrainConfig, b: Backend, net: TwoLayerNet,
                    fingerprint: dict[str, Any] | None = None, *, history: History) -> Checkpoint:
    """Read a checkpoint for a run with settings `cfg`, or explain why not.

    `history` is the resuming run's record: the checkpoint's losses and
    evaluations, checked as every stored history is
    (:meth:`History.from_dict`), join its other fields. A damaged or
    inconsistent file raises :class:`~xgrad._infra.files.FileFormatError`
    naming it; one of another run (other settings, another network, more
    iterations than `cfg.iters`) raises :class:`ValueError`.
    """
    p = os.fspath(path)
    data = read_npz(p, _WHAT, params="param_")
    for key in ("meta", "loss"):
        if key not in data:
            raise _bad(p, f"missing {key!r}")
    meta = _read_meta(p, data["meta"])
    resumed = _read_history(p, meta, data["loss"], history)
    host = check_host_params({k: data.get(f"param_{k}") for k in PARAM_NAMES if f"param_{k}" in data}, p, _WHAT)
    _check_matches(p, meta, host, cfg, net)
    if fingerprint is not None and meta.get("data") is not None and meta["data"] != fingerprint:
        raise ValueError(f"cannot resume from {p!r}: it was trained on other data ({meta['data']}, "
                         f"now {fingerprint})")
    params = {k: b.asarray(v, dtype=net.dtype) for k, v in host.items()}
    made_on = meta.get("made_on") if isinstance(meta.get("made_on"), str) else None
    return Checkpoint(params, meta["iteration"], resumed, meta.get("data"), made_on)


def _bad(p: str, reason: str) -> FileFormatError:
    return FileFormatError(f"{p!r} is not an {_WHAT}: {reason}", path=p)


def _read_meta(p: str, raw: Any) -> dict[str, Any]:
    """The JSON metadata: its keys, and the checkpoint's own fields (the history's are checked by History)."""
    try:
        meta = json.loads(str(raw.item()) if getattr(raw, "shape", None) == () else "")
    except (ValueError, TypeError) as exc:
        raise _bad(p, f"its metadata is not JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise _bad(p, "its metadata is not a JSON object")
    missing = [k for k in ("iteration", "config", *_IN_META) if k not in meta]
    if missing:
        raise _bad(p, f"its metadata lacks {', '.join(missing)}")
    it = meta["iteration"]
    if not _is_int(it) or it < 0:
        raise _bad(p, f"'iteration' must be a count; got {it!r}")
    if not isinstance(meta["config"], dict):
        raise _bad(p, "'config' must be a JSON object")
    meta["config"] = current_names(meta["config"])  # files written before a setting was renamed
    return meta


def _read_history(p: str, meta: dict[str, Any], loss: Any, run: History) -> History:
    """The run's record `run` with the checkpoint's losses and evaluations, checked."""
    try:
        stored = {k: meta.get(k) for k in (*_IN_META, *_VAL_META)}  # no validation lists in older files
        history = History.from_dict({**run.to_dict(), **stored, "loss": loss})
    except (TypeError, ValueError) as exc:
        raise _bad(p, str(exc)) from None
    if len(history.loss) != meta["iteration"]:
        raise _bad(p, f"it holds {len(history.loss)} losses for iteration {meta['iteration']}; they must agree")
    if not all(math.isfinite(v) for v in history.loss):  # a run stops at its first non-finite loss
        raise _bad(p, "'loss' holds NaN or infinite values")
    return history


def _check_matches(p: str, meta: dict[str, Any], host: dict[str, Any], cfg: TrainConfig, net: TwoLayerNet) -> None:
    """The checkpoint belongs to this run: same settings, network and no more iterations."""
    # a setting recorded since the file was written is read as its default: it did not exist then
    saved = {**{s.name: s.default for s in record() if s.recorded}, **meta["config"]}
    saved["dataset"] = dataset_spelling(saved.get("dataset"))  # written as given before names had one spelling
    free = {s.name for s in record() if s.free}  # may differ between a run and its resumption
    now = cfg.as_dict()
    differ = [k for k in now if k not in free and saved.get(k) != now[k]]
    if differ:
        detail = ", ".join(f"{k}: {saved.get(k)!r} there, {now[k]!r} now" for k in differ)
        raise ValueError(f"cannot resume from {p!r}: its settings differ ({detail})")
    for k, v in host.items():
        if tuple(v.shape) != tuple(net.params[k].shape):
            raise ValueError(f"cannot resume from {p!r}: {k} has shape {tuple(v.shape)}, "
                             f"the network's is {tuple(net.params[k].shape)}")
    if meta["iteration"] > cfg.iters:
        raise ValueError(f"cannot resume from {p!r}: it is at iteration {meta['iteration']}, beyond `iters` "
                         f"({cfg.iters}); ask for at least {meta['iteration']} iterations")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)
