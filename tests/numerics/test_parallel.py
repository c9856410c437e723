"""numerical_gradient(..., executor=...): the same numbers as the serial path,
with a bounded number of tasks in flight, on a thread pool and on Dask; an `f`
that changes its argument in place gets copies there too."""

from __future__ import annotations

import concurrent.futures
import threading

import numpy as np
import pytest
from _helpers import X0, assert_close, caller_array, doubling_sum

import xgrad._numerics.parallel
from xgrad import numerical_gradient
from xgrad._infra.host import to_numpy

METHODS = ["central", "forward", "backward"]


def _quadratic(backend):
    """f(x) = x·A·x + sum(sin x), whose gradient is (A + Aᵀ)x + cos x."""
    a_host = np.random.default_rng(0).normal(size=(6, 6))
    a = backend.asarray(a_host)
    xp = backend.xp

    def f(v):
        flat = xp.reshape(v, (6,))
        return xp.sum(flat * (a @ flat)) + xp.sum(xp.sin(flat))

    def grad(x_host):
        flat = x_host.reshape(6)
        return ((a_host + a_host.T) @ flat + np.cos(flat)).reshape(x_host.shape)

    return f, grad


class CountingExecutor(concurrent.futures.Executor):
    """A thread pool that records the most tasks submitted and not yet done."""

    def __init__(self, workers=2):
        self.pool = concurrent.futures.ThreadPoolExecutor(workers)
        self.lock = threading.Lock()
        self.live = self.most = self.submitted = 0

    def submit(self, fn, /, *args, **kwargs):
        with self.lock:
            self.live += 1
            self.submitted += 1
            self.most = max(self.most, self.live)
        future = self.pool.submit(fn, *args, **kwargs)
        future.add_done_callback(self._done)
        return future

    def _done(self, _):
        with self.lock:
            self.live -= 1

    def shutdown(self, wait=True, **kwargs):
        self.pool.shutdown(wait=wait)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("chunk_size", [None, 1, 4, 100])
def test_a_thread_pool_gives_the_serial_gradient(backend, method, chunk_size):
    f, grad = _quadratic(backend)
    x_host = np.random.default_rng(1).normal(size=(2, 3))
    x = backend.asarray(x_host)
    serial = numerical_gradient(f, x, method=method)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        spread = numerical_gradient(f, x, method=method, executor=pool, chunk_size=chunk_size)
    assert_close(spread, serial, backend=backend, rtol=0)  # bit for bit
    assert_close(spread, grad(x_host), backend=backend, rtol=1e-6 if method == "central" else 1e-4, atol=1e-7)


def test_vectorized_and_batched_functions_too(backend):
    xp = backend.xp
    x = backend.asarray(np.random.default_rng(2).normal(size=(3, 5)))

    def stacked(points):  # k points of shape (5,) -> k values
        return xp.sum(points**3, axis=1) + xp.prod(xp.cos(points), axis=1)

    def one(v):
        return xp.sum(v**3) + xp.prod(xp.cos(v))

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        vec = numerical_gradient(stacked, x[0, ...], vectorized=True, chunk_size=2, executor=pool)
        rows = numerical_gradient(one, x, per_row=True, executor=pool, chunk_size=3)
    assert_close(vec, numerical_gradient(stacked, x[0, ...], vectorized=True, chunk_size=2), backend=backend, rtol=0)
    assert_close(rows, numerical_gradient(one, x, per_row=True), backend=backend, rtol=0)


@pytest.mark.parametrize("method", ["forward", "backward"])
def test_one_sided_vectorized_differences_too(method):
    def stacked(points):
        return np.sum(np.sin(points) * points**2, axis=1)

    x = np.random.default_rng(3).normal(size=7)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        spread = numerical_gradient(stacked, x, method=method, vectorized=True, chunk_size=3, executor=pool)
    serial = numerical_gradient(stacked, x, method=method, vectorized=True, chunk_size=3)
    np.testing.assert_array_equal(spread, serial)  # bit for bit
    np.testing.assert_allclose(serial, np.cos(x) * x**2 + 2 * x * np.sin(x), rtol=1e-5, atol=1e-7)


def test_tasks_in_flight_are_bounded(monkeypatch):
    x = np.linspace(-1.0, 1.0, 40)
    itemsize = 8
    # room for three tasks' copies of x and of the steps
    monkeypatch.setattr(xgrad._numerics.parallel, "_IN_FLIGHT_BYTES", 3 * 2 * x.size * itemsize)
    pool = CountingExecutor(workers=4)
    try:
        g = numerical_gradient(lambda v: (v**4).sum(), x, executor=pool, chunk_size=2)
    finally:
        pool.shutdown()
    assert pool.submitted == 20 and pool.most <= 3
    np.testing.assert_array_equal(g, numerical_gradient(lambda v: (v**4).sum(), x))


def test_default_chunks_cut_large_points_into_many_tasks():
    pool = CountingExecutor()
    try:
        numerical_gradient(lambda v: (v**2).sum(), np.ones(1000), executor=pool)
    finally:
        pool.shutdown()
    assert pool.submitted == 250  # chunks of 4 coordinates: about 256 tasks


def test_an_error_in_f_reaches_the_caller_and_stops_the_rest():
    calls = []

    def f(v):
        calls.append(1)
        if len(calls) > 3:
            raise RuntimeError("the simulation crashed")
        return (v**2).sum()

    with concurrent.futures.ThreadPoolExecutor(1) as pool, pytest.raises(RuntimeError, match="simulation crashed"):
        numerical_gradient(f, np.ones(100), executor=pool, chunk_size=1)
    assert len(calls) < 200


def test_bad_executor_and_chunk_size():
    x = np.ones(3)
    with pytest.raises(TypeError, match=r"`executor` must be a concurrent\.futures\.Executor"):
        numerical_gradient(lambda v: v.sum(), x, executor="threads")
    with concurrent.futures.ThreadPoolExecutor(1) as pool, pytest.raises(ValueError, match="`chunk_size` must be >= 1"):
        numerical_gradient(lambda v: v.sum(), x, executor=pool, chunk_size=0)
    with pytest.raises(ValueError, match="`chunk_size` applies only with vectorized=True or an `executor`"):
        numerical_gradient(lambda v: v.sum(), x, chunk_size=2)


def test_a_dask_cluster_gives_the_serial_gradient():
    distributed = pytest.importorskip("distributed")
    from xgrad._sweep.executor import QUIET_HTTP

    a = np.random.default_rng(3).normal(size=(8, 8))

    def f(v):  # defined here, so that it travels to the workers by value
        return np.tanh(v @ a @ v) + np.sum(np.exp(-v**2))

    x = np.random.default_rng(4).normal(size=8)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, **QUIET_HTTP) as cluster, \
            distributed.Client(cluster) as client:
        spread = numerical_gradient(f, x, executor=client.get_executor(), chunk_size=3)
        one_sided = numerical_gradient(f, x, method="forward", executor=client.get_executor())
    np.testing.assert_array_equal(spread, numerical_gradient(f, x))
    np.testing.assert_array_equal(one_sided, numerical_gradient(f, x, method="forward"))


# --- an f that changes its argument in place gets copies on an executor too -------------

def test_numerical_gradient_on_an_executor_hands_f_copies(backend):
    from concurrent.futures import ThreadPoolExecutor

    x, before = caller_array(backend)
    with ThreadPoolExecutor(2) as pool:
        g = numerical_gradient(doubling_sum, x, method="forward", executor=pool)
    np.testing.assert_array_equal(to_numpy(x), before)
    assert_close(g, 8 * X0, backend=backend, rtol=1e-6)
