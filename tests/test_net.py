"""TwoLayerNet: the same network, start and gradients on every backend."""

from __future__ import annotations

import numpy as np
import pytest
from _helpers import assert_close, assert_on_backend

import xgrad
from xgrad import TwoLayerNet, directional_check, gradient_check


@pytest.fixture(scope="module")
def mnist3():
    (x, t), _ = xgrad.load_mnist()
    return x[:3].astype(np.float64), t[:3]


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


def test_book_gradient_check_has_no_floor(mnist3):
    """Book §5.7.3: ReLU net, three MNIST samples, mean |numerical - backprop|
    of 1e-13..1e-10 per parameter (the reference code's 1e-7 inside log gives
    a floor near 1e-7 instead)."""
    x, t = mnist3
    net = TwoLayerNet(784, 50, 10, activation="relu", seed=0)
    check = gradient_check(net, x, t, h=1e-4)  # the book's step
    assert check.passed
    for k, v in check.mean_abs_diff.items():
        assert v < 1e-9, (k, v)
    best = gradient_check(net, x, t)  # the dtype's step does better still
    assert max(best.mean_abs_diff.values()) < 1e-11
    assert "W1" in str(check) and "pass" in str(check)


def test_gradient_check_catches_a_wrong_gradient(mnist3, monkeypatch):
    x, t = mnist3
    net = TwoLayerNet(784, 50, 10, activation="relu", seed=0)
    right = net.gradient

    def wrong(x, t):
        g = right(x, t)
        return {**g, "b1": 1.01 * g["b1"]}

    monkeypatch.setattr(net, "gradient", wrong)
    check = gradient_check(net, x, t)
    assert not check.passed and not check.passed_by_param["b1"] and check.passed_by_param["W1"]
    assert "FAIL" in str(check)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_directional_check_on_every_backend(backend, dtype, mnist3):
    x, t = mnist3
    net = TwoLayerNet(784, 50, 10, activation="relu", dtype=dtype, seed=0, xp=backend.xp,
                      device=backend.device)
    result = directional_check(net, backend.asarray(x, dtype=net.dtype), backend.asarray(t))
    assert result["rel_error"] < (1e-5 if dtype == "float32" else 1e-7)
    assert result["backprop"] == pytest.approx(result["numerical"], rel=1e-4)


def test_directional_check_catches_a_wrong_gradient(mnist3, monkeypatch):
    x, t = mnist3
    net = TwoLayerNet(784, 50, 10, seed=0)
    right = net.gradient
    monkeypatch.setattr(net, "gradient", lambda x, t: {**right(x, t), "W2": 0 * right(x, t)["W2"]})
    assert directional_check(net, x, t)["rel_error"] > 1e-3


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
    labels = np.argmax(np.from_dlpack(xgrad._host.to_host(net.scores(x))), axis=1)
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


def test_directional_check_without_float64_reports_instead_of_warning():
    strict = pytest.importorskip("array_api_strict")
    from xgrad import resolve_backend

    b = resolve_backend("array_api_strict", device=strict.Device("no_float64"))
    net = TwoLayerNet(8, 6, 3, dtype="float32", xp=b.xp, device=b.device, seed=0, weight_init_std=0.5)
    x = b.asarray(np.random.default_rng(0).random((5, 8)), dtype=b.xp.float32)
    result = directional_check(net, x, b.asarray(np.array([0, 1, 2, 1, 0])))  # warnings are errors here
    assert result["rel_error"] < 1e-3
