"""Checks of TwoLayerNet's construction arguments: dtype, seed, memory."""

from __future__ import annotations

import operator
import os
from typing import Any

from xgrad._infra.backend import missing_dtype
from xgrad._infra.typing import DType, Namespace

DTYPES = ("float32", "float64")


def known_dtype(xp: Namespace, dtype: Any) -> str:
    """'float32' or 'float64': `dtype` given by name, as a dtype object of `xp`, or None (float64)."""
    name = "float64" if dtype is None else next(
        (n for n in DTYPES if (dtype == n if isinstance(dtype, str) else dtype == getattr(xp, n))), None)
    if name is None:
        raise ValueError(f"`dtype` must be 'float32' or 'float64' (or that dtype of the network's library); "
                         f"got {dtype!r}")
    return name


def network_dtype(xp: Namespace, device: Any, dtype: Any) -> DType:
    """'float32' / 'float64' or a dtype object of `xp`, as `xp`'s dtype, refused
    where `xp` lacks it on `device` (it would compute in another dtype than the
    one the network reports)."""
    name = known_dtype(xp, dtype)
    problem = missing_dtype(xp, device, name)
    if problem is not None:
        other = next(n for n in DTYPES if n != name)
        given = " (the default)" if dtype is None else ""
        raise ValueError(f"`dtype` {name!r}{given} is not available: {problem}; or pass dtype={other!r}")
    dt: DType = getattr(xp, name)
    return dt


def check_seed(seed: Any) -> int | None:
    """None or a non-negative integer (bools, floats and strings refused)."""
    if seed is None:
        return None
    if isinstance(seed, bool | float | str | bytes):
        raise TypeError(f"`seed` must be a non-negative integer or None; got {type(seed).__name__} {seed!r}")
    try:
        value = operator.index(seed)
    except TypeError:
        raise TypeError(f"`seed` must be a non-negative integer or None; got {type(seed).__name__}") from None
    if value < 0:
        raise ValueError(f"`seed` must be a non-negative integer or None; got {value}")
    return value


def physical_memory() -> int | None:
    """This machine's memory in bytes, where the system says."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def check_memory(sizes: list[int]) -> None:
    """Refuse, before allocating, a network whose start cannot fit in memory.

    The weights are drawn in float64 on the host and then copied to the
    backend, so creating the network briefly needs 16 bytes per parameter.
    """
    n_in, n_hidden, n_out = sizes
    count = n_in * n_hidden + n_hidden + n_hidden * n_out + n_out
    need, have = 16 * count, physical_memory()
    if have is not None and need > have:
        widest = max(zip(sizes, ("input_size", "hidden_size", "output_size"), strict=True))[1]
        raise ValueError(
            f"a {n_in}-{n_hidden}-{n_out} network has {count:,} parameters; creating it needs about "
            f"{_bytes(need)} of memory, more than this machine's {_bytes(have)}. Choose a smaller "
            f"`{widest}`."
        )


def _bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError  # pragma: no cover
