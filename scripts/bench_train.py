"""Training speed: xgrad on NumPy against the reference-style loop and PyTorch.

Every contender runs the book's setting (MNIST, 784-50-10 sigmoid network,
batch 100, lr 0.1) for the same number of iterations, in the same process, in
rounds (A, B, C, A, B, C, ...) so that a busy machine slows them alike; the
table shows medians and ratios to xgrad measured in the same run.

    python scripts/bench_train.py                 # 2,000 iterations, 3 rounds
    python scripts/bench_train.py --iters 10000 --rounds 5 --json out.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from _refloop import reference_loop, torch_loop
from threadpoolctl import threadpool_info, threadpool_limits

import xgrad


def xgrad_loop(data, *, iters, dtype="float32", threads="auto"):
    result = xgrad.train("numpy", data=data, iters=iters, eval_every=10**9, dtype=dtype,
                         threads=threads, progress=False)
    return result.timings["train_s"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iters", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-torch", action="store_true", help="skip PyTorch even if installed")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args(argv)

    data = xgrad.load_mnist()
    (x_train, t_train), _ = data
    contenders = {
        "xgrad numpy float32 (default threads='auto')": lambda: xgrad_loop(data, iters=args.iters),
        "xgrad numpy float64": lambda: xgrad_loop(data, iters=args.iters, dtype="float64"),
        "xgrad numpy float32, BLAS default threads": lambda: xgrad_loop(data, iters=args.iters, threads=None),
        "reference-style loop, BLAS default threads": lambda: reference_loop(x_train, t_train, iters=args.iters),
        "reference-style loop, 1 BLAS thread": lambda: _one_thread(reference_loop, x_train, t_train, args.iters),
    }
    if not args.no_torch:
        try:
            import torch  # noqa: F401

            contenders["pytorch eager (autograd), default threads"] = lambda: torch_loop(
                x_train, t_train, iters=args.iters)
            contenders["pytorch eager (autograd), 1 thread"] = lambda: torch_loop(
                x_train, t_train, iters=args.iters, threads=1)
        except ImportError:
            print("PyTorch is not installed: its rows are skipped")
    times = {name: [] for name in contenders}
    for r in range(args.rounds):
        for name, run in contenders.items():
            times[name].append(run())
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
    _report(times, args)


def _one_thread(fn, x, t, iters):
    with threadpool_limits(1, user_api="blas"):
        return fn(x, t, iters=iters)


def _report(times, args):
    base_name = next(iter(times))
    base = statistics.median(times[base_name])
    blas = [f"{i['internal_api']} {i['version']} ({i['num_threads']} threads)" for i in threadpool_info()
            if i["user_api"] == "blas"]
    print(f"\n{args.iters} iterations, median of {args.rounds} rounds; {platform.processor() or platform.machine()}, "
          f"numpy {np.__version__}, BLAS {', '.join(blas)}")
    print(f"{'contender':48} {'median s':>9} {'per 10k it':>10} {'xgrad faster by':>15}")
    rows = []
    for name, ts in times.items():
        med = statistics.median(ts)
        rows.append({"name": name, "median_s": med, "times_s": ts, "ratio_to_xgrad": med / base})
        print(f"{name:48} {med:9.3f} {med * 10_000 / args.iters:9.2f}s {med / base:14.2f}x")
    if args.json:
        args.json.write_text(json.dumps({"iters": args.iters, "rounds": args.rounds, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
