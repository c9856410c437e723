"""TwoLayerNet: the same network, start and gradients on every backend; its
arguments and inputs checked at one boundary (values beyond the range of its
dtype, other libraries' arrays and masked arrays refused, a bare namespace taken
as `xp`, one true class per sample for the accuracy); property tests: any construction
argument and any batch (NaN and infinities, empty and 0-d arrays, other dtypes,
lists, NumPy scalars, torch tensors, wrong shapes, out-of-range labels) give the
right answer, checked against a NumPy reference, or a clear error that names
the argument."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from _helpers import (
    N_IN,
    N_OUT,
    NETWORK_SETTINGS,
    assert_close,
    assert_on_backend,
    batches,
    masked_array,
    net_for_batches,
    outcome,
    valid_batch,
)
from hypothesis import given
from hypothesis import strategies as st

import xgrad
from xgrad import TwoLayerNet, directional_check, gradient_check


def test_same_seed_same_start_on_every_backend(backend):
    ref = TwoLayerNet(784, 50, 10, seed=7)
    net = TwoLayerNet(784, 50, 10, seed=7, xp=backend.xp, device=backend.device)
    for k, v in ref.params.items():
        assert_close(net.params[k], v, backend=backend, rtol=0, dtype=backend.xp.float64)
    other = TwoLayerNet(784, 50, 10, seed=8)
    assert not np.array_equal(other.params["W1"], ref.params["W1"])
    assert float(np.std(ref.params["W1"])) == pytest.approx(0.01, rel=0.05)
    assert not np.any(ref.params["b1"]) and not np.any(ref.params["b2"])


@pytest.mark.parametrize("activation", ["sigmoid", "relu"])
def test_backprop_matches_numerical_gradient(backend, activation):
    rng = np.random.default_rng(0)
    net = TwoLayerNet(12, 6, 4, activation=activation, weight_init_std=0.5, seed=1,
                      xp=backend.xp, device=backend.device)
    x = backend.asarray(rng.standard_normal((5, 12)))
    t = backend.asarray(rng.integers(0, 4, 5))
    exact = net.gradient(x, t)
    numeric = net.numerical_gradient(x, t)
    for k in exact:
        assert_close(exact[k], numeric[k], backend=backend, rtol=1e-6, atol=1e-9)


def test_integer_and_one_hot_labels_agree(backend):
    rng = np.random.default_rng(2)
    net = TwoLayerNet(8, 5, 3, seed=0, weight_init_std=1.0, xp=backend.xp, device=backend.device)
    x = backend.asarray(rng.random((4, 8)))
    labels = rng.integers(0, 3, 4)
    ti, th = backend.asarray(labels), backend.asarray(np.eye(3)[labels])
    assert float(net.loss(x, ti)) == pytest.approx(float(net.loss(x, th)), rel=1e-14)
    gi, gh = net.gradient(x, ti), net.gradient(x, th)
    for k in gi:
        assert_close(gi[k], gh[k], backend=backend, rtol=1e-13, atol=1e-16)


def test_predict_accuracy_and_scores(backend):
    net = TwoLayerNet(4, 3, 2, seed=0, weight_init_std=1.0, xp=backend.xp, device=backend.device)
    x = backend.asarray(np.random.default_rng(3).random((6, 4)))
    p = net.predict(x)
    assert_on_backend(p, backend, shape=(6, 2))
    assert_close(backend.xp.sum(p, axis=1), np.ones(6), rtol=1e-12)
    labels = np.argmax(np.from_dlpack(xgrad._infra.host.to_numpy(net.scores(x))), axis=1)
    assert net.accuracy(x, backend.asarray(labels)) == 1.0
    assert net.accuracy(x, backend.asarray(1 - labels), batch_size=4) == 0.0


def test_loss_is_stable_for_huge_weights():
    net = TwoLayerNet(3, 2, 2, seed=0)
    net.params = {**net.params, "W2": np.array([[1e4, -1e4], [1e4, -1e4]])}
    loss = net.loss(np.ones((1, 3)), np.array([1]))
    assert np.isfinite(loss) and float(loss) > 1e3


def test_save_and_load_round_trip(tmp_path, backend):
    net = TwoLayerNet(6, 4, 3, activation="relu", seed=5)
    path = tmp_path / "net.npz"
    net.save(path)
    loaded = TwoLayerNet.load(path, xp=backend.xp, device=backend.device)
    assert loaded.activation == "relu" and loaded.sizes == (6, 4, 3)
    for k, v in net.params.items():
        assert_close(loaded.params[k], v, backend=backend, rtol=0)
    with np.load(path, allow_pickle=False) as data:  # no pickled objects inside
        assert set(data.files) == {"W1", "b1", "W2", "b2", "activation"}


def test_load_rejects_other_files(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, W1=np.zeros((2, 2)))
    with pytest.raises(ValueError, match="not an xgrad network file"):
        TwoLayerNet.load(path)


def test_astype_casts_a_copy():
    net = TwoLayerNet(4, 3, 2, seed=0)
    net32 = net.astype("float32")
    assert net32.params["W1"].dtype == np.float32 and net.params["W1"].dtype == np.float64


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"hidden_size": 0}, ValueError, "`hidden_size` must be >= 1"),
        ({"hidden_size": 2.5}, TypeError, "`hidden_size` must be an integer"),
        ({"activation": "tanh"}, ValueError, "`activation` must be 'sigmoid' or 'relu'"),
        ({"dtype": "int32"}, ValueError, "`dtype` must be 'float32' or 'float64'"),
        ({"weight_init_std": -1.0}, ValueError, "`weight_init_std` must be positive"),
        ({"backend": "tensorflow"}, ValueError, "unknown backend 'tensorflow'"),
    ],
)
def test_bad_construction(kwargs, error, match):
    with pytest.raises(error, match=match):
        TwoLayerNet(784, **{"hidden_size": 50, **kwargs})


def test_bad_inputs():
    net = TwoLayerNet(784, 50, 10, seed=0)
    with pytest.raises(ValueError, match=r"shape \(batch, 784\).*got \(2, 100\)"):
        net.loss(np.zeros((2, 100)), np.array([0, 1]))
    with pytest.raises(ValueError, match=r"`t` \(the labels\) must have shape \(2,\) .* or \(2, 10\)"):
        net.loss(np.zeros((2, 784)), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"must have shape \(2,\) .* or \(2, 10\) .*got \(2, 9\)"):
        net.loss(np.zeros((2, 784)), np.zeros((2, 9)))
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match="`x` must be an array of the network's library"):
        net.loss(torch.zeros((2, 784), dtype=torch.float64), np.array([0, 1]))


# --- labels, inputs and steps: one boundary, no silent wrong answers ---------------------

def _small(backend=None, **kw):
    net = TwoLayerNet(8, 5, 3, seed=0, weight_init_std=1.0, **({"xp": backend.xp, "device": backend.device}
                                                               if backend else {}), **kw)
    x = np.random.default_rng(0).random((3, 8))
    return net, (backend.asarray(x) if backend else x)


def _entry_points(net, x, t):
    return {
        "loss": lambda: net.loss(x, t),
        "gradient": lambda: net.gradient(x, t),
        "loss_and_gradient": lambda: net.loss_and_gradient(x, t),
        "numerical_gradient": lambda: net.numerical_gradient(x, t),
        "accuracy": lambda: net.accuracy(x, t),
        "gradient_check": lambda: gradient_check(net, x, t),
        "directional_check": lambda: directional_check(net, x, t),
    }


@pytest.mark.parametrize(("labels", "match"), [
    ([5, 6, 7], r"`t` holds class index 5 at position 0, outside 0\.\.2 for 3 classes"),
    ([0, -1, 1], r"`t` holds class index -1 at position 1, outside 0\.\.2"),
    ([0, 1, 3], r"`t` holds class index 3 at position 2"),
])
def test_out_of_range_labels_are_refused_everywhere(backend, labels, match):
    net, x = _small(backend)
    t = backend.asarray(np.array(labels))
    for name, call in _entry_points(net, x, t).items():
        with pytest.raises(ValueError, match=match):
            call()
        assert name


@pytest.mark.parametrize(("rows", "error", "match"), [
    (np.array([[0, 0, 1], [1, 0, 0], [0, 1, 1]]), ValueError, r"must sum to 1 \(exactly\); row 2 sums to 2"),
    (np.array([[2.0, -1.0, 0], [1.0, 0, 0], [0, 1.0, 0]]), ValueError, r"finite and >= 0; got -1\.0 at "
                                                                         r"position \(0, 1\)"),
    (np.array([[np.nan, 1.0, 0], [1.0, 0, 0], [0, 1.0, 0]]), ValueError, "finite and >= 0; got nan"),
    (np.eye(3, dtype=bool), TypeError, "got booleans"),
    (np.array([0.0, 1.0, 2.0]), TypeError, "must be integers; got dtype"),
])
def test_bad_one_hot_rows_are_refused_everywhere(rows, error, match):
    net, x = _small()
    for call in _entry_points(net, x, rows).values():
        with pytest.raises(error, match=match):
            call()


def test_floating_rows_that_are_not_probabilities_warn_everywhere_and_are_used():
    # the book's dummy labels, t = np.random.rand(100, 10), used to show the gradient's shapes
    net, x = _small()
    rows = np.array([[0.5, 0.7, 0.3], [1.0, 0, 0], [0, 1.0, 0]])
    for name, call in _entry_points(net, x, rows).items():
        with pytest.warns(xgrad.LabelsNotProbabilitiesWarning, match=r"^`t`'s rows are not probabilities: row 0 "
                          r"sums to 1\.5, not 1\. .*train on class indices or one-hot rows") as caught:
            call()
        assert caught[0].filename == __file__, name  # the warning points at the caller's line
    with pytest.warns(xgrad.LabelsNotProbabilitiesWarning):
        loss = float(net.loss(x, rows))
    log_p = np.log(np.asarray(net.predict(x)))  # predict gives the softmax probabilities
    assert loss == pytest.approx(float(-np.sum(rows * log_p) / 3), rel=1e-12)  # the rows as they are
    assert issubclass(xgrad.LabelsNotProbabilitiesWarning, UserWarning)
    with pytest.raises(ValueError, match="must sum to 1"):  # the public function itself stays strict
        xgrad.cross_entropy_error(net.predict(x), rows)


def test_the_books_dummy_labels_give_the_gradients_shapes():
    net = TwoLayerNet(784, 100, 10)
    x = np.random.default_rng(0).random((100, 784))
    t = np.random.default_rng(1).random((100, 10))
    with pytest.warns(xgrad.LabelsNotProbabilitiesWarning):
        grads = net.gradient(x, t)
    assert {k: v.shape for k, v in grads.items()} == {"W1": (784, 100), "b1": (100,), "W2": (100, 10), "b2": (10,)}


def test_integer_one_hot_rows_and_soft_labels_are_accepted(backend):
    net, x = _small(backend)
    labels = np.array([2, 0, 1])
    by_index = float(net.loss(x, backend.asarray(labels)))
    book = backend.asarray(np.eye(3, dtype=np.int64)[labels])  # the book's integer one-hot rows
    assert float(net.loss(x, book)) == pytest.approx(by_index, rel=1e-14)
    assert net.accuracy(x, book) == net.accuracy(x, backend.asarray(labels))
    smooth = 0.9 * np.eye(3)[labels] + 0.1 / 3  # label smoothing: rows sum to 1
    scores = np.asarray(xgrad._infra.host.to_numpy(net.scores(x)))
    log_p = scores - scores.max(axis=1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(axis=1, keepdims=True))
    assert float(net.loss(x, backend.asarray(smooth))) == pytest.approx(-(smooth * log_p).sum() / 3, rel=1e-12)


def test_label_count_must_match_x():
    net, x = _small()
    with pytest.raises(ValueError, match=r"must have shape \(3,\) .* or \(3, 3\) .*got \(2,\)"):
        net.accuracy(x, np.array([0, 1]))
    with pytest.raises(ValueError, match=r"got \(4,\)"):
        net.accuracy(x, np.array([0, 1, 2, 0]))


def test_empty_batches_and_non_finite_inputs_are_refused():
    net, x = _small()
    empty = np.zeros((0, 8))
    for call in _entry_points(net, empty, np.zeros(0, dtype=np.int64)).values():
        with pytest.raises(ValueError, match=r"`x` holds no samples \(shape \(0, 8\)\)"):
            call()
    for bad in (np.nan, np.inf, -np.inf):
        x_bad = x.copy()
        x_bad[1, 2] = bad
        for call in _entry_points(net, x_bad, np.array([0, 1, 2])).values():
            with pytest.raises(ValueError, match="`x` holds NaN or infinite values"):
                call()
        with pytest.raises(ValueError, match="`x` holds NaN or infinite values"):
            net.predict(x_bad)
    assert net.predict(empty).shape == (0, 3)  # no samples, no probabilities: the right answer


@pytest.mark.parametrize("h", [0.0, -1e-4, math.nan, math.inf])
def test_bad_steps_are_refused(h):
    net, x = _small()
    t = np.array([0, 1, 2])
    for call in (lambda: gradient_check(net, x, t, h=h), lambda: net.numerical_gradient(x, t, h=h),
                 lambda: directional_check(net, x, t, h=h)):
        with pytest.raises(ValueError, match=r"`h` must be positive and finite"):
            call()
    with pytest.raises(TypeError, match="`h` must be a real number"):
        gradient_check(net, x, t, h="1e-4")


def test_non_finite_gradients_fail_the_checks(monkeypatch):
    net, x = _small()
    t = np.array([0, 1, 2])
    right = net.gradient
    monkeypatch.setattr(net, "gradient", lambda x, t: {**right(x, t), "W2": right(x, t)["W2"] * np.nan})
    check = gradient_check(net, x, t)
    assert not check.passed and not check.passed_by_param["W2"] and check.passed_by_param["W1"]
    assert math.isnan(check.max_error["W2"]) and "FAIL" in str(check)
    report = directional_check(net, x, t)
    assert not report.passed and math.isnan(report["rel_error"])


def test_nan_parameters_never_pass_the_gradient_check():
    net, x = _small()
    net.params = {**net.params, "b1": np.full(5, np.nan)}
    with pytest.raises(ValueError, match=r"net.params\['b1'\]` must be finite"):
        gradient_check(net, x, np.array([0, 1, 2]))


def test_the_numerical_gradient_looks_at_each_parameter_once(monkeypatch):
    # every finiteness check ends in first_non_finite; the parameters were
    # looked at three times a call (by the network, the numerical gradient and
    # the steps), now once: where their steps are made
    import xgrad._numerics.steps as steps

    looked = []
    real = steps.first_non_finite
    monkeypatch.setattr(steps, "first_non_finite", lambda xp, a: looked.append(tuple(a.shape)) or real(xp, a))
    net, x = _small()
    net.numerical_gradient(x, np.array([0, 1, 2]))
    assert sorted(looked) == sorted(tuple(v.shape) for v in net.params.values())


@pytest.mark.parametrize("how", ["assigned", "with_params", "in place"])
def test_a_non_finite_parameter_is_named_however_it_came_in(how):
    net, x = _small()
    bad = np.array(net.params["W2"], copy=True)
    bad[1, 2] = np.inf
    if how == "assigned":
        net.params = {**net.params, "W2": bad}
    elif how == "with_params":
        net = net.with_params({**net.params, "W2": bad})
    else:  # as the book's loop changes them
        net.params["W2"][1, 2] = np.inf
    with pytest.raises(ValueError, match=r"`net.params\['W2'\]` must be finite; got inf at index \(1, 2\)"):
        net.numerical_gradient(x, np.array([0, 1, 2]))


# --- construction and state ---------------------------------------------------------------

@pytest.mark.parametrize(("seed", "error", "match"), [
    (-1, ValueError, r"`seed` must be a non-negative integer or None; got -1"),
    (1.5, TypeError, r"`seed` must be a non-negative integer or None; got float"),
    ("0", TypeError, r"`seed` must be .*; got str"),
    (True, TypeError, r"`seed` must be .*; got bool"),
    ([1, 2], TypeError, r"`seed` must be .*; got list"),
])
def test_bad_seeds(seed, error, match):
    with pytest.raises(error, match=match):
        TwoLayerNet(4, 3, 2, seed=seed)


def test_a_network_too_large_for_memory_is_refused_before_allocating():
    with pytest.raises(ValueError, match=r"a 784-1000000000-10 network has 795,000,000,010 parameters; "
                                         r"creating it needs about 11\.6 TiB .*smaller `hidden_size`"):
        TwoLayerNet(784, 10**9, 10)


@pytest.mark.parametrize("dtype", ["float16", "int32", "f32", 5, np.int64])
def test_bad_dtypes_list_the_choices(dtype):
    with pytest.raises(ValueError, match=r"`dtype` must be 'float32' or 'float64'"):
        TwoLayerNet(4, 3, 2, dtype=dtype)
    with pytest.raises(ValueError, match=r"`dtype` must be 'float32' or 'float64'"):
        TwoLayerNet(4, 3, 2).astype(dtype)


def test_with_params_checks_what_it_is_given():
    net = TwoLayerNet(4, 3, 2, seed=0)
    p = net.params
    with pytest.raises(ValueError, match="exactly the keys W1, b1, W2, b2; got W1, b1, W2"):
        net.with_params({k: p[k] for k in ("W1", "b1", "W2")})
    with pytest.raises(ValueError, match=r"`params` must have shapes W1 \(input, hidden\)"):
        net.with_params({**p, "W2": np.zeros((4, 2))})
    with pytest.raises(TypeError, match="must all be float32 or all float64"):
        net.with_params({**p, "b2": p["b2"].astype(np.float32)})
    with pytest.raises(TypeError, match=r"`params\['W1'\]` must be an array of the network's library"):
        net.with_params({**p, "W1": p["W1"].tolist()})
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match=r"`params\['b1'\]` must be an array of the network's library.*torch"):
        net.with_params({**p, "b1": torch.asarray(p["b1"])})
    wider = net.with_params({"W1": np.ones((4, 6)), "b1": np.ones(6), "W2": np.ones((6, 2)), "b2": np.ones(2)})
    assert wider.sizes == (4, 6, 2) and net.sizes == (4, 3, 2)


def test_inputs_of_the_wrong_kind_name_the_argument():
    net, x = _small()
    with pytest.raises(ValueError, match=r"shape \(batch, 8\).*one sample use x\[None, :\]"):
        net.predict(x[0])
    with pytest.raises(TypeError, match="`x` must be an array of the network's library; got list"):
        net.predict(x.tolist())
    with pytest.raises(TypeError, match="`t` must be an array of the network's library; got list"):
        net.loss(x, [0, 1, 2])
    with pytest.raises(TypeError, match="`x` must hold real numbers; got dtype complex128"):
        net.loss(x.astype(complex), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="`batch_size` must be >= 1"):
        net.accuracy(x, np.array([0, 1, 2]), batch_size=0)


# --- deprecated names ----------------------------------------------------------------------

def test_network_numerical_gradient_is_deprecated_for_the_method():
    net = xgrad.TwoLayerNet(4, 3, 2, seed=0)
    x, t = np.ones((2, 4)), np.array([0, 1])
    with pytest.warns(DeprecationWarning, match=r"use net\.numerical_gradient\(x, t, h=h\)"):
        old = xgrad.network_numerical_gradient(net, x, t)
    new = net.numerical_gradient(x, t)
    for k in new:
        np.testing.assert_array_equal(old[k], new[k])


# --- NumPy's masked arrays, whose mask the network would not follow ------------------------

def test_network_refuses_masked_inputs():
    net = xgrad.TwoLayerNet(3, 4, 2, seed=0)
    x = masked_array((2, 3))
    with pytest.raises(TypeError, match="`x` is a NumPy masked array"):
        net.loss(x, np.array([0, 1]))
    with pytest.raises(TypeError, match="`t` is a NumPy masked array"):
        net.accuracy(x.filled(0.0), np.ma.array([0, 1], mask=[False, True]))


# --- property tests: bad input gives the right answer or a clear error naming the argument --

ARGS = st.one_of(st.integers(-2, 5), st.floats(allow_nan=True), st.booleans(), st.text(max_size=2), st.none(),
                 st.just(np.int64(3)), st.just([3]))


def _count(v, minimum):
    return not isinstance(v, bool | float | str | list) and v is not None and int(v) >= minimum


@NETWORK_SETTINGS
@given(ARGS, ARGS, ARGS, st.sampled_from(["float32", "float64", "float16", "int8", None, 3]))
def test_construction(hidden, output, seed, dtype):
    net = outcome(lambda: TwoLayerNet(N_IN, hidden, output, seed=seed, dtype=dtype),
                  "hidden_size", "output_size", "seed", "dtype")
    valid = (_count(hidden, 1) and _count(output, 1) and (seed is None or _count(seed, 0))
             and dtype in ("float32", "float64", None))
    assert (net is not None) == valid
    if net is not None:
        assert net.sizes == (N_IN, int(hidden), int(output))
        assert str(net.params["W1"].dtype) == (dtype or "float64")


@pytest.fixture(scope="module")
def net():
    return net_for_batches()


def _reference_loss(net, x, rows):
    p = {k: np.asarray(v, dtype=np.float64) for k, v in net.params.items()}
    z1 = 1 / (1 + np.exp(-(x @ p["W1"] + p["b1"])))
    a2 = z1 @ p["W2"] + p["b2"]
    log_p = a2 - a2.max(axis=1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(axis=1, keepdims=True))
    return -np.sum(rows * log_p) / x.shape[0]


@NETWORK_SETTINGS
@given(batches())
def test_loss_gradient_accuracy(net, batch):
    host_x, x, host_t, t = batch
    valid, rows = valid_batch(host_x, x, host_t, t)
    loss = outcome(lambda: net.loss(x, t), "x", "t")
    grads = outcome(lambda: net.gradient(x, t), "x", "t")
    numeric = outcome(lambda: net.numerical_gradient(x, t), "x", "t")
    acc = outcome(lambda: net.accuracy(x, t), "x", "t")
    if not valid:
        assert loss is None and grads is None and numeric is None and acc is None
        return
    xf = host_x.astype(np.float64)
    assert float(loss) == pytest.approx(_reference_loss(net, xf, rows), rel=1e-12)
    for k in grads:
        np.testing.assert_allclose(numeric[k], grads[k], rtol=1e-6, atol=1e-9)
    if np.any((rows == rows.max(axis=1, keepdims=True)).sum(axis=1) > 1):
        assert acc is None  # a row whose largest value is in several classes names no true class
        return
    labels = rows.argmax(axis=1)
    assert acc == pytest.approx(np.mean(np.argmax(np.asarray(net.scores(x)), axis=1) == labels))


@NETWORK_SETTINGS
@given(batches())
def test_predict(net, batch):
    host_x, x, _, _ = batch
    p = outcome(lambda: net.predict(x), "x")
    if p is None:
        return
    assert isinstance(x, np.ndarray) and host_x.ndim == 2 and host_x.shape[1] == N_IN
    assert host_x.dtype.kind in "iuf" and np.all(np.isfinite(host_x))
    assert p.shape == (host_x.shape[0], N_OUT)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-12)


def test_other_libraries_arrays_are_refused_by_a_numpy_network(net):
    jnp = pytest.importorskip("jax.numpy")
    x, t = np.ones((2, N_IN)), np.array([0, 1])
    with pytest.raises(TypeError, match="`x` must be an array of the network's library"):
        net.loss(jnp.asarray(x), t)
    with pytest.raises(TypeError, match="`t` must be an array of the network's library"):
        net.loss(x, jnp.asarray(t))
    with pytest.raises(TypeError, match=r"`params\['W1'\]` must be an array of the network's library"):
        net.with_params({**net.params, "W1": jnp.asarray(net.params["W1"])})
    assert xgrad.gradient_check(net, x, t).passed


# --- values beyond the range of the network's dtype -------------------------------------

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


# --- a namespace given as xp= -----------------------------------------------------------

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


# --- accuracy needs one true class per sample -----------------------------------------

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


def test_a_network_prints_its_sizes_activation_dtype_library_and_device(backend):
    net = TwoLayerNet(784, 50, 10, activation="relu", dtype="float32", backend=backend.name)
    from xgrad._infra.backend import LIBRARIES

    device = LIBRARIES[backend.name].device_name(net.device)
    assert repr(net) == (f"TwoLayerNet(784, 50, 10, activation='relu', dtype='float32', backend={backend.name!r}, "
                         f"device={device!r})")
    assert " at 0x" not in repr(net) and len(repr(net)) < 140


@pytest.mark.parametrize(("x", "ragged"), [([[0.0] * 8, [0.0] * 8], False), ([[0.0] * 8, [0.0] * 7], True)],
                         ids=["rectangular", "ragged"])
def test_a_nested_list_for_x_says_how_to_convert_it(x, ragged):
    net, _ = _small()
    with pytest.raises(TypeError) as info:
        net.predict(x)
    message = str(info.value)
    assert message.startswith("`x` must be an array of the network's library; got list")
    assert "xgrad.resolve_backend('numpy').asarray(x)" in message
    assert ("rows have different lengths" in message) is ragged


@pytest.mark.parametrize("bad", ["net", None, {"W1": 1}])
def test_what_is_not_a_network_is_named_as_the_network_argument(bad):
    from xgrad._net.net import check_network

    with pytest.raises(TypeError, match=r"^`net` must be a TwoLayerNet, e\.g\. TwoLayerNet\(784, 50, 10\) or "
                       rf"TwoLayerNet\.load\(path\); got {type(bad).__name__}"):
        check_network(bad)
    with pytest.raises(TypeError, match=r"^`net` must be a TwoLayerNet"):
        xgrad.gradient_check(bad, np.zeros((1, 784)), np.array([0]))
