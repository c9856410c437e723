"""Finite-difference steps: the one place where a step `h` is made and checked.

Every numerical derivative in xgrad (and the network's numerical gradient)
takes its steps from :func:`steps_for`, so a step that the dtype cannot
resolve, or one that leaves the floating range, is refused in one place.
"""

from __future__ import annotations

import math
from typing import Any

from xgrad._infra.typing import Array, Namespace
from xgrad._infra.validate import check_optional_positive

__all__ = ["StepError", "check_finite", "eps", "first_index", "first_non_finite", "steps_for"]


class StepError(ValueError):
    """A finite-difference step that the dtype cannot resolve (``x + h == x``)
    or that takes ``x ± h`` out of the floating range."""


def eps(xp: Namespace, dtype: Any) -> float:
    """The machine epsilon of `dtype`."""
    return float(xp.finfo(dtype).eps)


def first_index(xp: Namespace, mask: Array, shape: tuple[int, ...]) -> tuple[int, ...]:
    """The index (as a tuple) of the first true element of a boolean `mask`."""
    flat = xp.reshape(xp.astype(mask, xp.int8), (-1,))
    k = int(xp.argmax(flat))
    index = []
    for size in reversed(shape):
        index.append(k % size)
        k //= size
    return tuple(reversed(index))


def _at(x: Array, index: tuple[int, ...]) -> float:
    return float(x[index]) if index else float(x)


def first_non_finite(xp: Namespace, x: Array) -> tuple[tuple[int, ...], float] | None:
    """The index and value of the first inf or nan in `x`; None if all are finite."""
    bad = ~xp.isfinite(x)
    if not bool(xp.any(bad)):
        return None
    index = first_index(xp, bad, tuple(x.shape))
    return index, _at(x, index)


def check_finite(xp: Namespace, x: Array, name: str) -> None:
    """Refuse an `x` holding inf or nan: no derivative exists there."""
    found = first_non_finite(xp, x)
    if found is not None:
        index, value = found
        raise ValueError(
            f"`{name}` must be finite; got {value} at index {index}. A derivative "
            "at inf or nan has no meaning; remove or replace those elements first"
        )


def _raw_default_step(xp: Namespace, x: Array, method: str) -> Array:
    """``eps**(1/3) * max(1, |x|)`` for central differences, ``eps**(1/2) * ...``
    for one-sided ones."""
    power = 1 / 3 if method == "central" else 1 / 2
    return eps(xp, x.dtype) ** power * xp.maximum(xp.abs(x), xp.ones_like(x))


def steps_for(xp: Namespace, x: Array, h: float | None, method: str, *, name: str = "x") -> Array:
    """The step of every element of `x`: `h` as given, or the default step
    from the dtype and the scale (rounded so that ``x + h`` is exact).

    Raises `ValueError` if `h` is not positive and finite, if `x` is not finite, if the step is too small for the
    dtype to resolve (``x + h == x``), or if ``x ± h`` leaves the floating range.
    """
    h = check_optional_positive(h, "h")
    check_finite(xp, x, name)
    largest = float(xp.finfo(x.dtype).max)
    if h is not None and h > largest:
        raise StepError(f"`h` = {h} does not fit in {x.dtype} (largest {largest:.3g}); use a smaller `h`")
    raw = _raw_default_step(xp, x, method) if h is None else xp.full_like(x, h)
    _check_in_range(xp, x, raw, method, name)
    if h is None:
        return (x + raw) - x
    _check_resolved(xp, x, raw, h, method, name)
    return raw


def _check_resolved(xp: Namespace, x: Array, steps: Array, h: float, method: str, name: str) -> None:
    lost = {"forward": (x + steps) == x, "backward": (x - steps) == x}.get(
        method, ((x + steps) == x) | ((x - steps) == x))
    if not bool(xp.any(lost)):
        return
    index = first_index(xp, lost, tuple(x.shape))
    value = _at(x, index)
    e = eps(xp, x.dtype)
    largest = float(xp.max(xp.abs(x))) if math.prod(x.shape) else 0.0
    least = max(2 * e * largest, float(xp.finfo(x.dtype).smallest_normal))
    default = e ** (1 / 3 if method == "central" else 1 / 2) * max(1.0, abs(value))
    raise StepError(
        f"`h` = {h} is too small for `{name}` in {x.dtype}: x ± h == x at index {index} "
        f"(x = {value}), so the difference there would be 0 or meaningless. Use h >= {least:.3g}, or "
        f"leave h=None for a step from the dtype ({default:.3g} there)"
    )


def _check_in_range(xp: Namespace, x: Array, steps: Array, method: str, name: str) -> None:
    room = float(xp.finfo(x.dtype).max) - steps  # compared without overflowing
    side = {"forward": x, "backward": -x}.get(method, xp.abs(x))
    bad = side > room
    if bool(xp.any(bad)):
        index = first_index(xp, bad, tuple(x.shape))
        raise StepError(
            f"the step leaves the range of {x.dtype}: x ± h overflows at index {index} of "
            f"`{name}` (x = {_at(x, index)}, h = {_at(steps, index):.3g}). Use a smaller `h`"
        )
