"""The network's file (xgrad._net.file): a network that could not be read back
is not written over a good file; a damaged or edited file, or one of mixed
dtypes, is one clear error that names it; a file saved without its suffix is
named when it is loaded so."""

from __future__ import annotations

import numpy as np
import pytest
from _helpers import edit_npz, truncate

import xgrad
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


# --- never write what cannot be read back; files that cannot be read ------------------

def test_a_network_with_non_finite_weights_is_not_saved_over_a_good_file(tmp_path):
    # save() wrote it (replacing the good file) and load() then refused the file:
    # the network at that path was lost
    path = tmp_path / "net.npz"
    good = TwoLayerNet(4, 3, 2, seed=0)
    good.save(path)
    before = path.read_bytes()
    bad = good.with_params({**good.params, "b2": np.array([0.0, np.nan])})
    with pytest.raises(ValueError, match=r"the network's b2 holds 1 NaN or infinite value; .* not written"):
        bad.save(path)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["net.npz"]
    np.testing.assert_array_equal(TwoLayerNet.load(path).params["W1"], good.params["W1"])


def test_a_network_file_of_mixed_dtypes_is_refused(tmp_path):
    # W1 in float32 and the rest in float64 loaded as a float32 network, the
    # dtype of whichever parameter came first; save() never writes such a file
    path = tmp_path / "mixed.npz"
    net = TwoLayerNet(4, 3, 2, seed=0)
    np.savez(path, activation=np.array("sigmoid"), W1=net.params["W1"].astype(np.float32),
             **{k: net.params[k] for k in ("b1", "W2", "b2")})
    with pytest.raises(xgrad.FileFormatError, match=r"parameters of mixed dtypes \(W1 float32, b1 float64, W2 "
                                                    r"float64, b2 float64\); a network file holds one"):
        TwoLayerNet.load(path)


def test_load_without_the_suffix_save_added_names_the_file_it_meant(tmp_path):
    # save("x") writes x.npz (as numpy.savez does); load("x") finds nothing and says where to look
    net = xgrad.TwoLayerNet(3, 4, 2, seed=0)
    net.save(tmp_path / "x")
    with pytest.raises(FileNotFoundError, match=r"did you mean '.*x\.npz'\? \(saving adds \.npz\)"):
        xgrad.TwoLayerNet.load(tmp_path / "x")


# --- sizes declared in the headers, checked before any array is read ---------------

def _npz_declaring(path, shapes, *, compressed=False, version=(1, 0)):
    """An .npz whose members declare `shapes` (name -> shape, float64) but hold only 8 bytes of data each,
    unless compressed, where they hold their declared zeros (a small file of a large network)."""
    import io
    import zipfile

    writer = {(1, 0): np.lib.format.write_array_header_1_0, (2, 0): np.lib.format.write_array_header_2_0}[version]
    mode = zipfile.ZIP_DEFLATED if compressed else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", mode) as archive:
        archive.writestr("activation.npy", _npy(np.array("sigmoid")))
        for name, shape in shapes.items():
            buf = io.BytesIO()
            writer(buf, {"descr": "<f8", "fortran_order": False, "shape": shape})
            data = bytes(8 * int(np.prod(shape))) if compressed else bytes(8)
            archive.writestr(f"{name}.npy", buf.getvalue() + data)
    return path


def _npy(a):
    import io

    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


@pytest.mark.parametrize("version", [(1, 0), (2, 0)])
def test_a_file_that_declares_more_than_it_holds_is_refused_before_reading(tmp_path, version, monkeypatch):
    path = _npz_declaring(tmp_path / "huge.npz", {"W1": (784, 10**9), "b1": (10**9,), "W2": (10**9, 10),
                                                  "b2": (10,)}, version=version)
    monkeypatch.setattr(np.lib.format, "read_array", lambda *a, **k: pytest.fail("an array was read"))
    with pytest.raises(FileFormatError, match=rf"^'{path}' is not an xgrad network file: W1 declares shape "
                       r"\(784, 1000000000\) of float64 \(5,981,445\.3 MiB\) but the file holds 8 bytes of it"):
        TwoLayerNet.load(path)


def test_parameters_declared_of_sizes_that_do_not_fit_together_are_refused_before_reading(tmp_path, monkeypatch):
    path = _npz_declaring(tmp_path / "odd.npz", {"W1": (4, 3), "b1": (3,), "W2": (3, 2), "b2": (10**6,)},
                          compressed=True)
    monkeypatch.setattr(np.lib.format, "read_array", lambda *a, **k: pytest.fail("an array was read"))
    with pytest.raises(FileFormatError, match=rf"^'{path}' is not an xgrad network file: b2 has 1000000 entries "
                       r"but the network's shapes need 2 \(W1 \(4, 3\), W2 \(3, 2\)\)"):
        TwoLayerNet.load(path)


def test_a_small_file_of_a_network_too_large_for_memory_is_refused_before_reading(tmp_path, monkeypatch):
    path = _npz_declaring(tmp_path / "zeros.npz", {"W1": (784, 2000), "b1": (2000,), "W2": (2000, 10),
                                                   "b2": (10,)}, compressed=True)
    assert path.stat().st_size < 100_000  # 12.7 MB of zeros
    monkeypatch.setattr("xgrad._net.file.physical_memory", lambda: 16 << 20)
    monkeypatch.setattr(np.lib.format, "read_array", lambda *a, **k: pytest.fail("an array was read"))
    with pytest.raises(FileFormatError, match=rf"^'{path}' declares 12\.1 MiB of parameters \(W1 \(784, 2000\)\), "
                       r"more than half this machine's memory \(16\.0 MiB\)"):
        TwoLayerNet.load(path)


def test_a_checkpoint_that_declares_more_than_it_holds_is_refused(tmp_path):
    from xgrad._net.file import read_npz

    path = _npz_declaring(tmp_path / "ck.npz", {"loss": (10**10,)})
    with pytest.raises(FileFormatError, match=r"loss declares shape \(10000000000,\) of float64"):
        read_npz(path, "xgrad checkpoint", params="param_")
