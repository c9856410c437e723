"""Throughput of training and of the numerical gradient across backends:
NumPy against CuPy (or any other backend), sweeping batch and hidden size.
On CuPy the training step also runs replayed from a CUDA graph
(``compile_step=True``), beside the eager one.

The clock is read only after the device has finished (an explicit
synchronise), every figure is a median, and ratios are to NumPy measured in
the same run. Runs on any machine: backends that cannot run here are listed
with the reason and skipped.

    python scripts/bench_gpu.py                           # numpy and cupy, default sweep
    python scripts/bench_gpu.py --backends numpy torch --quick
    python scripts/bench_gpu.py --json gpu.json

On CuPy it also times the step loop with its elementwise groups fused
(``xgrad cupy (fused)``) against the same loop unfused, at batch 100 and at
the largest hidden size.
"""

from __future__ import annotations

import argparse
import inspect
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

import xgrad
from xgrad import BackendUnavailableError, resolve_backend
from xgrad._net.core import ACTIVATIONS, sgd_step
from xgrad._net.fused import fused_ops

BATCHES = (100, 1000, 10_000)
HIDDEN = (50, 512, 4096)
GRAPH = "xgrad cupy (CUDA graph)"


def synchronize(b):
    if b.name == "cupy":
        import cupy

        cupy.cuda.Device().synchronize()
    elif b.name == "torch" and b.device.type == "cuda":
        import torch

        torch.cuda.synchronize()


def environment(backends):
    info = {"python": platform.python_version(), "numpy": np.__version__, "machine": platform.machine(),
            "processor": platform.processor()}
    for b in backends:
        if b.name == "cupy":
            import cupy

            props = cupy.cuda.runtime.getDeviceProperties(0)
            info.update(device=props["name"].decode(), cupy=cupy.__version__,
                        driver=cupy.cuda.runtime.driverGetVersion(), cuda_runtime=cupy.cuda.runtime.runtimeGetVersion())
        elif b.name == "torch":
            import torch

            info["torch"] = torch.__version__
    return info


def time_training(b, data, *, batch, hidden, iters, rounds, **options):
    """Seconds per iteration (median): iterations run after one warm-up round.
    A CUDA graph is captured inside every run: its capture is counted."""
    runs = []
    for r in range(rounds + 1):
        result = xgrad.train(b, data=data, iters=iters, batch_size=batch, hidden_size=hidden, eval_every=0,
                             progress=False, seed=r, **options)
        if r:  # the first round compiles kernels and fills caches
            # the training loop's wall time: it ends by moving the last losses to
            # the host, which waits for the device; moving the data there is not counted
            runs.append(result.timings["train_s"] / iters)
    return statistics.median(runs)


def time_step_loop(b, data, *, batch, hidden, iters, rounds, fuse):
    """Seconds per iteration (median) of the core's SGD step loop alone, float32,
    with `fuse` (None: the groups as written): no loss checks, no history."""
    (x, t), _ = data
    xp = b.xp
    x_dev = b.asarray(x, dtype=xp.float32)
    targets = b.asarray(np.eye(10, dtype=np.float32)[t])
    runs = []
    for r in range(rounds + 1):
        net = xgrad.TwoLayerNet(784, hidden, 10, dtype="float32", xp=xp, device=b.device, seed=r)
        params = net.params
        idx = b.asarray(np.random.default_rng(r).integers(0, x.shape[0], (iters, batch)))
        synchronize(b)
        t0 = time.perf_counter()
        for i in range(iters):
            xb, tb = xp.take(x_dev, idx[i, ...], axis=0), xp.take(targets, idx[i, ...], axis=0)
            _, params = sgd_step(params, xb, tb, lr=0.1, activation=ACTIVATIONS["sigmoid"], xp=xp,
                                 rows_sum_to_one=True, fuse=fuse)
        synchronize(b)
        if r:  # the first round compiles (and fuses) the kernels
            runs.append((time.perf_counter() - t0) / iters)
    return statistics.median(runs)


def fused_contender(backends, data, configs, *, iters, rounds):
    """``xgrad cupy (fused)``: the step loop with the elementwise groups fused,
    against the same loop unfused, on CuPy only (rows for the JSON)."""
    rows = []
    for b in (b for b in backends if fused_ops(b.xp) is not None):
        print(f"\nStep loop on {b.name}, float32, fused elementwise groups against none (median):")
        print(f"{'contender':20} {'batch':>6} {'hidden':>6} {'it/s':>9} {'vs unfused':>10}")
        for batch, hidden in configs:
            kw = {"batch": batch, "hidden": hidden, "iters": iters, "rounds": rounds}
            plain = time_step_loop(b, data, fuse=None, **kw)
            fused = time_step_loop(b, data, fuse=fused_ops(b.xp), **kw)
            for name, sec in ((f"xgrad {b.name}", plain), (f"xgrad {b.name} (fused)", fused)):
                rows.append({"kind": "step_loop", "backend": name, "batch": batch, "hidden": hidden,
                             "s_per_iter": sec, "speedup_vs_unfused": plain / sec})
                print(f"{name:20} {batch:6} {hidden:6} {1 / sec:9.0f} {plain / sec:9.2f}x")
    return rows


def time_numgrad(b, data, *, rounds):
    (x, t), _ = data
    net = xgrad.TwoLayerNet(784, 50, 10, xp=b.xp, device=b.device, seed=0)
    xb, tb = b.asarray(x[:100], dtype=b.xp.float64), b.asarray(t[:100])
    runs = []
    for r in range(rounds + 1):
        synchronize(b)
        t0 = time.perf_counter()
        net.numerical_gradient(xb, tb)
        synchronize(b)
        if r:
            runs.append(time.perf_counter() - t0)
    return statistics.median(runs)


def graph_unavailable():
    """Why the CUDA-graph contender cannot run with this xgrad, or None."""
    if "compile_step" not in inspect.signature(xgrad.train).parameters:
        return "this xgrad's train() has no compile_step option"
    return None


def train_rows(b, data, *, batch, hidden, iters, rounds, base, skipped):
    """The eager run on `b`, and on CuPy the CUDA-graph run too (unless `skipped` says why not)."""
    contenders = [(f"xgrad {b.name}", b.name, {})]
    if b.name == "cupy" and GRAPH not in skipped:
        contenders.append((GRAPH, "cupy-graph", {"compile_step": True}))
    rows, eager = [], None
    for name, label, options in contenders:
        try:
            sec = time_training(b, data, batch=batch, hidden=hidden, iters=iters, rounds=rounds, **options)
        except RuntimeError as exc:
            if name != GRAPH:
                raise
            skipped[name] = str(exc)  # the step could not be captured: the same cause at every size
            print(f"{label:11} {batch:6} {hidden:6} skipped: {exc}")
            continue
        eager = sec if eager is None else eager
        base = sec if b.name == "numpy" else base
        ratio = base / sec if base else float("nan")
        rows.append({"kind": "train", "backend": b.name, "contender": name, "batch": batch, "hidden": hidden,
                     "s_per_iter": sec, "speedup_vs_numpy": ratio, "speedup_vs_eager": eager / sec})
        print(f"{label:11} {batch:6} {hidden:6} {1 / sec:9.0f} {sec * 10_000:9.1f} {ratio:8.1f}x")
    return rows, base


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backends", nargs="+", default=["numpy", "cupy"])
    ap.add_argument("--iters", type=int, default=50, help="timed iterations per configuration")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="batch 100 and 1000, hidden 50 and 512 only")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)

    backends = []
    for name in args.backends:
        try:
            backends.append(resolve_backend(name))
        except BackendUnavailableError as exc:
            print(f"{name}: skipped ({exc})")
    data = xgrad.load_mnist()
    batches, hidden = (BATCHES[:2], HIDDEN[:2]) if args.quick else (BATCHES, HIDDEN)
    env = environment(backends)
    print("environment:", ", ".join(f"{k}={v}" for k, v in env.items()))
    rows, skipped = [], {}
    if any(b.name == "cupy" for b in backends) and (why := graph_unavailable()):
        skipped[GRAPH] = why
        print(f"{GRAPH}: skipped ({why})")
    print(f"\nTraining step, float32, up to {args.iters} iterations x {args.rounds} rounds (median):")
    print(f"{'backend':11} {'batch':>6} {'hidden':>6} {'it/s':>9} {'s/10k it':>9} {'vs numpy':>9}")
    for batch in batches:
        for h in hidden:
            base = None
            # about 2e10 flops of timed work at most per round: large CPU configurations stay short
            iters = max(2, min(args.iters, int(2e10 // (6 * batch * h * 794))))
            for b in backends:
                new, base = train_rows(b, data, batch=batch, hidden=h, iters=iters, rounds=args.rounds, base=base,
                                       skipped=skipped)
                rows.extend(new)
    configs = [(batch, h) for batch in batches for h in hidden if batch == BATCHES[0] or h == hidden[-1]]
    rows += fused_contender(backends, data, configs, iters=args.iters, rounds=args.rounds)
    print("\nNumerical gradient of the 784-50-10 network, batch 100, float64 (median):")
    base = None
    for b in backends:
        sec = time_numgrad(b, data, rounds=args.rounds)
        base = sec if b.name == "numpy" else base
        ratio = base / sec if base else float("nan")
        rows.append({"kind": "numgrad", "backend": b.name, "seconds": sec, "speedup_vs_numpy": ratio})
        print(f"{b.name:8} {sec:9.4f} s {ratio:8.1f}x; 10,000 training iterations need about "
              f"{sec * 10_000 / 60:.1f} min of gradients")
    if args.json:
        args.json.write_text(json.dumps({"environment": env, "rows": rows, "skipped": skipped}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
