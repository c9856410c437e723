"""Sphinx extension: the benchmark page's tables, drawn from committed JSON.

The benchmark scripts write JSON files with their figures and an
``environment`` record (``scripts/_environment.py``: date, commit, CPU model,
load average, versions, BLAS threads). This extension turns the files in
``docs/_data`` into reST under ``_generated/`` at every build, so that the
page shows exactly what a run recorded, and says when and where. A file that
is missing gives a sentence saying how to record it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DATA = Path("_data")
GENERATED = Path("_generated")


def environment_line(env: dict[str, Any] | None) -> str:
    """One sentence: when, at which commit, on what machine and software."""
    if not env:
        return "*Recorded without an environment record (machine, date and versions unknown).*"
    versions = env.get("versions", {})
    soft = ", ".join(f"{name} {versions[name]}" for name in ("xgrad", "numpy", "torch", "jax") if name in versions)
    blas = _blas_libraries(env.get("thread_pools", []))
    load = env.get("load_average_1_5_15_min")
    load_text = (f", load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1 / 5 / 15 min; "
                 f"above {env.get('cpu_count')} means other work shared the cores)") if load else ""
    commit = env.get("commit") or "unknown"
    if commit.endswith("-dirty"):
        commit = commit.removesuffix("-dirty")[:12] + " (with uncommitted changes)"
    else:
        commit = commit[:12]
    return (f"*Recorded {env.get('date', '?')} at commit {commit} on {env.get('cpu_model', '?')} "
            f"({env.get('cpu_count', '?')} cores, {env.get('system', '?')} {env.get('machine', '')})"
            f"{load_text}; Python {env.get('python', '?')}, {soft}"
            f"{', ' + ', '.join(blas) if blas else ''}.*")


def _blas_libraries(pools: list[dict[str, Any]]) -> list[str]:
    """Each BLAS library once, with its versions: two packages (NumPy's and
    SciPy's wheels, say) may each load their own copy of OpenBLAS."""
    versions: dict[str, set[str]] = {}
    for pool in pools:
        if pool.get("user_api") == "blas":
            versions.setdefault(pool["internal_api"], set()).add(str(pool.get("version")))
    named = []
    for name, found in sorted(versions.items()):
        ordered = sorted(found, key=lambda v: [int(p) if p.isdigit() else 0 for p in v.split(".")])
        copies = f" ({len(ordered)} copies loaded)".replace("(2 copies", "(two copies") if len(ordered) > 1 else ""
        named.append(f"{name} {' and '.join(ordered)}{copies}" if len(ordered) <= 2
                     else f"{name} {', '.join(ordered[:-1])} and {ordered[-1]}{copies}")
    return named


def _table(header: list[str], rows: list[list[str]], widths: str | None = None) -> list[str]:
    lines = [".. list-table::", "   :header-rows: 1"]
    if widths:
        lines.append(f"   :widths: {widths}")
    lines.append("")
    for cells in [header, *rows]:
        lines.append(f"   * - {cells[0]}")
        lines.extend(f"     - {c}" for c in cells[1:])
    return lines


def train_text(data: dict[str, Any]) -> str:
    iters = data["iters"]
    rows = []
    for r in data["rows"]:
        rate = r["iters_per_s"]
        compiled = f", compiling {r['compile_s'][0]:.1f} s apart" if any(r.get("compile_s", [])) else ""
        rows.append([r["name"].replace("*", "\\*"), f"{r.get('dtype', '?')}, {r.get('threads', '?')}",
                     f"{r['median_s'] * 10_000 / iters:.2f} ({rate['min']:.0f}-{rate['max']:.0f} it/s{compiled})",
                     f"{r['ratio_to_xgrad']:.2f}x"])
    busy = f", {data['busy']} busy process(es) beside" if data.get("busy") else ""
    lines = [f"{iters:,} iterations per contender, training loop only, median of {data['rounds']} rounds"
             f"{busy}, scaled to seconds per 10,000 iterations; the last column is the median time "
             "divided by xgrad's (above 1: xgrad is faster).", "",
             environment_line(data.get("environment")), ""]
    lines += _table(["contender", "dtype, threads", "s per 10k it (it/s min-max)", "time / xgrad's"],
                    rows, "40 20 25 15")
    return "\n".join(lines) + "\n"


def numgrad_text(data: dict[str, Any]) -> str:
    g = data["one_gradient"]
    lines = [f"One numerical gradient of the network ({g['params']:,} parameters, batch {g['batch']}, "
             f"float64) on {g['backend']}:", "", environment_line(data.get("environment")), ""]
    book = g.get("book")
    book_rows = [[f"the book's own loop ({book['dtype']}, {book['threads']}, h = {book['h']:g}"
                  f"{', scaled from part of the entries' if book['scaled'] else ', all entries'})",
                  f"{book['seconds']:.1f}"]] if book else []
    lines += _table(["method", "seconds per gradient"], [*book_rows,
        ["direct loop: copy, perturb one parameter, two full forward passes (timed on a random "
         "sample of coordinates and scaled)", f"{g['direct_s']:.1f}"],
        ["xgrad's :meth:`~xgrad.TwoLayerNet.numerical_gradient` (same differences, same step)",
         f"{g['fast_s']:.3f} ({g['speedup']:.0f}x faster than the direct loop"
         + (f", {g['speedup_vs_book']:.0f}x faster than the book's)" if book else ")")],
    ])
    if data.get("generic_vectorized"):
        parts = [f"{r['peak_mb']:.1f} MB with ``chunk_size={r['chunk_size']}`` ({r['seconds']:.2f} s)"
                 for r in data["generic_vectorized"]]
        lines += ["", "The generic ``numerical_gradient(f, x, vectorized=True)`` on a function of 4,000 "
                  "variables keeps its memory to the chunk: peak " + ", ".join(parts) + "."]
    if data.get("training"):
        t = data["training"]["numerical"]
        lines += ["", f"Training with numerical gradients: {t['minutes']:.1f} minutes, final test accuracy "
                  f"{t['test_acc']:.4f}."]
    return "\n".join(lines) + "\n"


def _simple_table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    rule = "  ".join("=" * w for w in widths)

    def fmt(cells: list[str]) -> str:
        return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return [rule, fmt(header), rule, *(fmt(r) for r in rows), rule]


def derivative_text(data: dict[str, Any]) -> str:
    rows = [[s["dtype"], str(s.get("n", 1)), s["group"], s["library"], f"{s['worst_rel_error']:.1e}",
             f"{s['median_nfev']:g}", f"{s['median_time_us']:.0f}" if "median_time_us" in s else "",
             f"{s['coverage']:.0%}", f"{s['median_overstate']:.0f}"] for s in data["summary"]]
    lines = [_environment_or_old(data), ""]
    lines += _simple_table(["dtype", "n", "cases", "library", "worst", "nfev", "µs", "covered", "over"], rows)
    return "\n".join(lines) + "\n"


def check_gradient_text(data: dict[str, Any]) -> str:
    rows = [[s["dtype"], s["tool"], f"{s['caught']}/{s['bugs']}", f"{s['false_alarms']}/{s['correct']}",
             str(s["kink_false_alarms"])] for s in data["summary"]]
    lines = [_environment_or_old(data), ""]
    lines += _simple_table(["dtype", "tool", "bugs caught", "false alarms", "of them at kinks"], rows)
    return "\n".join(lines) + "\n"


def _environment_or_old(data: dict[str, Any]) -> str:
    if data.get("environment"):
        return environment_line(data["environment"])
    return ("*Recorded before the scripts wrote an environment record: date, commit and machine "
            "unknown (the 2-core development machine). Re-run the command above to record them.*")


PAGES = {
    "train.json": ("bench_train.inc", train_text,
                   "python scripts/bench_train.py --iters 3000 --rounds 3 --json docs/_data/train.json"),
    "numgrad.json": ("bench_numgrad.inc", numgrad_text,
                     "python scripts/bench_numgrad.py --json docs/_data/numgrad.json"),
    "bench_derivative.json": ("bench_derivative.inc", derivative_text,
                              "python scripts/bench_derivative.py --json docs/_data/bench_derivative.json"),
    "bench_check_gradient.json": ("bench_check_gradient.inc", check_gradient_text,
                                  "python scripts/bench_check_gradient.py --json docs/_data/bench_check_gradient.json"),
}


def write(srcdir: str | Path) -> list[Path]:
    """Write one include per JSON file; unchanged text is not rewritten."""
    written = []
    for source, (target, render, command) in PAGES.items():
        path = Path(srcdir) / DATA / source
        if path.exists():
            text = render(json.loads(path.read_text(encoding="utf-8")))
        else:
            text = f"*Not recorded yet*: run ``{command}`` and commit the file.\n"
        out = Path(srcdir) / GENERATED / target
        out.parent.mkdir(parents=True, exist_ok=True)
        if not out.exists() or out.read_text(encoding="utf-8") != text:
            out.write_text(text, encoding="utf-8")
        written.append(out)
    return written


def _on_builder_inited(app: Any) -> None:
    write(app.srcdir)


def setup(app: Any) -> dict[str, Any]:
    app.connect("builder-inited", _on_builder_inited)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
