"""Backends: from a name to an array namespace and a device.

This is the one module that knows which array libraries exist: :data:`LIBRARIES`
holds one record per library, and every other module asks it (through the small
functions below) rather than naming a library. Everything else receives a
namespace (``xp``) and a device from here, or infers them from its array
arguments with :func:`namespace_of`.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import array_api_compat

from xgrad._infra.devices import (
    BackendUnavailableError,
    cpu_device,
    cuda_count,
    cupy_device,
    cupy_device_name,
    cupy_to_numpy,
    jax_batching,
    jax_device,
    strict_device,
    torch_copy,
    torch_device,
    torch_threads,
    torch_to_numpy,
)
from xgrad._infra.install import install_hint
from xgrad._infra.typing import Array, Device, DType, Namespace

__all__ = ["BACKENDS", "LIBRARIES", "Backend", "BackendUnavailableError", "Library", "asarray_on", "auto_choice",
           "compute_dtype", "is_numpy_scalar", "library", "library_of", "missing_dtype", "namespace_of",
           "normalise_name", "quiet_overflow", "refuse_numpy_subclass", "resolve_backend", "visible_gpus"]

logger = logging.getLogger("xgrad")


@dataclass(frozen=True)
class Library:
    """What xgrad knows of one array library: a record of :data:`LIBRARIES`."""

    name: str  # the backend's name, as resolve_backend takes it
    module: str  # the module imported to use it
    install: str  # how to install it (xgrad itself is installed from a checkout)
    is_namespace: Callable[[Any], bool]  # recognises its array-API namespace
    namespace: Callable[[Any], Namespace]  # its array-API namespace, from the imported module
    device: Callable[[Any, Device | None], Device]  # the device asked for (None: the first), from the module
    device_name: Callable[[Any], str] = str  # a device as people name it
    gpus: Callable[[Any], int] | None = None  # counts its GPUs; set on the library "auto" picks where one works
    compiler: Literal["jit", "graph"] | None = None  # how its training step compiles: traced, or a CUDA graph
    compiles_by_default: bool = False  # compile_step=None compiles: known to pay off
    fuse: str | None = None  # the module's elementwise-kernel fuser, for the compiled step
    pools: Literal["cpu", "fixed", "gpu"] = "cpu"  # CPU pools xgrad sizes, CPU pools fixed at start, a GPU
    own_pool: Callable[[int], contextlib.AbstractContextManager[None]] | None = None  # limits its own CPU pool
    gather: str | None = None  # the array method (axis, indices) gathering rows, where xp.take does more
    join: Callable[[Any], Callable[[list[Array]], Array]] | None = None  # from the module: xp.stack of 0-d arrays
    errstate: bool = False  # computes through NumPy, whose floating-point warnings np.errstate silences
    shares_host: bool = False  # asarray shares a NumPy array's memory (and warns if read-only): copy first
    to_numpy: Callable[[Array], Any] | None = None  # a NumPy copy, where DLPack alone will not do
    copy: Callable[[Array], Array] | None = None  # a fresh copy, where asarray(copy=True) will not do
    float64_hint: str | None = None  # how to get float64 where the library lacks it by default
    batching: Callable[[Any], Any] | None = None  # from the module: a devices.Batching (f on many points, compiled)

    def load(self) -> Any:
        """The imported module, or a BackendUnavailableError saying how to install it."""
        try:
            return importlib.import_module(self.module)
        except ImportError as exc:
            raise BackendUnavailableError(f"backend {self.name!r} is not installed ({exc}); install it "
                                          f"with: {self.install}") from exc


def _compat(module: Any) -> Namespace:
    return array_api_compat.array_namespace(module.zeros(0))


LIBRARIES: dict[str, Library] = {lib.name: lib for lib in (
    Library("numpy", "numpy", "pip install numpy", array_api_compat.is_numpy_namespace, _compat, cpu_device,
            errstate=True, join=lambda np: np.array),
    Library("cupy", "cupy", install_hint("cuda12", "cuda13") + ", to match the driver's CUDA version",
            array_api_compat.is_cupy_namespace, _compat, cupy_device, device_name=cupy_device_name,
            gpus=cuda_count, compiler="graph", fuse="fuse", pools="gpu", to_numpy=cupy_to_numpy),
    Library("torch", "torch", "pip install torch", array_api_compat.is_torch_namespace, _compat, torch_device,
            own_pool=torch_threads, gather="index_select", shares_host=True, to_numpy=torch_to_numpy, copy=torch_copy),
    Library("jax", "jax", "pip install jax", array_api_compat.is_jax_namespace, lambda jax: jax.numpy,
            jax_device, compiler="jit", compiles_by_default=True, pools="fixed", batching=jax_batching,
            float64_hint='call jax.config.update("jax_enable_x64", True) before any array is made'),
    Library("array_api_strict", "array_api_strict", "pip install array-api-strict",
            array_api_compat.is_array_api_strict_namespace, lambda strict: strict, strict_device, errstate=True),
)}
"""The array libraries xgrad runs on, by backend name: the one table of them."""

BACKENDS = tuple(LIBRARIES)
"""Names accepted by :func:`resolve_backend` (besides ``"auto"``)."""


def normalise_name(name: str, *, auto: bool = True) -> str:
    """`name` spelt as in :data:`BACKENDS` (case, spaces and hyphens aside), or
    ``"auto"`` with `auto`; a ValueError listing the choices for any other."""
    key = name.strip().lower().replace("-", "_")
    choices = ("auto", *LIBRARIES) if auto else tuple(LIBRARIES)
    if key not in choices:
        raise ValueError(f"`backend`: unknown backend {name!r}; choose one of: " + ", ".join(map(repr, choices)))
    return key


def library(name: str) -> Library:
    """The record of the backend called `name`."""
    return LIBRARIES[normalise_name(name, auto=False)]


def library_of(xp: Namespace) -> Library | None:
    """The record of the library whose namespace `xp` is; None for a library
    xgrad has no backend for (any array-API namespace works without one).

    Examples
    --------
    >>> import numpy as np
    >>> library_of(np).name, library_of(resolve_backend("numpy").xp).name
    ('numpy', 'numpy')
    """
    return next((lib for lib in LIBRARIES.values() if lib.is_namespace(xp)), None)


def auto_choice(gpus: int) -> str:
    """The one policy of backend ``"auto"``: the GPU library (CuPy) where a GPU
    works, `gpus` of them, NumPy otherwise.

    Examples
    --------
    >>> auto_choice(1), auto_choice(0)
    ('cupy', 'numpy')
    """
    if gpus > 0:
        return next(lib.name for lib in LIBRARIES.values() if lib.gpus is not None)
    return "numpy"


def visible_gpus() -> int:
    """The GPUs this process sees through the library :func:`auto_choice` picks
    on one (0 without it, a driver or a device). Under
    ``dask_cuda.LocalCUDACluster`` each worker sees one GPU, its own."""
    lib = LIBRARIES[auto_choice(1)]
    try:
        return int(lib.gpus(lib.load())) if lib.gpus is not None else 0
    except Exception:  # not installed, no driver, no device: all mean "no GPU"
        return 0


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
        return asarray_on(self.xp, self.device, a, dtype=dtype)

    @property
    def device_name(self) -> str:
        """The device as people name it: ``"cpu"``, a GPU's model name, ..."""
        lib = LIBRARIES.get(self.name)
        return lib.device_name(self.device) if lib is not None else str(self.device)

    def describe(self) -> str:
        """A short human-readable description, e.g. ``"numpy on cpu"``."""
        return f"{self.name} on {self.device_name}"


def asarray_on(xp: Namespace, device: Device, a: Any, /, *, dtype: DType | None = None) -> Array:
    """Host data (NumPy arrays, lists, scalars) as an array of namespace `xp`
    on `device`, for a namespace with or without a backend."""
    lib = library_of(xp)
    if lib is not None and lib.shares_host and type(a).__module__ == "numpy":
        a = a.copy()  # a private copy: neither shared memory nor a warning on a read-only one
    return xp.asarray(a, dtype=dtype, device=device)


def _make(name: str, device: Device | None) -> Backend:
    lib = LIBRARIES[name]
    module = lib.load()
    found = lib.device(module, device)
    return Backend(name, lib.namespace(module), found)


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
    key = normalise_name(name)
    return _auto(device) if key == "auto" else _make(key, device)


def _auto(device: Device | None) -> Backend:
    gpu, cpu = auto_choice(1), auto_choice(0)
    try:
        backend = _make(gpu, device)
    except BackendUnavailableError as exc:
        if shutil.which("nvidia-smi") is None:  # no NVIDIA driver: the GPU library could not help here
            logger.info("backend 'auto' chose %s: no NVIDIA GPU here (nvidia-smi not found)", cpu)
        else:
            logger.info("backend 'auto' chose %s: %s", cpu, exc)
        return _make(cpu, device)
    logger.info("backend 'auto' chose %s: a CUDA device is usable", gpu)
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
    """Refuse NumPy's masked arrays and matrices (`name`: the argument, for the message), whose arithmetic is
    not the array API's: a mask would be dropped or half-followed (masked entries silently computed with, or
    given a gradient of 0), and ``*`` on a matrix is a matrix product."""
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
    """Silence NumPy's overflow and invalid-value warnings inside a block whose caller checks
    for non-finite results itself (and reports them better); `backend`: a Backend or a namespace."""
    lib = library_of(backend.xp if isinstance(backend, Backend) else backend)
    if lib is not None and lib.errstate:
        import numpy as np

        return np.errstate(over="ignore", invalid="ignore", divide="ignore")
    return contextlib.nullcontext()


def index_dtype(xp: Namespace, device: Any = None) -> Any:
    """The namespace's default integer type for indices and counts: int64 on most backends, int32 on JAX
    without ``jax_enable_x64`` (which warns on every int64 request and hands back int32 anyway)."""
    try:
        return xp.__array_namespace_info__().default_dtypes(device=device)["indexing"]
    except (AttributeError, TypeError, KeyError):
        return xp.int64


def missing_dtype(xp: Namespace, device: Any, name: str) -> str | None:
    """None where `xp` has dtype `name` on `device` (as the array API's inspection says, where
    the library has it); else that it lacks it and how to get it, in words."""
    try:
        if name in xp.__array_namespace_info__().dtypes(device=device):
            return None
    except (AttributeError, TypeError):
        return None
    lib = library_of(xp)
    hint = lib.float64_hint if lib is not None and name == "float64" else None
    where = f"{lib.name if lib is not None else 'this array library'} has no {name} on device {device}"
    return f"{where}; to get it, {hint}" if hint else f"{where}; to get it, use a device that has it"


def compute_dtype(xp: Namespace, device: Any, dtype: Any, *, warn: bool = True) -> Any:
    """float64 where the backend has it: a float32 loss difference would keep
    only about half of its digits. Otherwise `dtype`, with a warning unless
    the caller reports the accuracy itself (``warn=False``)."""
    if dtype == xp.float64:
        return dtype
    if missing_dtype(xp, device, "float64") is None:
        return xp.float64
    if warn:
        warnings.warn(
            "this backend has no float64 here (for JAX, enable jax_enable_x64); the "
            "numerical gradient is computed in float32 with a step of eps**(1/3), "
            "good to about 1e-4 relative",
            RuntimeWarning, stacklevel=4,  # the caller of TwoLayerNet.numerical_gradient
        )
    return dtype
