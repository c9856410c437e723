"""One suite for every backend.

Tests that take the `backend` fixture run once per backend: NumPy,
array-api-strict (on its default device and on a second one, to catch arrays
created on the wrong device), PyTorch and JAX on the CPU, and CuPy where a CUDA
device works. ``XGRAD_TEST_BACKENDS=numpy,torch`` restricts the list (the nox
sessions use it); a backend named there that cannot run makes its tests fail,
so a session never passes without testing what it names.
``XGRAD_TEST_BACKEND_ONLY=1`` runs only the tests that take the fixture (the
other nox sessions use it, since the rest do not depend on the backend).
"""

from __future__ import annotations

import importlib.util
import os

import pytest

from xgrad import Backend, BackendUnavailableError, resolve_backend

_ALL = ("numpy", "array_api_strict", "array_api_strict:device1", "torch", "jax", "cupy")


def _requested() -> tuple[list[str], bool]:
    env = os.environ.get("XGRAD_TEST_BACKENDS", "").strip()
    if not env:
        return list(_ALL), False
    names = [n.strip() for n in env.split(",") if n.strip()]
    if "array_api_strict" in names and "array_api_strict:device1" not in names:
        names.append("array_api_strict:device1")
    return names, True


def _make(spec: str) -> Backend:
    name, _, device = spec.partition(":")
    if name == "jax":
        import jax

        jax.config.update("jax_enable_x64", True)
    return resolve_backend(name, device=device or None)


def _available(spec: str) -> bool:
    name = spec.partition(":")[0]
    if importlib.util.find_spec(name) is None:
        return False
    if name == "cupy":
        try:
            _make(spec)
        except BackendUnavailableError:
            return False
    return True


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" not in metafunc.fixturenames:
        return
    names, explicit = _requested()
    params = [n if explicit or _available(n) else pytest.param(n, marks=pytest.mark.skip(
        reason=f"{n} is not installed or has no device here")) for n in names]
    metafunc.parametrize("backend", params, indirect=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> Backend:
    """The backend under test: its namespace, device and `asarray`."""
    return _make(request.param)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("XGRAD_TEST_BACKEND_ONLY") != "1":
        return
    keep = [i for i in items if "backend" in getattr(i, "fixturenames", ())]
    config.hook.pytest_deselected(items=[i for i in items if i not in keep])
    items[:] = keep
