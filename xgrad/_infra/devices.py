"""Devices, and the other code of one array library that the backend table points to.

Each ``*_device`` helper takes the library's imported module and the device as
given (None, a device object, or a name such as ``"cpu"`` or ``"cuda:0"``) and
returns the device object arrays will report, or raises
`BackendUnavailableError` naming the device and listing the backend's devices.
The rest copy a library's arrays to the host, or limit its own CPU threads,
where the array API has no common way.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from xgrad._infra.typing import Array, Device

__all__ = ["BackendUnavailableError", "Batching", "cpu_device", "cuda_count", "cupy_device", "cupy_device_name",
           "cupy_index", "cupy_to_numpy", "jax_batching", "jax_device", "no_device", "strict_device", "torch_copy",
           "torch_device", "torch_threads", "torch_to_numpy"]

logger = logging.getLogger("xgrad")


class BackendUnavailableError(RuntimeError):
    """A requested backend cannot be used here; the message says why."""


def no_device(name: str, device: Any, devices: list[str]) -> BackendUnavailableError:
    return BackendUnavailableError(
        f"backend {name!r} has no device {device!r} here; its devices are: "
        + ", ".join(repr(d) for d in devices)
    )


def cpu_device(np: Any, device: Device | None) -> str:
    if device not in (None, "cpu"):
        raise no_device("numpy", device, ["cpu"])
    return "cpu"


def cuda_count(cupy: Any) -> int:
    """The CUDA devices CuPy sees (under ``dask_cuda`` a worker sees its own)."""
    return int(cupy.cuda.runtime.getDeviceCount())


def cupy_device(cupy: Any, device: Device | None) -> Any:
    try:
        count = cuda_count(cupy)
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
    found = cupy.cuda.Device(cupy_index(device, count))
    try:
        with found:
            cupy.zeros(1).sum().item()  # a kernel launch proves the driver works
    except Exception as exc:
        raise BackendUnavailableError(
            f"backend 'cupy' found a CUDA device but could not run on it: {exc}"
        ) from exc
    return found


def cupy_device_name(device: Any) -> str:
    """The GPU's model name."""
    import cupy

    name = cupy.cuda.runtime.getDeviceProperties(device.id)["name"]
    return name.decode() if isinstance(name, bytes) else str(name)


def cupy_to_numpy(a: Array) -> Any:
    return a.get()


def torch_to_numpy(a: Array) -> Any:
    import numpy as np  # the host edge

    return np.from_dlpack(a.detach().cpu()).copy()  # DLPack refuses a tensor that requires grad


def torch_copy(a: Array) -> Array:
    return a.clone()  # asarray(copy=True) warns on tensors that require grad


@contextlib.contextmanager
def torch_threads(limit: int) -> Iterator[None]:
    """PyTorch's intra-op threads (and its MKL's) set to `limit` inside the
    block, then set back to the count before."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(limit)
    try:
        yield
    finally:
        torch.set_num_threads(before)
        logger.debug("torch intra-op threads: %d inside the block, %d restored", limit, before)


def cupy_index(device: Any, count: int) -> int:
    """The CUDA device index from None, an int, a CuPy device or ``"cuda[:N]"``."""
    index: Any = 0 if device is None else getattr(device, "id", device)
    if isinstance(index, str) and index.split(":")[0] in ("cuda", "gpu"):
        tail = index.partition(":")[2]
        index = int(tail) if tail.isdigit() else 0 if not tail else index
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < count:
        raise no_device("cupy", device, [f"cuda:{i}" for i in range(count)])
    return index


def torch_device(torch: Any, device: Device | None) -> Any:
    devices = ["cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    try:
        # a tensor proves the device exists in this build, and names it as arrays do ("cuda" -> cuda:0)
        return torch.zeros(1, device=torch.device("cpu" if device is None else device)).device
    except Exception:  # RuntimeError, AssertionError (no CUDA), TypeError
        raise no_device("torch", device, devices) from None


def jax_device(jax: Any, device: Device | None) -> Any:
    devices = list(dict.fromkeys([*jax.devices(), *jax.devices("cpu")]))
    if device is None:
        return devices[0]
    if isinstance(device, str):
        platform, _, index = device.partition(":")
        try:
            return jax.devices(platform)[int(index or 0)]
        except (RuntimeError, ValueError, IndexError):
            pass
    elif device in devices:
        return device
    raise no_device("jax", device, [str(d) for d in devices])


class Batching(NamedTuple):
    """How a library evaluates a function in one compiled call: over a stack
    of points (`batch`: f -> a function of the stack), or on whole arrays
    (`whole`: f -> its compiled self). `vectorize`: f -> a function of the
    stack that runs f's operations once each, on the whole stack, uncompiled:
    fewer dispatches, and the rounding of eager calls."""

    batch: Callable[[Callable[..., Any]], Callable[..., Any]]
    whole: Callable[[Callable[..., Any]], Callable[..., Any]]
    vectorize: Callable[[Callable[..., Any]], Callable[..., Any]]


def jax_batching(jax: Any) -> Batching:
    return Batching(lambda f: jax.jit(jax.vmap(f)), jax.jit, jax.vmap)


def strict_device(strict: Any, device: Device | None) -> Any:
    devices = list(strict.__array_namespace_info__().devices())
    if device is None:
        return devices[0]
    if device in devices:
        return device
    if isinstance(device, str):
        try:
            return strict.Device(device)
        except ValueError:
            pass
    raise no_device("array_api_strict", device, [getattr(d, "_device", str(d)) for d in devices])
