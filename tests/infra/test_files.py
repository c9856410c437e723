"""Files that are never half-written (xgrad._infra.files): a full disk in the
middle of a write keeps the previous file whole, and leaves no temporary file;
a failed write names the file written, not the temporary one."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import numpy as np
import pytest
from _helpers import assert_only, fill_the_disk

from xgrad import TwoLayerNet
from xgrad._infra import files
from xgrad._infra.files import atomic_write


@pytest.fixture
def full_disk(monkeypatch):
    """Called, it makes every atomic write from then on fail with ENOSPC after 100 bytes."""
    return lambda: fill_the_disk(monkeypatch)


def test_full_disk_keeps_the_previous_network_file(tmp_path, full_disk):
    net = TwoLayerNet(6, 4, 3, seed=1)
    net.save(tmp_path / "net.npz")
    full_disk()
    with pytest.raises(OSError, match="No space left"):
        TwoLayerNet(6, 4, 3, seed=2).save(tmp_path / "net.npz")
    assert_only(tmp_path, {"net.npz"})
    again = TwoLayerNet.load(tmp_path / "net.npz")
    for k, v in net.params.items():
        np.testing.assert_array_equal(again.params[k], v)


# --- failed writes name the file --------------------------------------------------------

def test_a_failed_save_names_the_file_and_keeps_the_previous_one(tmp_path, monkeypatch):
    import errno

    path = tmp_path / "net.npz"
    TwoLayerNet(4, 3, 2, seed=0).save(path)
    before = path.read_bytes()

    def full(f, **arrays):
        f.write(b"PK partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez", full)
    # was "[Errno 28] No space left on device", naming no file
    with pytest.raises(OSError, match=re.escape(f"No space left on device: {str(path)!r}")) as info:
        TwoLayerNet(4, 3, 2, seed=1).save(path)
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(path)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["net.npz"]


def test_saving_over_a_folder_names_the_target_not_a_temporary_file(tmp_path):
    # was "Is a directory: '.../.net.npz.k3j2.tmp' -> '.../net.npz'"
    (tmp_path / "net.npz").mkdir()
    with pytest.raises(IsADirectoryError) as info:
        TwoLayerNet(4, 3, 2).save(tmp_path / "net.npz")
    assert ".tmp" not in str(info.value) and str(tmp_path / "net.npz") in str(info.value)
    assert [p.name for p in tmp_path.iterdir()] == ["net.npz"]


# --- temporaries a killed writer left behind ----------------------------------------

GONE = 2**22 + 1  # above Linux's largest pid: no such process


def _write(path, text="new"):
    with atomic_write(path, text=True) as f:
        f.write(text)


def _age(path, seconds):
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_a_write_killed_with_sigkill_leaves_a_temporary_that_the_next_write_removes(tmp_path):
    target = tmp_path / "run.npz"
    script = (
        "import os, signal, sys\n"
        "from xgrad._infra.files import atomic_write\n"
        "with atomic_write(sys.argv[1]) as f:\n"
        "    f.write(b'half'); f.flush()\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(target)], capture_output=True, timeout=120)
    assert done.returncode == -9
    left = [p.name for p in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].startswith(".run.npz.") and left[0].endswith(".tmp")
    _write(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.npz"]
    assert target.read_text() == "new"


def test_which_temporaries_count_as_left_behind(tmp_path):
    names = {
        f".run.npz.{GONE}-abcdefgh.tmp": False,  # its writer is gone
        f".run.npz.{os.getpid()}-abcdefgh.tmp": True,  # a write of this process, under way
        ".run.npz.ab_d1fgh.tmp": True,  # as earlier versions named them, recent: may be under way
        ".run.npz.zzzzzzzz.tmp": False,  # the same, over a minute old
        f".run.npz.{os.getpid()}-zzzzzzzz.tmp": False,  # a live writer's, over a minute old
        f".other.npz.{GONE}-abcdefgh.tmp": True,  # another target's
        f".run.npz.b.{GONE}-abcdefgh.tmp": True,  # the target run.npz.b's
        ".run.npz.notes": True,  # not a temporary at all
    }
    for name in names:
        (tmp_path / name).write_text("x")
        if "zzzz" in name:
            _age(tmp_path / name, files.STALE_AFTER + 5)
    _write(tmp_path / "run.npz")
    kept = {p.name for p in tmp_path.iterdir()}
    assert kept == {name for name, keep in names.items() if keep} | {"run.npz"}


def test_a_folder_under_a_temporary_name_is_left_alone(tmp_path):
    (tmp_path / f".run.npz.{GONE}-abcdefgh.tmp").mkdir()
    _write(tmp_path / "run.npz")
    assert (tmp_path / f".run.npz.{GONE}-abcdefgh.tmp").is_dir()


@pytest.mark.parametrize("pid", [GONE, 2**70])
def test_alive(pid):
    assert files._alive(os.getpid())
    assert files._alive(pid) is (pid != GONE)  # too large for the system to check: assumed alive
