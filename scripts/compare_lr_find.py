"""The learning-rate range test's suggestion against the best rate of a sweep.

For each data set, a sweep of full training runs (``xgrad.sweep``, its
default grid: 8 learning rates three times apart from 0.001 to 3, 10,000
iterations each, a tenth of the training set held out and the runs ranked by
validation accuracy) picks the best learning rate; ``xgrad.lr_find`` (its
defaults: 300 iterations from 1e-5 to 10) suggests one, for a few seeds. The
script prints both, the suggestion of the other common rule (the steepest
descent of the smoothed loss) beside it, and how far each is from the
sweep's pick (a factor; 1 is the same rate).

    python scripts/compare_lr_find.py                                  # MNIST and Fashion-MNIST, ~2-3 minutes
    python scripts/compare_lr_find.py --sweep-out sweeps --json lr.json  # keep the sweeps' runs (a rerun reads them)
    python scripts/compare_lr_find.py --datasets mnist --iters 1000 --samples 10000  # quicker, less faithful
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import xgrad
from xgrad._train.lrcurve import steepest
from xgrad._train.settings import DEFAULT_LRS


def _factor(a: float | None, b: float) -> float | None:
    """How many times apart `a` and `b` are (>= 1), None without `a`."""
    return None if a is None else max(a / b, b / a)


def _median(finds: list[dict], key: str) -> float | None:
    values = [f[key] for f in finds if f[key] is not None]
    return statistics.median(values) if values else None


def _data(dataset: str, samples: int | None):
    if samples is None:
        return None
    (x, t), test = xgrad.load_mnist(dataset=dataset)
    return (x[:samples], t[:samples]), test


def compare(dataset: str, args: argparse.Namespace) -> dict:
    data = _data(dataset, args.samples)
    where = {} if data is None else {"data": data}
    if data is None:
        where["dataset"] = dataset
    out = None if args.sweep_out is None else args.sweep_out / dataset
    t0 = time.perf_counter()
    swept = xgrad.sweep(lr=args.lr, iters=args.iters, client="serial", progress=False, out=out, backend="numpy",
                        **where)
    sweep_s = time.perf_counter() - t0
    best = swept.best
    runs = [{"lr": r.settings["lr"], "val_acc": r.val_acc, "test_acc": r.test_acc, "diverged": r.diverged}
            for r in swept]
    finds = []
    for seed in args.seeds:
        r = xgrad.lr_find("numpy", seed=seed, iters=args.find_iters, progress=False, **where)
        finds.append({"seed": seed, "suggestion": r.suggestion, "lr_at_min": r.lr_at_min,
                      "steepest": steepest(r.lrs, r.smoothed_loss), "stopped_at": r.stopped_at,
                      "seconds": r.seconds})
    best_lr = float(best.settings["lr"])
    tenth, steep = _median(finds, "suggestion"), _median(finds, "steepest")
    # the suggested rates trained as the sweep's runs were: what each rule's pick is worth
    worth = {}
    for rule, lr in (("suggestion", tenth), ("steepest", steep)):
        if lr is not None:
            tried = xgrad.sweep(lr=[round(lr, 3)], iters=args.iters, client="serial", progress=False,
                                backend="numpy", **where)
            worth[rule] = tried.runs[0].val_acc
    return {"dataset": dataset, "sweep": {"best_lr": best_lr, "best_val_acc": best.val_acc,
                                          "best_test_acc": best.test_acc, "runs": runs, "seconds": sweep_s,
                                          "iters": args.iters},
            "lr_find": finds, "val_acc_at": worth, "median_suggestion": tenth, "median_steepest": steep,
            "factor_suggestion": _factor(tenth, best_lr), "factor_steepest": _factor(steep, best_lr)}


def _report(c: dict) -> None:
    s = c["sweep"]
    print(f"\n{c['dataset']}: sweep of {len(s['runs'])} rates x {s['iters']} iterations ({s['seconds']:.0f} s)")
    for r in s["runs"]:
        mark = "*" if r["lr"] == s["best_lr"] else " "
        val = "diverged" if r["diverged"] else f"{r['val_acc']:.4f}"
        print(f"  {mark} lr {r['lr']:<6g} validation accuracy {val}")
    print(f"  best by validation accuracy: lr {s['best_lr']:g} (test accuracy {s['best_test_acc']:.4f})")
    for f in c["lr_find"]:
        steep = "none" if f["steepest"] is None else f"{f['steepest']:.3g}"
        sugg = "none" if f["suggestion"] is None else f"{f['suggestion']:.3g}"
        print(f"  lr_find seed {f['seed']}: suggestion {sugg} (min of smoothed loss at {f['lr_at_min']:.3g}), "
              f"steepest descent at {steep}")
    for rule, name in (("suggestion", "one tenth of the minimum"), ("steepest", "steepest descent")):
        lr = c[f"median_{rule}"]
        if lr is None:
            print(f"  {name}: no suggestion for any seed")
            continue
        print(f"  {name}: median {lr:.3g}, {c[f'factor_{rule}']:.2f}x from the sweep's {s['best_lr']:g}; trained "
              f"as the sweep's runs at lr {round(lr, 3):g}: validation accuracy {c['val_acc_at'][rule]:.4f} "
              f"(the sweep's pick: {s['best_val_acc']:.4f})")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", nargs="+", default=["mnist", "fashion-mnist"])
    ap.add_argument("--lr", type=float, nargs="+", default=list(DEFAULT_LRS), help="the sweep's grid")
    ap.add_argument("--iters", type=int, default=10_000, help="iterations of each sweep run")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of lr_find")
    ap.add_argument("--find-iters", type=int, default=300, help="iterations of lr_find")
    ap.add_argument("--samples", type=int, default=None, help="train on the first SAMPLES images only")
    ap.add_argument("--sweep-out", type=Path, default=None, help="keep each sweep's runs under this folder")
    ap.add_argument("--json", type=Path, default=None, help="also write the comparison here")
    args = ap.parse_args(argv)
    results = [compare(d, args) for d in args.datasets]
    for c in results:
        _report(c)
    print()
    for rule, name in (("suggestion", "one tenth of the minimum"), ("steepest", "steepest descent")):
        factors = [c[f"factor_{rule}"] for c in results if c[f"factor_{rule}"] is not None]
        if factors:
            print(f"{name}: geometric mean factor from the sweep's pick {statistics.geometric_mean(factors):.2f}x "
                  f"over {len(factors)} data set(s)")
    if args.json is not None:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from _environment import environment

        args.json.write_text(json.dumps({"comparisons": results, "environment": environment()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
