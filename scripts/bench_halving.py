"""Successive halving against the full grid: the iterations, the wall time, and the pick.

The sweep is the default grid of ``xgrad sweep`` (8 learning rates, seed 0)
on MNIST with a validation split of 0.1. It runs twice in this process
(``client="serial"``), in the same settings: every run for ``--iters``
iterations, then with ``halving=3`` (the best third of the runs go on to the
next rung). The script prints the learning rate each picks (by validation
accuracy), the iterations each trained, their wall times and the ratios, and
checks that the pick of the halving sweep has the numbers of the same run in
the full grid, bit for bit. With ``--rounds``, the two take turns that many
times and the times shown are medians.

    python scripts/bench_halving.py                        # 8 runs of 10,000 iterations (about 4 minutes)
    python scripts/bench_halving.py --rounds 3 --json halving-bench.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

import xgrad
from xgrad._sweep.grid import DEFAULT_LRS
from xgrad._sweep.rungs import iterations


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lr", type=float, nargs="+", default=list(DEFAULT_LRS))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--iters", type=int, default=10_000)
    ap.add_argument("--halving", type=int, default=3)
    ap.add_argument("--eval-every", type=int, help="iterations between evaluations (default: one epoch)")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--threads", type=int, default=1, help="BLAS threads of each run (default: 1)")
    ap.add_argument("--rounds", type=int, default=1, help="times each sweep runs; the median time is shown")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args(argv)
    settings = {"lr": args.lr, "seeds": args.seeds, "iters": args.iters, "eval_every": args.eval_every,
                "backend": "numpy", "dtype": args.dtype,
                "threads": args.threads, "client": "serial", "progress": False}

    full_times, halved_times = [], []
    for _ in range(args.rounds):  # the two take turns, so that a busy machine slows them alike
        t0 = time.perf_counter()
        full = xgrad.sweep(**settings)
        full_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        halved = xgrad.sweep(**settings, halving=args.halving)
        halved_times.append(time.perf_counter() - t0)
    full_s, halved_s = statistics.median(full_times), statistics.median(halved_times)

    pick_full, pick_halved = full.best, halved.best
    twin = next((r for r in full if pick_halved is not None and r.key == pick_halved.key), None)
    same_numbers = (pick_halved is not None and twin is not None and pick_halved.val_acc == twin.val_acc
                    and np.array_equal(pick_halved.history.loss, twin.history.loss))
    lr = lambda run: None if run is None else run.settings["lr"]  # noqa: E731
    report = {
        "runs": len(full), "iters": args.iters, "halving": args.halving, "rungs": halved.rungs,
        "rounds": args.rounds, "full_times": full_times, "halving_times": halved_times,
        "dtype": args.dtype, "threads": args.threads, "backend": "numpy", "client": "serial",
        "full": {"pick_lr": lr(pick_full), "val_acc": pick_full and pick_full.val_acc,
                 "test_acc": pick_full and pick_full.test_acc, "iterations": iterations(full.runs),
                 "seconds": full_s},
        "halving_sweep": {"pick_lr": lr(pick_halved), "val_acc": pick_halved and pick_halved.val_acc,
                          "test_acc": pick_halved and pick_halved.test_acc, "iterations": iterations(halved.runs),
                          "seconds": halved_s,
                          "rung_reached": {f"{r.settings['lr']:g}": r.rung for r in halved},
                          "stopped": sum(r.stopped for r in halved), "diverged": sum(r.diverged for r in halved)},
        "same_pick": lr(pick_full) == lr(pick_halved), "pick_has_full_grid_numbers": bool(same_numbers),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "load_average": os.getloadavg(),
    }
    report["iterations_ratio"] = report["halving_sweep"]["iterations"] / report["full"]["iterations"]
    report["time_ratio"] = halved_s / full_s

    print(f"{len(full)} runs of {args.iters} iterations on MNIST (numpy, {args.dtype}, {args.threads} BLAS thread "
          f"per run, in this process); halving={args.halving}: rungs end at {', '.join(map(str, halved.rungs))}")
    print(f"{'':14}{'pick lr':>9}{'val acc':>9}{'test acc':>10}{'iterations':>12}{'seconds':>9}  (median of "
          f"{args.rounds} round{'s' if args.rounds > 1 else ''})")
    for name, part in (("full grid", report["full"]), (f"halving={args.halving}", report["halving_sweep"])):
        acc = lambda v: "-" if v is None else f"{v:.4f}"  # noqa: E731
        print(f"{name:14}{part['pick_lr'] if part['pick_lr'] is not None else '-':>9}{acc(part['val_acc']):>9}"
              f"{acc(part['test_acc']):>10}{part['iterations']:>12}{part['seconds']:>9.1f}")
    print(f"halving / full grid: {report['iterations_ratio']:.2f} of the iterations, {report['time_ratio']:.2f} of "
          f"the wall time; the same pick: {'yes' if report['same_pick'] else 'no'}; the pick's numbers equal the "
          f"full grid's run: {'yes' if same_numbers else 'no'}")
    print(f"rung reached per learning rate: {report['halving_sweep']['rung_reached']}")
    print(f"load average during the run: {report['load_average'][0]:.2f} (a shared machine: wall times are noisy)")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
