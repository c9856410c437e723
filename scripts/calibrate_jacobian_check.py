"""Calibrate check_jacobian and check_hessian: correct maps must never fail and
maps with one median-sized entry off by 1% must never pass; where float32
cannot tell, the verdict must be "inconclusive".

For each dtype, check (Jacobian; Hessian from the gradient; Hessian from f
alone) and mode (entries; projections, the fast mode) it runs the problems of
``scripts/_check_problems.py`` (linear map, softmax, tanh layer, Rosenbrock,
log-sum-exp) over several seeds, and prints how many correct and wrong maps got
each verdict. For Hessians from f alone it also prints the worst error of the
numerical side of a correct Hessian in units of ``|numerical| + max|H|``:
``NESTED`` in xgrad/_numerics/hesscheck.py must lie above it.

    python scripts/calibrate_jacobian_check.py [--seeds 5] [--backend numpy]
"""

from __future__ import annotations

import argparse
import collections
import itertools

import numpy as np
from _check_problems import hessian_problems, jacobian_problems, one_percent_off

import xgrad
from xgrad._numerics.hesscheck import NESTED

# (entries, projections) sizes: Jacobians m x n, Hessians n x n
JACOBIAN_SIZES = {"entries": (5, 4), "projections": (40, 30)}
HESSIAN_SIZES = {"entries": 5, "projections": 12}


def _nested_error(report, hess_value) -> float:
    size = float(np.max(np.abs(hess_value)))
    return max(abs(num - giv) / (abs(num) + size) for _, num, giv, _ in report.worst)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--backend", default="numpy")
    args = ap.parse_args()
    b = xgrad.resolve_backend(args.backend)
    counts: dict[tuple[str, ...], collections.Counter] = collections.defaultdict(collections.Counter)
    nested: dict[str, float] = collections.defaultdict(float)
    for dtype, mode, seed in itertools.product(["float64", "float32"], ["entries", "projections"],
                                               range(args.seeds)):
        n, m = JACOBIAN_SIZES[mode]
        for name, (f, jac, x) in jacobian_problems(b, n, m, dtype, seed).items():
            for kind, given in [("correct", jac), ("1% off", one_percent_off(b, jac))]:
                r = xgrad.check_jacobian(f, given, x, max_entries=64)
                assert r.mode == mode, (name, r.mode)
                counts[(dtype, "Jacobian", mode, kind)][r.verdict] += 1
                if r.verdict == ("fail" if kind == "correct" else "pass"):
                    print(f"  {dtype} Jacobian {mode} {name} seed {seed} {kind}: {r.verdict}\n{r}")
        nh = HESSIAN_SIZES[mode]
        for name, (f, grad, hess, x) in hessian_problems(b, nh, dtype, seed).items():
            for source, kind in itertools.product(["grad", "f"], ["correct", "1% off"]):
                given = hess if kind == "correct" else one_percent_off(b, hess)
                r = xgrad.check_hessian(f, given, x, grad=grad if source == "grad" else None, max_entries=25)
                assert r.mode == mode, (name, r.mode)
                counts[(dtype, f"Hessian from {source}", mode, kind)][r.verdict] += 1
                if source == "f" and kind == "correct":
                    nested[dtype] = max(nested[dtype], _nested_error(r, xgrad.to_numpy(hess(x))))
                if r.verdict == ("fail" if kind == "correct" else "pass"):
                    print(f"  {dtype} Hessian from {source} {mode} {name} seed {seed} {kind}: {r.verdict}\n{r}")
    print(f"{'dtype':8} {'check':17} {'mode':12} {'given':8} {'pass':>5} {'fail':>5} {'inconclusive':>13}")
    bad = 0
    for (dtype, what, mode, kind), c in counts.items():
        print(f"{dtype:8} {what:17} {mode:12} {kind:8} {c['pass']:5} {c['fail']:5} {c['inconclusive']:13}")
        bad += c["fail"] if kind == "correct" else c["pass"]
    for dtype, worst in nested.items():
        bits = 64 if dtype == "float64" else 32
        print(f"Hessian from f, {dtype}: worst numerical error {worst:.2g} x (|numerical| + max|H|), "
              f"NESTED {NESTED[bits]:.0e}")
    print(f"false alarms and missed 1% errors: {bad}")


if __name__ == "__main__":
    main()
