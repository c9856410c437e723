"""What comes into a :class:`~xgrad.TwoLayerNet`, checked: arrays of its
library and device, inputs `x` that fit it, parameters that fit together.

The network object passes its library (`xp`), device and dtype; the messages
name the argument as the caller wrote it.
"""

from __future__ import annotations

import math
import os
import sys
import warnings
from types import FrameType
from typing import Any

import array_api_compat

from xgrad._infra.backend import library_of, refuse_numpy_subclass
from xgrad._infra.typing import Array, Device, DType, Namespace
from xgrad._infra.validate import beyond_range, of_library
from xgrad._net.args import DTYPES
from xgrad._net.core import PARAM_NAMES
from xgrad._net.functions import RowSumError, check_labels, one_hot

__all__ = ["LabelsNotProbabilitiesWarning", "check_fits", "check_own_array", "checked_labels", "checked_params",
           "checked_x", "network_targets", "true_classes"]


class LabelsNotProbabilitiesWarning(UserWarning):
    """Labels given as floating rows that do not sum to 1, such as the book's dummy
    ``t = np.random.rand(100, 10)``: they are not probabilities, so the loss is no
    cross-entropy of a distribution. The network's loss, gradients and checks
    accept them with this warning (the book uses them only to show the
    gradient's shapes); train with class indices or one-hot rows instead. Silence
    it with ``warnings.simplefilter("ignore", xgrad.LabelsNotProbabilitiesWarning)``.
    """


def check_own_array(xp: Namespace, device: Device, a: Any, name: str) -> None:
    """`a` is an array of the network's library `xp`, on its `device`."""
    refuse_numpy_subclass(a, name)
    if isinstance(a, list | tuple):
        lib = library_of(xp)
        backend = lib.name if lib else "name"
        ragged = " (ragged: its rows have different lengths; give rows of equal length)" if _ragged(a) else ""
        raise TypeError(f"`{name}` must be an array of the network's library; got {type(a).__name__}{ragged}. "
                        f"Convert it first, e.g. xgrad.resolve_backend({backend!r}).asarray({name})")
    if not array_api_compat.is_array_api_obj(a) or isinstance(a, (int, float, bool, complex)):
        raise TypeError(f"`{name}` must be an array of the network's library; got {type(a).__name__}")
    if not of_library(xp, a):
        raise TypeError(
            f"`{name}` must be an array of the network's library ({xp.__name__}); got "
            f"{type(a).__module__}.{type(a).__name__}. Convert it first, e.g. with "
            "xgrad.resolve_backend(name).asarray(...)"
        )
    if array_api_compat.device(a) != device:
        raise ValueError(f"`{name}` is on device {array_api_compat.device(a)}, the network on {device}; "
                         "move it first")


def _ragged(a: list[Any] | tuple[Any, ...]) -> bool:
    """Whether a nested list has rows of different lengths (or a row beside a number)."""
    lengths = {len(r) if isinstance(r, list | tuple) else None for r in a}
    return len(lengths) > 1 or any(_ragged(r) for r in a if isinstance(r, list | tuple))


def checked_x(xp: Namespace, device: Device, dtype: DType, n_in: int, x: Any, *, samples: bool = False,
              cast: bool = True) -> Array:
    """`x` as a (batch, `n_in`) array of finite values in the network's `dtype`
    (unless not `cast`); with ``samples=True`` (loss, gradients, accuracy)
    it must also hold at least one sample."""
    check_own_array(xp, device, x, "x")
    if x.ndim != 2 or x.shape[1] != n_in:
        hint = " (for one sample use x[None, :])" if x.ndim == 1 else ""
        raise ValueError(
            f"`x` must have shape (batch, {n_in}) to match the network's "
            f"input size{hint}; got {tuple(x.shape)}"
        )
    if not xp.isdtype(x.dtype, ("integral", "real floating")):
        raise TypeError(f"`x` must hold real numbers; got dtype {x.dtype}")
    if samples and x.shape[0] == 0:
        raise ValueError(f"`x` holds no samples (shape {tuple(x.shape)}); the loss, gradient and "
                         "accuracy of an empty batch are undefined")
    if xp.isdtype(x.dtype, "real floating"):  # checked before the cast, which could make them infinite
        if not bool(xp.all(xp.isfinite(x))):
            raise ValueError("`x` holds NaN or infinite values; the scores, loss and gradient would be NaN")
        _check_range(xp, dtype, x)
    return xp.astype(x, dtype) if cast and x.dtype != dtype else x


def _check_range(xp: Namespace, dtype: DType, x: Array) -> None:
    """Finite floats of a wider dtype than the network's must stay finite when cast to it."""
    largest = beyond_range(xp, x, dtype)
    if largest is not None:
        name = "float32" if dtype == xp.float32 else str(dtype)
        raise ValueError(f"`x` has values up to {largest:.3g}, beyond the range of {name}, the network's "
                         "dtype: they would become infinite. Scale `x`, or use a float64 network "
                         "(net.astype('float64'))")


def checked_labels(xp: Namespace, y_shape: tuple[int, ...], t: Array) -> bool:
    """The network's one check of labels `t` for scores of shape `y_shape`
    (:func:`~xgrad._net.functions.check_labels`); True for class indices.
    Floating rows that do not sum to 1 pass with a
    :class:`LabelsNotProbabilitiesWarning`; integer rows that do not are refused
    (a one-hot row with two ones is a mistake, not a dummy)."""
    try:
        return check_labels(xp, y_shape, t)
    except RowSumError as exc:
        if exc.integral:
            raise
        warnings.warn(LabelsNotProbabilitiesWarning(
            f"`t`'s rows are not probabilities: row {exc.row} sums to {exc.total:.6g}, not 1. The loss and "
            "gradients are computed as if they were (fine for looking at the gradient's shapes, as the book does "
            "with np.random.rand(100, 10)), but train on class indices or one-hot rows"),
            stacklevel=_caller_level())
        return False


def network_targets(xp: Namespace, y_shape: tuple[int, ...], t: Array, dtype: DType, device: Device) -> Array:
    """Labels as target rows of shape `y_shape` and `dtype`, after :func:`checked_labels`."""
    if checked_labels(xp, y_shape, t):
        return one_hot(t, y_shape[-1], dtype, xp, device)
    return xp.astype(t, dtype)


def _caller_level() -> int:
    """The stacklevel of the first frame outside xgrad: the user's line that gave the labels."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    frame: FrameType | None = sys._getframe(1)
    level = 1
    while frame is not None and frame.f_code.co_filename.startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def true_classes(xp: Namespace, t: Array) -> Array:
    """The class of each probability row's largest entry; a tie names no class."""
    ties = xp.sum(xp.astype(t == xp.max(t, axis=1, keepdims=True), xp.int32), axis=1)
    if bool(xp.any(ties > 1)):
        row = int(xp.argmax(xp.astype(ties > 1, xp.int32)))
        raise ValueError(f"`t` row {row} has its largest value in {int(ties[row])} classes; accuracy needs one "
                         "true class per sample (give class indices, or rows with one largest entry)")
    return xp.argmax(t, axis=1)


def checked_params(xp: Namespace, device: Device, params: Any, *, own: type) -> dict[str, Array]:
    """`params` as the network's four parameters, in order: arrays of `xp` on
    `device` (`own` is the type of the network's arrays, the common case,
    checked fast), of one floating dtype, with shapes that fit together.
    Only shapes and dtypes are read: no data move to the host."""
    if not isinstance(params, dict):
        raise TypeError(f"`params` must be a dict of {', '.join(PARAM_NAMES)}; got {type(params).__name__}")
    if set(params) != set(PARAM_NAMES):
        raise ValueError(f"`params` must have exactly the keys {', '.join(PARAM_NAMES)}; got "
                         f"{', '.join(map(str, params)) or 'none'}")
    for k in PARAM_NAMES:  # the training loop passes here
        if type(params[k]) is not own or array_api_compat.device(params[k]) != device:
            check_own_array(xp, device, params[k], f"params[{k!r}]")
    dtypes = {params[k].dtype for k in PARAM_NAMES}
    if len(dtypes) != 1 or not any(params["W1"].dtype == getattr(xp, d) for d in DTYPES):
        raise TypeError(f"`params` must all be float32 or all float64; got dtypes "
                        f"{[str(params[k].dtype) for k in PARAM_NAMES]}")
    shapes = {k: tuple(params[k].shape) for k in PARAM_NAMES}
    w1, w2 = shapes["W1"], shapes["W2"]
    ok = (len(w1) == 2 and len(w2) == 2 and w2[0] == w1[1] and shapes["b1"] == (w1[1],)
          and shapes["b2"] == (w2[1],) and math.prod(w1) * math.prod(w2) > 0)
    if not ok:
        raise ValueError("`params` must have shapes W1 (input, hidden), b1 (hidden,), W2 (hidden, output), "
                         f"b2 (output,) with no zero size; got {shapes}")
    return {k: params[k] for k in PARAM_NAMES}


def check_fits(xp: Namespace, params: dict[str, Array], dtype: DType) -> None:
    """Parameters cast to `dtype` must stay finite (float64 weights beyond float32's range would not)."""
    for k, v in params.items():
        if (largest := beyond_range(xp, v, dtype)) is not None:
            name = "float32" if dtype == xp.float32 else str(dtype)
            raise ValueError(f"the network's {k} has values up to {largest:.3g}, beyond the range of {name}; "
                             "cast to it, they would be infinite. Keep the network in float64")
