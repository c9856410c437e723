"""One training iteration, and each of its operations, timed per backend.

The iteration is what the eager training loop runs per step
(:meth:`xgrad._train.stepping.Stepping.step`: the minibatch's gather, then
:func:`xgrad._net.core.sgd_step`), on MNIST at the book's settings (784-50-10
sigmoid, batch 100, float32, one thread). Beside it: its two large matrix
products alone (``x @ W1`` and ``x.T @ da1``), the floor the rest of the step
is overhead above.

With --ops, each operation of the step at its shapes, as written (A) and in a
candidate form (B), timed in pairs (A, B, A, B, ...) so that a busy machine
slows both alike; the table gives medians, the ratio B/A and whether B gives
the same bits as A.

    python scripts/bench_step.py                      # NumPy, PyTorch, JAX (eager), array-api-strict
    python scripts/bench_step.py --backends numpy torch --ops
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings

import numpy as np

import xgrad
from xgrad._infra.backend import resolve_backend
from xgrad._train.config import TrainConfig, check_settings, prepare_data
from xgrad._train.run import Run


def _median_us(fn, *, number, rounds):
    """Median over `rounds` of the microseconds per call of `fn`, `number` calls a round."""
    out = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        out.append((time.perf_counter() - t0) / number * 1e6)
    return statistics.median(out)


def _paired_us(a, b, *, number, rounds):
    """Medians of `a` and `b` timed in alternating rounds."""
    ta, tb = [], []
    for _ in range(rounds):
        for fn, ts in ((a, ta), (b, tb)):
            t0 = time.perf_counter()
            for _ in range(number):
                fn()
            ts.append((time.perf_counter() - t0) / number * 1e6)
    return statistics.median(ta), statistics.median(tb)


def _sync(b):
    """A function waiting for `b`'s device (JAX dispatches asynchronously)."""
    if b.name == "jax":
        return lambda a: a.block_until_ready()
    return lambda a: a


def setup(backend, dtype="float32"):
    """``(b, run, params, plan)``: a default training run on `backend`, eager, not started."""
    s = check_settings({"backend": backend, "dtype": dtype, "compile_step": False, "progress": False})
    cfg = TrainConfig.of(s)
    b = resolve_backend(backend)
    (x_train, t_train), (x_test, t_test) = prepare_data(cfg, None, None)
    net = xgrad.TwoLayerNet(784, cfg.hidden_size, 10, activation=cfg.activation, weight_init_std=cfg.weight_init_std,
                            dtype=cfg.dtype, xp=b.xp, device=b.device, seed=cfg.seed)
    run = Run(cfg, b, net, x_train, t_train, x_test, t_test)
    plan, _ = run.plan.rows(0)
    return b, run, net.params, plan


def iteration(backend, *, number, rounds):
    """Microseconds of one eager step and of its two large products alone."""
    b, run, params, plan = setup(backend)
    xp, sync, step = b.xp, _sync(b), run.stepping.step
    state = {"params": params, "r": 0}

    def one():
        loss, state["params"] = step(state["params"], plan[state["r"], ...])
        state["r"] = (state["r"] + 1) % plan.shape[0]
        sync(loss)

    x = xp.asarray(np.random.default_rng(0).random((100, 784), dtype=np.float32), device=b.device)
    w1, da1 = params["W1"], xp.ones((100, 50), dtype=xp.float32, device=b.device)
    products = lambda: (sync(x @ w1), sync(xp.matrix_transpose(x) @ da1))  # noqa: E731
    with xgrad.thread_limits(1, backend=b.name), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for _ in range(number):  # warm up
            one()
        return _paired_us(one, products, number=number, rounds=rounds)


def candidates(xp):
    """``{name: (as written, candidate)}``: functions of the step's arrays ``d``."""
    from xgrad._net.core import ACTIVATIONS

    sig = ACTIVATIONS["sigmoid"]
    return {
        "sigmoid: 1/(1+exp(-a)) vs exp(min(a,0))/(1+exp(-|a|))": (
            lambda d: sig.apply(d["a1"], xp=xp), lambda d: _two_exp_sigmoid(d["a1"], xp)),
        "sigmoid: vs 0.5*tanh(0.5a)+0.5": (
            lambda d: sig.apply(d["a1"], xp=xp), lambda d: 0.5 * xp.tanh(0.5 * d["a1"]) + 0.5),
        "transpose: xp.matrix_transpose vs .mT": (
            lambda d: xp.matrix_transpose(d["x"]), lambda d: d["x"].mT),
        "bias sum: ones @ da1 vs xp.sum(axis=0)": (
            lambda d: d["ones"] @ d["da1"], lambda d: xp.sum(d["da1"], axis=0)),
        "sigmoid backward: dz*(z*(1-z)) vs (dz*z)*(1-z)": (
            lambda d: d["dz"] * (d["z1"] * (1 - d["z1"])), lambda d: (d["dz"] * d["z1"]) * (1 - d["z1"])),
        "loss: one-hot sum vs label gather": (
            lambda d: -xp.sum(d["t"] * (d["sh"] - xp.log(d["tot"]))),
            lambda d: -xp.sum(xp.take_along_axis(d["sh"] - xp.log(d["tot"]), d["lab"][:, None], axis=1))),
        "W1 update on a fresh g: W1 - g vs g = W1 - g in place": (
            lambda d: d["W1"] - d["g"] * 1, lambda d: _isub(d["g"] * 1, d["W1"])),
    }


def _two_exp_sigmoid(a, xp):
    """The overflow-free form with two exponentials that the sigmoid had before."""
    return xp.exp(xp.minimum(a, 0.0)) / (1 + xp.exp(-xp.abs(a)))


def _isub(g, w):
    g *= -1
    g += w
    return g


def ops(backend, *, number, rounds):
    """Rows ``(name, us as written, us candidate, same bits)`` on `backend`."""
    b = resolve_backend(backend)
    xp, dev, sync = b.xp, b.device, _sync(b)
    rng = np.random.default_rng(0)
    lab = rng.integers(0, 10, 100)
    normal = lambda scale, *shape: rng.normal(0, scale, shape).astype(np.float32)  # noqa: E731
    host = {"x": rng.random((100, 784), dtype=np.float32), "a1": normal(2, 100, 50), "s": normal(2, 100, 10),
            "da1": normal(1e-3, 100, 50), "dz": normal(1e-3, 100, 50), "z1": rng.random((100, 50), dtype=np.float32),
            "W1": normal(0.01, 784, 50), "g": normal(1e-3, 784, 50),
            "t": np.eye(10, dtype=np.float32)[lab], "lab": lab, "ones": np.ones(100, dtype=np.float32)}
    d = {k: xp.asarray(v, device=dev) for k, v in host.items()}
    d["sh"] = d["s"] - xp.max(d["s"], axis=1, keepdims=True)
    d["e"] = xp.exp(d["sh"])
    d["tot"] = xp.sum(d["e"], axis=1, keepdims=True)
    rows = []
    with xgrad.thread_limits(1, backend=b.name), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for name, (a, c) in candidates(xp).items():
            try:
                same = bool(np.array_equal(xgrad.to_numpy(a(d)), xgrad.to_numpy(c(d))))
                ta, tc = _paired_us(lambda a=a: sync(a(d)), lambda c=c: sync(c(d)), number=number, rounds=rounds)
            except (TypeError, AttributeError, NotImplementedError) as exc:  # no such form on this backend
                rows.append((name, float("nan"), float("nan"), f"n/a ({type(exc).__name__})"))
                continue
            rows.append((name, ta, tc, "yes" if same else "no"))
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backends", nargs="+", default=["numpy", "torch", "jax", "array_api_strict"])
    ap.add_argument("--number", type=int, default=200, help="calls per round (default 200)")
    ap.add_argument("--rounds", type=int, default=7, help="rounds, medians taken (default 7)")
    ap.add_argument("--ops", action="store_true", help="each operation, as written against a candidate form")
    args = ap.parse_args(argv)
    print(f"float32, one thread; load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} cores; medians of "
          f"{args.rounds} rounds of {args.number} calls, microseconds")
    for backend in args.backends:
        if args.ops:
            print(f"\n{backend}: {'as written':>10} {'candidate':>10} {'B/A':>6}  same bits")
            for name, ta, tc, same in ops(backend, number=args.number, rounds=args.rounds):
                print(f"  {name:56} {ta:8.1f} {tc:10.1f} {tc / ta:6.2f}  {same}")
            continue
        step_us, floor_us = iteration(backend, number=args.number, rounds=args.rounds)
        print(f"{backend:18} step {step_us:7.1f}   two large products {floor_us:7.1f}   "
              f"overhead {step_us - floor_us:7.1f} ({(step_us - floor_us) / step_us:.0%} of the step)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
