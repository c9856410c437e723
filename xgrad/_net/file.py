"""Reading and writing the two-layer network's parameters, checked.

One ``.npz`` file (no pickle) holds ``W1``, ``b1``, ``W2``, ``b2`` and the
activation. Writing is atomic (see :func:`xgrad._infra.files.atomic_write`); reading
checks everything a damaged or edited file could get wrong, so that a load
either gives the network that was saved or raises one
:class:`~xgrad._infra.files.FileFormatError` naming the file.
"""

from __future__ import annotations

import os
import zipfile
import zlib
from collections.abc import Mapping
from typing import Any

from xgrad._infra.files import FileFormatError, atomic_write
from xgrad._net.core import ACTIVATIONS, PARAM_NAMES

__all__ = ["check_activation", "check_host_params", "read_net_file", "read_npz", "save_net_file"]

# what np.load and a damaged zip archive raise for bad content
_READ_ERRORS = (OSError, EOFError, ValueError, KeyError, TypeError, zipfile.BadZipFile, zlib.error, MemoryError)


def save_net_file(path: str | os.PathLike[str], host: Mapping[str, Any], activation: str) -> str:
    """Write host parameters and the activation; returns the path written.

    As with ``numpy.savez``, ``.npz`` is appended to a name without it.
    """
    import numpy as np

    p = os.fspath(path)
    if not p.endswith(".npz"):
        p += ".npz"
    for k in PARAM_NAMES:  # read_net_file refuses them: writing one would replace a good file by a dead one
        bad = int(np.sum(~np.isfinite(host[k])))
        if bad:
            raise ValueError(f"the network's {k} holds {bad} NaN or infinite value{'s' if bad > 1 else ''}; "
                             f"a network file must hold finite weights, so {p!r} is not written")
    with atomic_write(p) as f:
        np.savez(f, activation=np.array(activation), **{k: host[k] for k in PARAM_NAMES})
    return p


def read_npz(path: str | os.PathLike[str], what: str) -> dict[str, Any]:
    """Every array of an ``.npz`` file, read now; one clear error if it cannot be.

    A missing file raises :class:`FileNotFoundError`; anything else that stops
    the reading (a truncated, empty, or non-zip file, a pickled member) raises
    :class:`FileFormatError` naming the file and `what` it should be.
    """
    import numpy as np

    p = os.fspath(path)
    if not os.path.exists(p):
        hint = f"; did you mean {p + '.npz'!r}? (saving adds .npz)" if os.path.isfile(p + ".npz") else ""
        raise FileNotFoundError(f"no {what} at {p!r}{hint}")
    if not os.path.isfile(p):
        raise FileFormatError(f"{p!r} is not a readable {what}: not a regular file", path=p)
    try:
        # our own handle: np.load leaks the one it opens when the archive is damaged
        with open(p, "rb") as fh, np.load(fh, allow_pickle=False) as data:
            if not isinstance(data, Mapping):
                raise ValueError("not an .npz archive")
            return {k: data[k] for k in data}
    except _READ_ERRORS as exc:
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if os.path.getsize(p) == 0:
            reason = "the file is empty (0 bytes)"
        raise FileFormatError(f"{p!r} is not a readable {what} ({reason})", path=p) from exc


def check_host_params(host: Mapping[str, Any], p: str, what: str) -> dict[str, Any]:
    """The four parameters of `host`, checked for kind, shape agreement and finiteness."""
    import numpy as np

    def bad(reason: str) -> FileFormatError:
        return FileFormatError(f"{p!r} is not an {what}: {reason}", path=p)

    missing = [k for k in PARAM_NAMES if k not in host]
    if missing:
        raise bad(f"missing {', '.join(missing)}")
    params = {k: host[k] for k in PARAM_NAMES}
    for k, v in params.items():
        if v.dtype not in (np.float32, np.float64):
            raise bad(f"{k} has dtype {v.dtype}; parameters are float32 or float64")
        if v.ndim != (2 if k.startswith("W") else 1) or 0 in v.shape:
            raise bad(f"{k} has shape {v.shape}")
    if len({v.dtype for v in params.values()}) > 1:  # which would the network's be?
        mixed = ", ".join(f"{k} {v.dtype}" for k, v in params.items())
        raise bad(f"parameters of mixed dtypes ({mixed}); a network file holds one")
    n_hidden = params["W1"].shape[1]
    for k, got, want in (("b1", params["b1"].shape[0], n_hidden), ("W2 rows", params["W2"].shape[0], n_hidden),
                         ("b2", params["b2"].shape[0], params["W2"].shape[1])):
        if got != want:
            raise bad(f"{k} has {got} entries but the network's shapes need {want} "
                      f"(W1 {params['W1'].shape}, W2 {params['W2'].shape})")
    for k, v in params.items():
        if not np.all(np.isfinite(v)):
            raise bad(f"{k} holds {int(np.sum(~np.isfinite(v)))} NaN or infinite values")
    return params


def check_activation(value: Any, p: str, what: str) -> str:
    """The activation stored in a file: a 0-d string, a name of the core's activation table."""
    v = value.item() if getattr(value, "shape", None) == () else value
    if not isinstance(v, str) or v not in ACTIVATIONS:
        choices = " or ".join(repr(k) for k in ACTIVATIONS)
        raise FileFormatError(f"{p!r} is not an {what}: the activation must be {choices}; "
                              f"got {str(v)[:60]!r}", path=p)
    return v


def read_net_file(path: str | os.PathLike[str]) -> tuple[dict[str, Any], str]:
    """Host parameters and activation of a network file, checked."""
    p = os.fspath(path)
    data = read_npz(p, "xgrad network file")
    if "activation" not in data:
        raise FileFormatError(f"{p!r} is not an xgrad network file: missing activation", path=p)
    activation = check_activation(data["activation"], p, "xgrad network file")
    return check_host_params(data, p, "xgrad network file"), activation
