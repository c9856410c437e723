"""An outside tester's attacks on the network, training, sweeps, files and CLI.

Each test here failed on the code before its fix: a wrong answer without an
error, a misleading message, or a setting that was silently misread.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import xgrad
from xgrad import TwoLayerNet


# -- inputs beyond the network's dtype ------------------------------------------
def _float32_net(backend):
    return TwoLayerNet(4, 3, 2, seed=0, weight_init_std=1.0, dtype="float32", xp=backend.xp, device=backend.device)


@pytest.mark.parametrize("method", ["accuracy", "loss", "predict", "scores"])
def test_float64_inputs_beyond_float32_are_refused_by_a_float32_net(backend, method):
    # 1e300 is a finite float64 but infinite in float32: the network used to
    # cast it silently (an accuracy of 0.5 from NaN scores), or blame NaN in `x`
    net = _float32_net(backend)
    x = backend.asarray([[1e300, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]], dtype=backend.xp.float64)
    t = backend.asarray([0, 1])
    args = (x, t) if method in ("accuracy", "loss") else (x,)
    with pytest.raises(ValueError, match=r"`x` has values up to 1e\+300, beyond the range of float32"):
        getattr(net, method)(*args)
    # just below float32's largest value is still taken, and an empty batch has no largest value
    fits = backend.asarray([[3e38, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]], dtype=backend.xp.float64)
    getattr(net, method)(*((fits, t) if method in ("accuracy", "loss") else (fits,)))
    assert net.predict(backend.asarray(np.zeros((0, 4)), dtype=backend.xp.float64)).shape == (0, 2)


# -- sweeps -----------------------------------------------------------------------
@pytest.fixture
def tiny():
    rng = np.random.default_rng(0)
    x = rng.random((40, 4))
    t = np.arange(40) % 3
    return (x, t), (x[:10], t[:10])


@pytest.mark.parametrize("iters", [0, [0, 5]])
def test_a_sweep_of_no_iterations_is_refused_not_reported_as_diverged(tiny, iters):
    # every run of 0 iterations had a NaN loss and no accuracy, so the sweep had
    # no best run and `xgrad sweep` printed "every run diverged"
    with pytest.raises(ValueError, match=r"`iters` must be at least 1 in a sweep; got 0"):
        xgrad.sweep(lr=[0.1], iters=iters, batch_size=5, hidden_size=3, data=tiny, client="serial", progress=False)


def test_the_sweep_command_refuses_no_iterations(capsys):
    from xgrad._cli.main import main

    assert main(["sweep", "--iters", "0", "--lr", "0.1", "--scheduler", "serial", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "`--iters` must be at least 1 in a sweep; got 0" in err and "diverged" not in err


# -- switches of train() ----------------------------------------------------------
def _train(data, **kwargs):
    return xgrad.train("numpy", data=data, iters=4, batch_size=5, hidden_size=3, progress=False, **kwargs)


@pytest.mark.parametrize("value", ["no", "False", 0.0, None])
def test_resume_must_be_a_bool_not_a_truthy_string(tiny, tmp_path, value):
    # resume="no" was truthy: it continued the checkpoint it was meant not to
    ck = tmp_path / "c.npz"
    _train(tiny, checkpoint=ck)
    with pytest.raises(TypeError, match=r"`resume` must be True or False; got"):
        _train(tiny, checkpoint=ck, resume=value)


@pytest.mark.parametrize("value", ["no", "False", 1, None])
def test_progress_must_be_a_bool(tiny, value):
    with pytest.raises(TypeError, match=r"`progress` must be True or False; got"):
        xgrad.train("numpy", data=tiny, iters=2, batch_size=5, hidden_size=3, progress=value)
    with pytest.raises(TypeError, match=r"`progress` must be True or False; got"):
        xgrad.sweep(lr=[0.1], data=tiny, iters=2, batch_size=5, hidden_size=3, client="serial", progress=value)


# -- data set files under the wrong name --------------------------------------------
STEMS = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _tiny_set(seed, train_labels, test_labels):
    import struct

    rng = np.random.default_rng(seed)

    def images(n):
        return struct.pack(">4I", 0x803, n, 28, 28) + rng.integers(0, 256, (n, 28, 28), np.uint8).tobytes()

    def labels(ts):
        return struct.pack(">2I", 0x801, len(ts)) + bytes(ts)

    return dict(zip(STEMS, (images(len(train_labels)), labels(train_labels), images(len(test_labels)),
                            labels(test_labels)), strict=True))


@pytest.fixture
def idx_sets(monkeypatch, tmp_path):
    """Two tiny data sets, trusted as MNIST and Fashion-MNIST, and nowhere else to look."""
    import hashlib

    import xgrad._datasets.mnist as mnist

    monkeypatch.delenv("XGRAD_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(mnist, "_SYSTEM_DIR", tmp_path / "none")
    monkeypatch.setattr(mnist, "_PACKAGE_DIR", tmp_path / "none")
    monkeypatch.setattr(mnist, "MIRRORS", {"mnist": (), "fashion-mnist": ()})
    sets = {"mnist": _tiny_set(1, (5, 0, 4, 1, 9), (7, 2, 1)), "fashion-mnist": _tiny_set(2, (9, 0, 0), (9, 2))}
    for name, raw in sets.items():
        monkeypatch.setitem(mnist.SHA256, name, {s: hashlib.sha256(b).hexdigest() for s, b in raw.items()})

    def folder(files):
        d = tmp_path / f"data{len(list(tmp_path.iterdir()))}"
        d.mkdir()
        for stem, data in files.items():
            (d / stem).write_bytes(data)
        return d

    return sets, folder


def test_a_file_of_the_other_split_is_named_not_called_tampered(idx_sets):
    # the test labels replaced by the training labels: "checksum mismatch (tampered
    # or corrupted data)... Delete the file", advice that would delete a good file
    sets, folder = idx_sets
    d = folder({**sets["mnist"], "t10k-labels-idx1-ubyte": sets["mnist"]["train-labels-idx1-ubyte"]})
    with pytest.raises(xgrad.DatasetError) as info:
        xgrad.load_mnist(data_dir=d, download=False)
    message = str(info.value)
    assert "t10k-labels-idx1-ubyte: it holds mnist's train-labels-idx1-ubyte, not mnist's t10k-labels" in message
    assert "tampered" not in message and "Delete" not in message


def test_a_file_of_the_other_data_set_is_named(idx_sets):
    sets, folder = idx_sets
    d = folder(sets["mnist"])
    with pytest.raises(xgrad.DatasetError, match=r"it holds mnist's train-images-idx3-ubyte, not fashion-mnist's "
                                                 r"train-images-idx3-ubyte: a file of another data set or split"):
        xgrad.load_mnist(data_dir=d, dataset="fashion-mnist", download=False)
    (_, t), _ = xgrad.load_mnist(data_dir=d, download=False)  # the files themselves are good
    assert t.tolist() == [5, 0, 4, 1, 9]


# -- files: never write what cannot be read back ---------------------------------------
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


# -- construction ----------------------------------------------------------------------
@pytest.mark.parametrize(("std", "dtype"), [(1e39, "float32"), (1e308, "float64")])
def test_a_weight_init_std_whose_weights_overflow_is_refused(backend, std, dtype):
    # the weights were drawn in float64 and cast: some became infinite, silently on
    # PyTorch, so every prediction of the new network was NaN
    with pytest.raises(ValueError, match=re.escape(f"`weight_init_std` ({std:g}) draws initial weights "
                                                        f"beyond the range of {dtype}")):
        TwoLayerNet(4, 3, 2, weight_init_std=std, dtype=dtype, xp=backend.xp, device=backend.device)
    big = TwoLayerNet(4, 3, 2, weight_init_std=1e30, dtype="float32", xp=backend.xp, device=backend.device)
    assert bool(backend.xp.all(backend.xp.isfinite(big.params["W1"])))


def _huge_float64_net(backend=None):
    net = TwoLayerNet(4, 3, 2, seed=0) if backend is None else TwoLayerNet(4, 3, 2, seed=0, xp=backend.xp,
                                                                             device=backend.device)
    w1 = np.ones((4, 3))
    w1[2, 1] = -1e300  # finite in float64, infinite in float32
    return net.with_params({**net.params, "W1": net.to_device(w1)})


def test_astype_float32_refuses_weights_beyond_its_range(backend):
    net = _huge_float64_net(backend)
    with pytest.raises(ValueError, match=re.escape("W1 has values up to 1e+300, beyond the range of float32")):
        net.astype("float32")
    assert net.astype("float64").params["W1"].dtype == backend.xp.float64


def test_loading_as_float32_refuses_weights_beyond_its_range(tmp_path, backend):
    path = tmp_path / "big.npz"
    _huge_float64_net().save(path)
    with pytest.raises(ValueError, match=re.escape("W1 has values up to 1e+300, beyond the range of float32")):
        TwoLayerNet.load(path, dtype="float32", xp=backend.xp, device=backend.device)
    assert float(TwoLayerNet.load(path).params["W1"][2, 1]) == -1e300


# -- a setting that would be ignored ------------------------------------------------
def test_checkpoint_every_without_a_checkpoint_is_refused(tiny):
    # it was ignored without a word: the run saved nothing while its caller
    # believed it saved every 2 iterations
    with pytest.raises(ValueError, match=r"`checkpoint_every` \(2\) has no effect without `checkpoint`"):
        _train(tiny, checkpoint_every=2)


def test_checkpoint_every_defaults_to_100_with_a_checkpoint(tiny, tmp_path, monkeypatch):
    import xgrad._train.run as trainrun

    saved = []
    monkeypatch.setattr(trainrun, "save_checkpoint", lambda path, state, cfg: saved.append(state.iteration))
    xgrad.train("numpy", data=tiny, iters=250, batch_size=5, hidden_size=3, eval_every=0, progress=False,
                checkpoint=tmp_path / "c.npz")
    assert saved == [100, 200, 250]
    with pytest.raises(ValueError, match=r"`checkpoint_every` \(2\) has no effect"):
        _train(tiny, checkpoint_every=2)  # the same check, whatever the value


def test_the_train_command_refuses_checkpoint_every_without_checkpoint(capsys):
    from xgrad._cli.main import main

    assert main(["train", "--checkpoint-every", "50", "--iters", "1", "--no-progress", "--backend", "numpy"]) == 2
    assert "`--checkpoint-every` (50) has no effect without `--checkpoint`" in capsys.readouterr().err


# -- a namespace given as xp= -----------------------------------------------------------
@pytest.mark.parametrize("library", ["numpy", "torch", "array_api_compat.numpy", "array_api_compat.torch"])
def test_a_network_built_from_a_bare_namespace_takes_that_library_arrays(library, tmp_path):
    # xp=numpy (the documented "array namespace to use directly") built a network
    # that refused every numpy array: "`x` must be an array of the network's
    # library (numpy); got numpy.ndarray", or "on device cpu, the network on None"
    import importlib

    xp = importlib.import_module(library)
    ref = TwoLayerNet(4, 3, 2, seed=0)
    net = TwoLayerNet(4, 3, 2, seed=0, xp=xp)
    x = xp.asarray(np.linspace(-1, 1, 8).reshape(2, 4))
    np.testing.assert_allclose(np.asarray(net.predict(x)), ref.predict(np.asarray(x)), rtol=1e-12)
    assert net.accuracy(x, xp.asarray([1, 0])) == ref.accuracy(np.asarray(x), np.array([1, 0]))
    ref.save(tmp_path / "n.npz")
    loaded = TwoLayerNet.load(tmp_path / "n.npz", xp=xp)
    np.testing.assert_allclose(np.asarray(loaded.predict(x)), ref.predict(np.asarray(x)), rtol=1e-12)


# -- failed writes name the file --------------------------------------------------------
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


def test_a_sweep_out_that_is_a_file_is_refused_before_any_run(tiny, tmp_path, capsys):
    # was "[Errno 17] File exists: '...'", as if the folder were there already
    afile = tmp_path / "notes.txt"
    afile.write_text("keep me")
    with pytest.raises(ValueError, match=r"`out` '.*notes.txt' is a regular file, not a folder"):
        xgrad.sweep(lr=[0.1], iters=2, batch_size=5, hidden_size=3, data=tiny, client="serial", progress=False,
                    out=afile)
    assert afile.read_text() == "keep me"
    from xgrad._cli.main import main

    assert main(["sweep", "--out", str(afile), "--scheduler", "serial", "--iters", "2", "--no-progress"]) == 2
    assert "`--out` " in capsys.readouterr().err


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


# -- the data set's name ------------------------------------------------------------------
def test_the_data_set_name_is_recorded_in_one_spelling(tiny, tmp_path):
    # "fashion_mnist" (which load_mnist accepts) was recorded as given, so a
    # checkpoint of the run refused to resume under "fashion-mnist", the same data
    ck = tmp_path / "c.npz"
    first = _train(tiny, dataset="fashion_mnist", checkpoint=ck)
    assert first.config["dataset"] == "fashion-mnist"
    again = xgrad.train("numpy", data=tiny, iters=6, batch_size=5, hidden_size=3, progress=False,
                        dataset="fashion-mnist", checkpoint=ck, resume=True)
    assert again.loss.shape == (6,)


@pytest.mark.parametrize(("value", "error"), [("cifar", ValueError), (None, ValueError), (3, ValueError)])
def test_an_unknown_data_set_is_refused_even_with_data(tiny, value, error):
    # with data= it was recorded in the run's config unchecked
    with pytest.raises(error, match=r"`dataset` must be 'mnist' or 'fashion-mnist'"):
        _train(tiny, dataset=value)


def test_a_checkpoint_that_recorded_fashion_mnist_with_an_underscore_resumes(tiny, tmp_path):
    import json

    ck = tmp_path / "c.npz"
    _train(tiny, dataset="fashion-mnist", checkpoint=ck)
    with np.load(ck) as f:
        saved = {k: f[k] for k in f}
    meta = json.loads(str(saved["meta"]))
    meta["config"]["dataset"] = "fashion_mnist"  # as the code before this fix wrote it
    np.savez(ck, **{**saved, "meta": np.array(json.dumps(meta))})
    again = xgrad.train("numpy", data=tiny, iters=6, batch_size=5, hidden_size=3, progress=False,
                        dataset="fashion-mnist", checkpoint=ck, resume=True)
    assert again.loss.shape == (6,)


def test_a_data_root_with_loose_mnist_files_still_gives_fashion_mnist_from_its_subfolder(idx_sets, tmp_path):
    # the loose files were taken first, and failed as the wrong data set, although
    # the root's fashion-mnist/ subfolder held the data set asked for
    sets, folder = idx_sets
    root = folder(sets["mnist"])
    (root / "fashion-mnist").mkdir()
    for stem, data in sets["fashion-mnist"].items():
        (root / "fashion-mnist" / stem).write_bytes(data)
    (_, t), _ = xgrad.load_mnist(data_dir=root, dataset="fashion-mnist", download=False)
    assert t.tolist() == [9, 0, 0]
    (_, t), _ = xgrad.load_mnist(data_dir=root, download=False)  # and MNIST from the loose files
    assert t.tolist() == [5, 0, 4, 1, 9]


# -- accuracy needs one true class per sample -----------------------------------------
def test_accuracy_refuses_probability_rows_without_a_single_largest_class(backend):
    # [0.5, 0.5] is a valid soft label for the loss, but names no true class: accuracy
    # took the first (argmax) and counted a prediction of class 1 as wrong
    net = TwoLayerNet(4, 3, 2, seed=0, weight_init_std=1.0, xp=backend.xp, device=backend.device)
    x = backend.asarray(np.linspace(-1, 1, 8).reshape(2, 4))
    soft = backend.asarray([[0.2, 0.8], [0.5, 0.5]])
    float(net.loss(x, soft))  # the loss takes it
    with pytest.raises(ValueError, match=r"`t` row 1 has its largest value in 2 classes; accuracy needs one true "
                                         r"class per sample"):
        net.accuracy(x, soft)
    from xgrad._infra.host import to_numpy

    labels = np.argmax(to_numpy(net.predict(x)), axis=1)
    smooth = backend.asarray(np.where(np.eye(2)[labels] == 1, 0.9, 0.1))  # label smoothing: one largest class
    assert net.accuracy(x, smooth) == 1.0


# -- resuming elsewhere ------------------------------------------------------------------
def test_resuming_on_another_backend_says_so(tiny, tmp_path, caplog):
    # a run checkpointed on NumPy continued on PyTorch without a word, and its
    # result named PyTorch alone
    import logging

    pytest.importorskip("torch")
    ck = tmp_path / "c.npz"
    _train(tiny, checkpoint=ck)
    caplog.set_level(logging.INFO, logger="xgrad")
    xgrad.train("torch", data=tiny, iters=6, batch_size=5, hidden_size=3, progress=False, checkpoint=ck,
                resume=True)
    said = [r.getMessage() for r in caplog.records if r.name == "xgrad" and r.levelno >= logging.WARNING]
    assert any("its first 4 iterations ran on numpy (cpu), the rest on torch (cpu)" in m for m in said), said
    caplog.clear()
    xgrad.train("torch", data=tiny, iters=8, batch_size=5, hidden_size=3, progress=False, checkpoint=ck,
                resume=True)  # made on torch now: nothing to say
    assert not [r for r in caplog.records if r.name == "xgrad" and r.levelno >= logging.WARNING]


def test_data_dir_with_data_is_refused(tiny, tmp_path):
    # the folder was ignored without a word: the run trained on `data`
    with pytest.raises(ValueError, match=r"`data_dir` has no effect when `data` is given"):
        _train(tiny, data_dir=tmp_path)
    with pytest.raises(ValueError, match=r"`data_dir` has no effect when `data` is given"):
        xgrad.sweep(lr=[0.1], iters=2, batch_size=5, hidden_size=3, data=tiny, data_dir=tmp_path, client="serial",
                    progress=False)


def test_load_without_the_suffix_save_added_names_the_file_it_meant(tmp_path):
    # save("x") writes x.npz (as numpy.savez does); load("x") finds nothing and says where to look
    net = xgrad.TwoLayerNet(3, 4, 2, seed=0)
    net.save(tmp_path / "x")
    with pytest.raises(FileNotFoundError, match=r"did you mean '.*x\.npz'\? \(saving adds \.npz\)"):
        xgrad.TwoLayerNet.load(tmp_path / "x")
