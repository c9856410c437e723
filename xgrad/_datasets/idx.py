"""IDX files of MNIST and Fashion-MNIST: their checksums, their checks and parsing.

Every file is checked (magic number, image size, header count against the
data size, SHA-256 of the decompressed bytes, label range) before its bytes
are used; parsed arrays are cached per path, modification time, size and
checksum. Finding and downloading the files is :mod:`xgrad._datasets.mnist`'s job.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import stat
import struct
import zlib
from pathlib import Path

import numpy as np

__all__ = ["SHA256", "DatasetError"]

SHA256 = {
    "mnist": {
        "train-images-idx3-ubyte":
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train-labels-idx1-ubyte":
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "t10k-images-idx3-ubyte":
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels-idx1-ubyte":
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte":
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte":
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte":
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte":
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
}
"""SHA-256 of the *decompressed* IDX files, per data set and file name.

Raw bytes rather than ``.gz`` bytes, so that a re-gzipped copy of the same data
(as mirrors and Linux distributions often make) is accepted.
"""

_IMAGE_MAGIC, _LABEL_MAGIC, SIDE, _CLASSES = 0x00000803, 0x00000801, 28, 10
_MAX_RAW = 64 * 2**20  # larger than any file of either data set
_CACHE: dict[str, tuple[tuple[int, int, str], np.ndarray]] = {}
FIX_HINT = ("Delete the file so that xgrad downloads a fresh copy, re-download it "
        "yourself, or point XGRAD_DATA_DIR (or data_dir=) at a folder with good "
        "copies.")


class DatasetError(ValueError):
    """A data set file is damaged, truncated, inconsistent or tampered with."""


def _damaged(path: Path, problem: str, expected: str, found: str) -> DatasetError:
    """A :class:`DatasetError` naming the file, the problem and the fix."""
    return DatasetError(
        f"{path}: {problem}: expected {expected}, found {found}. {FIX_HINT}")


def read_raw(path: Path, *, gz: bool, limit: int = _MAX_RAW) -> bytes:
    """The decompressed bytes of `path` (at most `limit` of them).

    The file is opened without blocking and must be a regular file no larger
    than `limit` (or its gzip bound): a FIFO, a device or a folder under the
    name is refused before a byte is read."""
    # gzip's stored blocks grow incompressible data by well under 1 % plus a header
    fd = _open_regular(path, limit + limit // 100 + 1024 if gz else limit)
    try:
        with os.fdopen(fd, "rb") as file, gzip.GzipFile(fileobj=file) if gz else file as f:
            raw = f.read(limit + 1)
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise _damaged(path, "not a valid gzip file", "a complete gzip stream",
                       f"{type(exc).__name__}: {exc}") from exc
    if len(raw) > limit:
        raise _damaged(path, "too large", f"at most {limit} bytes", "more")
    return raw


def _open_regular(path: Path, limit: int) -> int:
    """A read-only descriptor of `path`, checked to be a regular file of at most `limit` bytes."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise DatasetError(f"{path}: cannot be opened ({exc.strerror}). {FIX_HINT}") from exc
    mode, size = (st := os.fstat(fd)).st_mode, st.st_size
    if not stat.S_ISREG(mode):
        os.close(fd)
        what = "a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else \
            "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file"
        raise DatasetError(f"{path}: is {what}, not a regular file; put the data set's file there. {FIX_HINT}")
    if size > limit:
        os.close(fd)
        raise _damaged(path, "too large", f"at most {limit} bytes", f"{size} bytes")
    return fd


def verify_file(path: Path, raw: bytes, expected: str) -> None:
    """Raise unless the raw bytes have the `expected` SHA-256; a good file of
    another data set or split is named as such (it must not be deleted)."""
    found = hashlib.sha256(raw).hexdigest()
    if found == expected:
        return
    other, wanted = _known_as(found), _known_as(expected)
    if other is not None:
        want = "the expected file" if wanted is None else wanted
        raise DatasetError(
            f"{path}: it holds {other}, not {want}: a file of another data set or split under this "
            f"name. The file itself is intact; put {want} here instead, or point data_dir= (or "
            "XGRAD_DATA_DIR) at the folder of the data set you want.")
    raise _damaged(path, "checksum mismatch (tampered or corrupted data)",
                   f"sha256 {expected} of the raw bytes", f"sha256 {found}")


def _known_as(digest: str) -> str | None:
    """Which file of :data:`SHA256` has this checksum ("mnist's t10k-labels-idx1-ubyte")."""
    return next((f"{name}'s {stem}" for name, sums in SHA256.items()
                 for stem, known in sums.items() if known == digest), None)


def _parse(path: Path, raw: bytes, *, images: bool) -> np.ndarray:
    """Check the IDX header of `raw` against its size, then view it as an array."""
    head, magic_wanted = (16, _IMAGE_MAGIC) if images else (8, _LABEL_MAGIC)
    kind = "images (idx3)" if images else "labels (idx1)"
    if len(raw) < head:
        raise _damaged(path, "header cut short", f"{head} header bytes",
                       f"{len(raw)} bytes")
    magic, count, *dims = struct.unpack(f">{head // 4}I", raw[:head])
    if magic != magic_wanted:
        raise _damaged(path, f"wrong magic number for {kind}",
                       f"0x{magic_wanted:08x}", f"0x{magic:08x}")
    if images and dims != [SIDE, SIDE]:
        raise _damaged(path, "wrong image dimensions", f"{SIDE}x{SIDE}",
                       f"{dims[0]}x{dims[1]}")
    size = head + count * (SIDE * SIDE if images else 1)
    if len(raw) != size:
        problem = ("truncated" if len(raw) < size
                   else "extra bytes after the data its header announces")
        raise _damaged(path, problem,
                       f"{size} bytes for the header's count of {count} {kind}",
                       f"{len(raw)} bytes")
    shape = (count, SIDE, SIDE) if images else (count,)
    return np.frombuffer(raw, dtype=np.uint8, offset=head).reshape(shape)


def load_idx_file(path: Path, expected: str, *, images: bool) -> np.ndarray:
    """Parse and verify one IDX file, cached per path, mtime, size and checksum."""
    key, st = str(path.resolve()), path.stat()
    stamp = (st.st_mtime_ns, st.st_size, expected)
    hit = _CACHE.get(key)
    if hit is not None and hit[0] == stamp and stat.S_ISREG(st.st_mode):
        return hit[1]
    raw = read_raw(path, gz=path.suffix == ".gz")
    array = _parse(path, raw, images=images)
    verify_file(path, raw, expected)
    if not images and array.size and int(array.max()) >= _CLASSES:
        where = int(np.argmax(array >= _CLASSES))
        raise _damaged(path, f"label out of range at index {where}",
                       f"labels in 0..{_CLASSES - 1}", f"{int(array[where])}")
    _CACHE[key] = (stamp, array)
    return array


def images_out(x: np.ndarray, normalize: bool, flatten: bool) -> np.ndarray:
    """A fresh copy of the cached images in the layout the caller asked for."""
    if normalize:
        out: np.ndarray = x.astype(np.float32)
        out /= np.float32(255)
    else:
        out = x.copy()
    shape = (len(x), SIDE * SIDE) if flatten else (len(x), 1, SIDE, SIDE)
    return out.reshape(shape)


def labels_out(t: np.ndarray, one_hot: bool) -> np.ndarray:
    """Fresh int64 class numbers, or fresh float32 one-hot rows."""
    if one_hot:
        return np.eye(_CLASSES, dtype=np.float32)[t]
    return t.astype(np.int64)
