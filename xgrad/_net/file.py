"""Reading and writing the two-layer network's parameters, checked.

One ``.npz`` file (no pickle) holds ``W1``, ``b1``, ``W2``, ``b2`` and the
activation. Writing is atomic (see :func:`xgrad._infra.files.atomic_write`); reading
checks everything a damaged or edited file could get wrong, so that a load
either gives the network that was saved or raises one
:class:`~xgrad._infra.files.FileFormatError` naming the file.
"""

from __future__ import annotations

import math
import os
import zipfile
import zlib
from collections.abc import Mapping
from typing import Any

from xgrad._infra.files import FileFormatError, atomic_write
from xgrad._net.args import physical_memory
from xgrad._net.core import ACTIVATIONS, PARAM_NAMES

__all__ = ["check_activation", "check_declared_params", "check_host_params", "check_shapes", "declared_arrays",
           "read_net_file", "read_npz", "save_net_file"]

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


def read_npz(path: str | os.PathLike[str], what: str, *, params: str | None = None) -> dict[str, Any]:
    """Every array of an ``.npz`` file, read now; one clear error if it cannot be.

    A missing file raises :class:`FileNotFoundError`; anything else that stops
    the reading (a truncated, empty, or non-zip file, a pickled member) raises
    :class:`FileFormatError` naming the file and `what` it should be. Before
    any array is read, the shape and dtype each member declares in its header
    are checked (:func:`declared_arrays`): no member may declare more bytes
    than it holds, and with `params` (the prefix of the network's parameters'
    names) the declared parameters must fit together and in memory, so that a
    small file cannot make the reading allocate gigabytes.
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
        with open(p, "rb") as fh:
            declared = declared_arrays(fh, p, what)
            if params is not None and all(params + k in declared for k in PARAM_NAMES):  # else: said later
                check_declared_params({k: declared[params + k] for k in PARAM_NAMES}, p, what)
            fh.seek(0)
            with np.load(fh, allow_pickle=False) as data:
                if not isinstance(data, Mapping):
                    raise ValueError("not an .npz archive")
                return {k: data[k] for k in data}
    except FileFormatError:
        raise
    except _READ_ERRORS as exc:
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if os.path.getsize(p) == 0:
            reason = "the file is empty (0 bytes)"
        raise FileFormatError(f"{p!r} is not a readable {what} ({reason})", path=p) from exc


def declared_arrays(fh: Any, p: str, what: str) -> dict[str, tuple[tuple[int, ...], Any]]:
    """The shape and dtype that each ``.npy`` member of the zip archive `fh`
    declares in its header, read without reading the arrays; a member that
    declares more bytes than it holds is refused (its reading would allocate
    them first). Not a zip archive: nothing (``np.load`` says what it is)."""
    import numpy as np

    readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0,
               (3, 0): np.lib.format.read_array_header_2_0}  # 3.0 is 2.0 with a UTF-8 header
    if not zipfile.is_zipfile(fh):
        return {}
    fh.seek(0)
    out = {}
    with zipfile.ZipFile(fh) as archive:
        for info in archive.infolist():
            if not info.filename.endswith(".npy"):
                continue
            name = info.filename[:-4]
            with archive.open(info) as member:
                version = np.lib.format.read_magic(member)
                read = readers.get(version)
                if read is None:  # a later format: np.load reads it, or says it cannot
                    return {}
                shape, _, dtype = read(member)
                start = member.tell()
            size = math.prod(shape) * dtype.itemsize
            if not dtype.hasobject and size > info.file_size - start:
                raise FileFormatError(f"{p!r} is not an {what}: {name} declares shape {shape} of {dtype} "
                                      f"({_size(size)}) but the file holds {_size(info.file_size - start)} of it; "
                                      "it is damaged or was made to look larger than it is", path=p)
            out[name] = (tuple(shape), dtype)
    return out


def check_declared_params(declared: Mapping[str, tuple[tuple[int, ...], Any]], p: str, what: str) -> None:
    """Parameters as a file's headers declare them: they must fit together (the
    checks of :func:`check_host_params`) and in this machine's memory."""
    import numpy as np

    shells = {k: np.lib.stride_tricks.as_strided(np.zeros((), dtype=dt), shape=shape, strides=(0,) * len(shape))
              for k, (shape, dt) in declared.items()}  # arrays of the declared shape and dtype, of no memory
    check_shapes(shells, p, what)
    size = sum(math.prod(shape) * dt.itemsize for shape, dt in declared.values())
    have = physical_memory()
    if have is not None and size > have // 2:
        raise FileFormatError(f"{p!r} declares {_size(size)} of parameters (W1 {declared['W1'][0]}), more than half "
                              f"this machine's memory ({_size(have)}); it is not a network this machine can load",
                              path=p)


def _size(n: int) -> str:
    return f"{n:,} bytes" if n < 1 << 20 else f"{n / (1 << 20):,.1f} MiB"


def check_host_params(host: Mapping[str, Any], p: str, what: str) -> dict[str, Any]:
    """The four parameters of `host`, checked for kind, shape agreement and finiteness."""
    import numpy as np

    def bad(reason: str) -> FileFormatError:
        return FileFormatError(f"{p!r} is not an {what}: {reason}", path=p)

    params = check_shapes(host, p, what)
    for k, v in params.items():
        if not np.all(np.isfinite(v)):
            raise bad(f"{k} holds {int(np.sum(~np.isfinite(v)))} NaN or infinite values")
    return params


def check_shapes(host: Mapping[str, Any], p: str, what: str) -> dict[str, Any]:
    """The four parameters of `host`, checked for dtype and shape agreement (not their values)."""
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
    data = read_npz(p, "xgrad network file", params="")
    if "activation" not in data:
        raise FileFormatError(f"{p!r} is not an xgrad network file: missing activation", path=p)
    activation = check_activation(data["activation"], p, "xgrad network file")
    return check_host_params(data, p, "xgrad network file"), activation
