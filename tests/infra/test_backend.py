"""Backends: names, devices, the CuPy fallback (simulated, so it runs on any
machine), mixing arrays, NumPy's masked arrays and matrices refused, BLAS
thread limits, and (property tests) namespace_of and resolve_backend on any
arguments."""

from __future__ import annotations

import ast
import logging
import re
import sys
import types
from pathlib import Path

import array_api_compat
import numpy as np
import pytest
from _helpers import NUMERICS_SETTINGS, assert_close, available, masked_array, result_or_error, to_lib
from hypothesis import given
from hypothesis import strategies as st

import xgrad
from xgrad import BACKENDS, Backend, BackendUnavailableError, blas_threads, namespace_of, resolve_backend
from xgrad._infra.backend import (
    LIBRARIES,
    Library,
    asarray_on,
    auto_choice,
    library,
    library_of,
    normalise_name,
    quiet_overflow,
    visible_gpus,
)
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
    with pytest.raises(BackendUnavailableError,
                       match=r"backend 'cupy' is not installed .*pip install \"\.\[cuda12\]\" in the xgrad checkout"):
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


# --- the one table of array libraries -------------------------------------------------------------

_PACKAGE = Path(xgrad.__file__).parent
_TABLE = {"_infra/backend.py", "_infra/devices.py"}  # the table, and the per-library code it points to
_LIBRARIES = {"numpy", "cupy", "torch", "jax", "array_api_strict"}
_IMPORTED = _LIBRARIES - {"numpy"}  # NumPy is imported at the host edge everywhere
_RECOGNISER = re.compile(r"is_\w+_(namespace|array)")


def _names_a_library(node: ast.AST) -> bool:
    """A library's name as a string, alone or in a tuple, list or set of them."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str) and node.value.replace("-", "_") in _LIBRARIES
    return isinstance(node, ast.Tuple | ast.List | ast.Set) and any(map(_names_a_library, node.elts))


def _library_knowledge(tree: ast.AST) -> list[str]:
    """What in `tree` knows an array library by itself: imports of one, array_api_compat's
    recognisers, comparisons with a library's name (docstrings, comments and messages may name one)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [f"import {a.name}" for a in node.names if a.name.split(".")[0] in _IMPORTED]
        elif isinstance(node, ast.ImportFrom):
            if (node.module or "").split(".")[0] in _IMPORTED:
                found.append(f"from {node.module} import ...")
            found += [f"from {node.module} import {a.name}" for a in node.names if _RECOGNISER.fullmatch(a.name)]
        elif isinstance(node, ast.Attribute) and _RECOGNISER.fullmatch(node.attr):
            found.append(f".{node.attr}")
        elif isinstance(node, ast.Compare) and any(map(_names_a_library, [node.left, *node.comparators])):
            found.append(f"a comparison with a library's name: {ast.unparse(node)}")
    return found


def test_only_the_backend_table_knows_the_array_libraries():
    offenders = {}
    for path in sorted(_PACKAGE.rglob("*.py")):
        module = path.relative_to(_PACKAGE).as_posix()
        if module not in _TABLE:
            found = _library_knowledge(ast.parse(path.read_text(), filename=str(path)))
            if found:
                offenders[module] = found
    assert not offenders, "ask the table in xgrad/_infra/backend.py instead: " + "; ".join(
        f"{m}: {', '.join(found)}" for m, found in offenders.items())


@pytest.mark.parametrize("source", [
    "import torch", "import jax.numpy as jnp", "from cupy import fuse", "from array_api_strict import Device",
    "array_api_compat.is_cupy_namespace(xp)", "from array_api_compat import is_torch_array",
    "b.name == 'jax'", "name in ('cupy', 'jax')", "'array-api-strict' != key",
])
def test_the_table_check_sees_each_kind_of_library_knowledge(source):
    assert _library_knowledge(ast.parse(source))


@pytest.mark.parametrize("source", [
    '"""Runs on NumPy, CuPy, torch and jax."""', "import numpy as np", "raise ValueError('not on jax')",
    "array_api_compat.is_array_api_obj(a)", "requested == 'auto'",
])
def test_the_table_check_lets_names_in_text_and_numpy_pass(source):
    assert not _library_knowledge(ast.parse(source))


def test_the_table_lists_every_backend_once_under_its_name():
    assert tuple(LIBRARIES) == BACKENDS
    assert all(lib.name == name for name, lib in LIBRARIES.items())
    assert [lib.name for lib in LIBRARIES.values() if lib.gpus is not None] == ["cupy"]  # "auto"'s GPU choice


@pytest.mark.parametrize(("text", "name"), [("NumPy", "numpy"), (" torch ", "torch"), ("Array-API-Strict",
                                            "array_api_strict"), ("AUTO", "auto")])
def test_one_normalisation_of_backend_names(text, name):
    assert normalise_name(text) == name
    if name != "auto":
        assert library(text).name == name


def test_auto_is_refused_where_a_library_is_needed():
    with pytest.raises(ValueError, match=r"unknown backend 'auto'; choose one of: 'numpy', 'cupy'"):
        library("auto")


def test_the_table_recognises_each_backends_namespace(backend):
    assert library_of(backend.xp).name == backend.name
    assert library_of(types.ModuleType("tensorflow")) is None


def test_a_namespace_without_a_backend_still_takes_host_data():
    da = pytest.importorskip("dask.array")
    xp = array_api_compat.array_namespace(da.zeros(1))
    assert library_of(xp) is None
    np.testing.assert_array_equal(np.asarray(asarray_on(xp, None, np.arange(3.0))), [0.0, 1.0, 2.0])


def test_auto_picks_by_the_gpus_seen(monkeypatch, no_cupy):
    assert (auto_choice(2), auto_choice(1), auto_choice(0)) == ("cupy", "cupy", "numpy")
    assert visible_gpus() == 0  # no CuPy
    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy(lambda: 3))
    assert visible_gpus() == 3
    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy(_raise(RuntimeError("no driver"))))
    assert visible_gpus() == 0


def test_quiet_overflow_silences_numpys_warnings_on_the_backends_that_compute_through_numpy(backend):
    big = backend.asarray([1e308, 0.0], dtype=backend.xp.float64)
    with quiet_overflow(backend), quiet_overflow(backend.xp):
        out = to_numpy(big * 10 / big)
    assert np.isinf(out[0]) or np.isnan(out[0])
    assert np.isnan(out[1])


@pytest.fixture
def twin(monkeypatch):
    """A sixth backend, added as docs/design.rst says: one record in the table."""
    numpy = LIBRARIES["numpy"]
    lib = Library("numpy_twin", "numpy", "pip install numpy", lambda xp: False, numpy.namespace,
                  lambda module, device: "cpu", pools="cpu")
    monkeypatch.setitem(LIBRARIES, "numpy_twin", lib)
    return lib


def test_a_library_added_to_the_table_resolves_limits_its_threads_and_refuses_to_compile(twin):
    from xgrad import thread_limits
    from xgrad._train.stepper import will_compile

    b = resolve_backend("Numpy-Twin")
    assert (b.name, b.device, b.describe()) == ("numpy_twin", "cpu", "numpy_twin on cpu")
    with thread_limits(1, backend="numpy_twin"):
        pass
    assert will_compile("numpy_twin", None) is False
    with pytest.raises(ValueError, match="not 'numpy_twin'"):
        will_compile("numpy_twin", True)


# --- NumPy's masked arrays and matrices ----------------------------------------------------
# refused wherever arrays come in (by `refuse_numpy_subclass`), since their arithmetic is not the
# array API's: a masked array's mask was dropped (``train`` trained on the masked-out values) or
# half-followed (``numerical_gradient`` gave a masked entry the gradient 0 and an unmasked result),
# and ``*`` on a ``numpy.matrix`` is a matrix product

def _square_sum(x):
    return (x * x).sum()


CALLS = {
    "numerical_gradient": lambda a: xgrad.numerical_gradient(_square_sum, a),
    "numerical_diff": lambda a: xgrad.numerical_diff(lambda x: x * x, a),
    "gradient_descent": lambda a: xgrad.gradient_descent(_square_sum, a, lr=0.1, step_num=2),
    "derivative": lambda a: xgrad.derivative(lambda x: x * x, a),
    "namespace_of": lambda a: xgrad.namespace_of(a),
}


@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
def test_numerics_refuse_a_masked_array(call):
    with pytest.raises(TypeError, match="masked array, whose mask xgrad would not follow"):
        call(masked_array())


@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
def test_numerics_refuse_a_matrix(call):
    with pytest.raises(TypeError, match=r"numpy.matrix, whose `\*` is a matrix product"):
        call(np.matrix([[1.0, 2.0]]))


def test_a_plain_array_with_the_same_numbers_still_works():
    # the refusal is about the type, not the numbers: the filled array gives the known answer
    grad = xgrad.numerical_gradient(_square_sum, masked_array().filled(0.0))
    np.testing.assert_allclose(grad, [2.0, 0.0], atol=1e-8)


# --- property tests: namespace_of and resolve_backend on any arguments ---------------------

ARGS = ["python", "numpy_scalar", "numpy", "list", "none", "torch", "jax", "string"]


@NUMERICS_SETTINGS
@given(kinds=st.lists(st.sampled_from(ARGS), max_size=4))
def test_namespace_of(kinds):
    kinds = [k for k in kinds if available(k) or k not in ("torch", "jax")]
    made = {"python": 1.5, "numpy_scalar": np.float64(2.0), "numpy": np.zeros(2), "list": [1.0],
            "none": None, "string": "abc"}
    args = [made[k] if k in made else to_lib(np.zeros(2), k, None) for k in kinds]
    found, exc = result_or_error(lambda: namespace_of(*args))
    if exc is not None:
        text = str(exc)
        assert isinstance(exc, TypeError), text
        if "list" in kinds:
            assert "where an array is expected" in text
        elif "string" in kinds:
            assert "expected an array; got str" in text
        elif len({k for k in kinds if k in ("numpy", "torch", "jax")}) > 1:
            assert "cannot be mixed" in text
        else:
            assert not {"numpy", "torch", "jax", "numpy_scalar"} & set(kinds), text
            assert "got only Python scalars" in text
        return
    xp, _ = found
    libs = {k for k in kinds if k in ("numpy", "torch", "jax")} or {"numpy"}
    assert len(libs) == 1 and not {"list", "string"} & set(kinds)
    assert libs.pop() in xp.__name__


@NUMERICS_SETTINGS
@given(name=st.sampled_from(["numpy", "torch", "jax", "array_api_strict", "NumPy", "tensorflow", "", 3]),
       device=st.sampled_from([None, "cpu", "gpu", "cuda", "cuda:0", "device1", "cpu:0", 0, 1, object()]))
def test_resolve_backend(name, device):
    if isinstance(name, str) and name.lower() in ("torch", "jax", "array_api_strict"):
        pytest.importorskip(name.lower())
    b, exc = result_or_error(lambda: resolve_backend(name, device=device))
    if isinstance(exc, TypeError):
        assert not isinstance(name, str), exc
        assert "`backend`" in str(exc)
        return
    if isinstance(exc, ValueError):
        assert f"unknown backend {name!r}" in str(exc)
        return
    if exc is not None:
        assert isinstance(exc, BackendUnavailableError)
        assert re.search(rf"has no device {re.escape(repr(device))} here; its devices are: '", str(exc)), exc
        return
    a = b.asarray([1.0, 2.0])
    np.testing.assert_array_equal(to_numpy(a), [1.0, 2.0])
    assert a.device == b.device if hasattr(a, "device") and not callable(a.device) else True


def test_missing_dtype_asks_the_library_about_the_device():
    from xgrad._infra.backend import missing_dtype

    xp = array_api_compat.array_namespace(np.zeros(1))
    assert missing_dtype(xp, "cpu", "float64") is None
    assert missing_dtype(np, "cpu", "float64") is None  # no inspection to ask: assumed present
    strict = pytest.importorskip("array_api_strict")
    assert missing_dtype(strict, strict.Device("CPU_DEVICE"), "float64") is None
    assert missing_dtype(strict, strict.Device("no_float64"), "float32") is None
    message = missing_dtype(strict, strict.Device("no_float64"), "float64")
    assert message == ("array_api_strict has no float64 on device array_api_strict.Device('no_float64'); "
                       "to get it, use a device that has it")
