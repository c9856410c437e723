"""Devices: check that a backend has the device asked for, or say which it has.

Each helper takes the backend's imported module and the device as given (None,
a device object, or a name such as ``"cpu"`` or ``"cuda:0"``) and returns the
device object arrays will report, or raises `BackendUnavailableError` naming the
device and listing the backend's devices.
"""

from __future__ import annotations

from typing import Any

from xgrad._infra.typing import Device

__all__ = ["BackendUnavailableError", "cupy_index", "jax_device", "no_device", "strict_device", "torch_device"]


class BackendUnavailableError(RuntimeError):
    """A requested backend cannot be used here; the message says why."""


def no_device(name: str, device: Any, devices: list[str]) -> BackendUnavailableError:
    return BackendUnavailableError(
        f"backend {name!r} has no device {device!r} here; its devices are: "
        + ", ".join(repr(d) for d in devices)
    )


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
