"""The network's file (xgrad._net.file): a damaged or edited file is one clear
error that names it."""

from __future__ import annotations

import numpy as np
import pytest
from _helpers import edit_npz, truncate

from xgrad import FileFormatError, TwoLayerNet

NET_DAMAGE = {
    "truncated": (lambda p: truncate(p), "not a readable"),
    "empty": (lambda p: truncate(p, 0), r"empty \(0 bytes\)"),
    "not a zip": (lambda p: p.write_text("hello"), "not a readable"),
    "NaN weights": (lambda p: edit_npz(p, W2=np.full((4, 3), np.nan)), "W2 holds 12 NaN or infinite"),
    "b1 too short": (lambda p: edit_npz(p, b1=np.zeros(3)), "b1 has 3 entries but the network's shapes need 4"),
    "W2 rows": (lambda p: edit_npz(p, W2=np.zeros((5, 3))), "W2 rows has 5 entries"),
    "b2 length": (lambda p: edit_npz(p, b2=np.zeros(2)), "b2 has 2 entries"),
    "W1 1-d": (lambda p: edit_npz(p, W1=np.zeros(6)), r"W1 has shape \(6,\)"),
    "integer weights": (lambda p: edit_npz(p, W1=np.zeros((6, 4), dtype=np.int64)), "W1 has dtype int64"),
    "activation": (lambda p: edit_npz(p, activation=np.array("tanh")), "activation must be 'sigmoid' or 'relu'"),
    "activation number": (lambda p: edit_npz(p, activation=np.array(3.0)), "activation must be"),
    "missing b2": (lambda p: edit_npz(p, b2=None), "missing b2"),
}


@pytest.mark.parametrize("damage", list(NET_DAMAGE))
def test_damaged_network_file_gives_one_clear_error(tmp_path, damage):
    path = tmp_path / "net.npz"
    TwoLayerNet(6, 4, 3).save(path)
    edit, match = NET_DAMAGE[damage]
    edit(path)
    with pytest.raises(FileFormatError, match=match) as info:
        TwoLayerNet.load(path)
    assert str(path) in str(info.value) and info.value.path == str(path)
    assert isinstance(info.value, ValueError)
