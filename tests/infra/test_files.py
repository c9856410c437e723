"""Tests for xgrad._infra.files: temporaries a killed writer left behind are removed by the next write."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from xgrad._infra import files
from xgrad._infra.files import atomic_write

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
