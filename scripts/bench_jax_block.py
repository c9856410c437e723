"""Where xgrad's compiled JAX training loop spends its time: one block at a time.

``bench_train.py`` times whole runs; this script takes them apart. Each
contender runs the same 1,000 SGD steps of the book's setting (784-50-10
sigmoid, batch 100, lr 0.1, float32, XLA's default threads) on the same
minibatch rows (the plan's first block) from the same parameters, one call
at a time, with the host waiting for its end. The contenders run in rounds
(A, B, C, ..., A, B, C, ...), so that a busy machine slows them alike; the
table gives medians in milliseconds per 1,000 steps and the median over the
rounds of each round's ratio to the first contender, the hand-jitted loop.

Contenders:

- the hand-jitted ``lax.scan`` of ``bench_train.py`` (``jax.value_and_grad``);
- xgrad's block program as ``xgrad.train`` runs it;
- the same with the minibatch gathered by ``take`` (a bounds check and fill
  per element) and its one-hot rows by a second gather, as before;
- the same program with its parameters donated (``donate_argnums``);
- the same program with the block's losses moved to the host after each call;
- the same program stepping ten plan blocks (10,000 steps) in one call,
  as a run without evaluations could, per 1,000 steps.

Those of xgrad's variants that must compute the same numbers say whether their
parameters after the block are xgrad's bit for bit.

With ``--forms``, xgrad's step written out in JAX as the core computes it, in
xgrad's block program (the same bits), and changed one form at a time (other
numbers): the sigmoid as ``jax.nn.sigmoid`` (XLA's logistic, where the
core writes ``1 / (1 + exp(-a))``), the bias gradients as sums over the
batch (not products with a row of ones), integer labels (the loss read at
the label, no one-hot rows), the last two together, and the learning rate
multiplying the output error (as xgrad's eager step has it) rather than the
gradients in the update.

    python scripts/bench_jax_block.py                  # 15 rounds
    python scripts/bench_jax_block.py --rounds 31 --json block.json
    python scripts/bench_jax_block.py --forms          # and the step's maths in other forms
    XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1" \\
        python scripts/bench_jax_block.py --cpu-time   # XLA on one thread: CPU seconds, less swayed by load
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from _environment import environment
from _refloop import jax_block

import xgrad


def _run_pieces():
    """The pieces of a default JAX run of ``xgrad.train``, as it builds them, before its loop."""
    from xgrad._net.net import TwoLayerNet
    from xgrad._train.config import TrainConfig, check_settings, current_keywords, prepare_data
    from xgrad._train.run import Run

    s = check_settings(current_keywords({"backend": "jax", "eval_every": 0, "progress": False}))
    cfg = TrainConfig.of(s)
    b = xgrad.resolve_backend("jax")
    (x_train, t_train), (x_test, t_test) = prepare_data(cfg, None, s["data_dir"])
    net = TwoLayerNet(x_train.shape[1], cfg.hidden_size, cfg.output_size, activation=cfg.activation,
                      weight_init_std=cfg.weight_init_std, dtype=cfg.dtype, xp=b.xp, device=b.device, seed=cfg.seed)
    return Run(cfg, b, net, x_train, t_train, x_test, t_test)


def contenders(blocks_per_call=10):
    """``{name: (call, same_bits)}``: `call()` runs 1,000 steps (or `blocks_per_call`
    times as many) and returns ``(losses, params)``; `same_bits` whether the
    parameters it gives are to be compared with xgrad's."""
    import jax
    import jax.numpy as jnp

    from xgrad._infra.host import to_numpy
    from xgrad._net.core import activation_named, sgd_step
    from xgrad._train import stepper
    from xgrad._train.data import minibatch
    from xgrad._train.plan import PLAN_BLOCK

    run = _run_pieces()
    st, data = run.stepping, run.data.train
    plan = run.plan.block(0)
    params = dict(run.net.params)
    st.start(params, plan, None)
    arrays = (data.images, data.labels, data.eye)
    act = activation_named(run.net.activation)

    def taken(p, idx, images, labels, eye):  # the gathers as they were: take, and a gather of one-hot rows
        xb, tb = minibatch(images, labels, eye, idx, levels=data.levels, dtype=data.dtype, xp=jnp)
        return sgd_step(p, xb, tb, lr=run.cfg.lr, activation=act, xp=jnp, rows_sum_to_one=True, lr_on_update=True)

    take_stepper = stepper.jax_stepper(taken, length=PLAN_BLOCK, data=arrays)
    step = st._stepper
    args = (params, plan, 0, PLAN_BLOCK, arrays)
    program = stepper._block_program(jax, _jit_step_of(st))
    donated = jax.jit(program, static_argnames="size", donate_argnums=0).lower(*args, size=PLAN_BLOCK).compile()
    n = blocks_per_call * PLAN_BLOCK
    joined = jnp.concatenate([run.plan.block(b) for b in range(blocks_per_call)])
    whole = jax.jit(program, static_argnames="size").lower(params, joined, 0, n, arrays, size=n).compile()

    def to_host(losses_params):
        losses, p = losses_params
        return [float(v) for v in to_numpy(losses)], p

    (x_train, t_train), _ = xgrad.load_mnist()
    hand = jax_block(run.cfg.lr)
    x, t = jnp.asarray(x_train, dtype=jnp.float32), jnp.asarray(t_train, dtype=jnp.int32)
    idx = jnp.asarray(to_numpy(plan), dtype=jnp.int32)
    fresh = lambda: {k: jnp.array(v, copy=True) for k, v in params.items()}  # noqa: E731  (donated each call)
    return {
        "jax hand-jitted lax.scan": (lambda: hand(params, idx, x, t)[::-1], False),
        "xgrad block program (as train runs it)": (lambda: step(params, plan, 0, PLAN_BLOCK), True),
        "xgrad, gathers by take (as before)": (lambda: take_stepper(params, plan, 0, PLAN_BLOCK), True),
        "xgrad, parameters donated": (lambda: donated(fresh(), plan, 0, PLAN_BLOCK, arrays), True),
        "xgrad, losses to the host each block": (lambda: to_host(step(params, plan, 0, PLAN_BLOCK)), True),
        f"xgrad, {blocks_per_call} blocks in one call (per 1,000)": (
            lambda: whole(params, joined, 0, n, arrays), False),
    }, blocks_per_call


def form_contenders():
    """``{name: (call, same_bits)}``: xgrad's step written out, as the core computes it (the same
    bits) and in other forms (see ``--forms``)."""
    import jax
    import jax.numpy as jnp

    from xgrad._train import stepper
    from xgrad._train.plan import PLAN_BLOCK

    run = _run_pieces()
    data = run.data.train
    plan, params, lr = run.plan.block(0), dict(run.net.params), run.cfg.lr
    classes = jnp.arange(run.cfg.output_size, dtype=data.labels.dtype)

    def written_out(forms):
        def step(p, idx, images, labels, eye):
            x, lab = images[idx], labels[idx]
            n = x.shape[0]
            a1 = x @ p["W1"] + p["b1"]
            z1 = jax.nn.sigmoid(a1) if "sigmoid" in forms else 1 / (1 + jnp.exp(-a1))
            scores = z1 @ p["W2"] + p["b2"]
            shifted = scores - jnp.max(scores, axis=1, keepdims=True)
            e = jnp.exp(shifted)
            total = jnp.sum(e, axis=1, keepdims=True)
            target = (lab[:, None] == classes).astype(x.dtype)
            if "labels" in forms:
                loss = -jnp.sum(jnp.take_along_axis(shifted - jnp.log(total), lab[:, None], axis=1)) / n
                dy = (e / total).at[jnp.arange(n), lab].add(-1.0) * (1.0 / n)
            else:
                loss = -jnp.sum(target * (shifted - jnp.log(total))) / n
                dy = (e / total - target) * ((lr if "early" in forms else 1.0) / n)
            da1 = (dy @ p["W2"].T) * (z1 * (1 - z1))
            if "sums" in forms:
                b1, b2 = jnp.sum(da1, axis=0), jnp.sum(dy, axis=0)
            else:
                ones = jnp.ones_like(x[:, 0])
                b1, b2 = ones @ da1, ones @ dy
            grads = {"W1": x.T @ da1, "b1": b1, "W2": z1.T @ dy, "b2": b2}
            if "early" in forms:  # the learning rate already in the output error, as an eager step has it
                return loss, {k: p[k] - grads[k] for k in p}
            return loss, {k: p[k] - lr * grads[k] for k in p}
        return stepper.jax_stepper(step, length=PLAN_BLOCK, data=(data.images, data.labels, data.eye))

    forms = {"as the core computes it": (), "jax.nn.sigmoid": ("sigmoid",), "bias gradients as sums": ("sums",),
             "integer labels": ("labels",), "sums and integer labels": ("sums", "labels"),
             "lr on the output error": ("early",)}
    out = {}
    for name, f in forms.items():
        run_block = written_out(f)
        out[f"step written out: {name}"] = ((lambda s=run_block: s(params, plan, 0, PLAN_BLOCK)), not f)
    return out


def _jit_step_of(st):
    """The traced step of `st` (a started :class:`~xgrad._train.stepping.Stepping`), as its program has it."""
    from xgrad._infra.backend import library
    from xgrad._train.stepping import _jit_step

    return _jit_step(st.cfg.lr, st.activation.name, st.data.levels, st.data.dtype, st.b.xp,
                     library(st.b.name).gather)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--cpu-time", action="store_true",
                    help="time CPU seconds of the process rather than wall seconds (with XLA on one thread)")
    ap.add_argument("--forms", action="store_true", help="add xgrad's step written out in other maths forms")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args(argv)
    import jax

    clock = time.process_time if args.cpu_time else time.perf_counter
    runs, per_call = contenders()
    if args.forms:
        runs.update(form_contenders())
    per = {name: per_call if "in one call" in name else 1 for name in runs}
    base_name = next(iter(runs))
    xgrad_name = "xgrad block program (as train runs it)"
    reference = jax.block_until_ready(runs[xgrad_name][0]())[1]
    same = {}
    for name, (call, compare) in runs.items():
        out = jax.block_until_ready(call())  # compiled, warmed
        if compare:
            same[name] = all(np.array_equal(np.asarray(out[1][k]), np.asarray(reference[k])) for k in reference)
    load_before = os.getloadavg()
    times = {name: [] for name in runs}
    for _ in range(args.rounds):
        for name, (call, _compare) in runs.items():
            t0 = clock()
            jax.block_until_ready(call())
            times[name].append((clock() - t0) / per[name])
    load_after = os.getloadavg()
    unit = "CPU ms" if args.cpu_time else "ms"
    print(f"{args.rounds} rounds, XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}, {os.cpu_count()} cores, "
          f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after")
    print(f"{'contender':48} {unit + ' / 1,000 steps':>20} {'min':>8} {'hand / this':>12} {'same bits':>10}")
    rows = []
    for name, ts in times.items():
        ratio = statistics.median(b / s for b, s in zip(times[base_name], ts, strict=True))
        bits = {True: "yes", False: "NO"}.get(same.get(name), "-")
        print(f"{name:48} {statistics.median(ts) * 1e3:20.1f} {min(ts) * 1e3:8.1f} {ratio:12.3f} {bits:>10}")
        rows.append({"name": name, "median_ms": statistics.median(ts) * 1e3, "times_s": ts,
                     "ratio_hand_over_this": ratio, "same_bits_as_xgrad": same.get(name)})
    if args.json:
        args.json.write_text(json.dumps({"rounds": args.rounds, "cpu_time": args.cpu_time, "rows": rows,
                                         "load_before": load_before, "load_after": load_after,
                                         "environment": environment()}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
