"""xgrad's differentiation functions on NumPy, PyTorch and JAX: the same
function at the same point on each, timed in the same run, each backend's
time as a ratio to NumPy's.

    python scripts/bench_check.py                                   # table
    python scripts/bench_check.py --json docs/_data/bench_check.json
    python scripts/bench_check.py --only check_gradient derivative --rounds 9

The cases: ``check_gradient`` of a 16-entry function (checked entry by
entry) with its analytic gradient; ``derivative`` of an elementwise function
at 64 points; ``numerical_gradient`` of the 16-entry function; ``jacobian``
of a map from 6 to 4 numbers; ``hessian`` of a function of 4 variables.
Every array is float64 (JAX with ``jax_enable_x64``), on the CPU. Each time
is the median of ``--rounds`` calls, after one call that is not counted (it
pays JAX's compilation, reported apart as ``first_s``); the backends take
turns, round after round, so that a busy machine slows them alike. PyTorch and JAX keep
their default threads; NumPy's BLAS is not used by these small cases. The
machine's load average goes beside the figures (``environment`` in the JSON):
on a shared machine the ratios, measured in the same run, are the figures to
read, not the seconds.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import xgrad

BACKENDS = ("numpy", "torch", "jax")
CASES = ("check_gradient", "derivative", "numerical_gradient", "jacobian", "hessian")


def _problem(xp, be):
    """The functions of every case, written once against the array API."""
    rng = np.random.default_rng(0)
    w = be.asarray(rng.uniform(0.5, 2.0, size=16))
    a = be.asarray(rng.normal(size=(4, 6)) / 3)
    x16 = be.asarray(rng.normal(size=16))
    x64 = be.asarray(np.linspace(-2.0, 2.0, 64))
    x6 = be.asarray(rng.normal(size=6))
    x4 = be.asarray(rng.normal(size=4))

    def scalar(x):  # a weighted sum of sines plus a log-sum-exp
        return xp.sum(w * xp.sin(x)) + xp.log(xp.sum(xp.exp(x)))

    def grad(x):
        e = xp.exp(x)
        return w * xp.cos(x) + e / xp.sum(e)

    def elementwise(x):
        return xp.exp(-x * x / 2) * xp.sin(3 * x)

    def vector(x):
        return xp.tanh(a @ x)

    def rosen(x):
        return xp.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)

    return {
        "check_gradient": lambda: xgrad.check_gradient(scalar, grad, x16).passed,
        "derivative": lambda: bool(xp.all(xgrad.derivative(elementwise, x64).success)),
        "numerical_gradient": lambda: xgrad.numerical_gradient(scalar, x16),
        "jacobian": lambda: bool(xp.all(xgrad.jacobian(vector, x6).success)),
        "hessian": lambda: bool(xp.all(xgrad.hessian(rosen, x4).success)),
    }


def _once(call):
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def _backend(name):
    if name == "jax":
        import jax

        jax.config.update("jax_enable_x64", True)
    return xgrad.resolve_backend(name)


def measure(backends, cases, rounds):
    """The backends take turns, round after round, so that a busy machine slows them alike."""
    calls, first = {}, {}
    for name in backends:
        try:
            be = _backend(name)
        except xgrad.BackendUnavailableError as exc:
            print(f"{name}: skipped ({exc})")
            continue
        calls[name] = _problem(be.xp, be)
        for case in cases:
            first[name, case] = _once(calls[name][case])  # JAX compiles here
    times = {key: [] for key in first}
    for _ in range(rounds):
        for name in calls:
            for case in cases:
                times[name, case].append(_once(calls[name][case]))
    rows = [{"case": case, "backend": name, "dtype": "float64", "median_s": statistics.median(times[name, case]),
             "first_s": first[name, case], "rounds": rounds} for name in calls for case in cases]
    base = {r["case"]: r["median_s"] for r in rows if r["backend"] == "numpy"}
    for r in rows:
        r["ratio_to_numpy"] = r["median_s"] / base[r["case"]] if r["case"] in base else None
    return rows


def print_table(rows):
    print(f"{'case':20} {'backend':8} {'dtype':8} {'median ms':>10} {'first ms':>10} {'x numpy':>8}")
    for r in rows:
        ratio = "" if r["ratio_to_numpy"] is None else f"{r['ratio_to_numpy']:.2f}"
        print(f"{r['case']:20} {r['backend']:8} {r['dtype']:8} {1e3 * r['median_s']:>10.2f} "
              f"{1e3 * r['first_s']:>10.1f} {ratio:>8}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the rows and the environment here")
    parser.add_argument("--rounds", type=int, default=7, help="timed calls per case and backend (the median)")
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    parser.add_argument("--only", nargs="+", default=list(CASES), choices=CASES, help="these cases only")
    args = parser.parse_args(argv)
    backends = ["numpy", *[b for b in args.backends if b != "numpy"]]  # the baseline, always
    rows = measure(backends, args.only, args.rounds)
    print_table(rows)
    import os

    print(f"load average {os.getloadavg()[0]:.2f} (1 min) on {os.cpu_count()} cores: on a busy machine read the ratios")
    if args.json:
        from _environment import environment, write_json  # scripts/ is on the path when run as a script

        write_json(args.json, {"rows": rows, "environment": environment()})


if __name__ == "__main__":
    main()
