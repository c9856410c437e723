"""The training data on the device: 8-bit images, per-step one-hot rows, same numbers."""

from __future__ import annotations

import numpy as np
import pytest

import xgrad
from xgrad import to_numpy, train
from xgrad._infra.backend import index_dtype
from xgrad._train.checkpoint import data_id
from xgrad._train.config import TrainConfig, prepare_data
from xgrad._train.data import LEVELS, Levels, TrainData, batcher, host_floats, minibatch, train_data

EVERY_LEVEL = np.arange(LEVELS + 1, dtype=np.uint8).reshape(16, 16)


def _data(backend, source, labels, dtype):
    xp = backend.xp
    floats = backend.asarray(host_floats(source), dtype=getattr(xp, dtype))
    ints = backend.asarray(labels, dtype=index_dtype(xp, backend.device))
    return train_data(backend, source, floats, ints, n_classes=10)


def _batch(data, idx):
    """The minibatch of rows `idx` of `data`, as the training step draws it."""
    return minibatch(data.images, data.labels, data.eye, idx, levels=data.levels, dtype=data.dtype, xp=data.xp)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_level_becomes_the_number_load_mnist_gives(backend, dtype):
    # float32 k/255 as the loader divides; float64 runs widen those float32 numbers
    expected = (EVERY_LEVEL.astype(np.float32) / np.float32(255)).astype(dtype)
    data = _data(backend, Levels(EVERY_LEVEL), np.arange(16) % 10, dtype)
    idx = backend.asarray(np.arange(16)[::-1].copy(), dtype=index_dtype(backend.xp, backend.device))
    xb, _ = _batch(data, idx)
    assert xb.dtype == getattr(backend.xp, dtype)
    np.testing.assert_array_equal(to_numpy(xb), expected[::-1])
    if backend.name in ("numpy", "torch", "array_api_strict"):  # they divide exactly: 8-bit on the device
        assert data.levels and to_numpy(data.images).dtype == np.uint8


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_bound_batcher_gives_what_minibatch_gives(backend, dtype):
    """The eager loop's :func:`batcher` (the table's gather method, the levels
    divided in place): the same numbers, every
    level and repeated rows, and the images on the device untouched."""
    from xgrad._infra.backend import library

    expected = (EVERY_LEVEL.astype(np.float32) / np.float32(255)).astype(dtype)
    rows = np.array([15, 0, 7, 7, 3, 15])
    for source, want in ((Levels(EVERY_LEVEL), expected[rows]), (EVERY_LEVEL, EVERY_LEVEL[rows].astype(dtype))):
        data = _data(backend, source, np.arange(16) % 10, dtype)
        kept = to_numpy(data.images)
        idx = backend.asarray(rows, dtype=index_dtype(backend.xp, backend.device))
        for lib in (library(backend.name), None):  # the table's way, and xp.take
            xb, tb = batcher(data, lib)(idx)
            assert xb.dtype == getattr(backend.xp, dtype) and tb.dtype == xb.dtype
            np.testing.assert_array_equal(to_numpy(xb), want)
            np.testing.assert_array_equal(to_numpy(tb), np.eye(10, dtype=dtype)[rows % 10])
            for a, b in zip((xb, tb), _batch(data, idx), strict=True):
                np.testing.assert_array_equal(to_numpy(a), to_numpy(b))
        np.testing.assert_array_equal(to_numpy(data.images), kept)  # divided in a copy, never in the images


def test_a_backend_that_divides_inexactly_keeps_numbers(backend):
    # JAX (XLA) divides by the constant 255 as a multiplication by 1/255,
    # which misses 126 of the 256 float32 quotients: the run keeps float images
    if backend.name != "jax":
        pytest.skip("only JAX rewrites the division")
    data = _data(backend, Levels(EVERY_LEVEL), np.arange(16) % 10, "float32")
    assert not data.levels and data.images.dtype == backend.xp.float32


def test_numbers_stay_numbers_and_targets_are_one_hot(backend):
    # given numbers are not levels: 0.3 and 1e-3 stay, integers stay integers (not /255)
    x = np.array([[0.3, 1e-3], [255.0, -2.5], [7.0, 0.0]])
    labels = np.array([9, 0, 3])
    for source in (x, np.array([[3, 255], [0, 1], [7, 9]], dtype=np.uint8)):
        data = _data(backend, source, labels, "float64")
        assert not data.levels
        idx = backend.asarray(np.array([2, 0, 0, 1]), dtype=index_dtype(backend.xp, backend.device))
        xb, tb = _batch(data, idx)
        np.testing.assert_array_equal(to_numpy(xb), source[[2, 0, 0, 1]].astype(np.float64))
        np.testing.assert_array_equal(to_numpy(tb), np.eye(10)[[3, 9, 9, 0]])
        assert tb.dtype == backend.xp.float64


def test_loaded_images_come_as_levels_and_given_ones_as_they_are():
    cfg = TrainConfig.build({"dataset": "mnist", "activation": None, "hidden_size": None, "iters": 1,
                             "batch_size": 100, "lr": 0.1, "gradient": "backprop", "h": None, "eval_every": None,
                             "seed": 0, "dtype": None, "weight_init_std": None, "threads": None,
                             "progress": False})
    (x, t), (xt, tt) = loaded = xgrad.load_mnist()
    (lx, lt), (lxt, ltt) = prepare_data(cfg, None, None)
    assert isinstance(lx, Levels) and isinstance(lxt, Levels) and lx.raw.dtype == np.uint8
    np.testing.assert_array_equal(lx.floats(), x)
    np.testing.assert_array_equal(lxt.floats(), xt)
    np.testing.assert_array_equal(lt, t)
    # the checkpoint fingerprint reads the numbers: the same data, the same id
    assert data_id(host_floats(lx), lt, host_floats(lxt), ltt) == data_id(x, t, xt, tt)
    (gx, _), _ = prepare_data(cfg, loaded, None)
    assert isinstance(gx, np.ndarray) and gx.dtype == np.float32


def test_a_checkpoint_of_given_numbers_resumes_on_loaded_levels(tmp_path):
    data = xgrad.load_mnist()
    ckpt = tmp_path / "run.npz"
    train("numpy", data=data, iters=20, eval_every=10, progress=False, checkpoint=ckpt)
    resumed = train("numpy", iters=30, eval_every=10, progress=False, checkpoint=ckpt, resume=True)
    fresh = train("numpy", data=data, iters=30, eval_every=10, progress=False)
    np.testing.assert_array_equal(resumed.loss, fresh.loss)
    assert resumed.test_acc[-1] == fresh.test_acc[-1]
    for k, v in fresh.net.params.items():
        np.testing.assert_array_equal(resumed.net.params[k], v)


def test_a_minibatch_traces_under_jit():
    jax = pytest.importorskip("jax")
    b = xgrad.resolve_backend("jax")
    data = TrainData(b.asarray(np.eye(3, dtype=np.float32)), b.asarray(np.array([2, 0, 1])),
                     b.xp.eye(3, dtype=b.xp.float32), b.xp.float32, False, b.xp)
    xb, tb = jax.jit(lambda idx: _batch(data, idx))(b.asarray(np.array([1, 1, 2])))
    np.testing.assert_array_equal(np.asarray(xb), np.eye(3)[[1, 1, 2]])
    np.testing.assert_array_equal(np.asarray(tb), np.eye(3)[[0, 0, 1]])


def test_loaded_and_given_images_train_alike_on_every_backend(backend):
    # loaded: 8-bit levels where the backend divides exactly; given: float32 numbers
    kw = {"iters": 15, "eval_every": 0, "progress": False, "device": backend.device}
    loaded = train(backend.name, **kw)
    given = train(backend.name, data=xgrad.load_mnist(), **kw)
    np.testing.assert_array_equal(loaded.loss, given.loss)
    for k, v in given.net.params.items():
        np.testing.assert_array_equal(to_numpy(loaded.net.params[k]), to_numpy(v))


def test_the_tables_row_gather_gives_the_minibatch_xp_take_gives(backend):
    """``gather`` (PyTorch: ``index_select``) is a cheaper way to the same
    minibatch, repeated rows too."""
    from xgrad._infra.backend import library

    take = library(backend.name).gather
    if take is None:
        pytest.skip("this backend gathers with xp.take")
    rng = np.random.default_rng(5)
    source = rng.integers(0, 256, size=(40, 6), dtype=np.uint8)
    data = _data(backend, source, np.arange(40) % 10, "float32")
    idx = backend.asarray(np.array([39, 0, 7, 7, 12]), dtype=index_dtype(backend.xp, backend.device))
    plain = _batch(data, idx)
    fast = minibatch(data.images, data.labels, data.eye, idx, levels=data.levels, dtype=data.dtype, xp=data.xp,
                     take=take)
    for a, b in zip(fast, plain, strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b))
    np.testing.assert_array_equal(to_numpy(fast[1]), np.eye(10, dtype=np.float32)[[9, 0, 7, 7, 2]])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_traced_minibatch_is_the_minibatch_take_gives(dtype):
    """A compiled step's minibatch (``traced``): the same numbers, levels and
    one-hot rows alike, gathered without a check of each element (a take traced
    by JAX fills the rows of out-of-range indices: a choice per element)."""
    jax = pytest.importorskip("jax")
    b = xgrad.resolve_backend("jax")
    if dtype == "float64" and not jax.config.read("jax_enable_x64"):
        pytest.skip("float64 needs jax_enable_x64")
    rng = np.random.default_rng(3)
    idx = b.asarray(np.array([39, 0, 7, 7, 12]), dtype=index_dtype(b.xp, b.device))
    for source in (rng.integers(0, 256, size=(40, 6), dtype=np.uint8), rng.random((40, 6))):
        data = _data(b, Levels(source) if source.dtype == np.uint8 else source, np.arange(40) % 10, dtype)
        traced = lambda i, data=data: minibatch(data.images, data.labels, data.eye, i, levels=data.levels,  # noqa: E731
                                                dtype=data.dtype, xp=data.xp, traced=True)
        for got, want in zip(jax.jit(traced)(idx), _batch(data, idx), strict=True):
            assert got.dtype == want.dtype and got.shape == want.shape
            np.testing.assert_array_equal(to_numpy(got), to_numpy(want))
        gathers = [e for e in _equations(jax.make_jaxpr(traced)(idx).jaxpr) if e.primitive.name == "gather"]
        assert gathers and not [e for e in gathers if "FILL" in str(e.params["mode"])]


def _equations(jaxpr):
    """The equations of a jaxpr and of those nested in it (a jitted call's)."""
    for e in jaxpr.eqns:
        yield e
        for value in e.params.values():
            inner = getattr(value, "jaxpr", value)
            if hasattr(inner, "eqns"):
                yield from _equations(inner)
