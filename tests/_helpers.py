"""Test helpers shared by the suite (import as ``from _helpers import ...``)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

from xgrad import Backend
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
