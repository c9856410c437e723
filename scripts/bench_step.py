"""One training iteration, and each of its operations, timed per backend.

The iteration is what the eager training loop runs per step
(:meth:`xgrad._train.stepping.Stepping.step`: the minibatch's gather, then
:func:`xgrad._net.core.sgd_step`), on MNIST at the book's settings (784-50-10
sigmoid, batch 100, float32, one thread). Beside it: its two large matrix
products alone (``x @ W1`` and ``x.T @ da1``), the floor the rest of the step
is overhead above.

With --ops, each operation of the step at its shapes, as written (A) and in a
candidate form (B), timed in pairs (A, B, A, B, ...) so that a busy machine
slows both alike; the table gives medians, the ratio B/A and whether B gives
the same bits as A.

With --minibatch, the minibatch of the eager loop (the rows of the 8-bit
images gathered, converted to float32 and divided by 255; the one-hot rows)
against other ways to the same numbers on NumPy, timed in pairs as --ops
does: from the whole set converted once, through a 256-entry table of the
levels' values, into preallocated buffers, in one conversion-division pass.

With --loop, this checkout's training loop against another version's (the
``xgrad`` package under --baseline DIR), both imported into this process and
timed in alternating rounds: per iteration, the minibatch alone (gather and
conversion), the eager step as the loop calls it, and the whole loop
(``xgrad.train`` with evaluations off, at --threads); ratios new/old, and
whether the two versions' losses are the same bits.

    python scripts/bench_step.py                      # NumPy, PyTorch, JAX (eager), array-api-strict
    python scripts/bench_step.py --backends numpy torch --ops
    python scripts/bench_step.py --minibatch
    git archive main xgrad | tar -x -C /tmp/base      # the version to compare with
    python scripts/bench_step.py --loop --baseline /tmp/base --backends numpy torch array_api_strict
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import pkgutil
import statistics
import sys
import time
import warnings

import numpy as np

import xgrad
from xgrad._infra.backend import resolve_backend
from xgrad._train.config import TrainConfig, check_settings, prepare_data
from xgrad._train.run import Run


def _median_us(fn, *, number, rounds):
    """Median over `rounds` of the microseconds per call of `fn`, `number` calls a round."""
    out = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        out.append((time.perf_counter() - t0) / number * 1e6)
    return statistics.median(out)


def _paired_us(a, b, *, number, rounds):
    """Medians of `a` and `b` timed in alternating rounds."""
    ta, tb = [], []
    for _ in range(rounds):
        for fn, ts in ((a, ta), (b, tb)):
            t0 = time.perf_counter()
            for _ in range(number):
                fn()
            ts.append((time.perf_counter() - t0) / number * 1e6)
    return statistics.median(ta), statistics.median(tb)


def _sync(b):
    """A function waiting for `b`'s device (JAX dispatches asynchronously)."""
    if b.name == "jax":
        return lambda a: a.block_until_ready()
    return lambda a: a


def setup(backend, dtype="float32"):
    """``(b, run, params, plan)``: a default training run on `backend`, eager, not started."""
    s = check_settings({"backend": backend, "dtype": dtype, "compile_step": False, "progress": False})
    cfg = TrainConfig.of(s)
    b = resolve_backend(backend)
    (x_train, t_train), (x_test, t_test) = prepare_data(cfg, None, None)
    net = xgrad.TwoLayerNet(784, cfg.hidden_size, 10, activation=cfg.activation, weight_init_std=cfg.weight_init_std,
                            dtype=cfg.dtype, xp=b.xp, device=b.device, seed=cfg.seed)
    run = Run(cfg, b, net, x_train, t_train, x_test, t_test)
    plan, _ = run.plan.rows(0)
    return b, run, net.params, plan


def iteration(backend, *, number, rounds):
    """Microseconds of one eager step and of its two large products alone."""
    b, run, params, plan = setup(backend)
    xp, sync, step = b.xp, _sync(b), run.stepping.step
    state = {"params": params, "r": 0}

    def one():
        loss, state["params"] = step(state["params"], plan[state["r"], ...])
        state["r"] = (state["r"] + 1) % plan.shape[0]
        sync(loss)

    x = xp.asarray(np.random.default_rng(0).random((100, 784), dtype=np.float32), device=b.device)
    w1, da1 = params["W1"], xp.ones((100, 50), dtype=xp.float32, device=b.device)
    products = lambda: (sync(x @ w1), sync(xp.matrix_transpose(x) @ da1))  # noqa: E731
    with xgrad.thread_limits(1, backend=b.name), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for _ in range(number):  # warm up
            one()
        return _paired_us(one, products, number=number, rounds=rounds)


def candidates(xp):
    """``{name: (as written, candidate)}``: functions of the step's arrays ``d``."""
    from xgrad._net.core import ACTIVATIONS

    sig = ACTIVATIONS["sigmoid"]
    return {
        "sigmoid: 1/(1+exp(-a)) vs exp(min(a,0))/(1+exp(-|a|))": (
            lambda d: sig.apply(d["a1"], xp=xp), lambda d: _two_exp_sigmoid(d["a1"], xp)),
        "sigmoid: vs 0.5*tanh(0.5a)+0.5": (
            lambda d: sig.apply(d["a1"], xp=xp), lambda d: 0.5 * xp.tanh(0.5 * d["a1"]) + 0.5),
        "transpose: xp.matrix_transpose vs .mT": (
            lambda d: xp.matrix_transpose(d["x"]), lambda d: d["x"].mT),
        "bias sum: ones @ da1 vs xp.sum(axis=0)": (
            lambda d: d["ones"] @ d["da1"], lambda d: xp.sum(d["da1"], axis=0)),
        "sigmoid backward: dz*(z*(1-z)) vs (dz*z)*(1-z)": (
            lambda d: d["dz"] * (d["z1"] * (1 - d["z1"])), lambda d: (d["dz"] * d["z1"]) * (1 - d["z1"])),
        "loss: one-hot sum vs label gather": (
            lambda d: -xp.sum(d["t"] * (d["sh"] - xp.log(d["tot"]))),
            lambda d: -xp.sum(xp.take_along_axis(d["sh"] - xp.log(d["tot"]), d["lab"][:, None], axis=1))),
        "W1 update on a fresh g: W1 - g vs g = W1 - g in place": (
            lambda d: d["W1"] - d["g"] * 1, lambda d: _isub(d["g"] * 1, d["W1"])),
    }


def _two_exp_sigmoid(a, xp):
    """The overflow-free form with two exponentials that the sigmoid had before."""
    return xp.exp(xp.minimum(a, 0.0)) / (1 + xp.exp(-xp.abs(a)))


def _isub(g, w):
    g *= -1
    g += w
    return g


def ops(backend, *, number, rounds):
    """Rows ``(name, us as written, us candidate, same bits)`` on `backend`."""
    b = resolve_backend(backend)
    xp, dev, sync = b.xp, b.device, _sync(b)
    rng = np.random.default_rng(0)
    lab = rng.integers(0, 10, 100)
    normal = lambda scale, *shape: rng.normal(0, scale, shape).astype(np.float32)  # noqa: E731
    host = {"x": rng.random((100, 784), dtype=np.float32), "a1": normal(2, 100, 50), "s": normal(2, 100, 10),
            "da1": normal(1e-3, 100, 50), "dz": normal(1e-3, 100, 50), "z1": rng.random((100, 50), dtype=np.float32),
            "W1": normal(0.01, 784, 50), "g": normal(1e-3, 784, 50),
            "t": np.eye(10, dtype=np.float32)[lab], "lab": lab, "ones": np.ones(100, dtype=np.float32)}
    d = {k: xp.asarray(v, device=dev) for k, v in host.items()}
    d["sh"] = d["s"] - xp.max(d["s"], axis=1, keepdims=True)
    d["e"] = xp.exp(d["sh"])
    d["tot"] = xp.sum(d["e"], axis=1, keepdims=True)
    rows = []
    with xgrad.thread_limits(1, backend=b.name), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for name, (a, c) in candidates(xp).items():
            try:
                same = bool(np.array_equal(xgrad.to_numpy(a(d)), xgrad.to_numpy(c(d))))
                ta, tc = _paired_us(lambda a=a: sync(a(d)), lambda c=c: sync(c(d)), number=number, rounds=rounds)
            except (TypeError, AttributeError, NotImplementedError) as exc:  # no such form on this backend
                rows.append((name, float("nan"), float("nan"), f"n/a ({type(exc).__name__})"))
                continue
            rows.append((name, ta, tc, "yes" if same else "no"))
    return rows


def minibatch_candidates(number, rounds):
    """Rows ``(name, us as the loop draws it, us candidate, same bits)`` on NumPy, MNIST."""
    _, run, _, plan = setup("numpy")
    data, batch = run.stepping.data, run.stepping._own_batch
    images, labels, eye, floats = data.images, data.labels, data.eye, run.data.x_train
    table = (np.arange(256, dtype=np.uint8).astype(np.float32) / np.float32(255))
    levels_buf, floats_buf = np.empty((plan.shape[1], images.shape[1]), np.uint8), np.empty_like(floats[:plan.shape[1]])
    f255 = np.float32(255)
    onehot = lambda idx: eye.take(labels.take(idx, 0), 0)  # noqa: E731
    cands = {
        "the whole set converted once (188 MB), its rows gathered": lambda idx: (floats.take(idx, 0), onehot(idx)),
        "levels' values from a 256-entry table": lambda idx: (table.take(images.take(idx, 0)), onehot(idx)),
        "into preallocated buffers (take, divide out=)": lambda idx: (
            np.divide(images.take(idx, 0, out=levels_buf, mode="clip"), f255, out=floats_buf, dtype=np.float32),
            onehot(idx)),
        "converted and divided in one pass (divide dtype=)": lambda idx: (
            np.divide(images.take(idx, 0), f255, dtype=np.float32), onehot(idx)),
    }
    state = {"r": 0}

    def drawing(fn):
        def one():
            fn(plan[state["r"], ...])
            state["r"] = (state["r"] + 1) % plan.shape[0]
        return one

    rows = []
    for name, cand in cands.items():
        same = all(np.array_equal(a, c) and a.dtype == c.dtype for r in range(50)
                   for a, c in zip(batch(plan[r, ...]), cand(plan[r, ...]), strict=True))
        ta, tc = _paired_us(drawing(batch), drawing(cand), number=number, rounds=rounds)
        rows.append((name, ta, tc, "yes" if same else "no"))
    return rows


def _import_apart(root):
    """``{name: module}``: every module of the ``xgrad`` package under `root`,
    imported beside the one already imported (which stays in place)."""
    ours = {k: m for k, m in sys.modules.items() if k == "xgrad" or k.startswith("xgrad.")}
    for k in ours:
        del sys.modules[k]
    sys.path.insert(0, str(root))
    try:
        other = importlib.import_module("xgrad")
        if not str(other.__file__).startswith(str(os.path.abspath(root))):
            raise SystemExit(f"--baseline {root}: no xgrad package there")
        for info in pkgutil.walk_packages(other.__path__, "xgrad."):
            if info.name.endswith("__main__"):  # runs the command
                continue
            with contextlib.suppress(ImportError):  # modules of libraries not installed
                importlib.import_module(info.name)
        return {k: m for k, m in sys.modules.items() if k == "xgrad" or k.startswith("xgrad.")}
    finally:
        sys.path.remove(str(root))
        for k in [k for k in sys.modules if k == "xgrad" or k.startswith("xgrad.")]:
            del sys.modules[k]
        sys.modules.update(ours)


@contextlib.contextmanager
def _using(modules):
    """`modules` (a whole xgrad package) in place of the imported one, inside the block:
    the imports a function makes when called find its own version."""
    ours = {k: m for k, m in sys.modules.items() if k == "xgrad" or k.startswith("xgrad.")}
    sys.modules.update(modules)
    try:
        yield
    finally:
        sys.modules.update(ours)


def _loop_contenders(modules, backend, *, iters, threads):
    """``{piece: function}`` timing one version's minibatch, step and loop, us per iteration,
    and the losses of its loop."""
    with _using(modules):
        mx = modules["xgrad"]
        b = modules["xgrad._infra.backend"].resolve_backend(backend)
        s = modules["xgrad._train.config"].check_settings(
            {"backend": backend, "dtype": "float32", "compile_step": False, "progress": False})
        cfg = modules["xgrad._train.config"].TrainConfig.of(s)
        data = modules["xgrad._train.config"].prepare_data(cfg, None, None)
        (x_train, t_train), (x_test, t_test) = data
        net = mx.TwoLayerNet(784, cfg.hidden_size, 10, activation=cfg.activation, weight_init_std=cfg.weight_init_std,
                             dtype=cfg.dtype, xp=b.xp, device=b.device, seed=cfg.seed)
        run = modules["xgrad._train.run"].Run(cfg, b, net, x_train, t_train, x_test, t_test)
        plan, _ = run.plan.rows(0)
    st, d, sync = run.stepping, run.stepping.data, _sync(b)
    batch = getattr(st, "_own_batch", None) or (lambda idx: st._batch(d.images, d.labels, d.eye, idx))
    rows = int(plan.shape[0])
    state = {"params": net.params}
    losses = []

    def minibatches():
        for r in range(iters):
            sync(batch(plan[r % rows, ...])[0])

    def steps():
        p = state["params"]
        for r in range(iters):
            loss, p = st.step(p, plan[r % rows, ...])
        sync(loss)

    def loop():
        result = mx.train(backend, iters=iters, eval_every=10**9, dtype="float32", threads=threads, progress=False)
        losses[:] = result.history.loss
        return result.timings["train_s"]  # the loop alone: not loading the data, not building the run

    def timed(fn):
        def run_it():
            with _using(modules), mx.thread_limits(1, backend=b.name):
                t0 = time.perf_counter()
                seconds = fn()
                return (time.perf_counter() - t0 if seconds is None else seconds) / iters * 1e6
        return run_it

    return {"minibatch": timed(minibatches), "step": timed(steps), "loop": timed(loop)}, losses


def loop_pairs(backend, baseline, *, iters, rounds, threads):
    """Rows ``(piece, us old, us new)`` and whether the loops' losses are the same bits."""
    old, old_losses = _loop_contenders(baseline, backend, iters=iters, threads=threads)
    new, new_losses = _loop_contenders({k: m for k, m in sys.modules.items()
                                        if k == "xgrad" or k.startswith("xgrad.")}, backend,
                                       iters=iters, threads=threads)
    times = {(piece, which): [] for piece in new for which in ("old", "new")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for piece in new:  # warm up
            old[piece](), new[piece]()
        for _ in range(rounds):
            for piece in new:
                times[piece, "old"].append(old[piece]())
                times[piece, "new"].append(new[piece]())
    rows = [(piece, statistics.median(times[piece, "old"]), statistics.median(times[piece, "new"])) for piece in new]
    return rows, old_losses == new_losses and len(new_losses) == iters


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backends", nargs="+", default=["numpy", "torch", "jax", "array_api_strict"])
    ap.add_argument("--number", type=int, default=200, help="calls per round (default 200)")
    ap.add_argument("--rounds", type=int, default=7, help="rounds, medians taken (default 7)")
    ap.add_argument("--ops", action="store_true", help="each operation, as written against a candidate form")
    ap.add_argument("--loop", action="store_true",
                    help="the minibatch, the step and the training loop, this checkout against --baseline")
    ap.add_argument("--baseline", metavar="DIR",
                    help="with --loop: a directory holding the xgrad package to compare with")
    ap.add_argument("--iters", type=int, default=1000, help="with --loop: iterations per round (default 1000)")
    ap.add_argument("--threads", default="1", help="with --loop: train(threads=...) of the loop (default 1)")
    ap.add_argument("--minibatch", action="store_true",
                    help="the loop's minibatch against other ways to the same numbers (NumPy)")
    args = ap.parse_args(argv)
    if args.minibatch:
        print(f"NumPy, MNIST, batch 100; load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} cores; medians of "
              f"{args.rounds} rounds of {args.number} minibatches, microseconds")
        print(f"\n{'':58} {'as drawn':>8} {'candidate':>10} {'B/A':>6}  same bits")
        for name, ta, tc, same in minibatch_candidates(args.number, args.rounds):
            print(f"  {name:56} {ta:8.1f} {tc:10.1f} {tc / ta:6.2f}  {same}")
        return 0
    if args.loop:
        if not args.baseline:
            ap.error("--loop needs --baseline DIR, a directory holding the xgrad package to compare with")
        return _main_loop(args)
    print(f"float32, one thread; load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} cores; medians of "
          f"{args.rounds} rounds of {args.number} calls, microseconds")
    for backend in args.backends:
        if args.ops:
            print(f"\n{backend}: {'as written':>10} {'candidate':>10} {'B/A':>6}  same bits")
            for name, ta, tc, same in ops(backend, number=args.number, rounds=args.rounds):
                print(f"  {name:56} {ta:8.1f} {tc:10.1f} {tc / ta:6.2f}  {same}")
            continue
        step_us, floor_us = iteration(backend, number=args.number, rounds=args.rounds)
        print(f"{backend:18} step {step_us:7.1f}   two large products {floor_us:7.1f}   "
              f"overhead {step_us - floor_us:7.1f} ({(step_us - floor_us) / step_us:.0%} of the step)")
    return 0


def _main_loop(args):
    baseline = _import_apart(args.baseline)
    threads = args.threads if args.threads == "auto" else int(args.threads)
    print(f"float32, minibatch and step on one thread, the loop at threads={threads!r}; load average "
          f"{os.getloadavg()[0]:.1f}, {os.cpu_count()} cores; medians of {args.rounds} alternating rounds of "
          f"{args.iters} iterations, microseconds per iteration; old: {args.baseline}")
    for backend in args.backends:
        rows, same = loop_pairs(backend, baseline, iters=args.iters, rounds=args.rounds, threads=threads)
        print(f"\n{backend}: {'old':>8} {'new':>8} {'new/old':>8}   losses the same bits: {'yes' if same else 'NO'}")
        for piece, t_old, t_new in rows:
            print(f"  {piece:10} {t_old:8.1f} {t_new:8.1f} {t_new / t_old:8.3f}")
    print(f"\nload average after: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
