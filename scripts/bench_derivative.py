"""xgrad.derivative against scipy.differentiate.derivative and
numdifftools.Derivative, on the same cases in the same run.

    python scripts/bench_derivative.py                       # tables
    python scripts/bench_derivative.py --json docs/_data/bench_derivative.json

Needs scipy and numdifftools (the ``bench`` dependency group). The cases:
elementary functions and points from scipy's own test suite (``elementary``),
points far from the origin (``far``) and functions that vary on a small scale
(``small``). For every case and library: the relative error against the
analytic derivative, the evaluations of f per point, and whether the
library's error estimate covers the true error (and by how much it
overstates it: estimate / max(true error, eps |f'|)).
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
from scipy import special
from scipy.differentiate import derivative as scipy_derivative

import xgrad


def _pdf(x):
    return np.exp(-x * x / 2) / np.sqrt(2 * np.pi)


def _power(n):
    return (f"2x^{n}", lambda x: 2 * x**n, lambda x: 2 * n * x ** (n - 1), [1.5])


def _powers():
    return [_power(n) for n in range(1, 6)]


# (name, f, f', points): ndtr on scipy's test_basic points, exp on test_dtype's,
# x**99 - 1 and 2 x**n from test_special_cases, and common elementary functions.
ELEMENTARY = [
    ("ndtr", special.ndtr, _pdf, [0.6, *np.linspace(-0.05, 1.05, 10)]),
    ("exp", np.exp, np.exp, [0.65, 0.7, -1.0]),
    ("x^99-1", lambda x: x**99 - 1, lambda x: 99 * x**98, [7.0]),
    *_powers(),
    ("sin", np.sin, np.cos, [1.0]), ("cos", np.cos, lambda x: -np.sin(x), [1.0]),
    ("log", np.log, lambda x: 1 / x, [2.0]), ("sqrt", np.sqrt, lambda x: 0.5 / np.sqrt(x), [2.0]),
    ("tanh", np.tanh, lambda x: 1 / np.cosh(x) ** 2, [0.5]), ("arctan", np.arctan, lambda x: 1 / (1 + x * x), [1.0]),
    ("expm1", np.expm1, np.exp, [0.1]), ("log1p", np.log1p, lambda x: 1 / (1 + x), [0.5]),
    ("1/(1+x^2)", lambda x: 1 / (1 + x * x), lambda x: -2 * x / (1 + x * x) ** 2, [0.5]),
    ("x exp(-x)", lambda x: x * np.exp(-x), lambda x: (1 - x) * np.exp(-x), [2.0]),
    ("cosh", np.cosh, np.sinh, [1.0]), ("sinh", np.sinh, np.cosh, [0.3]),
]
FAR = [
    ("exp", np.exp, np.exp, [50.0]), ("sin", np.sin, np.cos, [1e3, 1e6]),
    ("log", np.log, lambda x: 1 / x, [1e8]),
]
SMALL = [
    ("1/x", lambda x: 1 / x, lambda x: -1 / x**2, [1e-3]),
    ("sin(1000x)", lambda x: np.sin(1000 * x), lambda x: 1000 * np.cos(1000 * x), [1.0, 0.5]),
    ("ndtr(x/1e-3)", lambda x: special.ndtr(x / 1e-3), lambda x: _pdf(x / 1e-3) / 1e-3, [0.0, 5e-4, -1e-3]),
]
GROUPS = {"elementary": ELEMENTARY, "far": FAR, "small": SMALL}


class Counted:
    """f, counting the points it is evaluated at."""

    def __init__(self, f):
        self.f, self.points = f, 0

    def __call__(self, x):
        self.points += np.size(x)
        return self.f(x)


def run_xgrad(f, x):
    res = xgrad.derivative(f, x)
    return float(res.df), float(res.error), int(res.nfev)


def run_scipy(f, x):
    res = scipy_derivative(f, x)
    return float(res.df), float(res.error), int(res.nfev)


def run_numdifftools(f, x):
    import numdifftools as nd

    counted = Counted(f)
    res = nd.Derivative(counted, full_output=True)(x)
    return float(res.estimate), float(res.error_estimate), counted.points


def _in(f, dtype):
    """f evaluated in `dtype` (numdifftools computes in float64 otherwise)."""
    return lambda t: np.asarray(f(np.asarray(t, dtype=dtype)), dtype=dtype)


LIBRARIES = {"xgrad": run_xgrad, "scipy": run_scipy, "numdifftools": run_numdifftools}


def measure(dtype):
    rows = []
    for group, cases in GROUPS.items():
        for name, f, df, points in cases:
            if dtype == np.float32 and name == "x^99-1":
                continue  # 7**99 overflows float32
            for p in points:
                x = np.asarray(p, dtype=dtype)
                exact = float(df(np.float64(x)))
                for lib, call in LIBRARIES.items():
                    with np.errstate(all="ignore"):
                        value, estimate, nfev = call(_in(f, dtype), x)
                    err = abs(value - exact)
                    floor = max(float(np.finfo(dtype).eps) * abs(exact), 1e-300)
                    rows.append({"group": group, "case": f"{name} at {p:g}", "dtype": np.dtype(dtype).name,
                                 "library": lib, "rel_error": err / abs(exact) if exact else err,
                                 "nfev": nfev, "covered": bool(err <= estimate),
                                 "overstate": estimate / max(err, floor)})
    return rows


def summary(rows):
    out = []
    for dtype in ("float64", "float32"):
        for group in GROUPS:
            for lib in LIBRARIES:
                sel = [r for r in rows if r["dtype"] == dtype and r["group"] == group and r["library"] == lib]
                if not sel:
                    continue
                over = sorted(r["overstate"] for r in sel if r["covered"])
                out.append({
                    "dtype": dtype, "group": group, "library": lib, "cases": len(sel),
                    "worst_rel_error": max(r["rel_error"] for r in sel),
                    "median_nfev": statistics.median(r["nfev"] for r in sel),
                    "coverage": sum(r["covered"] for r in sel) / len(sel),
                    "median_overstate": statistics.median(over) if over else float("nan"),
                })
    return out


def print_table(summ):
    print(f"{'dtype':8} {'cases':11} {'library':13} {'n':>3} {'worst rel err':>13} {'median nfev':>11} "
          f"{'covered':>8} {'overstate':>9}")
    for s in summ:
        print(f"{s['dtype']:8} {s['group']:11} {s['library']:13} {s['cases']:3d} {s['worst_rel_error']:13.1e} "
              f"{s['median_nfev']:11g} {s['coverage']:8.0%} {s['median_overstate']:9.0f}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write every measurement and the summary here")
    args = parser.parse_args(argv)
    rows = measure(np.float64) + measure(np.float32)
    summ = summary(rows)
    print_table(summ)
    if args.json:
        from _environment import environment, write_json  # scripts/ is on the path when run as a script

        write_json(args.json, {"summary": summ, "rows": rows, "environment": environment()})


if __name__ == "__main__":
    main()
