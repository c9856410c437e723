"""Files that are never half-written (xgrad._infra.files): a full disk in the
middle of a write keeps the previous file whole, and leaves no temporary file."""

from __future__ import annotations

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
