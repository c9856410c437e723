"""Baselines for the benchmarks: the network written the way the book's
reference code writes it (NumPy, float64, np.random.choice, one class with a
dict of gradients), the same network in PyTorch eager mode, and in JAX the
way a JAX user would write it (jax.value_and_grad, lax.scan, one jit).

They live here, not in xgrad: they exist only to be timed against.
"""

from __future__ import annotations

import time

import numpy as np


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _softmax(x):
    if x.ndim == 2:
        x = x.T
        x = x - np.max(x, axis=0)
        y = np.exp(x) / np.sum(np.exp(x), axis=0)
        return y.T
    x = x - np.max(x)
    return np.exp(x) / np.sum(np.exp(x))


class ReferenceStyleNet:
    """The chapter's network as the reference code has it (backprop variant)."""

    def __init__(self, input_size, hidden_size, output_size, weight_init_std=0.01, seed=0, activation="sigmoid"):
        self.relu = activation == "relu"
        rng = np.random.default_rng(seed)
        self.params = {
            "W1": weight_init_std * rng.standard_normal((input_size, hidden_size)),
            "b1": np.zeros(hidden_size),
            "W2": weight_init_std * rng.standard_normal((hidden_size, output_size)),
            "b2": np.zeros(output_size),
        }

    def predict(self, x):
        a1 = np.dot(x, self.params["W1"]) + self.params["b1"]
        z1 = np.maximum(a1, 0) if self.relu else _sigmoid(a1)
        return _softmax(np.dot(z1, self.params["W2"]) + self.params["b2"])

    def loss(self, x, t):
        y = self.predict(x)
        if y.ndim == 1:
            t, y = t.reshape(1, t.size), y.reshape(1, y.size)
        if t.size == y.size:
            t = t.argmax(axis=1)
        return -np.sum(np.log(y[np.arange(y.shape[0]), t] + 1e-7)) / y.shape[0]

    def accuracy(self, x, t):
        y = np.argmax(self.predict(x), axis=1)
        return np.sum(y == np.argmax(t, axis=1)) / float(x.shape[0])

    def gradient(self, x, t):
        W1, W2 = self.params["W1"], self.params["W2"]
        b1, b2 = self.params["b1"], self.params["b2"]
        batch_num = x.shape[0]
        a1 = np.dot(x, W1) + b1
        z1 = np.maximum(a1, 0) if self.relu else _sigmoid(a1)
        y = _softmax(np.dot(z1, W2) + b2)
        dy = (y - t) / batch_num
        grads = {"W2": np.dot(z1.T, dy), "b2": np.sum(dy, axis=0)}
        da1 = np.dot(dy, W2.T)
        dz1 = (a1 > 0) * da1 if self.relu else (1.0 - _sigmoid(a1)) * _sigmoid(a1) * da1
        grads["W1"] = np.dot(x.T, dz1)
        grads["b1"] = np.sum(dz1, axis=0)
        return grads


def reference_loop(x_train, t_train, *, iters, batch_size=100, lr=0.1, hidden=50, seed=0, activation="sigmoid",
                   return_net=False):
    """The reference training loop (no evaluation): returns seconds (and the net)."""
    x_train = x_train.astype(np.float64)
    t_onehot = np.eye(10)[t_train]
    net = ReferenceStyleNet(x_train.shape[1], hidden, 10, seed=seed, activation=activation)
    np.random.seed(seed)
    start = time.perf_counter()
    for _ in range(iters):
        batch_mask = np.random.choice(x_train.shape[0], batch_size)
        grad = net.gradient(x_train[batch_mask], t_onehot[batch_mask])
        for key in ("W1", "b1", "W2", "b2"):
            net.params[key] -= lr * grad[key]
        net.loss(x_train[batch_mask], t_onehot[batch_mask])
    seconds = time.perf_counter() - start
    return (seconds, net) if return_net else seconds


def torch_loop(x_train, t_train, *, iters, batch_size=100, lr=0.1, hidden=50, seed=0, threads=None,
               compiled=False):
    """The same network and loop in PyTorch eager mode with autograd: seconds.

    With `compiled`, the step (forward, backward and update) runs through
    ``torch.compile``, and the result is ``(seconds, compile_seconds)``: the
    first two steps, which compile (a second shape of the step may compile
    once more), are timed as the compilation, within the seconds."""
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    x = torch.asarray(x_train.copy())
    t = torch.asarray(t_train.astype(np.int64))
    model = torch.nn.Sequential(torch.nn.Linear(x.shape[1], hidden), torch.nn.Sigmoid(),
                                torch.nn.Linear(hidden, 10))
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)

    def step(idx):
        loss = torch.nn.functional.cross_entropy(model(x[idx]), t[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    run = torch.compile(step) if compiled else step
    start = time.perf_counter()
    compile_s = 0.0
    for i in range(iters):
        idx = torch.randint(0, x.shape[0], (batch_size,), generator=gen)
        run(idx)
        if compiled and i == min(1, iters - 1):
            compile_s = time.perf_counter() - start
    seconds = time.perf_counter() - start
    return (seconds, compile_s) if compiled else seconds


def jax_loop(x_train, t_train, *, iters, batch_size=100, lr=0.1, hidden=50, seed=0, block=1000,
             with_compile=False):
    """The same network hand-written in JAX, float32: ``jax.value_and_grad`` of
    the loss, ``lax.scan`` over blocks of `block` steps, one ``jax.jit``, on
    xgrad's minibatch indices (its seed stream). Returns seconds, from the
    first index draw to the last parameters ready, the compilation included
    (as in a first run of xgrad, which compiles once per process); with
    `with_compile`, ``(seconds, compile_seconds)``, the second the part of
    the first spent compiling (ahead of time, on first use of each shape)."""
    import jax
    import jax.numpy as jnp

    from xgrad._train.plan import MINIBATCH_STREAM, PLAN_BLOCK

    assert block == PLAN_BLOCK, "the minibatch indices are drawn in xgrad's blocks"
    x = jnp.asarray(x_train, dtype=jnp.float32)
    t = jnp.asarray(t_train, dtype=jnp.int32)
    rng = np.random.default_rng(seed)
    params = {"W1": jnp.asarray(0.01 * rng.standard_normal((x.shape[1], hidden)), dtype=jnp.float32),
              "b1": jnp.zeros(hidden, dtype=jnp.float32),
              "W2": jnp.asarray(0.01 * rng.standard_normal((hidden, 10)), dtype=jnp.float32),
              "b2": jnp.zeros(10, dtype=jnp.float32)}
    run_block = jax_block(lr)
    programs, compile_s = {}, 0.0
    start = time.perf_counter()
    losses = []
    for b in range(-(-iters // block)):
        idx = np.random.default_rng([seed, MINIBATCH_STREAM, b]).integers(0, x.shape[0], size=(block, batch_size))
        idx = jnp.asarray(idx[: min(block, iters - b * block)], dtype=jnp.int32)
        if idx.shape not in programs:
            t0 = time.perf_counter()
            programs[idx.shape] = run_block.lower(params, idx, x, t).compile()
            compile_s += time.perf_counter() - t0
        params, loss = programs[idx.shape](params, idx, x, t)
        losses.append(loss)
    jax.block_until_ready((params, losses))
    seconds = time.perf_counter() - start
    return (seconds, compile_s) if with_compile else seconds


def jax_block(lr=0.1):
    """The hand-written JAX loop's block: ``run_block(params, idx_block, x, t)
    -> (params, losses)``, one ``jax.jit`` of a ``lax.scan`` of
    ``jax.value_and_grad`` steps over the rows of `idx_block`."""
    import jax
    import jax.numpy as jnp

    def loss_fn(p, xb, tb):
        z1 = jax.nn.sigmoid(xb @ p["W1"] + p["b1"])
        logp = jax.nn.log_softmax(z1 @ p["W2"] + p["b2"])
        return -jnp.mean(jnp.take_along_axis(logp, tb[:, None], axis=1))

    def step(p, idx, x, t):
        loss, g = jax.value_and_grad(loss_fn)(p, x[idx], t[idx])
        return jax.tree.map(lambda a, b: a - lr * b, p, g), loss

    @jax.jit
    def run_block(p, idx_block, x, t):  # data as arguments: built in as constants they compile for seconds
        return jax.lax.scan(lambda q, i: step(q, i, x, t), p, idx_block)

    return run_block
