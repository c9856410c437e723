"""Backends: names, devices, the CuPy fallback (simulated, so it runs on any
machine), mixing arrays, and BLAS thread limits."""

from __future__ import annotations

import logging
import re
import sys
import types

import numpy as np
import pytest
from _helpers import assert_close

from xgrad import BACKENDS, Backend, BackendUnavailableError, blas_threads, namespace_of, resolve_backend
from xgrad._infra.host import to_numpy


def test_backend_names():
    assert set(BACKENDS) == {"numpy", "cupy", "torch", "jax", "array_api_strict"}


@pytest.mark.parametrize("name", ["numpy", "NumPy", " NUMPY "])
def test_resolve_numpy_case_insensitively(name):
    b = resolve_backend(name)
    assert b.name == "numpy"
    assert b.device == "cpu"
    assert b.xp.asarray([1.0]).dtype == np.float64
    assert b.describe() == "numpy on cpu"


def test_resolve_array_api_strict_with_a_hyphen():
    strict = pytest.importorskip("array_api_strict")
    b = resolve_backend("array-api-strict")
    assert b.name == "array_api_strict"
    assert b.xp is strict
    assert b.device == strict.Device()
    b1 = resolve_backend("array_api_strict", device="device1")
    assert b1.device == strict.Device("device1")
    assert b1.asarray(np.array([1.0])).device == strict.Device("device1")


def test_resolve_torch():
    torch = pytest.importorskip("torch")
    b = resolve_backend("torch")
    assert b.device == torch.device("cpu")
    assert b.describe() == "torch on cpu"


def test_a_backend_resolves_to_itself():
    b = resolve_backend("numpy")
    assert resolve_backend(b) is b


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown backend 'tensorflow'; choose one of: 'auto', 'numpy', "
                                         r"'cupy', 'torch', 'jax', 'array_api_strict'"):
        resolve_backend("tensorflow")


@pytest.mark.parametrize("name", [None, 1, np])
def test_name_must_be_a_string(name):
    with pytest.raises(TypeError, match="`backend` must be a string such as 'numpy'; got"):
        resolve_backend(name)


@pytest.mark.parametrize("precision", ["float32", "float64"])
def test_asarray_puts_host_data_on_the_device(backend, precision):
    dtype = getattr(backend.xp, precision)
    host = np.array([[1.5, -2.0], [0.25, 3.0]])
    host.flags.writeable = False  # torch would warn if it shared a read-only buffer
    a = backend.asarray(host, dtype=dtype)
    assert_close(a, host, backend=backend, dtype=dtype, rtol=0)
    assert_close(backend.asarray([1, 2], dtype=dtype), [1.0, 2.0], backend=backend, dtype=dtype, rtol=0)
    assert isinstance(backend.describe(), str)
    assert backend.describe().startswith(f"{backend.name} on ")


def test_asarray_copies_numpy_data_for_torch():
    pytest.importorskip("torch")
    host = np.array([1.0, 2.0])
    t = resolve_backend("torch").asarray(host)
    host[0] = 99.0
    np.testing.assert_array_equal(to_numpy(t), [1.0, 2.0])


# --- CuPy: missing, no device, broken driver -------------------------------------------------

def _fake_cupy(get_device_count, zeros=None):
    class Device:
        def __init__(self, index):
            self.id = index

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    runtime = types.SimpleNamespace(getDeviceCount=get_device_count)
    return types.SimpleNamespace(cuda=types.SimpleNamespace(runtime=runtime, Device=Device), zeros=zeros)


def _raise(exc):
    def fail(*args, **kwargs):
        raise exc

    return fail


@pytest.fixture
def no_cupy(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # `import cupy` now fails


def test_cupy_not_installed(no_cupy):
    with pytest.raises(BackendUnavailableError, match=r"backend 'cupy' is not installed .*xgrad\[cuda12\]"):
        resolve_backend("cupy")


def _auto_falls_back(caplog, reason):
    with caplog.at_level(logging.INFO, logger="xgrad"):
        b = resolve_backend("auto")
    assert b.name == "numpy"
    assert b.device == "cpu"
    messages = [r.getMessage() for r in caplog.records if r.name == "xgrad"]
    assert any("backend 'auto' chose numpy" in m and reason in m for m in messages), messages


@pytest.fixture
def nvidia_driver(monkeypatch):
    """A machine whose NVIDIA driver is installed (nvidia-smi on the PATH)."""
    monkeypatch.setattr("xgrad._infra.backend.shutil.which", lambda name: f"/usr/bin/{name}")


def test_auto_without_cupy_falls_back_to_numpy(no_cupy, nvidia_driver, caplog):
    _auto_falls_back(caplog, "is not installed")


def test_auto_without_a_gpu_does_not_suggest_cupy(no_cupy, monkeypatch, caplog):
    monkeypatch.setattr("xgrad._infra.backend.shutil.which", lambda name: None)
    _auto_falls_back(caplog, "no NVIDIA GPU here")
    messages = " ".join(r.getMessage() for r in caplog.records if r.name == "xgrad")
    assert "pip install" not in messages and "cuda12" not in messages


def test_cupy_without_a_device(monkeypatch, nvidia_driver, caplog):
    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy(lambda: 0))
    with pytest.raises(BackendUnavailableError, match="installed but no CUDA device is visible"):
        resolve_backend("cupy")
    _auto_falls_back(caplog, "no CUDA device")


def test_cupy_with_a_broken_driver(monkeypatch, nvidia_driver, caplog):
    error = RuntimeError("cudaErrorInsufficientDriver: CUDA driver version is insufficient")
    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy(_raise(error)))
    with pytest.raises(BackendUnavailableError, match=r"CUDA is not usable: cudaErrorInsufficientDriver.*"
                                                      r"Check the NVIDIA driver") as info:
        resolve_backend("cupy")
    assert info.value.__cause__ is error
    _auto_falls_back(caplog, "NVIDIA driver")


def test_cupy_device_that_cannot_run_a_kernel(monkeypatch, nvidia_driver, caplog):
    fake = _fake_cupy(lambda: 1, zeros=_raise(RuntimeError("cudaErrorNoKernelImageForDevice")))
    monkeypatch.setitem(sys.modules, "cupy", fake)
    with pytest.raises(BackendUnavailableError, match="found a CUDA device but could not run on it: "
                                                      "cudaErrorNoKernelImageForDevice"):
        resolve_backend("cupy")
    _auto_falls_back(caplog, "could not run on it")


def test_cupy_device_index_is_checked(monkeypatch):
    # the reference code ignored `device` and returned device 0
    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy(lambda: 1, zeros=lambda n: np.zeros(n)))
    with pytest.raises(BackendUnavailableError, match=r"'cupy' has no device 1 here; its devices are: 'cuda:0'"):
        resolve_backend("cupy", device=1)
    with pytest.raises(BackendUnavailableError, match=r"has no device 'cuda:3' here"):
        resolve_backend("cupy", device="cuda:3")


# --- devices each backend lacks --------------------------------------------------------------------

@pytest.mark.parametrize(("name", "device", "listed"), [
    ("numpy", "gpu", "'cpu'"),
    ("numpy", "cuda:0", "'cpu'"),
    ("torch", "cuda", "'cpu'"),          # the reference code: AssertionError from inside torch
    ("torch", "gpu", "'cpu'"),           # the reference code: RuntimeError from torch.device
    ("torch", 7, "'cpu'"),
    ("jax", "gpu", "'cpu:0'"),           # the reference code: an error from inside jax.numpy
    ("jax", "cpu:5", "'cpu:0'"),
    ("array_api_strict", "gpu", "'CPU_DEVICE', 'device1'"),
    ("array_api_strict", 3, "'CPU_DEVICE', 'device1'"),
])
def test_a_device_the_backend_lacks_is_one_clear_error(name, device, listed):
    pytest.importorskip(name)
    if name == "torch" and device == "cuda":
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has CUDA")
    message = rf"backend '{name}' has no device {re.escape(repr(device))} here; its devices are: {listed}"
    with pytest.raises(BackendUnavailableError, match=message):
        resolve_backend(name, device=device)


@pytest.mark.parametrize(("name", "device"), [("numpy", "cpu"), ("torch", "cpu"), ("jax", "cpu"),
                                              ("array_api_strict", "device1")])
def test_a_device_given_by_name(name, device):
    # the reference code passed jax the string 'cpu', which jax.numpy.asarray refuses
    pytest.importorskip(name)
    b = resolve_backend(name, device=device)
    assert_close(b.asarray([1.0, 2.0]), [1.0, 2.0], backend=b, rtol=0)


def test_auto_passes_the_device_on(no_cupy):
    # the reference code ignored `device` for "auto"
    assert resolve_backend("auto", device="cpu").device == "cpu"
    with pytest.raises(BackendUnavailableError, match="backend 'numpy' has no device 'cuda:1' here"):
        resolve_backend("auto", device="cuda:1")


# --- namespace_of -------------------------------------------------------------------------------

def test_namespace_of_one_library():
    xp, device = namespace_of(np.array([1.0]), 2.0, None, np.array(3))
    assert xp.asarray([1.0]).dtype == np.float64
    assert hasattr(xp, "isdtype")
    assert device == "cpu"


def test_namespace_of_numpy_and_torch():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match=r"cannot be mixed in one call \(numpy\.ndarray, torch\.Tensor\)"):
        namespace_of(np.array([1.0]), torch.tensor([1.0]))


def test_namespace_of_strict_devices():
    strict = pytest.importorskip("array_api_strict")
    a = strict.asarray([1.0])
    b = strict.asarray([1.0], device=strict.Device("device1"))
    with pytest.raises(ValueError, match="arrays are on different devices"):
        namespace_of(a, b)
    xp, device = namespace_of(b, b)
    assert xp is strict
    assert device == strict.Device("device1")


def test_namespace_of_numpy_scalars():
    # the reference code: "expected at least one array argument; got only Python scalars"
    xp, device = namespace_of(np.float64(3.0))
    assert xp.asarray([1.0]).dtype == np.float64
    assert device == "cpu"
    torch = pytest.importorskip("torch")
    xp, _ = namespace_of(torch.ones(1), np.float32(2.0))  # a NumPy scalar mixes like a Python number
    assert xp.asarray([1.0]).device == torch.device("cpu")


@pytest.mark.parametrize("seq", [[1.0, 2.0], (1.0, 2.0)], ids=["list", "tuple"])
def test_namespace_of_a_list(seq):
    # the reference code: "arrays from different libraries cannot be mixed (builtins.list)"
    kind = type(seq).__name__
    with pytest.raises(TypeError, match=rf"got a {kind} where an array is expected; pass an array instead"):
        namespace_of(seq)
    with pytest.raises(TypeError, match=rf"got a {kind} where an array is expected"):
        namespace_of(np.zeros(2), seq)


def test_namespace_of_something_else():
    with pytest.raises(TypeError, match="expected an array; got str"):
        namespace_of("abc")


@pytest.mark.parametrize("args", [(1.0, 2), (True, None), ()])
def test_namespace_of_needs_an_array(args):
    with pytest.raises(TypeError, match="expected at least one array argument; got only Python scalars"):
        namespace_of(*args)


# --- BLAS threads ---------------------------------------------------------------------------------

def _blas_threads():
    from threadpoolctl import threadpool_info

    return [(i["filepath"], i["num_threads"]) for i in threadpool_info() if i["user_api"] == "blas"]


DEPRECATED = r"`blas_threads` is deprecated; use `thread_limits\(n, backend=...\)`"


def test_blas_threads_is_deprecated_for_thread_limits():
    with pytest.warns(DeprecationWarning, match=DEPRECATED) as record:
        blas_threads(None)
    assert record[0].filename == __file__  # it points at the caller


def test_blas_threads_limits_and_restores():
    pytest.importorskip("threadpoolctl")
    before = _blas_threads()
    assert before, "NumPy's BLAS should be loaded"
    with pytest.warns(DeprecationWarning, match=DEPRECATED), blas_threads(1):
        inside = _blas_threads()
    assert [n for _, n in inside] == [1] * len(before)
    assert _blas_threads() == before


def test_blas_threads_none_changes_nothing():
    pytest.importorskip("threadpoolctl")
    before = _blas_threads()
    with pytest.warns(DeprecationWarning, match=DEPRECATED), blas_threads(None):
        assert _blas_threads() == before
    assert _blas_threads() == before


@pytest.mark.parametrize("limit", [0, -1, True, 1.5])
def test_blas_threads_refuses_bad_limits(limit):
    with pytest.warns(DeprecationWarning, match=DEPRECATED), \
            pytest.raises(ValueError, match="must be a positive integer or None; got"), blas_threads(limit):
        pass


def test_backend_is_immutable():
    b = resolve_backend("numpy")
    assert isinstance(b, Backend)
    with pytest.raises(AttributeError, match="cannot assign to field 'name'"):
        b.name = "torch"
