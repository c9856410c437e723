"""xgrad.check_gradient against torch.autograd.gradcheck and
jax.test_util.check_grads on the same gradients, correct and with bugs.

    python scripts/bench_check_gradient.py
    python scripts/bench_check_gradient.py --json scripts/results/bench_check_gradient.json

Nine scalar functions with analytic gradients (one with ReLU kinks at the
checked point), each at small points (5 entries) and large ones (100
entries, checked along random directions by xgrad), three random problems
of each, in float64 and float32.
Each gradient is checked as it is and with one bug in the entry of median
magnitude: scaled by 1.01, sign flipped, or zeroed. torch and jax check their
own autodiff, so the given gradient is installed as a custom backward
(``torch.autograd.Function``, ``jax.custom_vjp``). Default settings for all
three tools. Needs torch and jax.
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np

import xgrad

BUGS = ("one percent", "sign flip", "zeroed")


def _problems(n, seed):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, n)) / np.sqrt(n)
    a = a + a.T
    w = rng.uniform(0.5, 2.0, size=n)
    m = rng.normal(size=(7, n)) / np.sqrt(n)
    y = (rng.random(7) < 0.5) * 1.0
    return {
        # name: (f(xp, x, c), grad(xp, x, c)); c holds the constants as arrays of xp
        "quadratic": (lambda xp, x, c: xp.sum(x * (c["a"] @ x)) / 2, lambda xp, x, c: c["a"] @ x),
        "weighted sin": (lambda xp, x, c: xp.sum(c["w"] * xp.sin(x)), lambda xp, x, c: c["w"] * xp.cos(x)),
        "log-sum-exp": (lambda xp, x, c: xp.log(xp.sum(xp.exp(x))),
                        lambda xp, x, c: xp.exp(x) / xp.sum(xp.exp(x))),
        "rosenbrock": (lambda xp, x, c: xp.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2), _rosen_grad),
        "softplus": (lambda xp, x, c: xp.sum(xp.log(1 + xp.exp(c["w"] * x))),
                     lambda xp, x, c: c["w"] / (1 + xp.exp(-c["w"] * x))),
        "logistic loss": (_logistic, _logistic_grad),
        "tanh layer": (lambda xp, x, c: xp.sum(c["v"] * xp.tanh(c["m"] @ x)),
                       lambda xp, x, c: c["m"].T @ (c["v"] * (1 - xp.tanh(c["m"] @ x) ** 2))),
        "norm": (lambda xp, x, c: xp.sqrt(xp.sum(x * x)), lambda xp, x, c: x / xp.sqrt(xp.sum(x * x))),
        "relu at kinks": (lambda xp, x, c: xp.sum(c["w"] * xp.maximum(x - c["k"], 0 * x) + x * x / 2),
                          lambda xp, x, c: c["w"] * ((x - c["k"]) > 0) + x),
    }, {"a": a, "w": w, "m": m, "y": y, "v": rng.uniform(0.5, 2.0, size=7)}, rng.normal(size=n)


def _rosen_grad(xp, x, c):
    inner = -400 * x[:-1] * (x[1:] - x[:-1] ** 2) - 2 * (1 - x[:-1])
    outer = 200 * (x[1:] - x[:-1] ** 2)
    zero = 0 * x[:1]
    return xp.concat([inner, zero]) + xp.concat([zero, outer])


def _logistic(xp, x, c):
    z = c["m"] @ x
    return xp.sum(xp.log(1 + xp.exp(z)) - c["y"] * z)


def _logistic_grad(xp, x, c):
    z = c["m"] @ x
    return c["m"].T @ (1 / (1 + xp.exp(-z)) - c["y"])


def _bug(g, bug, name):
    """`g` with `bug` in its entry of median magnitude. At the ReLU kinks (the
    even entries of "relu at kinks") any value between the one-sided
    derivatives is a valid subgradient, so the bug goes to an odd entry."""
    g = np.array(g, dtype=np.float64, copy=True)
    if bug is None:
        return g
    pool = np.arange(1, g.size, 2) if name == "relu at kinks" else np.arange(g.size)
    i = int(pool[np.argsort(np.abs(g[pool]))[pool.size // 2]])
    g[i] = {"one percent": 1.01 * g[i], "sign flip": -g[i], "zeroed": 0.0}[bug]
    return g


def check_xgrad(name, f, grad, x0, consts, bug, dtype):
    import array_api_compat.numpy as xp

    c = {k: np.asarray(v, dtype=dtype) for k, v in consts.items()}
    x = np.asarray(x0, dtype=dtype)
    c["k"] = np.where(np.arange(x.size) % 2 == 0, x, x - 1).astype(dtype)  # half the ReLU inputs at 0
    given = _bug(grad(xp, x, c), bug, name).astype(dtype)
    return xgrad.check_gradient(lambda v: f(xp, v, c), given, x).passed


def check_torch(name, f, grad, x0, consts, bug, dtype):
    import array_api_compat.torch as xp
    import torch

    tdt = getattr(torch, np.dtype(dtype).name)
    c = {k: torch.asarray(v, dtype=tdt) for k, v in consts.items()}
    x = torch.asarray(x0, dtype=tdt)
    c["k"] = torch.where(torch.arange(x.numel()) % 2 == 0, x, x - 1)

    class Given(torch.autograd.Function):
        @staticmethod
        def forward(ctx, v):
            ctx.save_for_backward(v)
            return f(xp, v, c)

        @staticmethod
        def backward(ctx, out):
            (v,) = ctx.saved_tensors
            return out * torch.asarray(_bug(grad(xp, v.detach(), c).numpy(), bug, name), dtype=tdt)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bool(torch.autograd.gradcheck(Given.apply, (x.clone().requires_grad_(True),),
                                             raise_exception=False))


def check_jax(name, f, grad, x0, consts, bug, dtype):
    import jax
    import jax.numpy as jnp
    from jax.test_util import check_grads

    c = {k: jnp.asarray(v, dtype=dtype) for k, v in consts.items()}
    x = jnp.asarray(x0, dtype=dtype)
    c["k"] = jnp.where(jnp.arange(x.size) % 2 == 0, x, x - 1).astype(dtype)

    @jax.custom_vjp
    def given(v):
        return f(jnp, v, c)

    def fwd(v):
        return given(v), v

    def bwd(v, out):
        return (out * jnp.asarray(_bug(np.asarray(grad(jnp, v, c)), bug, name), dtype=dtype),)

    given.defvjp(fwd, bwd)
    try:
        check_grads(given, (x,), order=1, modes=["rev"])
    except AssertionError:
        return False
    return True


TOOLS = {"xgrad": check_xgrad, "torch gradcheck": check_torch, "jax check_grads": check_jax}


def measure(seeds):
    rows = []
    for dtype in (np.float64, np.float32):
        for n, seed in [(n, seed) for n in (5, 100) for seed in range(seeds)]:
            problems, consts, x0 = _problems(n, seed=1000 * seed + n)
            for name, (f, grad) in problems.items():
                for bug in (None, *BUGS):
                    for tool, check in TOOLS.items():
                        passed = check(name, f, grad, x0, consts, bug, dtype)
                        rows.append({"dtype": np.dtype(dtype).name, "size": n, "seed": seed, "function": name,
                                     "bug": bug or "none", "tool": tool, "passed": bool(passed)})
    return rows


def summary(rows):
    out = []
    for dtype in ("float64", "float32"):
        for tool in TOOLS:
            sel = [r for r in rows if r["dtype"] == dtype and r["tool"] == tool]
            bugs = [r for r in sel if r["bug"] != "none"]
            good = [r for r in sel if r["bug"] == "none"]
            out.append({"dtype": dtype, "tool": tool, "bugs": len(bugs),
                        "caught": sum(not r["passed"] for r in bugs), "correct": len(good),
                        "false_alarms": sum(not r["passed"] for r in good),
                        "kink_false_alarms": sum(not r["passed"] for r in good if r["function"] == "relu at kinks")})
    return out


def print_table(summ):
    print(f"{'dtype':8} {'tool':16} {'bugs caught':>12} {'false alarms':>13} {'of which at kinks':>18}")
    for s in summ:
        print(f"{s['dtype']:8} {s['tool']:16} {s['caught']:>5}/{s['bugs']:<6} {s['false_alarms']:>6}/{s['correct']:<6}"
              f" {s['kink_false_alarms']:>18}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the summary and every wrong verdict here")
    parser.add_argument("--seeds", type=int, default=3, help="random problems per function and size")
    args = parser.parse_args(argv)
    import jax

    jax.config.update("jax_enable_x64", True)
    rows = measure(args.seeds)
    summ = summary(rows)
    print_table(summ)
    missed = [r for r in rows if r["tool"] == "xgrad" and r["passed"] != (r["bug"] == "none")]
    for r in missed:
        print("xgrad wrong on:", r)
    if args.json:  # the summary, and every verdict that was wrong
        wrong = [r for r in rows if r["passed"] != (r["bug"] == "none")]
        from _environment import environment, write_json  # scripts/ is on the path when run as a script

        write_json(args.json, {"summary": summ, "wrong_verdicts": wrong, "environment": environment()})


if __name__ == "__main__":
    main()
