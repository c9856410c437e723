"""The benchmark scripts run on the CPU and print what they promise."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


def _run(*argv: str) -> str:
    done = subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_bench_gpu_on_cpu_backends(tmp_path):
    out = _run(str(SCRIPTS / "bench_gpu.py"), "--backends", "numpy", "cupy", "--quick", "--iters", "2",
               "--rounds", "1", "--json", str(tmp_path / "gpu.json"))
    report = json.loads((tmp_path / "gpu.json").read_text())
    trains = [r for r in report["rows"] if r["kind"] == "train"]
    assert {(r["batch"], r["hidden"]) for r in trains} == {(100, 50), (100, 512), (1000, 50), (1000, 512)}
    assert all(r["s_per_iter"] > 0 for r in report["rows"] if r["kind"] == "train")
    assert "numpy" in out and "Numerical gradient" in out
    backends = {r["backend"] for r in report["rows"]}
    assert ("cupy: skipped" in out) != ("cupy" in backends)  # run, or said why not


def test_bench_numgrad_reports_the_speedup(tmp_path):
    out = _run(str(SCRIPTS / "bench_numgrad.py"), "--rounds", "1", "--coords", "10", "--book-every", "400",
               "--json", str(tmp_path / "n.json"))
    report = json.loads((tmp_path / "n.json").read_text())
    assert report["one_gradient"]["params"] == 39760
    assert report["one_gradient"]["speedup"] > 1
    book = report["one_gradient"]["book"]  # the book's own loop, timed in the same run
    assert book["entries_timed"] == sum(len(range(0, n, 400)) for n in (39200, 50, 500, 10))
    assert book["scaled"] and book["dtype"] == "float64"
    assert report["one_gradient"]["speedup_vs_book"] == book["seconds"] / report["one_gradient"]["fast_s"]
    assert book["largest_difference"] < 1e-6  # the same gradient, up to the book's 1e-7 inside its log
    assert "speed-up of xgrad over the book's loop" in out
    assert [r["chunk_size"] for r in report["generic_vectorized"]] == [16, 128, 1024]
    assert "speed-up" in out


def test_bench_train_prints_ratios(tmp_path):
    out = _run(str(SCRIPTS / "bench_train.py"), "--iters", "20", "--rounds", "1", "--no-torch", "--json",
               str(tmp_path / "t.json"))
    rows = json.loads((tmp_path / "t.json").read_text())["rows"]
    assert rows[0]["ratio_to_xgrad"] == 1.0
    assert any(r["name"].startswith("reference-style") for r in rows)
    assert "xgrad faster by" in out
    compile_s = {r["name"]: r["compile_s"] for r in rows}
    assert compile_s["xgrad numpy float32 (default threads='auto')"] == [0.0]  # nothing compiles
    if importlib.util.find_spec("jax") is not None:  # compiled rows time their compilation apart
        assert compile_s["jax hand-jitted lax.scan, 1000-step blocks"][0] > 0
        assert "xgrad jax float32 (compiled)" in compile_s


def test_compare_lr_find_prints_both_rules_against_the_sweep(tmp_path):
    out = _run(str(SCRIPTS / "compare_lr_find.py"), "--datasets", "mnist", "--samples", "2000", "--iters", "60",
               "--lr", "0.1", "1", "--seeds", "0", "--find-iters", "100", "--json", str(tmp_path / "c.json"))
    report = json.loads((tmp_path / "c.json").read_text())
    (c,) = report["comparisons"]
    assert c["dataset"] == "mnist" and c["sweep"]["best_lr"] in (0.1, 1.0) and len(c["sweep"]["runs"]) == 2
    finds = c["lr_find"]
    assert [f["seed"] for f in finds] == [0] and finds[0]["suggestion"] == c["median_suggestion"]
    if c["median_suggestion"] is not None:
        assert c["factor_suggestion"] >= 1 and 0 <= c["val_acc_at"]["suggestion"] <= 1
    assert "best by validation accuracy: lr" in out and "one tenth of the minimum" in out
    assert "environment" in report


def test_screenshot_docs_without_a_browser_says_so(tmp_path):
    env = {"PATH": str(tmp_path), "PYTHONPATH": str(SCRIPTS.parent)}  # no browser on this PATH
    done = subprocess.run([sys.executable, str(SCRIPTS / "screenshot_docs.py"), "--site", str(tmp_path),
                           "--out", str(tmp_path / "shots")], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    assert "no headless browser found" in done.stdout and "apt-get install chromium" in done.stdout
    assert not (tmp_path / "shots").exists()


def test_screenshot_docs_frames_a_page_at_a_phone_width(tmp_path):
    sys.path.insert(0, str(SCRIPTS))
    try:
        import screenshot_docs
    finally:
        sys.path.remove(str(SCRIPTS))
    page = tmp_path / "index.html"
    page.write_text("<html></html>")
    frame = screenshot_docs.frame_page(page, 390, 4000, tmp_path)
    html = frame.read_text()
    assert f"src='{page.as_uri()}' width='390' height='4000'" in html
    assert screenshot_docs.MIN_WINDOW > 390  # why the frame: Chrome's window is never that narrow


def test_bench_halving_prints_both_picks_and_the_ratios(tmp_path):
    out = _run(str(SCRIPTS / "bench_halving.py"), "--iters", "60", "--eval-every", "20", "--lr", "0.1", "1", "3",
               "--json",
               str(tmp_path / "h.json"))
    report = json.loads((tmp_path / "h.json").read_text())
    assert report["rungs"] == [20, 60] and report["runs"] == 3
    assert report["full"]["iterations"] == 180
    assert report["halving_sweep"]["iterations"] == 20 * 3 + 40  # one run goes on from 20 to 60
    assert report["iterations_ratio"] == report["halving_sweep"]["iterations"] / 180
    assert report["same_pick"] and report["pick_has_full_grid_numbers"]
    assert "of the iterations" in out and "the same pick: yes" in out


def test_bench_train_busy_mode_compares_the_libraries_own_loops_under_load(tmp_path):
    out = _run(str(SCRIPTS / "bench_train.py"), "--iters", "20", "--rounds", "1", "--busy", "1", "--no-torch",
               "--only", "numpy float32 (threads='auto')", "jax", "--json", str(tmp_path / "b.json"))
    report = json.loads((tmp_path / "b.json").read_text())
    names = [r["name"] for r in report["rows"]]
    assert report["busy"] == 1 and "1 busy process(es) beside" in out
    want = ["xgrad numpy float32 (threads='auto')"]  # --only keeps these, in the table's order
    if importlib.util.find_spec("jax") is not None:
        want += ["xgrad jax float32 (compiled)", "jax hand-jitted lax.scan, 1000-step blocks"]
    assert names == want
    done = subprocess.run([sys.executable, str(SCRIPTS / "bench_train.py"), "--only", "no such contender"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 2 and "no contender's name holds that" in done.stderr


def test_bench_step_prints_the_overhead_and_the_pairs():
    out = _run(str(SCRIPTS / "bench_step.py"), "--backends", "numpy", "--number", "3", "--rounds", "1")
    assert "numpy" in out and "two large products" in out and "overhead" in out
    out = _run(str(SCRIPTS / "bench_step.py"), "--backends", "numpy", "--number", "3", "--rounds", "1", "--ops")
    assert "B/A" in out and "transpose: xp.matrix_transpose vs .mT" in out
    assert out.count(" yes") >= 2  # the same-bits column is filled in


def test_bench_step_loop_compares_two_versions_in_one_process():
    """--loop times this checkout against --baseline's package (here the same
    code, imported twice): the three pieces, and the losses compared bit for bit."""
    root = SCRIPTS.parent
    out = _run(str(SCRIPTS / "bench_step.py"), "--loop", "--baseline", str(root), "--backends", "numpy",
               "--iters", "12", "--rounds", "1")
    assert "losses the same bits: yes" in out
    assert all(f"  {piece} " in out for piece in ("minibatch", "step", "loop")) and "new/old" in out
    done = subprocess.run([sys.executable, str(SCRIPTS / "bench_step.py"), "--loop"], capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 2 and "--loop needs --baseline DIR" in done.stderr


def test_bench_step_minibatch_compares_ways_to_the_same_numbers():
    out = _run(str(SCRIPTS / "bench_step.py"), "--minibatch", "--number", "3", "--rounds", "1")
    assert "a 256-entry table" in out and "B/A" in out
    assert out.count(" yes") == 4  # every candidate gives the loop's bits


def test_bench_jax_block_compares_the_block_programs(tmp_path):
    """xgrad's compiled block against the hand-jitted one, and variants that keep xgrad's bits."""
    pytest.importorskip("jax")
    out = _run(str(SCRIPTS / "bench_jax_block.py"), "--rounds", "1", "--json", str(tmp_path / "b.json"))
    rows = {r["name"]: r for r in json.loads((tmp_path / "b.json").read_text())["rows"]}
    assert next(iter(rows)) == "jax hand-jitted lax.scan" and "hand / this" in out
    assert rows["jax hand-jitted lax.scan"]["ratio_hand_over_this"] == 1.0
    assert all(r["median_ms"] > 0 for r in rows.values())
    same = {name for name, r in rows.items() if r["same_bits_as_xgrad"]}
    assert same == {"xgrad block program (as train runs it)", "xgrad, gathers by take (as before)",
                    "xgrad, parameters donated", "xgrad, losses to the host each block"}


def test_bench_check_prints_every_backend_against_numpy(tmp_path):
    out = _run(str(SCRIPTS / "bench_check.py"), "--rounds", "1", "--backends", "numpy", "jax",
               "--only", "derivative", "numerical_gradient", "--json", str(tmp_path / "c.json"))
    report = json.loads((tmp_path / "c.json").read_text())
    rows = report["rows"]
    assert [r["backend"] for r in rows][:2] == ["numpy", "numpy"]  # the baseline, measured in the same run
    assert all(r["ratio_to_numpy"] == 1.0 for r in rows if r["backend"] == "numpy")
    assert all(r["dtype"] == "float64" and r["median_s"] > 0 for r in rows)
    assert "environment" in report and "x numpy" in out
    if importlib.util.find_spec("jax") is not None:
        assert {r["case"] for r in rows if r["backend"] == "jax"} == {"derivative", "numerical_gradient"}
