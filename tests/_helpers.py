"""Test helpers shared by the suite (import as ``from _helpers import ...``).

Comparisons of arrays on a backend, a fresh Python without JAX's x64, a made-up
setting, NumPy's masked arrays; and what the tests of several modules share:
hostile input to the numerical functions, the strategies and checks of the
property tests (of the numerical functions, of the network), faults (a disk that
fills up, damaged and edited files), tiny data and short runs.
"""

from __future__ import annotations

import errno
import json
import math
import os
import subprocess
import sys
import types
import warnings
from pathlib import Path

import hypothesis
import numpy as np
import pytest
from hypothesis import strategies as st

from xgrad import Backend, BackendUnavailableError, DivergenceError
from xgrad._infra.host import to_numpy


def assert_on_backend(actual, backend: Backend, *, shape=None, dtype=None) -> None:
    """`actual` is an array of `backend`'s namespace, on its device (and of the
    given shape and dtype)."""
    import array_api_compat

    expected_ns = array_api_compat.array_namespace(backend.asarray(0.0))
    assert array_api_compat.array_namespace(actual) is expected_ns, f"wrong namespace: {type(actual)}"
    assert array_api_compat.device(actual) == backend.device, (
        f"result on {array_api_compat.device(actual)}, expected {backend.device}")
    if shape is not None:
        assert tuple(actual.shape) == tuple(shape), f"shape {tuple(actual.shape)}, expected {shape}"
    if dtype is not None:
        assert actual.dtype == dtype, f"dtype {actual.dtype}, expected {dtype}"


def assert_close(actual, expected, *, backend: Backend | None = None, rtol: float = 1e-7,
                 atol: float = 0.0, dtype=None) -> None:
    """Compare an array with expected values, checking namespace, device,
    shape (and dtype, if given) before the values."""
    if backend is not None:
        assert_on_backend(actual, backend, dtype=dtype)
    elif dtype is not None:
        assert actual.dtype == dtype, f"dtype {actual.dtype}, expected {dtype}"
    host = to_numpy(actual)
    expected = np.asarray(to_numpy(expected) if hasattr(expected, "__dlpack__") else expected)
    assert host.shape == expected.shape, f"shape {host.shape}, expected {expected.shape}"
    np.testing.assert_allclose(host, expected, rtol=rtol, atol=atol)


def run_without_x64(script: str) -> subprocess.CompletedProcess:
    """`script` in a fresh Python with warnings as errors and JAX in its
    default configuration (no x64), which a process that has imported JAX
    cannot return to."""
    env = {k: v for k, v in os.environ.items() if k != "JAX_ENABLE_X64"}
    return subprocess.run([sys.executable, "-W", "error", "-c", script], capture_output=True, text=True,
                          env=env, timeout=300)


def made_up_setting():
    """A setting the package does not have, used nowhere but recorded: what adding one to the record takes."""
    from xgrad._infra.validate import check_real
    from xgrad._train.settings import Setting

    return Setting("momentum", 0.0, "float", check=lambda name, value, given: check_real(value, name), parse=float,
                   recorded=True, help="momentum of the SGD update", doc="Momentum of the SGD update (made up).")


def add_setting(monkeypatch, entry) -> None:
    """`entry` added to the settings record as if the package had it from the start: ``train``'s
    and ``sweep``'s signatures and docstrings, made from the record on import, made again (all
    restored after the test)."""
    import xgrad
    from xgrad._sweep.sweep import describe_sweep
    from xgrad._train import settings

    monkeypatch.setattr(settings, "TRAIN_SETTINGS", (*settings.TRAIN_SETTINGS, entry))
    for function, describe in ((xgrad.train, settings.describe), (xgrad.sweep, describe_sweep)):
        monkeypatch.setattr(function, "__signature__", function.__signature__)
        monkeypatch.setattr(function, "__doc__", function.__doc__)
        describe(function)


def masked_array(shape=(2,)):
    """A NumPy masked array of `shape` (1.0, 2.0, ...) whose last entry is masked."""
    data = np.arange(1.0, 1.0 + np.prod(shape)).reshape(shape)
    mask = np.zeros(shape, dtype=bool)
    mask.flat[-1] = True
    return np.ma.array(data, mask=mask)


# --- hostile input to the numerical functions ----------------------------------------------

POINTS = [0.3, 1.0, 2.0]
"""Points at which the tests of `derivative` and `check_gradient` differentiate sin."""


def of_another_library(backend, host):
    """`host` as an array of a library other than the backend's."""
    if backend.name != "numpy":
        return np.asarray(host)
    import array_api_strict

    return array_api_strict.asarray(host)


# User functions that change their argument in place: such an f is a function of its argument
# all the same, f(v) = sum((2 v)**2) with gradient 8 v. xgrad must hand it copies, so that neither
# the caller's array nor the point it differences around moves.

X0 = np.array([1.5, -0.5, 2.0])
"""The caller's point, in the tests of user functions that change their argument."""


def doubling(v):
    """Elementwise (2 v)**2, doubling `v` in place first."""
    v *= 2  # in place (JAX rebinds the name instead: nothing to see there)
    return v**2


def doubling_sum(v):
    """The sum of `doubling`: a scalar function that doubles its argument in place."""
    import array_api_compat

    return array_api_compat.array_namespace(v).sum(doubling(v))


def caller_array(backend):
    """`X0` on the backend, and a host copy of it to compare with after the call."""
    x = backend.asarray(X0.copy())  # not a view of X0, on NumPy or PyTorch
    return x, to_numpy(x).copy()


# --- bad and unusual input to the numerical functions (property tests) ---------------------
# Every call either gives the right answer (compared with the analytic derivative of
# ``x**2 + x``, within a bound on its rounding error) or raises a `TypeError`, `ValueError` or
# one of xgrad's own errors whose message names the argument at fault: never a silent wrong
# answer, never an error from deep inside a library. Inputs: NaN and inf, empty and 0-d arrays,
# integer, bool, float16, float32 and float64 dtypes, lists, NumPy scalars, Python numbers, torch
# and JAX arrays, wrong shapes, and steps that are zero, negative, NaN, inf, tiny or huge.

NUMERICS_SETTINGS = hypothesis.settings(
    max_examples=60, deadline=None, database=None,
    suppress_health_check=[hypothesis.HealthCheck.too_slow, hypothesis.HealthCheck.filter_too_much])
"""The settings of these property tests."""

XGRAD_ERRORS = (TypeError, ValueError, BackendUnavailableError, DivergenceError)

LIBS = ["numpy", "torch", "jax", "list", "scalar"]  # scalar: a NumPy scalar or a Python number
SHAPES = [(), (0,), (1,), (3,), (2, 2)]
DTYPES = ["float64", "float32", "float16", "int64", "bool"]
BAD_STEPS = [0, 0.0, -1e-4, -math.inf, math.nan, math.inf]
ODD_STEPS = [None, 1e-4, 1e-2, 1e-12, 1e-300, 1e30, 1e300]


def available(lib):
    """Whether the library `lib` of `any_points` can be drawn here."""
    if lib in ("torch", "jax"):
        try:
            __import__(lib)
        except ImportError:
            return False
    if lib == "jax":
        import jax

        jax.config.update("jax_enable_x64", True)
    return True


@st.composite
def any_points(draw, *, shapes=SHAPES, special=True):
    """(host array, library, the x to pass)."""
    lib = draw(st.sampled_from([lib for lib in LIBS if available(lib)]))
    shape = () if lib == "scalar" else draw(st.sampled_from(shapes))
    dtype = draw(st.sampled_from(DTYPES))
    size = math.prod(shape)
    if dtype == "bool":
        values = draw(st.lists(st.booleans(), min_size=size, max_size=size))
    elif dtype == "int64":
        values = draw(st.lists(st.integers(-20, 20), min_size=size, max_size=size))
    else:
        values = draw(st.lists(st.floats(-50, 50), min_size=size, max_size=size))
        if special and size and draw(st.integers(0, 4)) == 0:
            values[draw(st.integers(0, size - 1))] = draw(st.sampled_from([math.nan, math.inf, -math.inf]))
    host = np.array(values, dtype=dtype).reshape(shape)
    return host, lib, to_lib(host, lib, draw)


def to_lib(host, lib, draw):
    """`host` as an input of `lib`: itself, a list, a NumPy scalar or Python number, a torch or JAX array."""
    if lib == "numpy":
        return host
    if lib == "list":
        return host.tolist()
    if lib == "scalar":
        return host[()] if draw(st.booleans()) else host.item()  # np.float32(...) or a Python number
    if lib == "torch":
        import torch

        return torch.asarray(host.copy())
    import jax.numpy as jnp

    return jnp.asarray(host)


def result_dtype(host, lib, x):
    """The floating dtype xgrad computes in for this input."""
    if lib == "list" or (lib == "scalar" and not isinstance(x, np.generic)):
        return np.dtype("float64")  # Python numbers
    if host.dtype.kind == "f":
        return np.dtype(host.dtype)
    return np.dtype("float32") if lib == "torch" else np.dtype("float64")


def quad(v):
    """x**2 + x: the function whose derivative the property tests know."""
    return v**2 + v


def dquad(x):
    """The derivative of `quad`: 2 x + 1."""
    return 2 * x + 1


def _named(exc, *names):
    return any(f"`{n}`" in str(exc) for n in names)


def steps_taken(x, h, eps, method="central"):
    """The steps of a difference at `x`: `h`, or the default step for the dtype's `eps`."""
    power = 1 / 3 if method == "central" else 1 / 2
    return np.full_like(x, h) if h is not None else eps**power * np.maximum(np.abs(x), 1.0)


def rounding_bound(x, h, eps, n=1, total=None):
    """A bound on the rounding error of the central difference of x**2 + x with step h
    (its truncation error is zero): rounding of f (from a sum of n terms) over h, and of
    x + h, which moves the point by up to eps |x|."""
    with np.errstate(over="ignore"):
        big = (np.abs(x) + h) ** 2 + np.abs(x) + h if total is None else total
        return 16 * eps * (n * big + np.abs(dquad(x)) * (np.abs(x) + 1)) / h + 16 * eps * (np.abs(dquad(x)) + 1)


def result_or_error(call):
    """(result, None) or (None, the xgrad error it raised)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NumPy overflow in f: reported by xgrad
        try:
            return call(), None
        except XGRAD_ERRORS as exc:
            return None, exc


def check_call(call, host, lib, h, names, x, u=None):
    """Run `call`; return its host result, or None if it raised a clear error."""
    result, exc = result_or_error(call)
    if exc is None:
        return to_numpy(result)
    assert _named(exc, *names), f"error names no argument: {exc!r}"
    _check_refusal(exc, host, lib, h, x, u)
    return None


def _check_refusal(exc, host, lib, h, x, u=None):
    """A refusal must be justified by the input. With a direction `u` (host
    array), the step along it is ``h * u``, not `h`."""
    text = str(exc)
    finite = host.dtype.kind != "f" or bool(np.all(np.isfinite(host)))
    if "must be finite" in text:
        assert not finite, text
    if "`h` must be positive and finite" in text:
        assert h is not None and not (math.isfinite(h) and h > 0), text
    if "is too small" in text:
        dtype = result_dtype(host, lib, x)
        x = host.astype(dtype)
        hh = np.asarray(h, dtype=np.float64).astype(dtype)
        with np.errstate(over="ignore"):
            if u is None:
                assert np.any((x + hh == x) | (x - hh == x)), text
            else:  # as directional_derivative moves x: x + h*u in the dtype of x
                assert np.any((x + hh * u.astype(dtype) == x) & (u != 0)), text


# --- bad input to the network's functions and methods (property tests) ----------------------
# Every function of the network layer is fed the classes of bad input (NaN and infinities, empty
# and 0-d arrays, other dtypes, lists, NumPy scalars, arrays of other libraries, wrong shapes,
# out-of-range labels, bad steps). Each call must either give the right answer (checked against a
# NumPy reference) or raise a TypeError or ValueError whose message names the argument: never a
# wrong number, never another exception.

NETWORK_SETTINGS = hypothesis.settings(max_examples=40, deadline=None,
                                       suppress_health_check=[hypothesis.HealthCheck.too_slow])
"""The settings of these property tests."""

N_IN, N_HIDDEN, N_OUT = 4, 3, 3  # the sizes of the network that `batches` are drawn for
VALUES = st.sampled_from([0.0, 1.0, -2.5, 0.3, 1e3, -1e3, math.nan, math.inf, -math.inf])
MODEST = st.sampled_from([0.0, 1.0, -2.5, 0.3, math.nan, math.inf, -math.inf])  # for the network


def outcome(call, *names):
    """The result, or None after a TypeError/ValueError that names one of `names`."""
    try:
        return call()
    except (TypeError, ValueError) as exc:
        named = any(f"`{n}" in str(exc) for n in names)
        if not named:
            pytest.fail(f"{type(exc).__name__} does not name {names}: {exc}")
        return None


def as_torch(a):
    """`a` as an array of another library: a torch tensor (the test skips where torch is not installed)."""
    torch = pytest.importorskip("torch")
    return torch.asarray(np.array(a, copy=True))


@st.composite
def raw_arrays(draw, shape=None, dtypes=("float64", "float32", "int64", "bool", "complex128"), values=VALUES):
    """Arrays of any shape and dtype, with NaN/inf sprinkled in."""
    shape = draw(st.sampled_from([(), (0,), (3,), (2, 3), (0, 3), (2, 0), (1, 1, 3)])) if shape is None else shape
    values = draw(st.lists(values, min_size=math.prod(shape), max_size=math.prod(shape)))
    dtype = draw(st.sampled_from(dtypes))
    with np.errstate(invalid="ignore", over="ignore"):
        a = np.array(values, dtype=np.float64).reshape(shape)
        if dtype in ("int64", "bool"):
            a = np.nan_to_num(a, nan=0, posinf=7, neginf=-7)
        return a.astype(dtype)


@st.composite
def inputs(draw, shape=None, values=VALUES):
    """An array, or the same data as a list, a NumPy scalar or a torch tensor."""
    a = draw(raw_arrays(shape, values=values))
    form = draw(st.sampled_from(["array", "array", "list", "scalar", "torch"]))
    if form == "list":
        return np.asarray(a.tolist()), a.tolist()
    if form == "scalar":
        scalar = a.reshape(-1)[0] if a.size else a.dtype.type(0)
        return np.asarray(scalar), scalar
    if form == "torch":
        return a, as_torch(a)
    return a, a


def expected_rows(t, n, n_classes):
    """The target rows that labels `t` stand for, or None where they must be refused."""
    if t.dtype == bool:
        return None
    if t.shape == (n,):
        ok = t.dtype.kind in "iu" and np.all((t >= 0) & (t < n_classes))
        return np.eye(n_classes)[t] if ok else None
    if t.shape == (n, n_classes):
        rows = t.astype(np.float64)
        if not (np.all(np.isfinite(rows)) and np.all(rows >= 0)):
            return None
        total = rows.sum(axis=1)
        ok = np.all(total == 1) if t.dtype.kind in "iu" else np.all(np.abs(total - 1) <= 1.5e-8)
        return rows if ok else None
    return None


@st.composite
def batches(draw):
    """(host x, x as passed, host t, t as passed)."""
    n = draw(st.integers(0, 3))
    x_shape = draw(st.sampled_from([(n, N_IN), (n, N_IN), (N_IN,), (n, N_IN + 1), ()]))
    host_x, x = draw(inputs(shape=x_shape, values=MODEST))
    t_shape = draw(st.sampled_from([(n,), (n,), (n, N_OUT), (n + 1,)]))
    host_t = draw(st.one_of(
        st.lists(st.integers(-1, N_OUT), min_size=math.prod(t_shape), max_size=math.prod(t_shape)).map(
            lambda v: np.array(v, dtype=np.int64).reshape(t_shape)),
        raw_arrays(shape=t_shape, dtypes=("float64", "int64", "bool")),
    ))
    t = draw(st.sampled_from(["array", "array", "list", "torch"]))
    t_in = host_t.tolist() if t == "list" else as_torch(host_t) if t == "torch" else host_t
    return host_x, x, host_t, t_in


def valid_batch(host_x, x, host_t, t):
    """Whether (x, t) is a batch the network must accept, and its target rows."""
    if not (isinstance(x, np.ndarray) and isinstance(t, np.ndarray)):
        return False, None
    if host_x.ndim != 2 or host_x.shape[1] != N_IN or host_x.shape[0] == 0 or host_x.dtype.kind not in "iuf":
        return False, None
    if not np.all(np.isfinite(host_x)):
        return False, None
    rows = expected_rows(host_t, host_x.shape[0], N_OUT)
    return rows is not None, rows


def net_for_batches():
    """The network that `batches` are drawn for, with large weights."""
    from xgrad import TwoLayerNet

    return TwoLayerNet(N_IN, N_HIDDEN, N_OUT, seed=0, weight_init_std=1.0)


# --- faults: a disk that fills up in the middle of a write, damaged and edited files ----------

class FullFile:
    """A file that takes `budget` bytes, then fails as a full disk does."""

    def __init__(self, f, budget: int) -> None:
        self._f, self._budget = f, budget

    def write(self, data):
        if len(data) > self._budget:
            self._f.write(data[: self._budget])
            self._budget = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._budget -= len(data)
        return self._f.write(data)

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self._f.__exit__(*exc)


def fill_the_disk(monkeypatch) -> None:
    """From now on, every atomic write fails with ENOSPC after 100 bytes."""
    from xgrad._infra import files

    fake = types.SimpleNamespace(**{k: getattr(os, k) for k in dir(os) if not k.startswith("__")})
    fake.fdopen = lambda fd, *a, **kw: FullFile(os.fdopen(fd, *a, **kw), 100)
    monkeypatch.setattr(files, "os", fake)


def assert_only(folder: Path, names: set[str]) -> None:
    """`folder` holds the files `names` and nothing else."""
    assert {p.name for p in folder.iterdir()} == names  # no temporary file left


def edit_npz(path: Path, **changes) -> None:
    """The `.npz` file at `path` written again with `changes` (None drops an entry)."""
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    arrays.update(changes)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    path.unlink()
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def edit_meta(path: Path, **changes) -> None:
    """The checkpoint at `path` written again with `changes` to its metadata."""
    with np.load(path) as data:
        meta = json.loads(str(data["meta"]))
    meta.update(changes)
    edit_npz(path, meta=np.array(json.dumps(meta)))


def truncate(path: Path, size: int | None = None) -> None:
    """The file at `path` cut to `size` bytes, or to half its size."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2 if size is None else size])


def small_mnist():
    """600 training and 200 test digits of the real MNIST."""
    import xgrad

    (x, t), (xt, tt) = xgrad.load_mnist()
    return (x[:600], t[:600]), (xt[:200], tt[:200])


def good_checkpoint_of(data, folder: Path) -> bytes:
    """The bytes of a checkpoint of 30 iterations on `data`, saved every 10, written in `folder`."""
    from xgrad import train

    path = folder / "run.npz"
    train("numpy", data=data, iters=30, eval_every=0, progress=False, checkpoint=path, checkpoint_every=10)
    return path.read_bytes()


# --- short runs on tiny data ----------------------------------------------------------------

def tiny_data():
    """40 training and 10 test samples of noise, 4 features, 3 classes."""
    rng = np.random.default_rng(0)
    x = rng.random((40, 4))
    t = np.arange(40) % 3
    return (x, t), (x[:10], t[:10])


def short_run(data, **kwargs):
    """A run of 4 iterations on NumPy on `data`: minibatches of 5, 3 hidden units, no progress bar."""
    import xgrad

    return xgrad.train("numpy", data=data, iters=4, batch_size=5, hidden_size=3, progress=False, **kwargs)
