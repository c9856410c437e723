"""Kernel fusion of the training step: one copy of the maths, fused on CuPy.

On every backend the step's elementwise groups can go through a fuse; the
identity fuse must give the very bits of the step as written before the
groups existed (a reference written out below). On CuPy with a CUDA device,
the fused kernels must agree with CuPy's unfused step as closely as the suite
asks CuPy to agree with NumPy.
"""

from __future__ import annotations

import numpy as np
import pytest
from _helpers import assert_close, assert_on_backend

import xgrad
from xgrad import BackendUnavailableError, resolve_backend
from xgrad._infra.host import to_numpy
from xgrad._net.core import (
    ACTIVATIONS,
    activation_backward,
    bias_activation,
    cross_entropy_sum,
    loss_and_gradient,
    output_error,
    sgd_update,
    shifted_exp,
)
from xgrad._net.functions import relu, sigmoid
from xgrad._net.fused import CupyFusion, fused_ops, no_fusion

NEEDS_GPU = "CuPy with a CUDA device is needed for fused kernels"
GROUPS = {bias_activation, activation_backward, shifted_exp, cross_entropy_sum, output_error}


def _reference(params, x, target, *, activation, xp, scale, rows_sum_to_one):
    """The step exactly as the core wrote it before it had groups."""
    a1 = x @ params["W1"] + params["b1"]
    z1 = sigmoid(a1, xp=xp) if activation == "sigmoid" else relu(a1, xp=xp)
    scores = z1 @ params["W2"] + params["b2"]
    shifted = scores - xp.max(scores, axis=1, keepdims=True)
    e = xp.exp(shifted)
    total = xp.sum(e, axis=1, keepdims=True)
    n = x.shape[0]
    loss = -xp.sum(target * (shifted - xp.log(total))) / n
    y = e / total if rows_sum_to_one else e / total * xp.sum(target, axis=1, keepdims=True)
    dy = (y - target) * (scale / n)
    dz = dy @ xp.matrix_transpose(params["W2"])
    da1 = dz * (z1 * (1 - z1)) if activation == "sigmoid" else xp.where(a1 > 0, dz, xp.zeros_like(dz))
    ones = xp.ones_like(x[:, 0])
    grads = {"W1": xp.matrix_transpose(x) @ da1, "b1": ones @ da1, "W2": xp.matrix_transpose(z1) @ dy,
             "b2": ones @ dy}
    return loss, grads


def _problem(backend, dtype, *, one_hot, batch=13, sizes=(30, 7, 5), seed=0):
    """Parameters, inputs and targets (one-hot, or soft rows that do not sum to one)."""
    rng = np.random.default_rng(seed)
    d, h, k = sizes
    params = {"W1": rng.standard_normal((d, h)), "b1": rng.standard_normal(h),
              "W2": rng.standard_normal((h, k)), "b2": rng.standard_normal(k)}
    x = rng.standard_normal((batch, d))
    t = np.eye(k)[rng.integers(0, k, batch)] if one_hot else rng.uniform(0.0, 0.7, (batch, k))
    to = lambda a: backend.asarray(a, dtype=getattr(backend.xp, dtype))  # noqa: E731
    return {name: to(v) for name, v in params.items()}, to(x), to(t)


def _assert_same_bits(got, want, backend):
    assert_on_backend(got, backend, dtype=want.dtype)
    np.testing.assert_array_equal(to_numpy(got), to_numpy(want))


@pytest.mark.parametrize("activation", ["sigmoid", "relu"])
@pytest.mark.parametrize("rows_sum_to_one", [True, False])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_identity_fuse_gives_the_bits_of_the_step_as_written(backend, activation, rows_sum_to_one, dtype):
    params, x, t = _problem(backend, dtype, one_hot=rows_sum_to_one)
    kw = {"activation": ACTIVATIONS[activation], "xp": backend.xp, "scale": 0.1, "rows_sum_to_one": rows_sum_to_one}
    want_loss, want = _reference(params, x, t, **{**kw, "activation": activation})
    for fuse in (None, no_fusion):
        loss, grads = loss_and_gradient(params, x, t, fuse=fuse, **kw)
        _assert_same_bits(loss, want_loss, backend)
        assert set(grads) == set(want)
        for k in want:
            _assert_same_bits(grads[k], want[k], backend)


class _CountingFuse:
    """A fuse that runs each group as written and records what went through it."""

    def __init__(self):
        self.wrapped, self.ran = [], []

    def __call__(self, group, /, **static):
        assert not any(isinstance(v, (int, float)) for v in static.values()), "numbers must not be static"
        self.wrapped.append(group)

        def run(*args):
            self.ran.append(group)
            return group(*args, **static)

        return run


@pytest.mark.parametrize(("activation", "fused"), [
    ("sigmoid", GROUPS),
    ("relu", GROUPS - {bias_activation, activation_backward}),  # relu creates zeros: not traceable
])
def test_the_step_runs_its_elementwise_groups_through_the_fuse(activation, fused):
    backend = resolve_backend("numpy")
    params, x, t = _problem(backend, "float64", one_hot=True)
    fuse = _CountingFuse()
    kw = {"activation": ACTIVATIONS[activation], "xp": backend.xp, "scale": 0.5, "rows_sum_to_one": True}
    loss, grads = loss_and_gradient(params, x, t, fuse=fuse, **kw)
    assert sorted(g.__name__ for g in fuse.ran) == sorted(g.__name__ for g in fused)
    assert fuse.ran == fuse.wrapped  # each wrapped group ran once, right away
    want_loss, want = loss_and_gradient(params, x, t, **kw)
    assert loss == want_loss and all(np.array_equal(grads[k], want[k]) for k in want)


def _stand_in_cupy_fuse(made):
    """``cupy.fuse(kernel_name=...)`` without CuPy: records the names, fuses nothing."""

    def fuse(*, kernel_name):
        made.append(kernel_name)
        return lambda f: f

    return fuse


def test_cupy_fusion_makes_each_kernel_once_and_keeps_the_results_bit_for_bit():
    backend = resolve_backend("numpy")
    made = []
    fusion = CupyFusion(_stand_in_cupy_fuse(made))
    params, x, t = _problem(backend, "float32", one_hot=True)
    kw = {"activation": ACTIVATIONS["sigmoid"], "xp": backend.xp, "scale": 0.1, "rows_sum_to_one": True}
    want_loss, want = loss_and_gradient(params, x, t, **kw)
    for _ in range(3):
        loss, grads = loss_and_gradient(params, x, t, fuse=fusion, **kw)
        _assert_same_bits(loss, want_loss, backend)
        for k in want:
            _assert_same_bits(grads[k], want[k], backend)
    assert sorted(made) == ["xgrad_activation_backward_sigmoid", "xgrad_bias_activation_sigmoid",
                            "xgrad_cross_entropy_sum", "xgrad_output_error", "xgrad_shifted_exp"]
    assert len(fusion) == 5
    loss_and_gradient(params, x, t, fuse=fusion, **{**kw, "rows_sum_to_one": False})
    assert len(fusion) == 5  # a None in place of an array is an argument, not a new kernel


def test_cupy_fusion_keeps_one_kernel_per_static_options():
    made = []
    fusion = CupyFusion(_stand_in_cupy_fuse(made))
    first = fusion(bias_activation, activation=ACTIVATIONS["sigmoid"], xp=np)
    assert fusion(bias_activation, xp=np, activation=ACTIVATIONS["sigmoid"]) is first
    assert fusion(bias_activation, activation=ACTIVATIONS["relu"], xp=np) is not first
    assert made == ["xgrad_bias_activation_sigmoid", "xgrad_bias_activation_relu"]
    a1, z1 = first(np.array([[-1.0, 2.0]]), np.array([1.0, -2.0]))
    assert a1.tolist() == [[0.0, 0.0]] and z1.tolist() == [[0.5, 0.5]]


def test_no_fusion_where_there_is_no_cupy(backend):
    if backend.name == "cupy":
        pytest.skip("fused_ops applies on CuPy")
    assert fused_ops(backend.xp) is None


def test_sgd_update_leaves_the_parameters_it_is_given():
    params = {"W": np.array([1.0, 2.0]), "b": np.array([0.5])}
    steps = {"W": np.array([0.25, -1.0]), "b": np.array([0.5])}
    new = sgd_update(params, steps)
    assert new["W"].tolist() == [0.75, 3.0] and new["b"].tolist() == [0.0]
    assert params["W"].tolist() == [1.0, 2.0] and params["b"].tolist() == [0.5]


# ---- the step loop, fused and not: CPU stand-ins here, CuPy kernels on a GPU ----

@pytest.fixture(scope="module")
def small():
    """2,000 training digits of the real MNIST, one-hot targets."""
    (x, t), _ = xgrad.load_mnist()
    return x[:2000], np.eye(10)[t[:2000]]


def _trajectory(backend, data, fuse, *, iters=200, batch=100, lr=0.1, seed=3):
    """`iters` SGD steps of the 784-50-10 sigmoid network in float64, from the
    same start and minibatches whatever the backend: the losses and the last
    parameters, on the host."""
    xp, dtype = backend.xp, backend.xp.float64
    net = xgrad.TwoLayerNet(784, 50, 10, seed=seed, dtype="float64", xp=xp, device=backend.device)
    params = net.params
    x, t = backend.asarray(data[0], dtype=dtype), backend.asarray(data[1], dtype=dtype)
    idx = np.random.default_rng(seed).integers(0, x.shape[0], (iters, batch))
    losses = []
    for i in range(iters):
        rows = backend.asarray(idx[i])
        xb, tb = xp.take(x, rows, axis=0), xp.take(t, rows, axis=0)
        loss, steps = loss_and_gradient(params, xb, tb, activation=ACTIVATIONS["sigmoid"], xp=xp, scale=lr,
                                        rows_sum_to_one=True, fuse=fuse)
        params = sgd_update(params, steps)
        losses.append(loss)
    return to_numpy(xp.stack(losses)), {k: to_numpy(v) for k, v in params.items()}


def test_identity_fused_trajectory_is_the_trajectory(small):
    backend = resolve_backend("numpy")
    want_loss, want = _trajectory(backend, small, None)
    got_loss, got = _trajectory(backend, small, no_fusion)
    np.testing.assert_array_equal(got_loss, want_loss)
    assert want_loss[-1] < want_loss[0]
    for k in want:
        np.testing.assert_array_equal(got[k], want[k])


@pytest.fixture(scope="module")
def cupy_backend():
    try:
        return resolve_backend("cupy")
    except BackendUnavailableError:
        pytest.skip(NEEDS_GPU)


def test_fused_ops_on_cupy_is_made_once(cupy_backend):
    fuse = fused_ops(cupy_backend.xp)
    assert isinstance(fuse, CupyFusion) and fused_ops(cupy_backend.xp) is fuse


@pytest.mark.parametrize("rows_sum_to_one", [True, False])
@pytest.mark.parametrize(("dtype", "rtol", "atol"), [("float64", 1e-9, 1e-12), ("float32", 1e-5, 1e-6)])
def test_fused_cupy_step_agrees_with_the_unfused_one(cupy_backend, rows_sum_to_one, dtype, rtol, atol):
    # float64: the tolerances the suite asks of CuPy against NumPy (test_train.py)
    params, x, t = _problem(cupy_backend, dtype, one_hot=rows_sum_to_one, batch=100, sizes=(784, 50, 10))
    kw = {"activation": ACTIVATIONS["sigmoid"], "xp": cupy_backend.xp, "scale": 0.1,
          "rows_sum_to_one": rows_sum_to_one}
    want_loss, want = loss_and_gradient(params, x, t, **kw)
    loss, grads = loss_and_gradient(params, x, t, fuse=fused_ops(cupy_backend.xp), **kw)
    dt = getattr(cupy_backend.xp, dtype)
    assert_close(loss, want_loss, backend=cupy_backend, rtol=1e-10 if dtype == "float64" else rtol, dtype=dt)
    for k in want:
        assert_close(grads[k], want[k], backend=cupy_backend, rtol=rtol, atol=atol, dtype=dt)


def test_fused_cupy_trajectory_follows_the_unfused_one(cupy_backend, small):
    want_loss, want = _trajectory(cupy_backend, small, None)
    got_loss, got = _trajectory(cupy_backend, small, fused_ops(cupy_backend.xp))
    np.testing.assert_allclose(got_loss, want_loss, rtol=1e-10)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-9, atol=1e-12)
