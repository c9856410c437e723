"""Files that are never half-written (xgrad._infra.files): a full disk in the
middle of a write keeps the previous file whole, and leaves no temporary file;
a failed write names the file written, not the temporary one."""

from __future__ import annotations

import re

import numpy as np
import pytest
from _helpers import assert_only, fill_the_disk

from xgrad import TwoLayerNet


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
