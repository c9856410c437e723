"""CPU thread limits: applied to each backend's pools inside the block and
restored after, used by ``train(threads=...)``, bad values refused. Nothing
here is timed: the limits are read back from the libraries themselves."""

from __future__ import annotations

import re
import sys

import numpy as np
import pytest
from threadpoolctl import threadpool_info

import xgrad
from xgrad import Backend, resolve_backend, thread_limits, train
from xgrad._train.config import TrainConfig, auto_threads


def _pools():
    return [(i["filepath"], i["num_threads"]) for i in threadpool_info()]


def _torch_threads():
    """PyTorch's own counts: intra-op, OpenMP's and MKL's (where built with them)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    counts = dict(re.findall(r"(\w+)\(\) : (\d+)", torch.__config__.parallel_info()))
    return {k: int(counts[k]) for k in ("omp_get_max_threads", "mkl_get_max_threads") if k in counts} | {
        "intra_op": torch.get_num_threads()}


@pytest.fixture(scope="module")
def tiny():
    """64 training and 16 test samples of noise, shaped like MNIST."""
    rng = np.random.default_rng(0)
    x, t = rng.random((80, 784), dtype=np.float32), rng.integers(0, 10, 80)
    return (x[:64], t[:64]), (x[64:], t[64:])


def test_limits_apply_inside_and_are_restored(backend):
    before = _pools(), _torch_threads()
    assert before[0], "NumPy's BLAS should be loaded"
    with thread_limits(1, backend=backend):
        inside = _pools(), _torch_threads()
    assert (_pools(), _torch_threads()) == before
    if backend.name == "cupy":  # a GPU: nothing on the host changes
        assert inside == before
        return
    assert [n for _, n in inside[0]] == [1] * len(before[0])
    if backend.name == "torch":
        assert set(inside[1].values()) == {1}


def test_torch_intra_op_threads_follow_the_limit_and_come_back_after_an_error():
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    inside = []

    def fail_inside():
        with thread_limits(before + 1, backend="torch"):
            inside.append(torch.get_num_threads())
            raise RuntimeError("inside the block")

    with pytest.raises(RuntimeError, match="inside the block"):
        fail_inside()
    assert inside == [before + 1]
    assert torch.get_num_threads() == before


def test_cupy_changes_no_host_pool():
    before = _pools(), _torch_threads()
    gpu = Backend("cupy", np, "cuda:0")  # only the name matters: no GPU needed
    with thread_limits(1, backend=gpu):
        assert (_pools(), _torch_threads()) == before


@pytest.mark.parametrize(("threads", "error", "match"), [
    (True, TypeError, "`threads` must be a positive integer or None; got bool True"),
    (1.5, TypeError, "`threads` must be a positive integer or None; got float 1.5"),
    ("auto", TypeError, r"got str 'auto' \('auto' is chosen by xgrad.train"),
    (0, ValueError, r"`threads` must be a positive integer or None; got 0"),
    (-2, ValueError, "`threads` must be a positive integer .* got -2"),
])
@pytest.mark.parametrize("name", ["numpy", "torch", "jax", "cupy"])
def test_bad_threads_are_refused_for_every_backend(threads, error, match, name):
    with pytest.raises(error, match=match), thread_limits(threads, backend=name):
        pass


@pytest.mark.parametrize(("bad", "error", "match"), [
    ("tensorflow", ValueError, "unknown backend 'tensorflow'; choose one of: 'numpy'"),
    (3, TypeError, "`backend` must be a string such as 'numpy' or a Backend; got int"),
])
def test_bad_backend_is_refused(bad, error, match):
    with pytest.raises(error, match=match), thread_limits(1, backend=bad):
        pass


def test_none_changes_nothing():
    before = _pools(), _torch_threads()
    with thread_limits(None, backend="torch" if "torch" in sys.modules else "numpy"):
        assert (_pools(), _torch_threads()) == before


@pytest.mark.parametrize("threads", ["auto", "one more than now"])
def test_train_on_torch_steps_with_the_threads_asked(tiny, monkeypatch, threads):
    torch = pytest.importorskip("torch")
    from xgrad._train import config
    from xgrad._train.stepping import Stepping

    monkeypatch.setattr(config, "free_cores", lambda: 0.0)  # a busy machine: "auto" is one thread
    before = torch.get_num_threads()
    value, want = ("auto", 1) if threads == "auto" else (before + 1, before + 1)
    seen = []
    step = Stepping.step

    def spy(self, params, idx):
        seen.append(torch.get_num_threads())
        return step(self, params, idx)

    monkeypatch.setattr(Stepping, "step", spy)
    train("torch", data=tiny, iters=3, batch_size=8, eval_every=0, threads=value, progress=False)
    assert seen == [want] * 3
    assert torch.get_num_threads() == before


def _config(batch):
    return TrainConfig.build({"dataset": "mnist", "activation": "sigmoid", "hidden_size": 50, "iters": 1,
                              "batch_size": batch, "lr": 0.1, "gradient": "backprop", "h": None, "eval_every": None,
                              "seed": 0, "dtype": "float32", "weight_init_std": 0.01, "progress": False,
                              "threads": "auto"})


@pytest.mark.parametrize("name", ["torch", "array_api_strict"])
def test_auto_is_one_thread_for_the_book_network_on_every_cpu_backend_when_busy(name, monkeypatch):
    from xgrad._train import config

    pytest.importorskip(name)
    b = resolve_backend(name)
    monkeypatch.setattr(config, "free_cores", lambda: 1.0)  # only this process's own core
    assert auto_threads(_config(100), b, (784, 50, 10)) == 1
    assert auto_threads(_config(10_000), b, (784, 4096, 10)) is None


def test_auto_takes_a_second_idle_core_where_the_bits_stay(monkeypatch):
    from xgrad._train import config

    numpy = resolve_backend("numpy")
    for same in (True, False):
        monkeypatch.setattr(config, "two_threads_keep_bits", lambda *args, same=same, **kw: same)
        for free, want in ((1.5, 1), (2.0, 2), (15.0, 2)):  # half a core beside is not enough; two at most
            monkeypatch.setattr(config, "free_cores", lambda free=free: free)
            assert auto_threads(_config(100), numpy, (784, 50, 10)) == (want if same else 1)


@pytest.mark.parametrize("backend_name", ["numpy", "torch"])
def test_the_probe_of_two_threads_tells_whether_a_run_keeps_its_bits(backend_name):
    """300 steps on one thread and on two give the same losses and parameters
    exactly when the product probed on the run's shapes gives the same bits
    (measured here: NumPy's OpenBLAS splits ``x @ W1`` along its sum, PyTorch does not)."""
    from xgrad._train.config import two_threads_keep_bits

    pytest.importorskip(backend_name)
    (x, t), test = xgrad.load_mnist()
    kw = {"data": ((x[:3000], t[:3000]), (test[0][:10], test[1][:10])), "iters": 300, "eval_every": 0,
          "progress": False}
    one, two = (train(backend_name, threads=n, **kw) for n in (1, 2))
    same = one.loss.tolist() == two.loss.tolist() and all(
        np.array_equal(xgrad.to_numpy(two.net.params[k]), xgrad.to_numpy(v)) for k, v in one.net.params.items())
    assert two_threads_keep_bits(resolve_backend(backend_name), 100, 784, 50) == same


def test_free_cores_counts_the_tasks_running_beside(monkeypatch):
    import builtins
    import io

    from xgrad._infra import threads

    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    counts = iter(["1", "3", "3", "9", "3"])  # this process, then two more running; one spike
    real_open = builtins.open

    def fake_open(path, *args, **kw):
        if path == "/proc/loadavg":
            return io.StringIO(f"0.50 0.40 0.30 {next(counts)}/200 12345\n")
        return real_open(path, *args, **kw)

    monkeypatch.setattr(builtins, "open", fake_open)
    assert threads.free_cores(interval=0) == 2.0  # 4 cores, median of 0, 2, 2, 8, 2 others: 2

    def unreadable(path, *args, **kw):
        raise OSError("no /proc here")

    monkeypatch.setattr(builtins, "open", unreadable)
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (3.25, 0.0, 0.0))
    assert threads.free_cores(interval=0) == 0.75  # the load average stands in
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (_ for _ in ()).throw(OSError()))
    assert threads.free_cores(interval=0) == 0.0  # nothing to read: busy


def test_auto_leaves_jax_and_cupy_alone():
    for name in ("jax", "cupy"):
        assert auto_threads(_config(100), Backend(name, np, "cpu"), (784, 50, 10)) is None
