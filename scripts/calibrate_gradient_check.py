"""Measure what gradient_check's tolerance has to separate, and print the table.

For the book's 784-50-10 network (sigmoid and ReLU, several seeds, batches of
1 to 100 MNIST or uniform random images, the default step and the book's
h=1e-4) it prints, per parameter dtype and parameter, the worst criterion of a
correct gradient and the smallest criterion of a gradient with one
median-sized entry off by 1%, in units of eps. The tolerances in
xgrad/_net/check.py lie between the two with a margin.

    python scripts/calibrate_gradient_check.py [--seeds 3] [--batches 1 3 10 100]
"""

from __future__ import annotations

import argparse
import itertools
import warnings

import numpy as np
from _calibration import calibration_row

import xgrad
from xgrad._net.check import TOLERANCE


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 3, 10, 100])
    ap.add_argument("--no-float64", action="store_true",
                    help="difference in float32 (array-api-strict's no_float64 device)")
    ap.add_argument("--jax", action="store_true", help="with --no-float64: on JAX without x64 instead")
    args = ap.parse_args()
    b = xgrad.resolve_backend("numpy")
    if args.no_float64:
        import array_api_strict

        b = xgrad.resolve_backend("array_api_strict", device=array_api_strict.Device("no_float64"))
        if args.jax:
            b = xgrad.resolve_backend("jax")
            if b.xp.asarray(1.0).dtype != b.xp.float32:
                ap.error("--jax needs JAX without x64 (unset JAX_ENABLE_X64)")
    (x_all, t_all), _ = xgrad.load_mnist()
    dtypes = ["float32"] if args.no_float64 else ["float32", "float64"]
    table: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for dtype, act, seed, n, kind, h in itertools.product(dtypes, ["sigmoid", "relu"], range(args.seeds),
                                                        args.batches, ["mnist", "random"], [None, 1e-4]):
        rng = np.random.default_rng(seed)
        if kind == "mnist":
            idx = rng.choice(len(x_all), n, replace=False)
            x, t = x_all[idx], t_all[idx]
        else:
            x, t = rng.random((n, 784)), rng.integers(0, 10, n)
        net = xgrad.TwoLayerNet(784, 50, 10, activation=act, dtype=dtype, seed=seed, xp=b.xp, device=b.device)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the no-float64 warning
            row = calibration_row(net, b.asarray(x, dtype=net.dtype), b.asarray(t), h=h)
        for k, r in row.items():
            table.setdefault((dtype, k), []).append((r["correct"], r["one_percent"]))
    wide = "float32" if args.no_float64 else "float64"
    print(f"{'dtype':8} {'param':5} {'worst correct':>14} {'smallest 1% error':>18} {'tolerance':>10}  "
          f"(units of eps; differences in {wide})")
    for (dtype, k), rows in table.items():
        correct, bad = max(r[0] for r in rows), min(r[1] for r in rows)
        tol = TOLERANCE[(dtype, wide)] / float(np.finfo(dtype).eps)
        verdict = "separates" if correct < tol < bad else ("misses 1%" if tol >= bad else "FALSE ALARM")
        print(f"{dtype:8} {k:5} {correct:14.3g} {bad:18.3g} {tol:10.3g}  {verdict}")
    for dtype in dtypes:
        eps = float(np.finfo(dtype).eps)
        print(f"tolerance {dtype}: {TOLERANCE[(dtype, wide)] / eps:.3g} eps = {TOLERANCE[(dtype, wide)]:.2g}")


if __name__ == "__main__":
    main()
