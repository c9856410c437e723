"""MNIST and Fashion-MNIST as NumPy arrays: find, verify and parse IDX files.

This module finds and downloads the files; :mod:`xgrad._datasets.idx` checks and
parses them.

This is the host-side data edge of xgrad. It finds the four IDX files of a data
set (gzip-compressed or raw), checks every one of them (magic number, image
size, header count against the data size, SHA-256 of the decompressed bytes,
label range) and returns NumPy arrays laid out as in the book. Nothing is
unpickled, and no byte is used before its checksum matches the table in :mod:`xgrad._datasets.idx`.
"""

from __future__ import annotations

import errno
import http.client
import logging
import os
import stat
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from xgrad._datasets.idx import (
    FIX_HINT,
    SHA256,
    SIDE,
    DatasetError,
    images_out,
    labels_out,
    load_idx_file,
    read_raw,
    verify_file,
)

__all__ = ["DATASETS", "DOWNLOAD_DEADLINE", "DOWNLOAD_TIMEOUT", "MIRRORS", "SHA256", "DatasetError",
           "DatasetNotFoundError", "dataset_spelling", "load_mnist"]

logger = logging.getLogger("xgrad")

DATASETS = ("mnist", "fashion-mnist")
"""Data set names accepted by :func:`load_mnist` (``"fashion_mnist"`` too)."""


def dataset_spelling(name: object) -> object:
    """`name` as :data:`DATASETS` spell it ('fashion_mnist' is 'fashion-mnist');
    anything but a str as it is, for the caller's check to refuse."""
    return name.replace("_", "-") if isinstance(name, str) else name

MIRRORS = {
    "mnist": ("https://ossci-datasets.s3.amazonaws.com/mnist/",
              "https://storage.googleapis.com/cvdf-datasets/mnist/"),
    "fashion-mnist": ("https://storage.googleapis.com/tensorflow/tf-keras-datasets/",),
}
"""Base URLs tried in order; ``<base><file>.gz`` is fetched and then verified.

Only ``https`` is used (and ``file`` for local copies); a redirect elsewhere
is refused."""

DOWNLOAD_TIMEOUT = 30.0
"""Seconds a mirror may stay silent before it counts as failed."""

DOWNLOAD_DEADLINE = 600.0
"""Seconds the whole download of a data set may take, however the mirrors trickle."""

_TRAIN = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
_TEST = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
# raw sizes of the files, the same in both data sets: the header and one
# 28 x 28 image or one byte per sample (60,000 to train, 10,000 to test)
_RAW_SIZE = {
    "train-images-idx3-ubyte": 16 + 60_000 * SIDE * SIDE, "train-labels-idx1-ubyte": 8 + 60_000,
    "t10k-images-idx3-ubyte": 16 + 10_000 * SIDE * SIDE, "t10k-labels-idx1-ubyte": 8 + 10_000,
}
_SCHEMES = ("https", "file")
_CHUNK = 64 * 1024
_SYSTEM_DIR = Path("/usr/share/datasets")
_PACKAGE_DIR = Path(__file__).resolve().parents[1] / "_data"
Split = tuple[np.ndarray, np.ndarray]


class DatasetNotFoundError(FileNotFoundError):
    """No place holds the data set's files and no mirror could provide them."""


def load_mnist(*, normalize: bool = True, flatten: bool = True,
               one_hot_label: bool = False, dataset: str = "mnist",
               data_dir: str | os.PathLike[str] | None = None,
               download: bool = True) -> tuple[Split, Split]:
    """Load MNIST or Fashion-MNIST as NumPy arrays on the host.

    Parameters
    ----------
    normalize : bool
        Images as float32 in [0, 1] if true, else uint8 in 0..255.
    flatten : bool
        Images of shape (N, 784) if true, else (N, 1, 28, 28).
    one_hot_label : bool
        Labels as float32 one-hot rows of shape (N, 10) if true, else int64
        class numbers of shape (N,).
    dataset : {"mnist", "fashion-mnist"}
        Which data set; ``"fashion_mnist"`` is accepted too.
    data_dir : str or os.PathLike, optional
        A folder holding the four IDX files (raw or ``.gz``), or holding a
        ``<dataset>/`` subfolder with them (the subfolder wins when both
        do). When given, the only place looked in: a folder that does not
        hold them is an error, never a reason to use another copy.
    download : bool
        Whether to fetch missing files from :data:`MIRRORS` into the cache.

    Returns
    -------
    ((x_train, t_train), (x_test, t_test)) : tuple of tuples of numpy.ndarray
        Fresh arrays: changing them never affects a later call.

    Raises
    ------
    DatasetNotFoundError
        `data_dir` does not hold the files (it is missing, or lacks one,
        or holds something other than a regular file in its place), or, without
        `data_dir`, no place holds them and none could be downloaded.
    DatasetError
        A file is damaged, truncated, inconsistent or fails its checksum.

    Notes
    -----
    Without `data_dir`, the first place holding all four files wins:
    ``$XGRAD_DATA_DIR``, the cache ``$XDG_CACHE_HOME/xgrad/<dataset>`` (or
    ``~/.cache/xgrad/<dataset>``), ``/usr/share/datasets/<dataset>`` (Debian's
    ``dataset-fashion-mnist``), the MNIST copy shipped with xgrad, and last a
    download into the cache. Parsed files are kept in memory per path and
    modification time, so repeated calls are fast.

    Examples
    --------
    >>> import numpy as np
    >>> from xgrad import load_mnist
    >>> (x_train, t_train), (x_test, t_test) = load_mnist()
    >>> x_train.shape, x_train.dtype
    ((60000, 784), dtype('float32'))
    >>> float(x_train.min()), float(x_train.max())
    (0.0, 1.0)
    >>> t_train[:10]
    array([5, 0, 4, 1, 9, 2, 1, 3, 1, 4])
    >>> [int(n) for n in np.bincount(t_test)]
    [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    >>> (x, t), _ = load_mnist(normalize=False, flatten=False, one_hot_label=True)
    >>> x.shape, x.dtype, int(x.max())
    ((60000, 1, 28, 28), dtype('uint8'), 255)
    >>> t.shape, t.dtype, t[0].tolist()
    ((60000, 10), dtype('float32'), [0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0])
    """
    name = _check_args(normalize=normalize, flatten=flatten,
                       one_hot_label=one_hot_label, download=download,
                       dataset=dataset, data_dir=data_dir)
    files = _locate(name, data_dir, download)
    loaded = [_load_split(files, name, *stems) for stems in (_TRAIN, _TEST)]
    train, test = [(images_out(x, normalize, flatten), labels_out(t, one_hot_label))
                   for x, t in loaded]
    return train, test


def _load_split(files: dict[str, Path], name: str, images_file: str,
                labels_file: str) -> Split:
    """The cached (read-only) images and labels of one split, checked to agree."""
    x = load_idx_file(files[images_file], SHA256[name][images_file], images=True)
    t = load_idx_file(files[labels_file], SHA256[name][labels_file], images=False)
    if len(x) != len(t):
        raise DatasetError(
            f"{files[images_file]} and {files[labels_file]} disagree: expected one "
            f"label per image, found {len(x)} images and {len(t)} labels. {FIX_HINT}")
    return x, t


def _check_args(*, dataset: object, data_dir: object, **flags: object) -> str:
    """Validate the arguments of :func:`load_mnist`; return the canonical name."""
    for arg, value in flags.items():
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"`{arg}` must be a bool; got {type(value).__name__}")
    if not isinstance(dataset, str):
        raise TypeError(f"`dataset` must be a str; got {type(dataset).__name__}")
    name = str(dataset_spelling(dataset))
    if name not in DATASETS:
        raise ValueError(
            f"`dataset` must be 'mnist' or 'fashion-mnist'; got {dataset!r}")
    if data_dir is not None and not isinstance(data_dir, (str, os.PathLike)):
        raise TypeError("`data_dir` must be None, a str or an os.PathLike; "
                        f"got {type(data_dir).__name__}")
    if data_dir == "":
        raise ValueError("`data_dir` must name a folder; got ''")
    return name


def _cache_dir(name: str) -> Path:
    """The per-user cache folder for data set `name` (XDG base directory spec)."""
    base = os.environ.get("XDG_CACHE_HOME")
    # the spec: a relative path is invalid and is ignored (it would depend on the working folder)
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".cache"
    return root / "xgrad" / name


def _candidates(name: str) -> Iterator[tuple[str, Path]]:
    """The places to look in when no `data_dir` is given, first to last, each
    with where it came from."""
    env = os.environ.get("XGRAD_DATA_DIR") or None
    if env is not None:
        folder = Path(env).expanduser()
        # the data set's own subfolder first: a root may hold another data set's files loose
        yield "XGRAD_DATA_DIR", folder / name
        yield "XGRAD_DATA_DIR", folder
    yield "user cache", _cache_dir(name)
    yield "system data sets", _SYSTEM_DIR / name
    if name == "mnist":
        yield "copy shipped with xgrad", _PACKAGE_DIR / name


def _named_folder(name: str, root: Path) -> dict[str, Path]:
    """The four files of `name` in the folder the caller named (or its `name`/
    subfolder); an error saying what is wrong with it if neither holds them."""
    if not root.is_dir():
        what = "does not exist" if not os.path.lexists(root) else f"is {_kind(root)}, not a folder"
        raise DatasetNotFoundError(
            f"`data_dir` {str(root)!r} {what}; give the folder holding the {name} data set, or "
            "leave `data_dir` out to use XGRAD_DATA_DIR, the cache or the copy shipped with xgrad")
    for folder in (root / name, root):
        files = _files_in(folder)
        if files is not None:
            logger.info("loading %s from %s (data_dir)", name, folder)
            return files
    folder = root / name if (root / name).is_dir() else root
    problems = "; ".join(_problem(folder, stem) for stem in _TRAIN + _TEST
                         if _regular(folder, stem) is None)
    raise DatasetNotFoundError(
        f"`data_dir` {str(root)!r} does not hold the {name} data set: {problems}. Put the four IDX "
        f"files ({', '.join(_TRAIN + _TEST)}, each raw or .gz, as regular files) into {str(folder)!r} "
        f"(or into a '{name}/' subfolder), or leave `data_dir` out to use XGRAD_DATA_DIR, the cache "
        "or the copy shipped with xgrad")


def _kind(path: Path) -> str:
    """What `path` is, in words ('a FIFO', 'a folder', 'a symlink loop', ...)."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        return ("a symlink loop" if exc.errno == errno.ELOOP
                else "a dangling symlink" if path.is_symlink() else f"unreadable ({exc.strerror})")
    return next((what for test, what in ((stat.S_ISREG, "a regular file"), (stat.S_ISDIR, "a folder"),
                                         (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                                         (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))
                 if test(mode)), "not a regular file")


def _regular(folder: Path, stem: str) -> Path | None:
    """The raw file `stem` in `folder`, else its .gz, if it is a regular file."""
    return next((p for p in (folder / stem, folder / f"{stem}.gz") if p.is_file()), None)


def _problem(folder: Path, stem: str) -> str:
    """Why `folder` has no usable `stem` file: it lacks one, or what stands in its place."""
    present = [p for p in (folder / stem, folder / f"{stem}.gz") if os.path.lexists(p)]
    if not present:
        return f"{stem} (raw or .gz) is missing"
    return f"{present[0].name} is {_kind(present[0])}, not a regular file"


def _files_in(folder: Path) -> dict[str, Path] | None:
    """The four IDX files in `folder` (raw preferred over .gz), or None if any lacks."""
    found = {}
    for stem in _TRAIN + _TEST:
        path = _regular(folder, stem)
        if path is None:
            return None
        found[stem] = path
    return found


def _locate(name: str, data_dir: str | os.PathLike[str] | None,
            download: bool) -> dict[str, Path]:
    """Find the files of data set `name`, downloading them if allowed and needed.

    A `data_dir` the caller names is the one used: its files, or an error."""
    if data_dir is not None:
        return _named_folder(name, Path(data_dir).expanduser())
    tried = []
    for source, folder in _candidates(name):
        tried.append(f"{folder} ({source})")
        files = _files_in(folder)
        if files is not None:
            logger.info("loading %s from %s (%s)", name, folder, source)
            return files
        logger.debug("%s: not all four %s files in %s", source, name, folder)
    errors = ["skipped: download=False"]
    if download:
        files, errors = _download(name)
        if files is not None:
            logger.info("loading %s from %s (downloaded)", name, _cache_dir(name))
            return files
    raise DatasetNotFoundError(_not_found_message(name, tried, errors))


def _not_found_message(name: str, tried: list[str], errors: list[str]) -> str:
    places = "".join(f"\n  - {place}" for place in tried)
    mirrors = "".join(f"\n  - {error}" for error in errors) or " none configured"
    return (
        f"The {name} data set was not found. Looked for its four IDX files "
        f"({', '.join(_TRAIN + _TEST)}, each raw or .gz) in:{places}\n"
        f"Download from the mirrors:{mirrors}\n"
        "To provide the files: set XGRAD_DATA_DIR to a folder holding them (or "
        f"holding a '{name}/' subfolder with them), pass data_dir=..., copy them "
        f"into {_cache_dir(name)}, or for Fashion-MNIST on Debian/Ubuntu run "
        "`apt-get install dataset-fashion-mnist`.")


def _download(name: str) -> tuple[dict[str, Path] | None, list[str]]:
    """Fetch the missing files of `name` into the cache; return them or the errors."""
    folder = _cache_dir(name)
    errors: list[str] = []
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return None, [f"cannot create the cache folder {folder}: {exc}"]
    deadline = time.monotonic() + DOWNLOAD_DEADLINE
    for stem in _TRAIN + _TEST:
        present = (folder / stem).is_file() or (folder / f"{stem}.gz").is_file()
        if not present and not _fetch(name, stem, folder, errors, deadline):
            return None, errors
    return _files_in(folder), errors


def _fetch(name: str, stem: str, folder: Path, errors: list[str], deadline: float) -> bool:
    """Try each mirror in turn for one file; record why each failed."""
    for base in MIRRORS[name]:
        url = base.rstrip("/") + f"/{stem}.gz"
        try:
            _fetch_one(url, folder / f"{stem}.gz", SHA256[name][stem], _RAW_SIZE[stem], deadline)
        except (OSError, ValueError, http.client.HTTPException) as exc:
            errors.append(f"{url}: {exc}")
            logger.info("download of %s failed: %s", url, exc)
            continue
        logger.info("downloaded %s into %s", url, folder)
        return True
    return False


def _fetch_one(url: str, target: Path, expected: str, raw_size: int, deadline: float) -> None:
    """Download `url` to a temporary file, verify it, then move it to `target`.

    At most a gzip stream of `raw_size` bytes is read (the mirror's claim and
    its bytes are both checked), and never past `deadline` (time.monotonic).
    """
    _check_scheme(url, url)
    limit = raw_size + raw_size // 100 + 1024  # gzip never grows data by more
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part",
                               dir=target.parent)
    try:
        request = urllib.request.Request(url, headers={"User-Agent": "xgrad"})
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(
                request, timeout=DOWNLOAD_TIMEOUT) as response:
            _check_scheme(url, response.geturl() or url)
            _copy_capped(response, out, limit, deadline)
        verify_file(Path(tmp), read_raw(Path(tmp), gz=True, limit=raw_size), expected)
        os.replace(tmp, target)  # atomic: readers see no file or a whole one
    finally:
        Path(tmp).unlink(missing_ok=True)


def _check_scheme(url: str, final: str) -> None:
    scheme = urllib.parse.urlsplit(final).scheme.lower()
    if scheme not in _SCHEMES:
        where = "" if final == url else f" (redirected to {final})"
        raise ValueError(f"refused: only https mirrors are used, not {scheme or 'no scheme'}{where}")


def _copy_capped(response: Any, out: Any, limit: int, deadline: float) -> None:
    """Copy the response to `out`, stopping past `limit` bytes or `deadline`."""
    length = response.headers.get("Content-Length") if getattr(response, "headers", None) else None
    if length is not None and length.isdigit() and int(length) > limit:
        raise ValueError(f"the mirror announces {int(length)} bytes, more than the {limit} this file can have")
    read = getattr(response, "read1", None) or response.read
    total = 0
    while True:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the download took longer than DOWNLOAD_DEADLINE ({DOWNLOAD_DEADLINE:g} s); "
                               f"stopped after {total} bytes")
        chunk = read(_CHUNK)
        if not chunk:
            return
        total += len(chunk)
        if total > limit:
            raise ValueError(f"the mirror sent more than the {limit} bytes this file can have; stopped")
        out.write(chunk)
