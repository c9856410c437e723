"""Speed-up of a sweep on a local Dask cluster against the same runs one after another.

The sweep is 8 learning rates x 2 seeds = 16 runs of the book's network on
MNIST. It runs once in this process (``client="serial"``) and once on a local
cluster of single-threaded worker processes, one per core; each process reads
MNIST once, in both cases. The cluster's start-up is timed apart. The script
also checks that both give the same numbers.

    python scripts/bench_sweep.py                          # 16 runs of 1,000 iterations
    python scripts/bench_sweep.py --iters 3000 --json sweep-bench.json
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

import xgrad
from xgrad._infra.install import install_hint
from xgrad._sweep.executor import cores, local_cluster
from xgrad._sweep.grid import DEFAULT_LRS


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lr", type=float, nargs="+", default=list(DEFAULT_LRS))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--iters", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=cores(), help="worker processes (default: the cores)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args(argv)
    try:
        import distributed
    except ImportError:
        print(f"the benchmark needs Dask: {install_hint('dask')}", file=sys.stderr)
        return 2
    settings = {"lr": args.lr, "seeds": args.seeds, "iters": args.iters, "backend": "numpy", "progress": False}
    n_runs = len(args.lr) * len(args.seeds)

    t0 = time.perf_counter()
    serial = xgrad.sweep(client="serial", **settings)
    serial_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    with local_cluster(distributed, args.workers) as cluster, distributed.Client(cluster) as client:
        client.wait_for_workers(args.workers)
        start_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        parallel = xgrad.sweep(client=client, **settings)
        cluster_s = time.perf_counter() - t0

    same = all(np.array_equal(a.history.loss, b.history.loss) and a.test_acc == b.test_acc
               for a, b in zip(serial, parallel, strict=True))
    report = {
        "runs": n_runs, "iters": args.iters, "cores": cores(), "workers": args.workers,
        "serial_s": round(serial_s, 3), "cluster_start_s": round(start_s, 3), "cluster_s": round(cluster_s, 3),
        "speedup": round(serial_s / cluster_s, 3),
        "speedup_with_start": round(serial_s / (start_s + cluster_s), 3),
        "same_results": same, "best_lr": None if serial.best is None else serial.best.settings["lr"],
        "machine": platform.processor() or platform.machine(), "python": platform.python_version(),
    }
    print(f"{n_runs} runs of {args.iters} iterations, {report['cores']} cores, {args.workers} workers")
    print(f"  one after another : {serial_s:8.2f} s")
    print(f"  local cluster     : {cluster_s:8.2f} s  (+ {start_s:.2f} s to start it)")
    print(f"  speed-up          : {report['speedup']:.2f}x  ({report['speedup_with_start']:.2f}x with the start)")
    print(f"  identical results : {'yes' if same else 'NO'}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
