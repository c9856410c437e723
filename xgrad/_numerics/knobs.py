"""The options of :func:`xgrad.derivative`, checked where they come in and
broadcast together: `x`, the arrays of `args`, `step_direction` and
`initial_step` share one shape (as in scipy.differentiate). Array API only.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import array_api_compat

from xgrad._infra.backend import is_numpy_scalar
from xgrad._infra.typing import Array, Namespace
from xgrad._infra.validate import as_float_array, check_callable, check_count, check_flag, check_real
from xgrad._numerics import richardson as _richardson
from xgrad._numerics.stencils import MAX_ORDER

__all__ = ["METHODS", "Options", "check_step_factor", "default_rtol", "first_steps", "order_depth", "parse"]

METHODS = ("central", "forward", "backward", "complex")


@dataclass(frozen=True)
class Options:
    x: Array  # broadcast with args, step_direction and initial_step
    xp: Namespace
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    scale: Array | None  # None: the default, max(|x|, 1)
    direction: Array | float  # a number: the same for every element
    initial_step: Array | None
    settings: _richardson.Settings
    callback: Callable[..., None] | None
    method: str
    n: int
    preserve_shape: bool


def default_rtol(xp: Namespace, dtype: Any, n: int = 1) -> float:
    """eps**0.8 for a first derivative: about 3e-13 in float64 and 3e-6 in
    float32; a tenth of a power of eps less per further derivative (each
    costs digits to rounding)."""
    return float(xp.finfo(dtype).eps) ** (0.8 - 0.1 * (n - 1))


def as_like(value: Any, name: str, x: Array, xp: Namespace, shape: tuple[int, ...] | None = None) -> Array:
    """A number or an array broadcast to `shape` (that of `x` by default), with the dtype and device of `x`."""
    shape = tuple(x.shape) if shape is None else shape
    dev = array_api_compat.device(x)
    is_array = array_api_compat.is_array_api_obj(value) and not is_numpy_scalar(value)  # np.float32(2): a number
    if is_array and array_api_compat.array_namespace(value) is not xp:
        raise TypeError(f"`{name}` must be a number or an array of the library of `x`; got {type(value).__name__}")
    if is_array:
        if value.dtype == xp.bool or xp.isdtype(value.dtype, "complex floating"):
            raise TypeError(f"`{name}` must hold real numbers; got dtype {value.dtype}")
        value = xp.astype(value, x.dtype)
    elif shape == tuple(x.shape):  # a number: one array of it (on JAX, no transfer to the device of `x`)
        return xp.full_like(x, check_real(value, name))
    else:
        value = xp.asarray(check_real(value, name), dtype=x.dtype, device=dev)
    try:
        return xp.broadcast_to(value, shape)
    except (ValueError, RuntimeError, TypeError) as exc:
        raise ValueError(f"`{name}` must broadcast to the shape of `x` {shape}; "
                         f"got shape {tuple(value.shape)}") from exc


def check_tolerance(value: Any, name: str) -> float | None:
    if value is None:
        return None
    v = check_real(value, name)
    if not (math.isfinite(v) and v >= 0):
        raise ValueError(f"`{name}` must be >= 0 and finite; got {value!r}")
    return v


def default_scale(x: Array, scale: Any, xp: Namespace) -> Array:
    """The scale of every element: ``max(|x|, 1)`` where `scale` is None."""
    if scale is None:
        return xp.maximum(xp.abs(x), xp.ones_like(x))
    s = as_like(scale, "scale", x, xp)
    return xp.where(xp.isfinite(s) & (s > 0), s, xp.full_like(s, math.nan))


def _shape_of(value: Any) -> tuple[int, ...]:
    return tuple(value.shape) if array_api_compat.is_array_api_obj(value) and not is_numpy_scalar(value) else ()


def _broadcast(shapes: dict[str, tuple[int, ...]]) -> tuple[int, ...]:
    """The common shape of named shapes, or an error naming the one that does not fit."""
    out: tuple[int, ...] = ()
    for name, shape in shapes.items():
        a, b = (1,) * (len(shape) - len(out)) + out, (1,) * (len(out) - len(shape)) + shape
        if any(p != q and 1 not in (p, q) for p, q in zip(a, b, strict=True)):
            raise ValueError(f"`{name}` of shape {shape} does not broadcast with `x` and the others ({out}); "
                             "give arrays whose shapes broadcast together")
        out = tuple(q if p == 1 else p for p, q in zip(a, b, strict=True))
    return out


def _args(args: Any, kwargs: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    args = args if isinstance(args, tuple | list) else (args,)  # scipy takes a lone array too
    if kwargs is None:
        kwargs = {}
    if not isinstance(kwargs, dict):
        raise TypeError(f"`kwargs` must be a dict of keyword arguments for `f`; got {type(kwargs).__name__}")
    return tuple(args), kwargs


def _method(method: Any, n: int, step_direction: Any) -> str:
    if method not in METHODS:
        raise ValueError(f"`method` must be one of {', '.join(map(repr, METHODS))}; got {method!r}")
    if method != "central" and not (isinstance(step_direction, int | float) and step_direction == 0):
        raise ValueError(f"`step_direction` applies to method='central' only (per element); with "
                         f"method={method!r} leave it out")
    if method == "complex" and n != 1:
        raise ValueError(f"method='complex' gives first derivatives only; for n={n} use method='central'")
    return str(method)


def order_depth(order: Any) -> int:
    """The extrapolation depth of a checked `order` (None: the default)."""
    if order is None:
        return _richardson.DEPTH
    order = check_count(order, "order", minimum=1)
    if order > 2 * (_richardson.DEPTH + 1):
        raise ValueError(f"`order` must be at most {2 * (_richardson.DEPTH + 1)}; got {order}")
    return (order + 1) // 2 - 1  # 1 and 2: no extrapolation; 3 and 4: over two quotients; ...


def check_step_factor(value: Any) -> float | None:
    if value is None:
        return None
    v = check_real(value, "step_factor")
    if not (math.isfinite(v) and v > 1):
        raise ValueError(f"`step_factor` must be a finite number > 1 (each step is the previous one divided by "
                         f"it); got {value!r}. For growing steps, start from a smaller `initial_step` instead")
    return v


def parse(x: Any, *, scale: Any, step_direction: Any, rtol: Any, atol: Any, maxiter: Any, args: Any,
          kwargs: Any, order: Any, initial_step: Any, step_factor: Any, callback: Any, method: Any, n: Any,
          preserve_shape: Any) -> Options:
    """Every option checked, and `x` broadcast with the others."""
    x, xp, _ = as_float_array(x)
    n = check_count(n, "n", minimum=1)
    precision = "double" if float(xp.finfo(x.dtype).eps) < 1e-10 else "single"
    if n > MAX_ORDER[precision]:
        raise ValueError(f"`n` = {n} is beyond what {x.dtype} can deliver (rounding grows like eps / h**n); "
                         f"use n <= {MAX_ORDER[precision]}, or a float64 `x` (n <= {MAX_ORDER['double']})")
    method = _method(method, n, step_direction)
    maxiter = check_count(maxiter, "maxiter", minimum=1)
    rtol, atol = check_tolerance(rtol, "rtol"), check_tolerance(atol, "atol")
    depth = order_depth(order)
    factor = check_step_factor(step_factor)
    if callback is not None:
        check_callable(callback, "callback")
    preserve_shape = check_flag(preserve_shape, "preserve_shape")
    args, kwargs = _args(args, kwargs)
    shapes = {"x": tuple(x.shape), "step_direction": _shape_of(step_direction),
              "initial_step": _shape_of(initial_step)}
    shapes.update({f"args[{i}]": _shape_of(a) for i, a in enumerate(args)})
    shape = _broadcast(shapes)
    if shape != tuple(x.shape):
        x = xp.broadcast_to(x, shape)
    sign = {"forward": 1.0, "backward": -1.0}.get(method)
    direction: Array | float
    if sign is not None:
        direction = sign
    elif _shape_of(step_direction) or array_api_compat.is_array_api_obj(step_direction):
        direction = as_like(step_direction, "step_direction", x, xp)
    else:  # a number: an array of it is made with the first steps (see `first_steps`)
        direction = check_real(step_direction, "step_direction")
    h0 = None if initial_step is None else as_like(initial_step, "initial_step", x, xp)
    settings = _richardson.Settings(
        rtol=default_rtol(xp, x.dtype, n) if rtol is None else rtol,
        atol=0.0 if atol is None else atol,
        maxiter=maxiter, depth=depth, step_factor=factor)
    scale = None if scale is None else default_scale(x, scale, xp)  # None: computed with the first steps
    return Options(x=x, xp=xp, args=args, kwargs=kwargs, scale=scale, direction=direction, initial_step=h0,
                   settings=settings, callback=callback, method=method, n=n, preserve_shape=preserve_shape)


def first_steps(x: Array, scale: Array | None, direction: Array | float, fraction: float,
                initial_step: Array | None = None) -> tuple[Array, Array, Array, Array]:
    """The first steps, the power of the error of each element's quotient (2 central, 1
    one-sided), the elements whose options are not finite, and the central elements.
    `scale` None: the default, ``max(|x|, 1)``; `direction` a number: the same for all
    (compiled, a 0-d array); `initial_step` None: `fraction` of the scale, else that step,
    signed, which must be positive and finite."""
    xp = array_api_compat.array_namespace(x)
    scale = default_scale(x, None, xp) if scale is None else scale
    if isinstance(direction, float):  # a number (eager)
        direction = xp.full_like(x, direction)
    elif direction.dtype != x.dtype or tuple(direction.shape) != tuple(x.shape):  # a 0-d array of it (compiled)
        direction = xp.broadcast_to(xp.astype(direction, x.dtype), x.shape)
    central = direction == 0
    unusable = ~xp.isfinite(direction) | ~xp.isfinite(scale)
    if initial_step is None:
        h = _richardson.first_step(x, scale, direction, fraction, xp)
    else:
        sign = xp.where(central, xp.ones_like(x), xp.sign(direction))
        h = (x + sign * initial_step) - x
        unusable = unusable | ~(initial_step > 0) | ~xp.isfinite(initial_step)
    power = xp.where(central, 2 * xp.ones_like(x), xp.ones_like(x))
    return h, power, unusable, central
