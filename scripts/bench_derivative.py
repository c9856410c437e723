"""xgrad.derivative against scipy.differentiate.derivative and
numdifftools.Derivative, on the same cases in the same run: first derivatives
by differences and by the complex step, and second derivatives.

    python scripts/bench_derivative.py                       # tables
    python scripts/bench_derivative.py --json docs/_data/bench_derivative.json

Needs scipy and numdifftools (the ``bench`` dependency group). The cases:
elementary functions and points from scipy's own test suite (``elementary``),
points far from the origin (``far``) and functions that vary on a small scale
(``small``). For every case and library: the relative error against the
analytic derivative, the evaluations of f per point, the time per point
(median of 5 calls; NumPy on scalars, so one thread), and whether the library's error
estimate covers the true error (and by how much it overstates it: estimate /
max(true error, eps |f'|)). The complex step runs where the function takes
complex input (xgrad's and numdifftools' ``method="complex"``); second
derivatives (``n=2``) run on the elementary cases with the analytic f''
(scipy through ``scipy.differentiate.hessian`` in one variable, which has no
n=2 derivative).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from scipy import special
from scipy.differentiate import derivative as scipy_derivative
from scipy.differentiate import hessian as scipy_hessian

import xgrad


def _pdf(x):
    return np.exp(-x * x / 2) / np.sqrt(2 * np.pi)


def _power(n):
    return (f"2x^{n}", lambda x: 2 * x**n, lambda x: 2 * n * x ** (n - 1), [1.5],
            lambda x: 2 * n * (n - 1) * x ** (n - 2) if n > 1 else 0 * x)


def _powers():
    return [_power(n) for n in range(1, 6)]


# (name, f, f', points, f''): ndtr on scipy's test_basic points, exp on test_dtype's,
# x**99 - 1 and 2 x**n from test_special_cases, and common elementary functions.
ELEMENTARY = [
    ("ndtr", special.ndtr, _pdf, [0.6, *np.linspace(-0.05, 1.05, 10)], lambda x: -x * _pdf(x)),
    ("exp", np.exp, np.exp, [0.65, 0.7, -1.0], np.exp),
    ("x^99-1", lambda x: x**99 - 1, lambda x: 99 * x**98, [7.0], lambda x: 99 * 98 * x**97),
    *_powers(),
    ("sin", np.sin, np.cos, [1.0], lambda x: -np.sin(x)),
    ("cos", np.cos, lambda x: -np.sin(x), [1.0], lambda x: -np.cos(x)),
    ("log", np.log, lambda x: 1 / x, [2.0], lambda x: -1 / x**2),
    ("sqrt", np.sqrt, lambda x: 0.5 / np.sqrt(x), [2.0], lambda x: -0.25 * x**-1.5),
    ("tanh", np.tanh, lambda x: 1 / np.cosh(x) ** 2, [0.5], lambda x: -2 * np.tanh(x) / np.cosh(x) ** 2),
    ("arctan", np.arctan, lambda x: 1 / (1 + x * x), [1.0], lambda x: -2 * x / (1 + x * x) ** 2),
    ("expm1", np.expm1, np.exp, [0.1], np.exp),
    ("log1p", np.log1p, lambda x: 1 / (1 + x), [0.5], lambda x: -1 / (1 + x) ** 2),
    ("1/(1+x^2)", lambda x: 1 / (1 + x * x), lambda x: -2 * x / (1 + x * x) ** 2, [0.5],
     lambda x: (6 * x * x - 2) / (1 + x * x) ** 3),
    ("x exp(-x)", lambda x: x * np.exp(-x), lambda x: (1 - x) * np.exp(-x), [2.0], lambda x: (x - 2) * np.exp(-x)),
    ("cosh", np.cosh, np.sinh, [1.0], np.cosh), ("sinh", np.sinh, np.cosh, [0.3], np.sinh),
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


def run_xgrad_complex(f, x):
    res = xgrad.derivative(f, x, method="complex")
    return float(res.df), float(res.error), int(res.nfev)


def run_xgrad_2(f, x):
    res = xgrad.derivative(f, x, n=2)
    return float(res.df), float(res.error), int(res.nfev)


def run_scipy(f, x):
    res = scipy_derivative(f, x)
    return float(res.df), float(res.error), int(res.nfev)


def run_scipy_2(f, x):
    res = scipy_hessian(lambda v: f(v[0]), np.asarray([x]))
    return float(res.ddf[0, 0]), float(res.error[0, 0]), int(res.nfev[0, 0])


def run_numdifftools(f, x, n=1, method="central"):
    import numdifftools as nd

    counted = Counted(f)
    res = nd.Derivative(counted, n=n, method=method, full_output=True)(x)
    return float(res.estimate), float(res.error_estimate), counted.points


def _in(f, dtype):
    """f evaluated in `dtype` (numdifftools computes in float64 otherwise); complex input stays complex."""
    complex_dtype = np.result_type(dtype, np.complex64)

    def g(t):
        t = np.asarray(t)
        kind = complex_dtype if np.iscomplexobj(t) else dtype
        return np.asarray(f(t.astype(kind)), dtype=kind)

    return g


# (library, which derivative, runner)
LIBRARIES = [
    ("xgrad", 1, run_xgrad), ("scipy", 1, run_scipy), ("numdifftools", 1, run_numdifftools),
    ("xgrad complex", 1, run_xgrad_complex),
    ("numdifftools complex", 1, lambda f, x: run_numdifftools(f, x, method="complex")),
    ("xgrad", 2, run_xgrad_2), ("scipy", 2, run_scipy_2),
    ("numdifftools", 2, lambda f, x: run_numdifftools(f, x, n=2)),
]
REPEATS = 5


def _timed(call, f, x):
    times, out = [], None
    for _ in range(REPEATS):
        start = time.perf_counter()
        try:
            out = call(f, x)
        except (TypeError, ValueError) as exc:  # the complex step refuses a function it cannot trust
            return None, str(exc)
        times.append(time.perf_counter() - start)
    return out, statistics.median(times)


def measure(dtype):
    rows = []
    for group, cases in GROUPS.items():
        for name, f, df, points, *second in cases:
            if dtype == np.float32 and name == "x^99-1":
                continue  # 7**99 overflows float32
            for p in points:
                x = np.asarray(p, dtype=dtype)
                for lib, n, call in LIBRARIES:
                    if n == 2 and not second:
                        continue  # second derivatives: the elementary cases only
                    exact = float((df if n == 1 else second[0])(np.float64(x)))
                    with np.errstate(all="ignore"):
                        out, took = _timed(call, _in(f, dtype), x)
                    if out is None:
                        rows.append({"group": group, "case": f"{name} at {p:g}", "dtype": np.dtype(dtype).name,
                                     "library": lib, "n": n, "refused": took})
                        continue
                    value, estimate, nfev = out
                    err = abs(value - exact)
                    floor = max(float(np.finfo(dtype).eps) * abs(exact), 1e-300)
                    rows.append({"group": group, "case": f"{name} at {p:g}", "dtype": np.dtype(dtype).name,
                                 "library": lib, "n": n, "rel_error": err / abs(exact) if exact else err,
                                 "nfev": nfev, "time_us": took * 1e6, "covered": bool(err <= estimate),
                                 "overstate": estimate / max(err, floor)})
    return rows


def summary(rows):
    out = []
    for dtype in ("float64", "float32"):
        for n in (1, 2):
            for group in GROUPS:
                for lib in dict.fromkeys(name for name, k, _ in LIBRARIES if k == n):
                    sel = [r for r in rows if r["dtype"] == dtype and r["group"] == group and r["library"] == lib
                           and r["n"] == n]
                    done = [r for r in sel if "refused" not in r]
                    if not done:
                        continue
                    over = sorted(r["overstate"] for r in done if r["covered"])
                    out.append({
                        "dtype": dtype, "n": n, "group": group, "library": lib, "cases": len(done),
                        "refused": len(sel) - len(done),
                        "worst_rel_error": max(r["rel_error"] for r in done),
                        "median_nfev": statistics.median(r["nfev"] for r in done),
                        "median_time_us": statistics.median(r["time_us"] for r in done),
                        "coverage": sum(r["covered"] for r in done) / len(done),
                        "median_overstate": statistics.median(over) if over else float("nan"),
                    })
    return out


def print_table(summ):
    print(f"{'dtype':8} {'n':>1} {'cases':11} {'library':21} {'k':>3} {'worst rel err':>13} {'median nfev':>11} "
          f"{'us/point':>9} {'covered':>8} {'overstate':>9}")
    for s in summ:
        print(f"{s['dtype']:8} {s['n']:1d} {s['group']:11} {s['library']:21} {s['cases']:3d} "
              f"{s['worst_rel_error']:13.1e} {s['median_nfev']:11g} {s['median_time_us']:9.0f} {s['coverage']:8.0%} "
              f"{s['median_overstate']:9.0f}")


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
