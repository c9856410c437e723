"""Files that are never half-written, and checks of output paths made early.

Every file xgrad writes (checkpoints, networks, ``history.json``,
``training.png``) goes through :func:`atomic_write`: the bytes go to a
temporary file in the target's folder, are flushed to disk, and only then
replace the target in one ``os.replace``. A full disk, a crash or a
``kill -9`` at any moment leaves either the previous file or the new one,
never a mixture; a temporary file a killed writer left behind is removed by
the next write of the same target.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import tempfile
import time
from collections.abc import Iterator
from typing import IO, Any

__all__ = ["FileFormatError", "atomic_write", "check_input_file", "check_output_dir", "check_output_file"]

_UMASK: int | None = None


class FileFormatError(ValueError):
    """A file xgrad should read is damaged, truncated or inconsistent.

    Attributes
    ----------
    path : str
        The file.
    """

    def __init__(self, message: str, *, path: str | os.PathLike[str]) -> None:
        super().__init__(message)
        self.path = os.fspath(path)


def _umask() -> int:
    global _UMASK
    if _UMASK is None:  # read once: os.umask can only be read by setting it
        _UMASK = os.umask(0o022)
        os.umask(_UMASK)
    return _UMASK


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], *, text: bool = False) -> Iterator[IO[Any]]:
    """Open a temporary file beside `path`; on success it replaces `path`.

    The file is flushed and fsync'ed before the move, so that after a crash
    `path` holds either the old or the new content. On any error (or
    interruption) the temporary file is removed and `path` is untouched; an
    :class:`OSError` is raised again naming `path` (not the temporary file),
    with its errno and its subclass (``PermissionError``...).

    Examples
    --------
    >>> import os, tempfile
    >>> from xgrad._infra.files import atomic_write
    >>> folder = tempfile.mkdtemp()
    >>> with atomic_write(os.path.join(folder, "a.txt"), text=True) as f:
    ...     _ = f.write("hello")
    >>> os.listdir(folder)
    ['a.txt']
    """
    target = os.path.abspath(os.fspath(path))
    folder = os.path.dirname(target)
    with _naming(os.fspath(path)):
        os.makedirs(folder, exist_ok=True)
        _remove_stale(folder, os.path.basename(target))
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(target)}.{os.getpid()}-", suffix=".tmp")
    try:
        with _naming(os.fspath(path)):
            f: IO[Any] = os.fdopen(fd, "w", encoding="utf-8") if text else os.fdopen(fd, "wb")
            with f:
                yield f
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o666 & ~_umask())  # as a plain open() would have made it
            os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _sync_folder(folder)


STALE_AFTER = 60.0
"""Seconds after which a temporary file of :func:`atomic_write` counts as left behind."""

# .<target>.<pid>-<random>.tmp (or .<target>.<random>.tmp, as earlier versions named them)
_TEMPORARY = re.compile(r"(?:(\d+)-)?[a-z0-9_]{8}\.tmp")


def _remove_stale(folder: str, name: str) -> None:
    """Remove the temporary files of target `name` that a killed writer left in
    `folder`: those whose writer's process is gone, or older than STALE_AFTER."""
    prefix, now = f".{name}.", time.time()
    try:
        entries = [e for e in os.scandir(folder) if e.name.startswith(prefix)]
    except OSError:
        return
    for entry in entries:
        match = _TEMPORARY.fullmatch(entry.name[len(prefix):])
        with contextlib.suppress(OSError):
            if match is None or not entry.is_file(follow_symlinks=False):
                continue
            gone = match.group(1) is not None and not _alive(int(match.group(1)))
            if gone or now - entry.stat(follow_symlinks=False).st_mtime > STALE_AFTER:
                os.unlink(entry.path)


def _alive(pid: int) -> bool:
    """Whether process `pid` exists (one of another user counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OverflowError, OSError):  # PermissionError: another user's
        return True
    return True


@contextlib.contextmanager
def _naming(path: str) -> Iterator[None]:
    """An OSError with an errno raised again naming `path`: a full disk names no
    file, and a failed move names the temporary file, which is gone by then."""
    try:
        yield
    except OSError as exc:
        if exc.errno is None or exc.filename == path:
            raise
        raise OSError(exc.errno, exc.strerror or str(exc), path) from exc


def _sync_folder(folder: str) -> None:
    """Make the rename itself durable (best effort: not every system allows it)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def check_output_file(path: str | os.PathLike[str], name: str) -> None:
    """Refuse, before any work, a path that :func:`atomic_write` could not fill.

    `path` may be absent (its folder is created) or a regular file (it will be
    replaced); a folder, a device such as ``/dev/null``, a pipe or a socket is
    refused, as is a folder that cannot be created or written. `name` is the
    option's name in messages (```checkpoint```, ``--checkpoint``...).

    Raises
    ------
    ValueError
        Naming the option, the path and the reason.

    Examples
    --------
    >>> from xgrad._infra.files import check_output_file
    >>> check_output_file("/dev/null", "`checkpoint`")
    Traceback (most recent call last):
    ...
    ValueError: `checkpoint` '/dev/null' is a character device, not a regular file; give the path of a file
    """
    p = os.fspath(path)
    kind = _kind(p, name)
    if kind not in (None, "regular file"):
        raise ValueError(f"{name} {p!r} is a {kind}, not a regular file; give the path of a file")
    _check_folder(os.path.dirname(os.path.abspath(p)), name, p)


def check_input_file(path: str | os.PathLike[str], name: str, what: str) -> None:
    """Refuse, before reading, a `path` that is no readable regular file,
    naming the option (`name`), the path and what to give instead (`what`).

    Examples
    --------
    >>> from xgrad._infra.files import check_input_file
    >>> check_input_file("missing.json", "`--history`", "the history.json that xgrad train --out DIR writes")
    Traceback (most recent call last):
    ...
    ValueError: `--history` 'missing.json' does not exist; give the history.json that xgrad train --out DIR writes
    """
    p = os.fspath(path)
    kind = _kind(p, name)
    if kind is None:
        raise ValueError(f"{name} {p!r} does not exist; give {what}")
    if kind != "regular file":
        raise ValueError(f"{name} {p!r} is a {kind}, not a regular file; give {what}")
    if not os.access(p, os.R_OK):
        raise ValueError(f"{name} {p!r} cannot be read (permission denied); give {what}")


def check_output_dir(path: str | os.PathLike[str], name: str, files: tuple[str, ...] = ()) -> None:
    """Refuse a folder that cannot be created or written, or whose `files` could not be replaced."""
    p = os.fspath(path)
    kind = _kind(p, name)
    if kind not in (None, "folder"):
        raise ValueError(f"{name} {p!r} is a {kind}, not a folder; give a folder for the outputs")
    _check_folder(os.path.abspath(p), name, p)
    for f in files:
        check_output_file(os.path.join(p, f), name)


def _kind(p: str, name: str) -> str | None:
    try:
        mode = os.stat(p).st_mode
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ValueError(f"{name} {p!r} cannot be used: {exc.strerror or exc}") from None
    for test, kind in ((stat.S_ISREG, "regular file"), (stat.S_ISDIR, "folder"), (stat.S_ISCHR, "character device"),
                       (stat.S_ISBLK, "block device"), (stat.S_ISFIFO, "named pipe"), (stat.S_ISSOCK, "socket")):
        if test(mode):
            return kind
    return "special file"


def _check_folder(folder: str, name: str, p: str) -> None:
    """Prove `folder` writable by making a file in it; folders made for the
    proof are removed again (the writer makes them), so that a run refused
    for another setting leaves nothing behind."""
    made = []  # the folders this check creates, outermost last
    parent = folder
    while not os.path.exists(parent) and os.path.dirname(parent) != parent:
        made.append(parent)
        parent = os.path.dirname(parent)
    try:
        os.makedirs(folder, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".xgrad-probe.")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ValueError(f"{name} {p!r} cannot be written: {reason} ({folder})") from None
    finally:
        for d in made:
            with contextlib.suppress(OSError):
                os.rmdir(d)
