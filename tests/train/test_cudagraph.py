"""The CUDA-graph block stepper: its buffers and replay on the CPU, the CUDA
capture's sequence against a stand-in for CuPy, and the real thing on a GPU."""

from __future__ import annotations

import ast
import contextlib
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from _helpers import assert_close

import xgrad
from xgrad._infra.host import to_numpy
from xgrad._net.core import activation_named, loss_and_gradient
from xgrad._train.cudagraph import cuda_graph_capture, graph_stepper

LR = 0.1


def _problem(xp, *, device=None, dtype=None, n=40, d=6, hidden=5, classes=3, seed=0):
    """A random network, data, one-hot targets and a block of minibatch indices."""
    rng = np.random.default_rng(seed)
    dtype = dtype or xp.float64
    put = lambda a, dt=dtype: xp.asarray(a, dtype=dt, device=device)  # noqa: E731
    params = {"W1": put(rng.normal(size=(d, hidden))), "b1": put(rng.normal(size=hidden)),
              "W2": put(rng.normal(size=(hidden, classes))), "b2": put(rng.normal(size=classes))}
    x = put(rng.normal(size=(n, d)))
    targets = put(np.eye(classes)[rng.integers(0, classes, size=n)])
    idx = put(rng.integers(0, n, size=(7, 8)), xp.int64)
    return params, x, targets, idx


def _make_step(x, targets, xp):
    """The training loop's backprop step (`_Run._step`), on fixed data."""
    act = activation_named("sigmoid")

    def step(params, idx):
        xb, tb = xp.take(x, idx, axis=0), xp.take(targets, idx, axis=0)
        loss, steps = loss_and_gradient(params, xb, tb, activation=act, xp=xp, scale=LR, rows_sum_to_one=True)
        return loss, {k: params[k] - steps[k] for k in params}

    return step


def _eager(step, params, idx_block, xp):
    losses = []
    for j in range(idx_block.shape[0]):
        loss, params = step(params, idx_block[j, ...])
        losses.append(loss)
    return xp.stack(losses), params


def replay(body):
    """A capture that records by remembering `body` and replays by calling it.

    Like CuPy's it runs the body once first (the warm-up writes the buffers);
    unlike a CUDA capture it runs it again while "recording", so the buffers
    hold stale values at every launch unless the stepper refills them."""
    body()
    body()
    return body


@pytest.fixture(params=["numpy", "array_api_strict"])
def cpu(request):
    return xgrad.resolve_backend(request.param)


def test_replayed_steps_are_the_eager_steps_bit_for_bit(cpu):
    xp = cpu.xp
    params, x, targets, idx = _problem(xp, device=cpu.device)
    step = _make_step(x, targets, xp)
    run = graph_stepper(step, params, idx[0, ...], xp=xp, capture=replay)
    losses, got = run(params, idx)
    want_losses, want = _eager(step, params, idx, xp)
    assert losses.shape == (7,)
    np.testing.assert_array_equal(to_numpy(losses), to_numpy(want_losses))
    for k in want:
        np.testing.assert_array_equal(to_numpy(got[k]), to_numpy(want[k]))


def test_blocks_chain_like_one_long_run_and_ragged_blocks_work(cpu):
    xp = cpu.xp
    params, x, targets, idx = _problem(xp, device=cpu.device)
    step = _make_step(x, targets, xp)
    run = graph_stepper(step, params, idx[0, ...], xp=xp, capture=replay)
    first, mid = run(params, idx[:4, ...])
    second, end = run(mid, idx[4:, ...])
    empty, same = run(end, idx[:0, ...])
    want_losses, want = _eager(step, params, idx, xp)
    np.testing.assert_array_equal(np.concatenate([to_numpy(first), to_numpy(second)]), to_numpy(want_losses))
    assert empty.shape == (0,)
    for k in want:
        np.testing.assert_array_equal(to_numpy(end[k]), to_numpy(want[k]))
        np.testing.assert_array_equal(to_numpy(same[k]), to_numpy(want[k]))


def test_each_block_starts_from_the_params_it_is_given(cpu):
    """Not from where the previous block left the buffers."""
    xp = cpu.xp
    params, x, targets, idx = _problem(xp, device=cpu.device)
    other, *_ = _problem(xp, device=cpu.device, seed=1)
    step = _make_step(x, targets, xp)
    run = graph_stepper(step, params, idx[0, ...], xp=xp, capture=replay)
    run(params, idx)
    losses, got = run(other, idx)
    want_losses, want = _eager(step, other, idx, xp)
    np.testing.assert_array_equal(to_numpy(losses), to_numpy(want_losses))
    np.testing.assert_array_equal(to_numpy(got["W1"]), to_numpy(want["W1"]))


def test_callers_params_and_returned_params_are_never_written(cpu):
    xp = cpu.xp
    params, x, targets, idx = _problem(xp, device=cpu.device)
    before = {k: to_numpy(v) for k, v in params.items()}
    run = graph_stepper(_make_step(x, targets, xp), params, idx[0, ...], xp=xp, capture=replay)
    _, after_one = run(params, idx[:1, ...])
    kept = {k: to_numpy(v) for k, v in after_one.items()}
    run(after_one, idx)  # a later block: the history the loop keeps must not change under it
    for k in params:
        np.testing.assert_array_equal(to_numpy(params[k]), before[k])
        np.testing.assert_array_equal(to_numpy(after_one[k]), kept[k])
        assert not np.array_equal(kept[k], before[k])  # one step was taken


def test_a_block_serves_as_the_example_of_its_rows():
    """The training loop passes a block of the plan: its rows are the examples."""
    params, x, targets, idx = _problem(np)
    step = _make_step(x, targets, np)
    losses, got = graph_stepper(step, params, idx[:3], xp=np, capture=replay)(params, idx)
    want_losses, want = _eager(step, params, idx, np)
    np.testing.assert_array_equal(losses, want_losses)
    np.testing.assert_array_equal(got["W2"], want["W2"])


def test_one_launch_per_step_after_one_capture():
    params, x, targets, idx = _problem(np)
    calls = {"capture": 0, "launch": 0}

    def counting(body):
        calls["capture"] += 1
        body()

        def launch():
            calls["launch"] += 1
            body()

        return launch

    run = graph_stepper(_make_step(x, targets, np), params, idx[0], xp=np, capture=counting)
    run(params, idx)
    run(params, idx[:3])
    assert calls == {"capture": 1, "launch": 10}


def _bad_step(loss_shape=(), dtype=None, drop=None):
    def step(params, idx):
        new = {k: (v if dtype is None else v.astype(dtype)) for k, v in params.items() if k != drop}
        return np.zeros(loss_shape), new

    return step


@pytest.mark.parametrize(("step", "error", "match"), [
    (_bad_step(loss_shape=(1,)), ValueError, r"the step's loss must be a 0-D array; got shape \(1,\)"),
    (_bad_step(dtype=np.float32), TypeError, r"the step's new parameters\['w'\] must have dtype float64; got float32"),
    (_bad_step(drop="w"), TypeError, r"the step's new parameters must be a dict with the arrays \['w'\]; got \[\]"),
])
def test_a_step_that_breaks_the_contract_is_refused(step, error, match):
    with pytest.raises(error, match=match):
        graph_stepper(step, {"w": np.zeros(3)}, np.zeros(2, dtype=np.int64), xp=np, capture=replay)


def test_wrong_inputs_are_refused():
    params, x, targets, idx = _problem(np)
    step = _make_step(x, targets, np)
    with pytest.raises(ValueError, match=r"`idx_example` must be a row of indices \(1-D\) or a non-empty block of "
                                         r"rows \(2-D\); got shape \(7, 8, 1\)"):
        graph_stepper(step, params, idx[..., None], xp=np, capture=replay)
    with pytest.raises(ValueError, match=r"got shape \(0, 8\)"):
        graph_stepper(step, params, idx[:0], xp=np, capture=replay)
    with pytest.raises(TypeError, match=r"`params` must be a non-empty dict of arrays; got list"):
        graph_stepper(step, [params["W1"]], idx[0], xp=np, capture=replay)
    run = graph_stepper(step, params, idx[0], xp=np, capture=replay)
    with pytest.raises(ValueError, match=r"`idx_block` must have shape \(k, 8\), one row of indices per step; "
                                         r"got \(8,\)"):
        run(params, idx[0])
    with pytest.raises(ValueError, match=r"got \(7, 4\)"):
        run(params, idx[:, :4])
    with pytest.raises(TypeError, match=r"`idx_block` must have the example's dtype int64; got int32"):
        run(params, idx.astype(np.int32))
    with pytest.raises(TypeError, match=r"params\['W1'\] must have dtype float64; got float32"):
        run({**params, "W1": params["W1"].astype(np.float32)}, idx)
    with pytest.raises(ValueError, match=r"params\['b2'\] must have shape \(3,\); got \(1, 3\)"):
        run({**params, "b2": params["b2"][None, :]}, idx)


def test_the_module_imports_neither_numpy_nor_cupy_at_import():
    tree = ast.parse((Path(xgrad.__file__).parent / "_train" / "cudagraph.py").read_text())
    top = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    names = {a.name.split(".")[0] for n in top for a in n.names} | {
        (n.module or "").split(".")[0] for n in top if isinstance(n, ast.ImportFrom)}
    assert not names & {"numpy", "cupy"}


def test_the_training_loop_through_the_graph_stepper_follows_the_eager_loop(monkeypatch):
    """Where the training loop advances in blocks (xgrad._train.stepper), a run whose
    blocks go through graph_stepper, replayed on NumPy, is the eager run: ragged
    blocks (evaluations every 7 iterations) included."""
    import xgrad._train.cudagraph
    import xgrad._train.stepper as stepper
    import xgrad._train.stepping
    import xgrad._train.train

    (x, t), (xt, tt) = xgrad.load_mnist()
    kw = {"data": ((x[:2000], t[:2000]), (xt[:500], tt[:500])), "iters": 57, "eval_every": 7, "seed": 3,
          "progress": False}
    ref = xgrad.train("numpy", **kw)
    captures = []
    monkeypatch.setattr(xgrad._train.cudagraph, "cuda_graph_capture",
                        lambda body: captures.append(body) or replay(body))
    for module in (stepper, xgrad._train.train, xgrad._train.stepping):  # let NumPy take CuPy's path
        monkeypatch.setattr(module, "will_compile", lambda name, compile_step: bool(compile_step))
    got = xgrad.train("numpy", compile_step=True, **kw)
    assert len(captures) == 1
    np.testing.assert_array_equal(got.loss, ref.loss)
    assert got.test_acc == ref.test_acc
    for k, v in ref.net.params.items():
        np.testing.assert_array_equal(got.net.params[k], v)


def test_a_refused_capture_runs_the_same_step_eagerly_and_says_so(monkeypatch, caplog):
    """Where CuPy refuses to capture the step (cuBLAS, so far), training with
    compile_step=True goes on eagerly, with a warning, and gives the eager run."""
    import xgrad._train.cudagraph
    from xgrad._train import stepper as _stepper
    from xgrad._train import stepping as _stepping
    from xgrad._train import train as _train

    (x, t), (xt, tt) = xgrad.load_mnist()
    kw = {"data": ((x[:1000], t[:1000]), (xt[:200], tt[:200])), "iters": 23, "eval_every": 0, "seed": 1,
          "progress": False}
    ref = xgrad.train("numpy", **kw)

    def refuse(body):
        raise RuntimeError("could not capture the training step in a CUDA graph: cuBLAS refused")

    monkeypatch.setattr(xgrad._train.cudagraph, "cuda_graph_capture", refuse)
    for module in (_stepper, _train, _stepping):  # let NumPy take CuPy's path
        monkeypatch.setattr(module, "will_compile", lambda name, compile_step: bool(compile_step))
    with caplog.at_level("WARNING", logger="xgrad"):
        got = xgrad.train("numpy", compile_step=True, **kw)
    assert "fused kernels but without a CUDA graph: could not capture" in caplog.text
    np.testing.assert_array_equal(got.loss, ref.loss)
    for k, v in ref.net.params.items():
        np.testing.assert_array_equal(got.net.params[k], v)


# ---- the CUDA capture's sequence, against a stand-in for CuPy -------------------------------------------


def _fake_cupy(log, *, fail=None, fail_end=None, hip=False):
    """Just enough of `cupy.cuda` to follow what the capture does, and in which order."""
    current = ["caller"]

    class Stream:
        def __init__(self, non_blocking=False):
            assert non_blocking, "a capture needs a non-blocking stream"
            self.name = "capture"

        def __enter__(self):
            current.append(self.name)

        def __exit__(self, *exc):
            current.pop()

        def wait_event(self, event):
            log.append(f"{self.name} waits for {event}")

        def begin_capture(self):
            log.append("begin_capture")

        def end_capture(self):
            log.append("end_capture")
            if fail_end is not None:
                raise fail_end
            return types.SimpleNamespace(launch=lambda stream: log.append(f"launch on {stream.name}"))

        def synchronize(self):
            log.append(f"synchronize {self.name}")

    class MemoryPool:
        def malloc(self, size):
            raise AssertionError("not called by the stand-in")

    @contextlib.contextmanager
    def using_allocator(allocator):
        assert isinstance(allocator.__self__, MemoryPool)
        log.append("private pool")
        try:
            yield
        finally:
            log.append("default pool")

    def get_current_stream():
        return types.SimpleNamespace(name=current[-1], record=lambda: f"event on {current[-1]}")

    cuda = types.SimpleNamespace(Stream=Stream, MemoryPool=MemoryPool, using_allocator=using_allocator,
                                 get_current_stream=get_current_stream, runtime=types.SimpleNamespace(is_hip=hip))
    body_log = lambda: log.append(f"body on {current[-1]}" + (" (capturing)" if "begin_capture" in log else ""))  # noqa: E731

    def body():
        body_log()
        if fail is not None and "begin_capture" in log:
            raise fail

    return types.SimpleNamespace(cuda=cuda), body


def test_capture_warms_up_then_records_on_its_own_stream_and_pool(monkeypatch):
    log = []
    cupy, body = _fake_cupy(log)
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    launch = cuda_graph_capture(body)
    launch()
    assert log == ["capture waits for event on caller", "private pool", "body on capture", "begin_capture",
                   "body on capture (capturing)", "end_capture", "default pool", "synchronize capture",
                   "launch on caller"]


@pytest.mark.parametrize(("fail", "hint"), [
    (NotImplementedError("calling cuBLAS API during stream capture is currently unsupported"),
     r"CuPy refuses some CUDA libraries during a capture, cuBLAS \(its matrix products\) among them"),
    (RuntimeError("the current stream is capturing, so synchronous API calls are disallowed"),
     r"a capture forbids host synchronisation and transfers"),
])
def test_a_step_that_cannot_be_captured_says_why_and_ends_the_capture(monkeypatch, fail, hint):
    log = []
    cupy, body = _fake_cupy(log, fail=fail)
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    with pytest.raises(RuntimeError, match=r"could not capture the training step in a CUDA graph: .* \(" + hint
                       + r"\); train with compile_step=False") as info:
        cuda_graph_capture(body)
    assert info.value.__cause__ is fail
    assert log[-3:] == ["body on capture (capturing)", "end_capture", "default pool"]


def test_a_capture_invalidated_without_an_error_in_the_step_is_reported(monkeypatch):
    log, invalid = [], RuntimeError("cudaErrorStreamCaptureInvalidated: operation failed due to a previous error")
    cupy, body = _fake_cupy(log, fail_end=invalid)
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    with pytest.raises(RuntimeError, match=r"could not capture the training step in a CUDA graph: "
                                           r"cudaErrorStreamCaptureInvalidated.*forbids host synchronisation") as info:
        cuda_graph_capture(body)
    assert info.value.__cause__ is invalid
    assert log[-2:] == ["end_capture", "default pool"]


def test_hip_is_refused_before_anything_runs(monkeypatch):
    log = []
    cupy, body = _fake_cupy(log, hip=True)
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    with pytest.raises(RuntimeError, match=r"CuPy cannot capture a graph on HIP \(ROCm\); train with "
                                           r"compile_step=False"):
        cuda_graph_capture(body)
    assert log == []


# ---- on a GPU --------------------------------------------------------------------------------------------


def _cupy_refuses_cublas_under_capture() -> bool:
    """Whether this CuPy raises for a matrix product (cuBLAS) inside a capture."""
    import cupy

    a, stream = cupy.ones((2, 2)), cupy.cuda.Stream(non_blocking=True)
    with stream:
        stream.begin_capture()
        try:
            a @ a
        except NotImplementedError:
            return True
        finally:
            stream.end_capture()
    return False


@pytest.fixture
def cupy_backend(backend):
    if backend.name != "cupy":
        pytest.skip(f"CuPy with a CUDA device is needed to capture a CUDA graph; this run is on {backend.name}")
    return backend


@pytest.fixture
def gpu(cupy_backend):
    if _cupy_refuses_cublas_under_capture():
        pytest.xfail("this CuPy refuses cuBLAS (the matrix products) during a CUDA graph capture, "
                     "so the training step cannot be captured")
    return cupy_backend


def test_a_cupy_that_refuses_cublas_under_capture_is_reported(cupy_backend):
    if not _cupy_refuses_cublas_under_capture():
        pytest.skip("this CuPy captures cuBLAS calls: the graph tests below run instead")
    xp = cupy_backend.xp
    params, x, targets, idx = _problem(xp, device=cupy_backend.device)
    with pytest.raises(RuntimeError, match=r"cuBLAS \(its matrix products\) among them"):
        graph_stepper(_make_step(x, targets, xp), params, idx[0, ...], xp=xp)
    losses, _ = _eager(_make_step(x, targets, xp), params, idx, xp)  # the device is still usable
    assert losses.shape == (7,)


def test_cuda_graph_follows_eager_cupy_and_numpy(gpu):
    """The replayed kernels are the eager step's: identical on the GPU, and
    NumPy's trajectory within the suite's CuPy-against-NumPy tolerance."""
    xp = gpu.xp
    params, x, targets, idx = _problem(xp, device=gpu.device)
    step = _make_step(x, targets, xp)
    run = graph_stepper(step, params, idx[0, ...], xp=xp)
    losses, got = run(params, idx[:4, ...])
    more, got = run(got, idx[4:, ...])
    losses = xp.concat([losses, more])
    eager_losses, eager = _eager(step, params, idx, xp)
    ref_params, ref_x, ref_targets, ref_idx = _problem(np)
    np_losses, np_params = _eager(_make_step(ref_x, ref_targets, np), ref_params, ref_idx, np)
    np.testing.assert_array_equal(to_numpy(losses), to_numpy(eager_losses))
    np.testing.assert_allclose(to_numpy(losses), np_losses, rtol=1e-10)
    for k in eager:
        np.testing.assert_array_equal(to_numpy(got[k]), to_numpy(eager[k]))
        assert_close(got[k], np_params[k], backend=gpu, rtol=1e-9, atol=1e-12)


def test_cuda_graph_float32_and_the_callers_params(gpu):
    xp = gpu.xp
    params, x, targets, idx = _problem(xp, device=gpu.device, dtype=xp.float32)
    before = {k: to_numpy(v) for k, v in params.items()}
    step = _make_step(x, targets, xp)
    losses, got = graph_stepper(step, params, idx[0, ...], xp=xp)(params, idx)
    eager_losses, eager = _eager(step, params, idx, xp)
    np.testing.assert_array_equal(to_numpy(losses), to_numpy(eager_losses))
    for k in params:
        np.testing.assert_array_equal(to_numpy(params[k]), before[k])
        np.testing.assert_array_equal(to_numpy(got[k]), to_numpy(eager[k]))


# ---- the GPU benchmark's CUDA-graph contender, timed by a stand-in -------------------------------------


@pytest.fixture
def bench_gpu():
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "scripts" / "bench_gpu.py"
    spec = importlib.util.spec_from_file_location("bench_gpu", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_times_the_graph_beside_eager_cupy_and_skips_it_with_the_reason(bench_gpu, monkeypatch, capsys):
    seconds = {("numpy", False): 4e-3, ("cupy", False): 1e-3, ("cupy", True): 2.5e-4}

    def timed(b, data, *, batch, hidden, iters, rounds, **options):
        if options.get("compile_step") and batch == 1000:
            raise RuntimeError("could not capture the training step in a CUDA graph: refused")
        return seconds[b.name, bool(options.get("compile_step"))]

    monkeypatch.setattr(bench_gpu, "time_training", timed)
    numpy_b, cupy_b = types.SimpleNamespace(name="numpy"), types.SimpleNamespace(name="cupy")
    skipped, rows = {}, []
    for batch in (100, 1000, 10_000):
        base = None
        for b in (numpy_b, cupy_b):
            new, base = bench_gpu.train_rows(b, None, batch=batch, hidden=50, iters=5, rounds=1, base=base,
                                             skipped=skipped)
            rows += new
    assert [(r["batch"], r["contender"]) for r in rows] == [
        (100, "xgrad numpy"), (100, "xgrad cupy"), (100, "xgrad cupy (CUDA graph)"),
        (1000, "xgrad numpy"), (1000, "xgrad cupy"), (10_000, "xgrad numpy"), (10_000, "xgrad cupy")]
    graph = rows[2]
    assert graph["speedup_vs_numpy"] == pytest.approx(16) and graph["speedup_vs_eager"] == pytest.approx(4)
    assert graph["backend"] == "cupy" and graph["kind"] == "train"
    assert skipped == {"xgrad cupy (CUDA graph)": "could not capture the training step in a CUDA graph: refused"}
    assert "cupy-graph    1000     50 skipped: could not capture" in capsys.readouterr().out


def test_bench_says_when_train_has_no_compile_step(bench_gpu, monkeypatch):
    monkeypatch.setattr(bench_gpu.xgrad, "train", lambda backend, *, data=None: None)
    assert bench_gpu.graph_unavailable() == "this xgrad's train() has no compile_step option"
    monkeypatch.setattr(bench_gpu.xgrad, "train", lambda backend, *, compile_step=None: None)
    assert bench_gpu.graph_unavailable() is None
