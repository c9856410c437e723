"""Numerical gradients: the network's fast path against a direct loop, the
generic vectorised mode's memory, and (with --train) a full training run.

    python scripts/bench_numgrad.py                  # one gradient, ~1 minute
    python scripts/bench_numgrad.py --train          # + 10,000 iterations of
                                                     #   numerical-gradient SGD
    python scripts/bench_numgrad.py --backend cupy   # the same on a GPU

The direct loop (copy, perturb one parameter, two full forward passes) is
timed on a random sample of coordinates and scaled to all 39,760; both are
measured in the same run, medians over rounds.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
from _environment import environment

import xgrad
from xgrad._netgrad import direct_numerical_gradient


def _sync(backend):
    if backend.name == "cupy":
        import cupy

        cupy.cuda.Device().synchronize()


def one_gradient(args, b):
    (x_train, t_train), _ = xgrad.load_mnist()
    rng = np.random.default_rng(0)
    idx = rng.choice(x_train.shape[0], args.batch, replace=False)
    x, t = b.asarray(x_train[idx]), b.asarray(t_train[idx])
    net = xgrad.TwoLayerNet(784, 50, 10, xp=b.xp, device=b.device, seed=0)
    n_params = sum(math.prod(v.shape) for v in net.params.values())
    fast = []
    with xgrad.thread_limits(1 if b.name == "numpy" else None, backend=b):
        for _ in range(args.rounds):
            _sync(b)
            t0 = time.perf_counter()
            net.numerical_gradient(x, t)
            _sync(b)
            fast.append(time.perf_counter() - t0)
        coords = [(k, tuple(int(rng.integers(0, s)) for s in net.params[k].shape))
                  for k in rng.choice(list(net.params), size=args.coords,
                                      p=[math.prod(v.shape) / n_params for v in net.params.values()])]
        direct = []
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            for k, i in coords:
                float(direct_numerical_gradient(net, x, t, k, i))
            direct.append((time.perf_counter() - t0) / len(coords) * n_params)
    med_fast, med_direct = statistics.median(fast), statistics.median(direct)
    print(f"\nOne numerical gradient of the 784-50-10 network ({n_params} parameters, batch {args.batch}, "
          f"float64) on {b.describe()}, median of {args.rounds}:")
    print(f"  direct loop (scaled from {args.coords} coordinates): {med_direct:8.2f} s")
    print(f"  xgrad TwoLayerNet.numerical_gradient:            {med_fast:8.4f} s")
    print(f"  speed-up:                                        {med_direct / med_fast:8.0f}x")
    return {"backend": b.describe(), "params": n_params, "batch": args.batch, "direct_s": med_direct,
            "fast_s": med_fast, "speedup": med_direct / med_fast, "fast_times_s": fast,
            "direct_times_s": direct}


def generic_memory(args):
    """The generic vectorised mode on a user function: time and peak memory by chunk."""
    n = 4000
    rng = np.random.default_rng(1)
    a = rng.standard_normal((n,)) / n

    def f(points):  # a stack (k, n) -> k values
        return np.sum(np.log1p(np.exp(points * a)), axis=-1)

    x = rng.standard_normal(n)
    rows = []
    print(f"\nGeneric numerical_gradient(vectorized=True) of a function of {n} variables:")
    print(f"  {'chunk_size':>10} {'seconds':>8} {'peak MB':>8}")
    for chunk in (16, 128, 1024):
        tracemalloc.start()
        t0 = time.perf_counter()
        xgrad.numerical_gradient(f, x, vectorized=True, chunk_size=chunk)
        sec = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        rows.append({"chunk_size": chunk, "seconds": sec, "peak_mb": peak})
        print(f"  {chunk:>10} {sec:8.3f} {peak:8.1f}")
    return rows


def full_training(args, b):
    out = {}
    print(f"\nTraining {args.iters} iterations (batch 100, lr 0.1, sigmoid, seed 0) on {b.describe()}:")
    for grad in ("backprop", "numerical"):
        ckpt = args.checkpoint_dir / f"numgrad-{grad}.npz" if grad == "numerical" else None
        r = xgrad.train(b, iters=args.iters, gradient=grad, seed=0, progress=args.progress,
                        checkpoint=ckpt, resume=ckpt is not None)
        out[grad] = {"minutes": r.timings["total_s"] / 60, "train_acc": r.train_acc[-1],
                     "test_acc": r.test_acc[-1], "iters_per_s": r.timings["iters_per_s"],
                     "final_loss": float(np.mean(r.loss[-100:]))}
        print(f"  {grad:9}: {r.timings['total_s'] / 60:6.1f} min (this process), train accuracy "
              f"{r.train_acc[-1]:.4f}, test accuracy {r.test_acc[-1]:.4f}")
    gap = abs(out["numerical"]["test_acc"] - out["backprop"]["test_acc"]) * 100
    print(f"  test accuracy gap: {gap:.2f} points")
    out["gap_points"] = gap
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", default="numpy")
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--coords", type=int, default=200, help="coordinates the direct loop is timed on")
    ap.add_argument("--train", action="store_true", help="also run the full numerical-gradient training")
    ap.add_argument("--iters", type=int, default=10_000)
    ap.add_argument("--progress", action="store_true")
    ap.add_argument("--checkpoint-dir", type=Path, default=Path("."))
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    b = xgrad.resolve_backend(args.backend)
    report = {"one_gradient": one_gradient(args, b)}
    if b.name == "numpy":
        report["generic_vectorized"] = generic_memory(args)
    if args.train:
        report["training"] = full_training(args, b)
    if args.json:
        report["environment"] = environment()
        args.json.write_text(json.dumps(report, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
