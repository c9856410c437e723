"""Backends: from a name to an array namespace and a device.

This is the one module that knows which array libraries exist. Everything
else receives a namespace (``xp``) and a device from here, or infers them from
its array arguments with :func:`namespace_of`.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import shutil
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import array_api_compat

from xgrad._infra.devices import BackendUnavailableError, cupy_index, jax_device, no_device, strict_device, torch_device
from xgrad._infra.typing import Array, Device, DType, Namespace

__all__ = ["BACKENDS", "Backend", "BackendUnavailableError", "blas_threads", "compute_dtype",
           "is_numpy_scalar", "namespace_of", "refuse_numpy_subclass", "resolve_backend"]

logger = logging.getLogger("xgrad")

BACKENDS = ("numpy", "cupy", "torch", "jax", "array_api_strict")
"""Names accepted by :func:`resolve_backend` (besides ``"auto"``)."""

_INSTALL_HINT = {
    "numpy": "pip install numpy",
    "cupy": "pip install 'xgrad[cuda12]' (or 'xgrad[cuda13]', to match your driver)",
    "torch": "pip install torch",
    "jax": "pip install jax",
    "array_api_strict": "pip install array-api-strict",
}


@dataclass(frozen=True)
class Backend:
    """An array namespace together with the device xgrad puts arrays on.

    Attributes
    ----------
    name : str
        One of :data:`BACKENDS`.
    xp : module
        The array-API namespace.
    device : object
        The device of every array this backend creates.
    """

    name: str
    xp: Namespace
    device: Device

    def asarray(self, a: Any, /, *, dtype: DType | None = None) -> Array:
        """Move host data (NumPy arrays, lists, scalars) onto this backend."""
        return _to_backend(self, a, dtype)

    @property
    def device_name(self) -> str:
        """The device as people name it: ``"cpu"``, a GPU's model name, ..."""
        return _device_name(self)

    def describe(self) -> str:
        """A short human-readable description, e.g. ``"numpy on cpu"``."""
        return f"{self.name} on {self.device_name}"


def _device_name(backend: Backend) -> str:
    if backend.name == "cupy":
        import cupy

        props = cupy.cuda.runtime.getDeviceProperties(backend.device.id)
        name = props["name"]
        return name.decode() if isinstance(name, bytes) else str(name)
    return str(backend.device)


def _to_backend(backend: Backend, a: Any, dtype: DType | None) -> Array:
    if array_api_compat.is_torch_namespace(backend.xp) and type(a).__module__ == "numpy":
        # torch.asarray shares memory with NumPy input and warns when it is
        # read-only; a private copy avoids both.
        a = a.copy()
    return backend.xp.asarray(a, dtype=dtype, device=backend.device)


def _import(module: str, name: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise BackendUnavailableError(
            f"backend {name!r} is not installed ({exc}); install it with: "
            f"{_INSTALL_HINT[name]}"
        ) from exc


def _cupy_backend(device: Device | None = None) -> Backend:
    cupy = _import("cupy", "cupy")
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDA runtime or driver error
        raise BackendUnavailableError(
            f"backend 'cupy' is installed but CUDA is not usable: {exc}. Check "
            "the NVIDIA driver (nvidia-smi) and that the CuPy wheel matches the "
            "CUDA version (cupy-cuda12x or cupy-cuda13x); or use backend='numpy'."
        ) from exc
    if count < 1:
        raise BackendUnavailableError(
            "backend 'cupy' is installed but no CUDA device is visible; "
            "use backend='numpy' (or 'auto') on a machine without a GPU."
        )
    device = cupy.cuda.Device(cupy_index(device, count))
    try:
        with device:
            cupy.zeros(1).sum().item()  # a kernel launch proves the driver works
    except Exception as exc:
        raise BackendUnavailableError(
            f"backend 'cupy' found a CUDA device but could not run on it: {exc}"
        ) from exc
    return Backend("cupy", array_api_compat.array_namespace(cupy.zeros(0)), device)


def _make(name: str, device: Device | None) -> Backend:
    if name == "cupy":
        return _cupy_backend(device)
    if name == "numpy":
        np = _import("numpy", name)
        if device not in (None, "cpu"):
            raise no_device(name, device, ["cpu"])
        return Backend(name, array_api_compat.array_namespace(np.zeros(0)), "cpu")
    if name == "torch":
        torch = _import("torch", name)
        return Backend(name, array_api_compat.array_namespace(torch.zeros(0)), torch_device(torch, device))
    if name == "jax":
        jax = _import("jax", name)
        return Backend(name, _import("jax.numpy", name), jax_device(jax, device))
    strict = _import("array_api_strict", name)
    return Backend(name, strict, strict_device(strict, device))


def resolve_backend(name: str | Backend = "auto", *, device: Device | None = None) -> Backend:
    """Turn a backend name into a :class:`Backend` (namespace and device).

    Parameters
    ----------
    name : str
        ``"auto"`` or one of :data:`BACKENDS`. ``"auto"`` picks CuPy when it
        imports and a CUDA device works, else NumPy, and logs the reason.
    device : object, optional
        A device of that backend (a device object, or a name such as ``"cpu"``
        or ``"cuda:0"``); by default its first (or CPU) device. A
        :class:`Backend` passed as `name` is returned as it is.

    Returns
    -------
    Backend

    Raises
    ------
    TypeError
        If `name` is not a string.
    ValueError
        If `name` is not a known backend.
    BackendUnavailableError
        If the backend is known but cannot be used here, or has no device
        `device` here; the message says why and what to install, or lists the
        backend's devices.

    Examples
    --------
    >>> from xgrad import resolve_backend
    >>> b = resolve_backend("numpy")
    >>> b.name, b.device
    ('numpy', 'cpu')
    >>> b.asarray([1.0, 2.0]).dtype
    dtype('float64')
    """
    if isinstance(name, Backend):
        return name
    if not isinstance(name, str):
        raise TypeError(f"`backend` must be a string such as 'numpy'; got {type(name).__name__}")
    key = name.strip().lower().replace("-", "_")
    if key == "auto":
        return _auto(device)
    if key not in BACKENDS:
        raise ValueError(
            f"unknown backend {name!r}; choose one of: 'auto', "
            + ", ".join(repr(b) for b in BACKENDS)
        )
    return _make(key, device)


def _auto(device: Device | None) -> Backend:
    try:
        backend = _cupy_backend(device)
    except BackendUnavailableError as exc:
        if shutil.which("nvidia-smi") is None:  # no NVIDIA driver: CuPy could not help here
            logger.info("backend 'auto' chose numpy: no NVIDIA GPU here (nvidia-smi not found)")
        else:
            logger.info("backend 'auto' chose numpy: %s", exc)
        return _make("numpy", device)
    logger.info("backend 'auto' chose cupy: a CUDA device is usable")
    return backend


def namespace_of(*arrays: Array) -> tuple[Namespace, Device]:
    """The common namespace and device of `arrays`, or a clear error.

    Python scalars, NumPy scalars and ``None`` are ignored (NumPy scalars alone
    mean NumPy).

    Raises
    ------
    TypeError
        If the arrays come from different array libraries, none is an array, or
        a list or tuple is given where an array is expected.
    ValueError
        If they live on different devices.

    Examples
    --------
    >>> import numpy as np
    >>> from xgrad import namespace_of
    >>> xp, device = namespace_of(np.zeros(2), 3.0)
    >>> xp.__name__, device
    ('array_api_compat.numpy', 'cpu')
    """
    for a in arrays:
        refuse_numpy_subclass(a)
        if isinstance(a, (list, tuple)):
            raise TypeError(
                f"got a {type(a).__name__} where an array is expected; pass an array "
                "instead, e.g. np.asarray(...) or xgrad.resolve_backend(name).asarray(...)"
            )
    real = [a for a in arrays if a is not None and not _is_scalar(a)]
    for a in real:
        if not array_api_compat.is_array_api_obj(a):
            raise TypeError(f"expected an array; got {type(a).__name__}")
    if not real:  # NumPy scalars alone mean NumPy
        real = [a for a in arrays if a is not None and type(a).__module__ == "numpy"]
    if not real:
        raise TypeError("expected at least one array argument; got only Python scalars")
    try:
        xp = array_api_compat.array_namespace(*real)
    except TypeError as exc:
        kinds = sorted({type(a).__module__.split(".")[0] + "." + type(a).__name__ for a in real})
        raise TypeError(
            "arrays from different libraries cannot be mixed in one call "
            f"({', '.join(kinds)}); convert them to one backend first, e.g. with "
            "xgrad.resolve_backend(name).asarray(...)"
        ) from exc
    devices = [array_api_compat.device(a) for a in real]
    first = devices[0]
    for d in devices[1:]:
        if d != first:
            raise ValueError(
                f"arrays are on different devices ({first} and {d}); move them to "
                "one device first (e.g. with array_api_compat.to_device)"
            )
    return xp, first


def refuse_numpy_subclass(a: Any, name: str | None = None) -> None:
    """Refuse NumPy's masked arrays and matrices (`name`: the argument, for the
    message), whose arithmetic is not the array API's: a mask would be dropped
    or half-followed (masked entries silently computed with, or given a
    gradient of 0), and ``*`` on a matrix is a matrix product."""
    if not type(a).__module__.startswith("numpy"):
        return
    import numpy as np  # the host edge: only reached for NumPy objects

    what = f"`{name}`" if name else "an argument"
    if isinstance(a, np.ma.MaskedArray):
        raise TypeError(f"{what} is a NumPy masked array, whose mask xgrad would not follow; pass "
                        "`a.filled(value)` to give the masked entries a value, or drop them first")
    if isinstance(a, np.matrix):
        raise TypeError(f"{what} is a numpy.matrix, whose `*` is a matrix product; pass `np.asarray(a)`")


def is_numpy_scalar(a: Any) -> bool:
    """A NumPy scalar such as ``np.float64(3.0)`` (not an ndarray)."""
    return type(a).__module__ == "numpy" and type(a).__name__ != "ndarray"


def _is_scalar(a: Any) -> bool:
    """A Python number or a NumPy scalar (``np.float64(3.0)``): takes any namespace."""
    return isinstance(a, (int, float, bool, complex)) or is_numpy_scalar(a)


def quiet_overflow(backend: Backend | Namespace) -> contextlib.AbstractContextManager[Any]:
    """Silence NumPy's overflow and invalid-value warnings inside a block whose
    caller checks for non-finite results itself (and reports them better).
    `backend` is a Backend or an array namespace."""
    numpy = backend.name == "numpy" if isinstance(backend, Backend) else array_api_compat.is_numpy_namespace(backend)
    if numpy:
        import numpy as np

        return np.errstate(over="ignore", invalid="ignore", divide="ignore")
    return contextlib.nullcontext()


def blas_threads(limit: int | None) -> contextlib.AbstractContextManager[None]:
    """Limit the BLAS thread pools (OpenBLAS, MKL, ...) inside a block.

    Deprecated, and warns (DeprecationWarning) when called: use
    :func:`xgrad.thread_limits` ``(n, backend=...)``, which limits every CPU
    pool the backend computes with (BLAS, OpenMP and PyTorch's intra-op
    pool), where this limits BLAS alone and leaves PyTorch's own pool as it is.

    ``None`` leaves them as they are.

    Examples
    --------
    The replacement, for the pools NumPy computes with:

    >>> from xgrad import thread_limits
    >>> with thread_limits(1, backend="numpy"):  # was: blas_threads(1)
    ...     pass
    """
    warnings.warn("`blas_threads` is deprecated; use `thread_limits(n, backend=...)`, which limits every CPU "
                  "pool the backend computes with (BLAS, OpenMP and PyTorch's)", DeprecationWarning, stacklevel=2)
    return _blas_limits(limit)


@contextlib.contextmanager
def _blas_limits(limit: int | None) -> Iterator[None]:
    if limit is None:
        yield
        return
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"`limit` (BLAS threads) must be a positive integer or None; got {limit!r}")
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=limit, user_api="blas"):
        yield


def index_dtype(xp: Namespace, device: Any = None) -> Any:
    """The namespace's default integer type for indices and counts: int64 on most
    backends, int32 on JAX without ``jax_enable_x64`` (which warns on every int64
    request and hands back int32 anyway)."""
    try:
        return xp.__array_namespace_info__().default_dtypes(device=device)["indexing"]
    except (AttributeError, TypeError, KeyError):
        return xp.int64


def compute_dtype(xp: Namespace, device: Any, dtype: Any, *, warn: bool = True) -> Any:
    """float64 where the backend has it: a float32 loss difference would keep
    only about half of its digits. Otherwise `dtype`, with a warning unless
    the caller reports the accuracy itself (``warn=False``)."""
    if dtype == xp.float64:
        return dtype
    try:
        available = xp.__array_namespace_info__().dtypes(device=device)
    except (AttributeError, TypeError):
        available = {"float64": xp.float64}
    if "float64" in available:
        return xp.float64
    if warn:
        warnings.warn(
            "this backend has no float64 here (for JAX, enable jax_enable_x64); the "
            "numerical gradient is computed in float32 with a step of eps**(1/3), "
            "good to about 1e-4 relative",
            RuntimeWarning,
            stacklevel=4,  # the caller of TwoLayerNet.numerical_gradient
        )
    return dtype
