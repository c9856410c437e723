"""directional_check: no false alarm without float64, known-wrong gradients fail.

The three (parameter dtype, difference dtype) pairs: NumPy float64, NumPy
float32 (differenced in float64) and array-api-strict's ``no_float64`` device
(differenced in float32, as JAX without x64).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from _helpers import run_without_x64

import xgrad
from xgrad import TwoLayerNet, directional_check

strict = pytest.importorskip("array_api_strict")


@pytest.fixture(scope="module")
def mnist():
    (x, t), _ = xgrad.load_mnist()
    return x, t


def _backend(pair):
    if pair == "float32/float32":
        return xgrad.resolve_backend("array_api_strict", device=strict.Device("no_float64"))
    return xgrad.resolve_backend("numpy")


def _case(mnist, pair, activation, seed, n, start=0):
    """The 784-50-10 network on `n` MNIST images (picked by `seed` unless `start`)."""
    b = _backend(pair)
    images, labels = mnist
    idx = (np.random.default_rng(seed).choice(len(images), n, replace=False) if start is None
           else np.arange(start, start + n))
    net = TwoLayerNet(784, 50, 10, activation=activation, dtype=pair.split("/")[0], seed=seed, xp=b.xp,
                      device=b.device)
    return net, b.asarray(images[idx], dtype=net.dtype), b.asarray(labels[idx])


PAIRS = ["float64/float64", "float32/float64", "float32/float32"]


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_correct_gradient_passes_without_float64(mnist, activation, seed):
    # ReLU, seed 1, 100 images, direction 2 reached a relative error of 0.26
    # (sigmoid 0.018) along a random direction, against a tolerance of 1e-2
    net, x, t = _case(mnist, "float32/float32", activation, seed, 100, start=None)
    for direction in range(3):
        check = directional_check(net, x, t, seed=direction)
        assert check.conclusive and check.passed, check
        assert check.rel_error < check.tolerance / 5  # the tolerance keeps its margin here


def test_a_correct_gradient_passes_on_jax_without_x64():
    pytest.importorskip("jax")
    script = (
        "import numpy as np, xgrad\n"
        "b = xgrad.resolve_backend('jax')\n"
        "(X, T), _ = xgrad.load_mnist()\n"
        "for act in ('relu', 'sigmoid'):\n"
        "    idx = np.random.default_rng(1).choice(len(X), 100, replace=False)\n"
        "    net = xgrad.TwoLayerNet(784, 50, 10, activation=act, dtype='float32', seed=1, xp=b.xp)\n"
        "    for d in range(3):\n"
        "        c = xgrad.directional_check(net, b.asarray(X[idx]), b.asarray(T[idx]), seed=d)\n"
        "        assert c.tolerance == xgrad._net.directional.DIRECTIONAL_TOLERANCE[('float32', 'float32')], c\n"
        "        assert c.passed and c.conclusive, c\n"
    )
    done = run_without_x64(script)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("pair", PAIRS)
@pytest.mark.parametrize("h", [None, 1e-4])
def test_a_correct_gradient_passes_on_every_pair(mnist, pair, h):
    for activation in ("relu", "sigmoid"):
        net, x, t = _case(mnist, pair, activation, 0, 10)
        check = directional_check(net, x, t, h=h)
        assert check.passed and check.conclusive, check


def _wrong(layer, how, other):
    """A gradient with one layer wrong: flipped, doubled, zeroed, or that of
    other samples; "all" scales every layer."""
    def wrong(g):
        if layer == "all":
            return {k: how * v for k, v in g.items()}
        if how == "other":
            return {**g, layer: other[layer]}
        return {**g, layer: how * g[layer]}
    return wrong


# each moves the slope along backprop's own direction by far more than the
# float32 tolerance (5e-2) for these networks
CAUGHT_EVERYWHERE = [
    ("sigmoid", "W2", -1.0), ("sigmoid", "W2", 2.0), ("sigmoid", "W2", "other"),
    ("relu", "W1", -1.0), ("relu", "W1", 2.0), ("relu", "W1", "other"), ("relu", "W2", -1.0),
    ("relu", "b2", -1.0), ("relu", "all", 2.0), ("sigmoid", "all", 0.5),
]


@pytest.mark.parametrize("pair", PAIRS)
@pytest.mark.parametrize(("activation", "layer", "how"), CAUGHT_EVERYWHERE)
def test_a_wrong_layer_fails_on_every_pair(mnist, monkeypatch, pair, activation, layer, how):
    net, x, t = _case(mnist, pair, activation, 0, 10)
    other = net.gradient(*_case(mnist, pair, activation, 0, 10, start=10)[1:])
    right = net.gradient
    monkeypatch.setattr(net, "gradient", lambda x, t: _wrong(layer, how, other)(right(x, t)))
    for direction in range(3):
        check = directional_check(net, x, t, seed=direction)
        assert check.conclusive and not check.passed, check


@pytest.mark.parametrize("pair", ["float64/float64", "float32/float64"])
@pytest.mark.parametrize(("activation", "layer"), [("sigmoid", "W2"), ("relu", "W1"), ("relu", "W2"),
                                                    ("sigmoid", "b2"), ("relu", "b2")])
def test_a_zeroed_layer_fails_where_the_loss_is_differenced_in_float64(mnist, monkeypatch, pair, activation,
                                                                      layer):
    # A zeroed layer shows only in the random part of the direction, about
    # |g_layer| / sqrt(size of the layer) against a slope of about |g|:
    # beyond the float32 tolerance unless that layer dominates the gradient.
    net, x, t = _case(mnist, pair, activation, 0, 10)
    right = net.gradient
    monkeypatch.setattr(net, "gradient", lambda x, t: {**right(x, t), layer: 0 * right(x, t)[layer]})
    for direction in range(3):
        check = directional_check(net, x, t, seed=direction)
        assert check.conclusive and not check.passed, check


@pytest.mark.parametrize(("pair", "h"), [("float64/float64", 1e-12), ("float32/float32", 1e-6)])
def test_a_step_lost_in_rounding_cannot_tell(mnist, pair, h):
    net, x, t = _case(mnist, pair, "sigmoid", 0, 10)
    with pytest.warns(RuntimeWarning, match=r"directional_check cannot tell: the rounding of the loss .* "
                                            r"pass a larger `h`, use float64, or use gradient_check"):
        check = directional_check(net, x, t, h=h)
    assert not check.conclusive and not check.passed
    assert check["rounding"] > 0.5 * check.tolerance * (abs(check.numerical) + abs(check.backprop))


def test_the_rounding_bound_is_that_of_the_two_losses(mnist):
    net, x, t = _case(mnist, "float32/float32", "sigmoid", 0, 10)
    check = directional_check(net, x, t, h=0.01)
    loss = float(net.loss(x, t))
    assert check.rounding == pytest.approx(2.0**-23 * 2 * loss / (2 * 0.01), rel=1e-3)
    assert check.h == 0.01


def test_the_direction_follows_the_gradient():
    # the slope along u ∝ g/|g| + r is about |g|/sqrt(2), not |g|/sqrt(N)
    net = TwoLayerNet(784, 50, 10, seed=0)
    x = np.random.default_rng(0).random((5, 784))
    t = np.array([0, 1, 2, 3, 4])
    g = net.gradient(x, t)
    norm = math.sqrt(sum(float(np.sum(v * v)) for v in g.values()))
    check = directional_check(net, x, t)
    assert norm / 2 < check.backprop <= norm


def test_a_wrong_zero_gradient_is_seen_along_the_random_direction(monkeypatch):
    net = TwoLayerNet(6, 4, 3, seed=0, weight_init_std=1.0)
    x, t = np.random.default_rng(0).random((3, 6)), np.array([0, 1, 2])
    right = net.gradient
    monkeypatch.setattr(net, "gradient", lambda x, t: {k: 0 * v for k, v in right(x, t).items()})
    check = directional_check(net, x, t)  # the random part alone
    assert check.backprop == 0.0 and check.conclusive and not check.passed


# --- on every backend, and the deprecated `eps` -----------------------------------------

@pytest.fixture(scope="module")
def mnist3():
    (x, t), _ = xgrad.load_mnist()
    return x[:3].astype(np.float64), t[:3]


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


def test_directional_check_without_float64_reports_instead_of_warning():
    strict = pytest.importorskip("array_api_strict")
    from xgrad import resolve_backend

    b = resolve_backend("array_api_strict", device=strict.Device("no_float64"))
    net = TwoLayerNet(8, 6, 3, dtype="float32", xp=b.xp, device=b.device, seed=0, weight_init_std=0.5)
    x = b.asarray(np.random.default_rng(0).random((5, 8)), dtype=b.xp.float32)
    result = directional_check(net, x, b.asarray(np.array([0, 1, 2, 1, 0])))  # warnings are errors here
    assert result["rel_error"] < 1e-3


def test_directional_check_eps_is_deprecated_for_h():
    net = xgrad.TwoLayerNet(10, 5, 3, seed=0, weight_init_std=1.0)
    x, t = np.random.default_rng(1).random((4, 10)), np.array([0, 1, 2, 1])
    with pytest.warns(DeprecationWarning, match="`eps` is deprecated; pass the step as `h`"):
        old = xgrad.directional_check(net, x, t, eps=1e-5)
    assert old["numerical"] == xgrad.directional_check(net, x, t, h=1e-5)["numerical"]
