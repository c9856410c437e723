"""Numerical gradients: the network's fast path against the book's own loop and
a direct loop, the generic vectorised mode's memory, and (with --train) a full
training run.

    python scripts/bench_numgrad.py                  # one gradient, ~1-2 minutes
    python scripts/bench_numgrad.py --book-every 40  # quick: the book's loop on
                                                     #   every 40th entry, scaled
    python scripts/bench_numgrad.py --train          # + 10,000 iterations of
                                                     #   numerical-gradient SGD
    python scripts/bench_numgrad.py --backend cupy   # the same on a GPU

The baseline is the book's own loop (its ``numerical_gradient`` over its
network's loss: float64, h = 1e-4, one entry mutated at a time, two full
forward passes each) over all 39,760 entries in every round. The direct loop
(copy, perturb one parameter, two full forward passes) is timed on a random
sample of coordinates and scaled. All are measured in the same run, round by
round, and compared by their medians; xgrad's time in a round is the mean of
--fast-calls calls, as the book's is the mean over its entries.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
from _environment import environment, write_json
from _reference import direct_numerical_gradient
from _refloop import ReferenceStyleNet

import xgrad


def _sync(backend):
    if backend.name == "cupy":
        import cupy

        cupy.cuda.Device().synchronize()


def book_numerical_gradient(f, x, *, h=1e-4, every=1):
    """The book's loop: mutate one entry of `x`, evaluate `f` at ``x ± h``,
    restore it. With ``every > 1`` only every `every`-th entry is visited (the
    others stay zero): a quick estimate of the full loop's time."""
    grad = np.zeros_like(x)
    flat, out = x.reshape(-1), grad.reshape(-1)  # views: mutating `flat` mutates `x`
    for k in range(0, flat.size, every):
        saved = float(flat[k])
        flat[k] = saved + h
        up = f(x)
        flat[k] = saved - h
        down = f(x)
        out[k] = (up - down) / (2 * h)
        flat[k] = saved
    return grad


def book_gradient(net, x, t, *, every=1):
    """The book's ``TwoLayerNet.numerical_gradient``: one loop per parameter over its loss."""
    def loss(_):
        return net.loss(x, t)
    return {k: book_numerical_gradient(loss, net.params[k], every=every) for k in ("W1", "b1", "W2", "b2")}


def _book_net(net, b):
    """The book's network holding the same weights as `net`, in float64 on the host."""
    book = ReferenceStyleNet(*net.sizes)
    book.params = {k: xgrad.to_numpy(v).astype(np.float64) for k, v in net.params.items()}
    return book


def _timed(fn, backend):
    _sync(backend)
    t0 = time.perf_counter()
    out = fn()
    _sync(backend)
    return time.perf_counter() - t0, out


def one_gradient(args, b):
    (x_train, t_train), _ = xgrad.load_mnist()
    rng = np.random.default_rng(0)
    idx = rng.choice(x_train.shape[0], args.batch, replace=False)
    x, t = b.asarray(x_train[idx]), b.asarray(t_train[idx])
    net = xgrad.TwoLayerNet(784, 50, 10, xp=b.xp, device=b.device, seed=0)
    book = _book_net(net, b)
    x_host, t_host = x_train[idx], np.eye(10)[t_train[idx]]  # as the book passes them
    n_params = sum(math.prod(v.shape) for v in net.params.values())
    coords = [(k, tuple(int(rng.integers(0, s)) for s in net.params[k].shape))
              for k in rng.choice(list(net.params), size=args.coords,
                                  p=[math.prod(v.shape) / n_params for v in net.params.values()])]
    visited = sum(len(range(0, math.prod(v.shape), args.book_every)) for v in net.params.values())
    fast, direct, book_s = [], [], []
    with xgrad.thread_limits(1 if b.name == "numpy" else None, backend=b):
        net.numerical_gradient(x, t)  # a first call, untimed: imports and first allocations
        for _ in range(args.rounds):  # round by round, so that a change of load hits all three
            sec, _ = _timed(lambda: [net.numerical_gradient(x, t) for _ in range(args.fast_calls)], b)
            fast.append(sec / args.fast_calls)  # one call is too short to time alone on a shared machine
            sec, _ = _timed(lambda: [float(direct_numerical_gradient(net, x, t, k, i)) for k, i in coords], b)
            direct.append(sec / len(coords) * n_params)
            sec, book_grad = _timed(lambda: book_gradient(book, x_host, t_host, every=args.book_every), b)
            book_s.append(sec * n_params / visited)
        same_step = net.numerical_gradient(x, t, h=1e-4)
    gap = max(float(np.max(np.abs(xgrad.to_numpy(same_step[k]).reshape(-1)[:: args.book_every]
                                  - book_grad[k].reshape(-1)[:: args.book_every]))) for k in book_grad)
    med_fast, med_direct, med_book = (statistics.median(v) for v in (fast, direct, book_s))
    threads = "1 BLAS thread" if b.name == "numpy" else "the backend's default threads"
    scaled = f", scaled from {visited} entries" if args.book_every > 1 else ""
    print(f"\nOne numerical gradient of the 784-50-10 network ({n_params} parameters, batch {args.batch}, "
          f"float64) on {b.describe()}, median of {args.rounds} rounds:")
    rows = [(f"the book's loop (float64, 1 BLAS thread{scaled})", f"{med_book:9.2f} s"),
            (f"direct loop (scaled from {args.coords} coordinates, {threads})", f"{med_direct:9.2f} s"),
            (f"xgrad TwoLayerNet.numerical_gradient (float64, {threads})", f"{med_fast:9.4f} s"),
            ("speed-up of xgrad over the book's loop (book s / xgrad s)", f"{med_book / med_fast:9.0f}x"),
            ("speed-up over the direct loop", f"{med_direct / med_fast:9.0f}x")]
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"  {label + ':':{width + 1}} {value}")
    print(f"  largest difference from the book's gradient at its step h=1e-4: {gap:.1e} "
          "(the book adds 1e-7 inside its log)")
    return {"backend": b.describe(), "params": n_params, "batch": args.batch, "dtype": "float64",
            "threads": threads, "direct_s": med_direct, "fast_s": med_fast, "speedup": med_direct / med_fast,
            "fast_times_s": fast, "fast_calls_per_round": args.fast_calls, "direct_times_s": direct,
            "book": {"seconds": med_book, "times_s": book_s, "dtype": "float64", "threads": "1 BLAS thread",
                     "h": 1e-4, "entries_timed": visited, "scaled": args.book_every > 1,
                     "largest_difference": gap},
            "speedup_vs_book": med_book / med_fast}


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
    ap.add_argument("--fast-calls", type=int, default=20,
                    help="xgrad's calls per round, timed together (default 20)")
    ap.add_argument("--book-every", type=int, default=1,
                    help="time the book's loop on every N-th entry and scale (default 1: all 39,760)")
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
        write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
