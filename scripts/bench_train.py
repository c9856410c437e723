"""Training speed: xgrad on NumPy against the reference-style loop, PyTorch and JAX.

Every contender runs the book's setting (MNIST, 784-50-10 sigmoid network,
batch 100, lr 0.1) for the same number of iterations, in the same process, in
rounds (A, B, C, A, B, C, ...) so that a busy machine slows them alike; the
table shows medians, the spread of iterations per second over the rounds, and
ratios to xgrad measured in the same run.

Each contender runs as a user runs it, at its library's default threads (XLA's
and PyTorch's own pools; xgrad at its default threads='auto'); the rows limited
to one thread are extra. A compiled contender's compilation is timed apart:
the table's seconds are the training loop without it, and the compile column
gives it (xgrad on JAX compiles once per process, so only its first round
compiles; the hand-jitted loop compiles in every round).

With --busy, other processes spin meanwhile (one per core by default), as on a
shared machine, started before the first round and stopped after the last:
xgrad on NumPy, PyTorch and JAX against PyTorch's eager autograd and the
hand-jitted JAX loop, and the thread settings (threads='auto' against the
libraries' default threads).

With --torch-compile, a row for the PyTorch loop through ``torch.compile``
(its compilation, tens of seconds on a CPU, timed apart as well).

    python scripts/bench_train.py                 # 2,000 iterations, 3 rounds
    python scripts/bench_train.py --iters 10000 --rounds 5 --json out.json
    python scripts/bench_train.py --rounds 5 --busy
    python scripts/bench_train.py --iters 3000 --no-torch     # with JAX: compiled xgrad against a hand-jitted loop
    python scripts/bench_train.py --iters 3000 --no-jax --torch-compile
    python scripts/bench_train.py --only "threads='auto'" autograd hand-jitted "(compiled)"

XLA sizes its thread pools when JAX starts, so the JAX contenders limited to
one thread (as NumPy's BLAS is under threads='auto') each run in a child
process started with XLA_FLAGS set for one thread; the child times the loop
alone, as the others are timed, and prints the seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from _environment import environment
from _refloop import jax_loop, reference_loop, torch_loop
from threadpoolctl import threadpool_info, threadpool_limits

import xgrad


def xgrad_loop(data, *, iters, dtype="float32", threads="auto", backend="numpy"):
    """``(loop seconds, compile seconds)`` of one xgrad run."""
    # the default run loads MNIST itself, keeping its 8-bit images on the device;
    # `data` (the same digits, as floats) is what the other contenders train on
    result = xgrad.train(backend, iters=iters, eval_every=10**9, dtype=dtype, threads=threads, progress=False)
    compile_s = result.timings.get("compile_s", 0.0)
    return result.timings["train_s"] - compile_s, compile_s


# XLA_FLAGS for one thread: Eigen's pool off, one intra-op thread
XLA_ONE_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
_ROOT = Path(__file__).resolve().parent.parent


def jax_one_thread(which, iters):
    """``(loop seconds, compile seconds)`` of one JAX contender (`which`:
    "xgrad" or "hand") run in a child process whose XLA has one thread."""
    env = {**os.environ, "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} {XLA_ONE_THREAD}".strip(),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(_ROOT), os.environ.get("PYTHONPATH")]))}
    out = subprocess.run([sys.executable, __file__, "--child", which, "--iters", str(iters)], env=env,
                         check=True, capture_output=True, text=True).stdout
    loop_s, compile_s = out.strip().splitlines()[-1].split()
    return float(loop_s), float(compile_s)


def _child(which, iters):
    """In the child process: time one contender and print its seconds."""
    data = xgrad.load_mnist()
    if which == "xgrad":
        loop_s, compile_s = xgrad_loop(data, iters=iters, backend="jax")
    else:
        (x_train, t_train), _ = data
        loop_s, compile_s = _apart(jax_loop(x_train, t_train, iters=iters, with_compile=True))
    print(loop_s, compile_s)
    return 0


def _apart(timed):
    """``(seconds, compile seconds)`` with the compilation taken out of the seconds."""
    seconds, compile_s = timed
    return seconds - compile_s, compile_s


def _no_compile(seconds):
    return seconds, 0.0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iters", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-torch", action="store_true", help="skip PyTorch even if installed")
    ap.add_argument("--no-jax", action="store_true", help="skip JAX even if installed")
    ap.add_argument("--busy", type=int, nargs="?", default=0, const=os.cpu_count() or 1, metavar="N",
                    help="keep N other processes spinning meanwhile (default: one per core), as on a shared "
                         "machine, and compare threads='auto' with the default threads only")
    ap.add_argument("--torch-compile", action="store_true",
                    help="add the PyTorch loop through torch.compile (compiles for tens of seconds per round)")
    ap.add_argument("--only", nargs="+", metavar="TEXT",
                    help="run only the contenders whose name holds one of these (the first one kept is the base)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument("--accuracy-seeds", type=int, default=0, metavar="N",
                    help="instead: final test accuracy of full 10,000-iteration runs, seeds 0..N-1, "
                         "xgrad against the reference-style code, sigmoid and ReLU")
    ap.add_argument("--first-seed", type=int, default=0, help="with --accuracy-seeds: the first seed")
    ap.add_argument("--activations", nargs="+", default=["sigmoid", "relu"], help="with --accuracy-seeds")
    ap.add_argument("--child", choices=["xgrad", "hand"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return _child(args.child, args.iters)
    if args.accuracy_seeds:
        return accuracy_over_seeds(args)

    data = xgrad.load_mnist()
    contenders = _busy_contenders(data, args) if args.busy else _contenders(data, args)
    if args.only:
        contenders = {name: run for name, run in contenders.items() if any(text in name for text in args.only)}
        if not contenders:
            ap.error(f"--only {' '.join(args.only)}: no contender's name holds that")
    times = {name: [] for name in contenders}
    compiles = {name: [] for name in contenders}
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
    try:
        for r in range(args.rounds):
            for name, run in contenders.items():
                seconds, compile_s = run()
                times[name].append(seconds)
                compiles[name].append(compile_s)
            print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
    finally:
        for p in spinners:
            p.kill()
            p.wait()
    _report(times, compiles, args)


def _has_torch(args):
    if args.no_torch:
        return False
    try:
        import torch  # noqa: F401
    except ImportError:
        print("PyTorch is not installed: its rows are skipped")
        return False
    return True


def _has_jax(args):
    if args.no_jax:
        return False
    try:
        import jax  # noqa: F401
    except ImportError:
        print("JAX is not installed: its rows are skipped")
        return False
    return True


def _contenders(data, args):
    (x_train, t_train), _ = data
    contenders = {
        "xgrad numpy float32 (default threads='auto')": lambda: xgrad_loop(data, iters=args.iters),
        "xgrad numpy float64": lambda: xgrad_loop(data, iters=args.iters, dtype="float64"),
        "xgrad numpy float32, BLAS default threads": lambda: xgrad_loop(data, iters=args.iters, threads=None),
        # what 'auto' chooses on a busy machine, or where two threads would change the bits
        "xgrad numpy float32, 1 thread": lambda: xgrad_loop(data, iters=args.iters, threads=1),
        "reference-style loop, BLAS default threads": lambda: _no_compile(
            reference_loop(x_train, t_train, iters=args.iters)),
        "reference-style loop, 1 BLAS thread": lambda: _no_compile(
            _one_thread(reference_loop, x_train, t_train, args.iters)),
    }
    contenders.update(_torch_contenders(data, args))
    if _has_jax(args):
        contenders.update(_jax_contenders(data, args))
        # the same two with XLA on one thread, as NumPy's BLAS under threads='auto'
        contenders["xgrad jax float32 (compiled), XLA 1 thread"] = lambda: jax_one_thread("xgrad", args.iters)
        contenders["jax hand-jitted, XLA 1 thread"] = lambda: jax_one_thread("hand", args.iters)
    return contenders


def _torch_contenders(data, args):
    """xgrad on PyTorch against PyTorch's eager autograd, at their default threads."""
    (x_train, t_train), _ = data
    if not _has_torch(args):
        return {}
    contenders = {
        "xgrad torch float32 (threads='auto')": lambda: xgrad_loop(data, iters=args.iters, backend="torch"),
        "pytorch eager (autograd), default threads": lambda: _no_compile(torch_loop(x_train, t_train,
                                                                                    iters=args.iters)),
    }
    if not args.busy:
        # limited here rather than by torch_loop(threads=1), which would leave
        # one thread set for the rounds after it
        contenders["pytorch eager (autograd), 1 thread"] = lambda: _no_compile(_one_thread(
            torch_loop, x_train, t_train, args.iters, backend="torch"))
    if args.torch_compile:
        contenders["pytorch torch.compile (autograd), default threads"] = lambda: _apart(torch_loop(
            x_train, t_train, iters=args.iters, compiled=True))
    return contenders


def _jax_contenders(data, args):
    """xgrad on JAX against the hand-jitted loop, at XLA's default threads."""
    (x_train, t_train), _ = data
    return {
        "xgrad jax float32 (compiled)": lambda: xgrad_loop(data, iters=args.iters, backend="jax"),
        "jax hand-jitted lax.scan, 1000-step blocks": lambda: _apart(jax_loop(x_train, t_train, iters=args.iters,
                                                                              with_compile=True)),
    }


def _busy_contenders(data, args):
    """Under load: the libraries' own loops, and 'auto' threads against the libraries' default."""
    contenders = {
        "xgrad numpy float32 (threads='auto')": lambda: xgrad_loop(data, iters=args.iters),
        "xgrad numpy float32, BLAS default threads": lambda: xgrad_loop(data, iters=args.iters, threads=None),
    }
    contenders.update(_torch_contenders(data, args))
    if "xgrad torch float32 (threads='auto')" in contenders:
        contenders["xgrad torch float32, torch default threads"] = lambda: xgrad_loop(
            data, iters=args.iters, backend="torch", threads=None)
    if _has_jax(args):
        contenders.update(_jax_contenders(data, args))
    return contenders


def accuracy_over_seeds(args):
    (x_train, t_train), (x_test, t_test) = data = xgrad.load_mnist()
    rows = []
    seeds = range(args.first_seed, args.first_seed + args.accuracy_seeds)
    print(f"Final test accuracy after 10,000 iterations (batch 100, lr 0.1), seeds {seeds.start}..{seeds.stop - 1}:")
    for activation in args.activations:
        ours, ref = [], []
        for seed in seeds:
            r = xgrad.train("numpy", data=data, activation=activation, seed=seed, eval_every=0, progress=False)
            ours.append(r.net.accuracy(x_test, t_test))
            with threadpool_limits(1, user_api="blas"):
                _, net = reference_loop(x_train, t_train, iters=10_000, seed=seed, activation=activation,
                                        return_net=True)
            ref.append(float(net.accuracy(x_test, np.eye(10)[t_test])))
        for name, accs in (("xgrad", ours), ("reference-style", ref)):
            rows.append({"activation": activation, "code": name, "seeds": list(seeds), "accuracies": accs})
            print(f"  {activation:7} {name:16} mean {statistics.mean(accs):.4f}  median {statistics.median(accs):.4f}"
                  f"  min {min(accs):.4f}  max {max(accs):.4f}")
    if args.json:
        args.json.write_text(json.dumps({"accuracy": rows, "environment": environment()}, indent=2))
    return 0


def _one_thread(fn, x, t, iters, backend="numpy"):
    with xgrad.thread_limits(1, backend=backend):
        return fn(x, t, iters=iters)


def _report(times, compiles, args):
    base_name = next(iter(times))
    base = statistics.median(times[base_name])
    blas = [f"{i['internal_api']} {i['version']} ({i['num_threads']} threads)" for i in threadpool_info()
            if i["user_api"] == "blas"]
    load = f", {args.busy} busy process(es) beside" if args.busy else ""
    print(f"\n{args.iters} iterations, median of {args.rounds} rounds{load}; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}, numpy {np.__version__}, BLAS {', '.join(blas)}")
    print("seconds of the training loop alone; compile s: seconds compiling, apart (first round; median of the others)")
    print(f"{'contender':50} {'threads':>16} {'median s':>9} {'per 10k it':>10} {'it/s median':>11} "
          f"{'it/s min-max':>15} {'compile s':>14} {'xgrad faster by':>15}")
    rows = []
    for name, ts in times.items():
        med = statistics.median(ts)
        rate = {"median": args.iters / med, "min": args.iters / max(ts), "max": args.iters / min(ts)}
        settings = _settings(name)
        cs = compiles[name]
        rows.append({"name": name, **settings, "median_s": med, "times_s": ts, "compile_s": cs,
                     "iters_per_s": rate, "ratio_to_xgrad": med / base})
        spread = f"{rate['min']:.0f}-{rate['max']:.0f}"
        compiled = (f"{cs[0]:.2f}" + (f"; {statistics.median(cs[1:]):.2f}" if len(cs) > 1 else "")) if any(cs) else "-"
        print(f"{name:50} {settings.get('threads', '?')!s:>16} {med:9.3f} {med * 10_000 / args.iters:9.2f}s "
              f"{rate['median']:11.0f} {spread:>15} {compiled:>14} {med / base:14.2f}x")
    if args.json:
        args.json.write_text(json.dumps({"iters": args.iters, "rounds": args.rounds, "busy": args.busy,
                                         "rows": rows, "environment": environment()}, indent=2))


# dtype and thread setting of each contender, for the JSON file ("auto": xgrad's
# choice, one thread for this network; "default": the library's own pool size)
SETTINGS = {
    "xgrad numpy float32 (default threads='auto')": {"dtype": "float32", "threads": "auto"},
    "xgrad numpy float64": {"dtype": "float64", "threads": "auto"},
    "xgrad numpy float32, BLAS default threads": {"dtype": "float32", "threads": "default"},
    "xgrad numpy float32, 1 thread": {"dtype": "float32", "threads": 1},
    "reference-style loop, BLAS default threads": {"dtype": "float64", "threads": "default"},
    "reference-style loop, 1 BLAS thread": {"dtype": "float64", "threads": 1},
    "xgrad torch float32 (threads='auto')": {"dtype": "float32", "threads": "auto"},
    "pytorch eager (autograd), default threads": {"dtype": "float32", "threads": "default"},
    "pytorch eager (autograd), 1 thread": {"dtype": "float32", "threads": 1},
    "pytorch torch.compile (autograd), default threads": {"dtype": "float32", "threads": "default",
                                                          "compiled": True},
    "xgrad numpy float32 (threads='auto')": {"dtype": "float32", "threads": "auto"},
    "xgrad torch float32, torch default threads": {"dtype": "float32", "threads": "default"},
    "xgrad jax float32 (compiled)": {"dtype": "float32", "threads": "default (XLA)", "compiled": True},
    "jax hand-jitted lax.scan, 1000-step blocks": {"dtype": "float32", "threads": "default (XLA)",
                                                   "compiled": True},
    "xgrad jax float32 (compiled), XLA 1 thread": {"dtype": "float32", "threads": 1, "compiled": True,
                                                   "xla_flags": XLA_ONE_THREAD},
    "jax hand-jitted, XLA 1 thread": {"dtype": "float32", "threads": 1, "compiled": True,
                                      "xla_flags": XLA_ONE_THREAD},
}



def _settings(name):
    """The contender's SETTINGS, the library's default threads spelt out as a count."""
    settings = dict(SETTINGS.get(name, {}))
    if settings.get("threads") == "default (XLA)":  # XLA's pools: one thread per core
        settings["threads"] = f"XLA default ({os.cpu_count()})"
    elif settings.get("threads") == "default":
        settings["threads"] = "library default"
    return settings


if __name__ == "__main__":
    sys.exit(main())
