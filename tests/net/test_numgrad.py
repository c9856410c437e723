"""The network's fast numerical gradient is exactly the central difference."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _helpers import assert_close, assert_on_backend
from _reference import direct_numerical_gradient

import xgrad._net.numgrad as netgrad
from xgrad import TwoLayerNet
from xgrad._net.numgrad import _series_terms


def _mnist_like(rng, n=20, d=784, density=0.19):
    """Sparse, non-negative inputs like MNIST pixels, one all-zero column kept."""
    x = (rng.random((n, d)) < density) * rng.random((n, d))
    x[:, 0] = 0.0
    return x


def _net(backend, activation, sizes=(784, 50, 10), std=0.1, seed=3):
    return TwoLayerNet(*sizes, activation=activation, weight_init_std=std, xp=backend.xp,
                       device=backend.device, seed=seed)


def _coordinates(net, rng, per_param=6):
    for name, value in net.params.items():
        for _ in range(per_param):
            yield name, tuple(int(rng.integers(0, s)) for s in value.shape)


@pytest.mark.parametrize("activation", ["sigmoid", "relu"])
@pytest.mark.parametrize("h", [None, 1e-4])
def test_each_entry_equals_the_direct_difference(backend, activation, h):
    rng = np.random.default_rng(0)
    net = _net(backend, activation)
    x = backend.asarray(_mnist_like(rng))
    t = backend.asarray(rng.integers(0, 10, 20))
    fast = net.numerical_gradient(x, t, h=h)
    for name, value in net.params.items():
        assert_on_backend(fast[name], backend, shape=value.shape, dtype=value.dtype)
    worst = 0.0
    for name, idx in _coordinates(net, rng):
        direct = float(direct_numerical_gradient(net, x, t, name, idx, h=h))
        worst = max(worst, abs(float(fast[name][idx]) - direct))
    assert worst <= 1e-10


def test_one_hot_labels_give_the_same_gradient(backend):
    rng = np.random.default_rng(1)
    net = _net(backend, "sigmoid", sizes=(30, 8, 4))
    x = backend.asarray(_mnist_like(rng, n=6, d=30))
    labels = rng.integers(0, 4, 6)
    by_index = net.numerical_gradient(x, backend.asarray(labels))
    by_row = net.numerical_gradient(x, backend.asarray(np.eye(4)[labels]))
    for k in by_index:
        assert_close(by_row[k], by_index[k], backend=backend, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("activation", ["sigmoid", "relu"])
def test_agrees_with_backprop(activation):
    rng = np.random.default_rng(2)
    net = TwoLayerNet(784, 50, 10, activation=activation, weight_init_std=0.1, seed=4)
    x, t = _mnist_like(rng, n=10), rng.integers(0, 10, 10)
    numeric, exact = net.numerical_gradient(x, t), net.gradient(x, t)
    for k in exact:
        scale = np.abs(exact[k]).max()
        np.testing.assert_allclose(numeric[k], exact[k], atol=1e-7 * scale)


def test_chunking_does_not_change_the_result(monkeypatch):
    rng = np.random.default_rng(3)
    net = TwoLayerNet(50, 7, 3, weight_init_std=0.5, seed=0)
    x, t = _mnist_like(rng, n=9, d=50, density=0.5), rng.integers(0, 3, 9)
    whole = net.numerical_gradient(x, t)
    monkeypatch.setattr(netgrad, "_CHUNK_ELEMENTS", 7 * 3 * 5)  # five pairs a chunk
    chunked = net.numerical_gradient(x, t)
    for k in whole:
        np.testing.assert_allclose(chunked[k], whole[k], rtol=0, atol=1e-15)


def test_large_steps_use_the_direct_sum_and_stay_exact():
    rng = np.random.default_rng(4)
    net = TwoLayerNet(12, 5, 3, weight_init_std=2.0, seed=1)
    x, t = rng.random((4, 12)) * 3, rng.integers(0, 3, 4)
    assert _series_terms(0.5 * 3 * float(np.abs(net.params["W2"]).max())) is None
    fast = net.numerical_gradient(x, t, h=0.5)
    for name, idx in _coordinates(net, rng, per_param=4):
        direct = float(direct_numerical_gradient(net, x, t, name, idx, h=0.5))
        assert fast[name][idx] == pytest.approx(direct, abs=1e-12)


def test_series_length_follows_the_shift():
    assert _series_terms(1e-9) <= 3
    assert _series_terms(1e-3) > _series_terms(1e-6)
    assert _series_terms(50.0) is None
    assert _series_terms(math.inf) is None


def test_float32_networks_are_differenced_in_float64():
    rng = np.random.default_rng(5)
    net32 = TwoLayerNet(784, 50, 10, dtype="float32", weight_init_std=0.1, seed=2)
    x, t = _mnist_like(rng, n=10).astype(np.float32), rng.integers(0, 10, 10)
    numeric = net32.numerical_gradient(x, t)
    assert all(v.dtype == np.float32 for v in numeric.values())
    # the reference: backprop of the same float32 weights, in float64
    net64 = net32.with_params({k: v.astype(np.float64) for k, v in net32.params.items()})
    net64.dtype = np.float64
    exact = net64.gradient(x.astype(np.float64), t)
    naive_w2 = np.empty((5,))
    for j in range(5):  # what differencing float32 losses with the book's step gives
        naive_w2[j] = float(direct_numerical_gradient(net32, x, t, "W2", (j, 0), h=1e-4))
    rel = lambda a, b: np.abs(a - b).max() / np.abs(b).max()  # noqa: E731
    assert rel(numeric["W2"], exact["W2"]) < 1e-6
    assert rel(naive_w2, exact["W2"][:5, 0]) > 1e-4  # float32 differences lose digits


def test_backend_without_float64_warns_and_keeps_float32():
    strict = pytest.importorskip("array_api_strict")
    from xgrad import resolve_backend

    b = resolve_backend("array_api_strict", device=strict.Device("no_float64"))
    net = TwoLayerNet(6, 4, 3, dtype="float32", xp=b.xp, device=b.device, seed=0, weight_init_std=1.0)
    x = b.asarray(np.random.default_rng(0).random((3, 6)), dtype=b.xp.float32)
    t = b.asarray(np.array([0, 1, 2]))
    with pytest.warns(RuntimeWarning, match="no float64"):
        g = net.numerical_gradient(x, t)
    exact = net.gradient(x, t)
    for k in g:
        assert g[k].dtype == b.xp.float32
        np.testing.assert_allclose(np.from_dlpack(g[k]), np.from_dlpack(exact[k]), atol=2e-3)


def test_caller_arrays_are_not_modified():
    rng = np.random.default_rng(6)
    net = TwoLayerNet(20, 4, 3, seed=0)
    x, t = rng.random((5, 20)), rng.integers(0, 3, 5)
    x.flags.writeable = False
    before = {k: v.copy() for k, v in net.params.items()}
    net.numerical_gradient(x, t)
    for k in before:
        np.testing.assert_array_equal(net.params[k], before[k])


@pytest.mark.parametrize("h", [0.0, -1e-3, math.nan, math.inf])
def test_bad_steps_are_refused_not_turned_into_nan(h):
    # h=0 gave NaN arrays
    net = TwoLayerNet(6, 4, 3, seed=0)
    x, t = np.random.default_rng(0).random((2, 6)), np.array([0, 2])
    with pytest.raises(ValueError, match="`h` must be positive and finite"):
        net.numerical_gradient(x, t, h=h)
    with pytest.raises(ValueError, match="`h` must be positive and finite"):
        direct_numerical_gradient(net, x, t, "W1", (0, 0), h=h)


def test_labels_are_checked_before_differencing():
    net = TwoLayerNet(6, 4, 3, seed=0)
    x = np.random.default_rng(0).random((2, 6))
    with pytest.raises(ValueError, match=r"`t` holds class index 3 at position 1"):
        net.numerical_gradient(x, np.array([0, 3]))
    with pytest.raises(ValueError, match=r"`t` holds class index 3 at position 1"):
        direct_numerical_gradient(net, x, np.array([0, 3]), "b2", (0,))


@pytest.mark.parametrize("h", [1e3, 1e10, 1e300])
def test_a_step_too_large_is_refused_not_overflowed(h):
    net = TwoLayerNet(4, 3, 2, seed=0, weight_init_std=1.0)
    x, t = np.random.default_rng(0).random((2, 4)), np.array([0, 1])
    with pytest.raises(ValueError, match=r"step this large .*smaller `h`"):
        net.numerical_gradient(x, t, h=h)


def test_an_all_zero_batch_moves_no_first_layer_weight(backend):
    net = _net(backend, "sigmoid", sizes=(30, 8, 4))
    x, t = backend.asarray(np.zeros((3, 30))), backend.asarray(np.array([0, 3, 1]))
    grads = net.numerical_gradient(x, t)
    assert_close(grads["W1"], np.zeros((30, 8)), backend=backend, rtol=0, atol=0)
    assert float(backend.xp.max(backend.xp.abs(grads["b1"]))) > 0


class _CountingNamespace:
    """NumPy's array namespace, counting the elements each transcendental function sees."""

    COUNTED = ("exp", "expm1", "log", "log1p")

    def __init__(self) -> None:
        import array_api_compat.numpy as xp

        self._xp, self.elements = xp, 0

    def __getattr__(self, name):
        f = getattr(self._xp, name)
        if name not in self.COUNTED:
            return f
        def counted(x, *args, **kwargs):
            self.elements += math.prod(x.shape)
            return f(x, *args, **kwargs)
        return counted


def test_input_weights_cost_three_transcendentals_per_sample_pixel_and_unit():
    # the W1 part dominates: it ran 4 sigmoids, 2 expm1 and 2 log1p on every
    # (sample, non-zero pixel, unit); the factors that depend only on the
    # sample are now computed once, and the two log1p are one. Padding the
    # pixels' runs to a group's width adds at most a third (4/3 * 3 = 4 < 8)
    from xgrad._net.core import activation_named

    rng = np.random.default_rng(7)
    n, (n_in, hidden, classes) = 20, (784, 50, 10)
    net = TwoLayerNet(n_in, hidden, classes, weight_init_std=0.1, seed=0)
    x, target = net.checked_inputs(_mnist_like(rng, n=n), rng.integers(0, classes, n))
    xp = _CountingNamespace()
    grads = netgrad.exact_differences(net.params, x, target, activation=activation_named("sigmoid"), h=None,
                                      xp=xp, device="cpu")
    pairs = int(np.count_nonzero(x))
    smaller_groups = 4 * n * hidden * classes + 4 * n * classes + 10 * n * hidden  # W2, b2, b1 and the forward pass
    assert xp.elements <= 4 * pairs * hidden + smaller_groups
    reference = net.numerical_gradient(x, target)
    for k in grads:
        np.testing.assert_array_equal(grads[k], reference[k])


@pytest.mark.parametrize("a", [-800.0, -40.0, -5.0, -0.3, 0.0, 2.0, 40.0, 800.0])
def test_sigmoid_changes_match_120_digit_values(backend, a):
    mpmath = pytest.importorskip("mpmath")
    from xgrad._net.core import activation_named

    mpmath.mp.dps = 120  # σ(40 + 1e-30) - σ(40) is about 1e-47: it needs the digits
    shifts = np.array([1e-30, 1e-12, 6e-6, 1e-3, 0.5, 3.0])
    def sig(v):
        return 1 / (1 + mpmath.exp(-v))
    expected = {sign: np.array([float(sig(mpmath.mpf(a) + sign * mpmath.mpf(float(d))) - sig(mpmath.mpf(a)))
                                for d in shifts]) for sign in (1, -1)}
    xp = backend.xp
    a1 = backend.asarray(np.full((1, shifts.size), a))
    moves = netgrad._HiddenMoves(xp, activation_named("sigmoid"), a1)  # no overflow, even at a = -800
    up, down = moves.pair(backend.asarray(shifts[None, :]), None)
    for got, sign in ((up, 1), (down, -1)):
        assert_close(got[0, :], expected[sign], backend=backend, rtol=4e-15, atol=1e-320)


def test_pixel_groups_cover_each_used_pixel_once_within_the_chunk(monkeypatch):
    monkeypatch.setattr(netgrad, "_CHUNK_ELEMENTS", 10)
    assert netgrad._pixel_groups([5, 5, 4, 1, 0, 0], 1) == [(0, 2, 5), (2, 3, 4), (3, 4, 1)]
    # 3 is 3/4 of 4: same group; 2 is less than 3/4 of 3: a new group
    assert netgrad._pixel_groups([4, 3, 3, 2], 1) == [(0, 2, 4), (2, 3, 3), (3, 4, 2)]
    assert netgrad._pixel_groups([30, 2], 1) == [(0, 1, 30), (1, 2, 2)]  # one pixel over the chunk: alone
    assert netgrad._pixel_groups([0, 0], 1) == []
