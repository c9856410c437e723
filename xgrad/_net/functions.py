"""The network's building blocks: activations, softmax, cross-entropy.

All of them take arrays of any array-API backend and are numerically stable
for inputs of any size: no ``inf - inf`` or ``inf / inf`` from ``exp``, no
``log(0)``, no ``1e-7`` added inside a logarithm.

Labels pass one boundary, :func:`check_labels`, whatever the entry point
(:func:`cross_entropy_error` here, the network's loss, gradients, accuracy and
gradient checks): the kind is read from the shape, never from the dtype.
"""

from __future__ import annotations

import math
import operator
from typing import Any

import array_api_compat

from xgrad._infra.backend import index_dtype, namespace_of, quiet_overflow
from xgrad._infra.typing import Array, Namespace
from xgrad._infra.validate import as_float_array as _as_float_array
from xgrad._infra.validate import of_library

__all__ = ["cross_entropy_error", "log_softmax", "relu", "sigmoid", "softmax"]


def as_float_array(x: Any, *, name: str) -> tuple[Array, Namespace, Any]:
    """`x` as a real floating array; NumPy's float64 and complex128 scalars
    (subclasses of Python's float and complex, which namespace lookups skip as
    plain numbers) are read as the numbers they hold."""
    if isinstance(x, (float, complex)) and type(x) not in (float, complex):
        x = complex(x) if isinstance(x, complex) else float(x)
    return _as_float_array(x, name=name)


def sigmoid(x: Array, /, *, xp: Namespace | None = None) -> Array:
    """The logistic function ``1 / (1 + exp(-x))``, computed as written.

    One exponential: accurate to a few units in the last place in both
    tails (for very negative `x`, ``1 + exp(-x)`` is exp(-x) to rounding and
    its reciprocal is ``exp(x)``). Where ``exp(-x)`` overflows (`x` below
    about -88.7 in float32, -709.8 in float64) the result is exactly 0: the
    true value lies below the dtype's smallest normal number there. Called
    with an array-like, no overflow warning is issued; a caller that passes
    `xp` (the network's hot path) skips the conversions below and silences
    NumPy's overflow warning itself where it must
    (:func:`xgrad._infra.backend.quiet_overflow`).

    Integer and boolean arrays are promoted to the default floating dtype;
    Python numbers and lists become NumPy arrays.

    Examples
    --------
    >>> import numpy as np
    >>> from xgrad import sigmoid
    >>> sigmoid(np.array([-1000.0, 0.0, 1000.0]))
    array([0. , 0.5, 1. ])
    """
    if xp is None:
        x, xp, _ = as_float_array(x, name="x")
        with quiet_overflow(xp):  # exp(-x) = inf gives 0, the right answer
            return 1 / (1 + xp.exp(-x))
    return 1 / (1 + xp.exp(-x))


def relu(x: Array, /, *, xp: Namespace | None = None) -> Array:
    """``max(x, 0)`` elementwise (NaN stays NaN).

    Integer and boolean arrays are promoted to the default floating dtype;
    Python numbers and lists become NumPy arrays.

    Examples
    --------
    >>> import numpy as np
    >>> from xgrad import relu
    >>> relu(np.array([-1.0, 0.0, 2.0]))
    array([0., 0., 2.])
    """
    if xp is None:
        x, xp, _ = as_float_array(x, name="x")
    return xp.maximum(x, xp.zeros_like(x))  # maximum propagates NaN; where(x > 0) would hide it


def _check_axis(x: Array, axis: Any) -> int:
    """`axis` as a valid axis of `x`, along which `x` has at least one entry."""
    if isinstance(axis, bool):
        raise TypeError("`axis` must be an integer; got bool")
    try:
        axis = operator.index(axis)
    except TypeError:
        raise TypeError(f"`axis` must be an integer; got {type(axis).__name__}") from None
    if x.ndim == 0:
        raise ValueError("`x` must have at least one dimension (a vector of scores); got a 0-d array")
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"`axis` must be in {-x.ndim}..{x.ndim - 1} for an array of {x.ndim} dimensions; "
                         f"got {axis}")
    if x.shape[axis] == 0:
        raise ValueError(f"`x` has no entries along axis {axis} (shape {tuple(x.shape)}); the softmax of "
                         "an empty vector is undefined")
    return axis


def _check_finite_scores(xp: Namespace, x: Array, axis: int, name: str = "x") -> None:
    """Scores whose softmax is defined: no NaN, no +inf, no row of -inf only
    (a -inf score is a probability of 0, as in masking)."""
    if x.ndim == 0 or math.prod(x.shape) == 0:
        return
    bad = xp.any(xp.isnan(x) | (x == xp.inf)) | xp.any(xp.all(x == -xp.inf, axis=axis))
    if bool(bad):
        raise ValueError(f"`{name}` holds NaN, +inf, or a row of -inf only; its softmax is undefined")


def log_softmax(x: Array, /, *, axis: int = -1, xp: Namespace | None = None) -> Array:
    """``log(softmax(x))`` computed stably (shift by the maximum first).

    Examples
    --------
    >>> import numpy as np
    >>> from xgrad import log_softmax
    >>> log_softmax(np.array([0.0, 1000.0]))   # log(softmax) would give -inf
    array([-1000.,     0.])
    """
    if xp is None:
        x, xp, _ = as_float_array(x, name="x")
        axis = _check_axis(x, axis)
        _check_finite_scores(xp, x, axis)
    shifted = x - xp.max(x, axis=axis, keepdims=True)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=axis, keepdims=True))


def softmax(x: Array, /, *, axis: int = -1, xp: Namespace | None = None) -> Array:
    """Softmax along `axis` (the last by default), stable for large scores.

    Works on one score vector or a batch of them (one per row). Scores of
    ``-inf`` get probability 0; NaN, ``+inf`` or a row of ``-inf`` only raise
    a ValueError (the softmax is undefined there). With `xp` (a caller that
    holds checked scores of a known namespace) nothing is converted or checked.

    Examples
    --------
    >>> import numpy as np
    >>> from xgrad import softmax
    >>> p = softmax(np.array([1010.0, 1000.0, 990.0]))   # exp(1010) would overflow
    >>> bool(np.isfinite(p).all()), round(float(p.sum()), 12), int(p.argmax())
    (True, 1.0, 0)
    """
    if xp is None:
        x, xp, _ = as_float_array(x, name="x")
        axis = _check_axis(x, axis)
        _check_finite_scores(xp, x, axis)
    e = xp.exp(x - xp.max(x, axis=axis, keepdims=True))
    return e / xp.sum(e, axis=axis, keepdims=True)


def one_hot(t: Array, n_classes: int, dtype: Any, xp: Namespace, device: Any) -> Array:
    """Integer labels ``(N,)`` as rows of a one-hot matrix ``(N, n_classes)``.

    No checks: callers pass labels that :func:`check_labels` accepted.
    """
    ints = index_dtype(xp, device)
    classes = xp.arange(n_classes, dtype=ints, device=device)
    return xp.astype(xp.astype(t, ints)[..., None] == classes, dtype)


def check_labels(xp: Namespace, y_shape: tuple[int, ...], t: Any) -> bool:
    """Validate labels `t` against scores of shape `y_shape`; True for class indices.

    The one boundary every loss, gradient, accuracy and gradient check passes.
    The kind is read from the shape, never from the dtype:

    * ``t.shape == y_shape``: one-hot or probability rows, of any real dtype
      (the book's integer ``[0, 0, 1]`` included). Every entry must be finite
      and non-negative and every row must sum to 1: exactly for integer rows,
      within ``sqrt(eps)`` of the label dtype for floating rows (so soft labels
      such as label smoothing are accepted, unnormalised counts are not).
    * ``t.shape == y_shape[:-1]``: class indices, integers in ``0..C-1``.

    Raises
    ------
    TypeError
        If `t` is not an array, holds booleans or complex numbers, or holds
        class indices of a floating dtype.
    ValueError
        For any other shape, an index out of range (the first is named with its
        position), or rows that are not probability rows.
    """
    if not array_api_compat.is_array_api_obj(t) or isinstance(t, (int, float, bool, complex)):
        raise TypeError(f"`t` (the labels) must be an array; got {type(t).__name__}")
    y_shape, shape = tuple(y_shape), tuple(t.shape)
    if xp.isdtype(t.dtype, "bool"):
        raise TypeError("`t` (the labels) must hold class indices (integers) or one-hot rows (numbers); "
                        "got booleans. Convert them with astype(int64).")
    if not xp.isdtype(t.dtype, ("integral", "real floating")):
        raise TypeError(f"`t` (the labels) must hold integers or real numbers; got dtype {t.dtype}")
    if shape == y_shape:
        _check_rows(xp, t)
        return False
    if shape == y_shape[:-1]:
        if not xp.isdtype(t.dtype, "integral"):
            raise TypeError(
                f"`t` has shape {shape}, so it holds class indices, which must be integers; got dtype "
                f"{t.dtype}. Convert them with astype(int64), or pass one-hot rows of shape {y_shape}."
            )
        _check_indices(xp, t, y_shape[-1])
        return True
    raise ValueError(
        f"`t` (the labels) must have shape {y_shape[:-1]} (one class index per sample) or {y_shape} "
        f"(one-hot rows, the shape of the scores); got {shape}"
    )


def _first(xp: Namespace, bad: Array) -> int:
    """Flat position of the first True entry of `bad`."""
    return int(xp.nonzero(xp.reshape(bad, (-1,)))[0][0])


def _at(shape: tuple[int, ...], k: int) -> str:
    if len(shape) <= 1:
        return "" if not shape else f" at position {k}"
    return f" at position {tuple(int(i) for i in _unravel(k, shape))}"


def _unravel(k: int, shape: tuple[int, ...]) -> list[int]:
    out = []
    for s in reversed(shape):
        out.append(k % s)
        k //= s
    return out[::-1]


def _check_indices(xp: Namespace, t: Array, n_classes: int) -> None:
    bad = (t < 0) | (t >= n_classes)
    if bool(xp.any(bad)):
        k = _first(xp, bad)
        value = int(xp.reshape(t, (-1,))[k])
        raise ValueError(
            f"`t` holds class index {value}{_at(tuple(t.shape), k)}, outside 0..{n_classes - 1} "
            f"for {n_classes} classes"
        )


def _check_rows(xp: Namespace, t: Array) -> None:
    """One-hot or probability rows: finite, non-negative, each summing to 1."""
    if xp.isdtype(t.dtype, "integral"):
        bad_entry = t < 0
        bad_sum = xp.sum(xp.astype(t, index_dtype(xp, array_api_compat.device(t))), axis=-1) != 1
        tol = "exactly"
    else:
        bad_entry = ~xp.isfinite(t) | (t < 0)
        eps = float(xp.finfo(t.dtype).eps)
        bad_sum = ~(xp.abs(xp.sum(t, axis=-1) - 1) <= math.sqrt(eps))
        tol = f"within {math.sqrt(eps):.1e}"
    if bool(xp.any(bad_entry)):
        k = _first(xp, bad_entry)
        value = xp.reshape(t, (-1,))[k]
        raise ValueError(
            f"`t` holds one-hot (or probability) rows, whose entries must be finite and >= 0; got "
            f"{float(value)!r}{_at(tuple(t.shape), k)}"
        )
    if bool(xp.any(bad_sum)):
        k = _first(xp, bad_sum)
        total = float(xp.reshape(xp.sum(xp.astype(t, xp.float64) if xp.isdtype(t.dtype, "integral") else t,
                                        axis=-1), (-1,))[k])
        row = "" if t.ndim == 1 else f" {_at(tuple(t.shape[:-1]), k).removeprefix(' at position ')}"
        raise RowSumError(
            f"`t` holds one-hot (or probability) rows, which must sum to 1 ({tol}); row{row} sums to "
            f"{total!r}. Class indices have shape {tuple(t.shape[:-1])}.",
            row=row.strip(), total=total, integral=xp.isdtype(t.dtype, "integral"),
        )


class RowSumError(ValueError):
    """Label rows that do not sum to 1: which row, its sum, and whether they are integers."""

    def __init__(self, message: str, *, row: str, total: float, integral: bool) -> None:
        super().__init__(message)
        self.row, self.total, self.integral = row, total, integral


def target_rows(xp: Namespace, y_shape: tuple[int, ...], t: Any, dtype: Any, device: Any) -> Array:
    """Labels as target rows of shape `y_shape` and `dtype`, after :func:`check_labels`."""
    if check_labels(xp, y_shape, t):
        return one_hot(t, y_shape[-1], dtype, xp, device)
    return xp.astype(t, dtype)


def _check_scores(xp: Namespace, y: Array, logits: bool) -> None:
    if y.ndim not in (1, 2):
        raise ValueError(f"`y` must have shape (C,) for one sample or (N, C) for a batch; got {tuple(y.shape)}")
    if y.shape[-1] == 0:
        raise ValueError(f"`y` must have at least one class; got shape {tuple(y.shape)}")
    if y.ndim == 2 and y.shape[0] == 0:
        raise ValueError(f"`y` holds no samples (shape {tuple(y.shape)}); the mean loss of an empty batch "
                         "is undefined")
    if logits:
        _check_finite_scores(xp, y, -1, "y")
    elif not bool(xp.all((y >= 0) & (y <= 1))):
        raise ValueError("`y` must hold probabilities in [0, 1] (the output of softmax); it holds values "
                         "outside, or NaN. For raw scores pass logits=True.")


def _same_library(xp: Namespace, t: Any) -> None:
    if not array_api_compat.is_array_api_obj(t) or isinstance(t, (int, float, bool, complex)):
        raise TypeError(f"`t` (the labels) must be an array; got {type(t).__name__}")
    if not of_library(xp, t):
        raise TypeError(f"`t` (the labels) must be an array of the library of `y` ({xp.__name__}); got "
                        f"{type(t).__module__}.{type(t).__name__}")


def cross_entropy_error(y: Array, t: Array, /, *, logits: bool = False) -> Array:
    """Mean cross-entropy of predictions `y` against labels `t`.

    Parameters
    ----------
    y : array, shape (N, C) or (C,)
        Probabilities (the output of :func:`softmax`), or raw scores with
        ``logits=True``; the latter is exact for any scores and is what
        :class:`TwoLayerNet` uses. Scores may be ``-inf`` (probability 0),
        never NaN or ``+inf``.
    t : array
        Class indices, integers of shape ``(N,)`` (or ``()`` for one sample),
        or one-hot (or probability) rows of the shape of `y`, of any real
        dtype. The shape decides which (see Notes).
    logits : bool
        Whether `y` holds scores rather than probabilities.

    Returns
    -------
    array
        A 0-d array: the loss averaged over the samples.

    Raises
    ------
    TypeError
        If `t` is not an array of `y`'s library, holds booleans, or holds
        class indices of a floating dtype.
    ValueError
        If `t` has neither accepted shape, holds an index outside ``0..C-1``
        (the first is named with its position) or rows that are not
        probability rows; if `y` is empty, holds NaN or, without `logits`,
        values outside ``[0, 1]`` (with `logits`, ``+inf`` or a row of
        ``-inf`` only).

    Notes
    -----
    One-hot rows must be finite, non-negative and sum to 1: integer rows
    exactly, floating rows within ``sqrt(eps)`` of their dtype (1.5e-8 for
    float64, 3.5e-4 for float32), which admits soft labels such as label
    smoothing. Checking the labels moves a few booleans to the host.

    Examples
    --------
    >>> import numpy as np
    >>> from xgrad import cross_entropy_error
    >>> y = np.array([0.1, 0.05, 0.6, 0.0, 0.05, 0.1, 0.0, 0.1, 0.0, 0.0])
    >>> round(float(cross_entropy_error(y, np.array(2))), 6)     # -log(0.6)
    0.510826
    >>> t = np.array([0, 0, 1, 0, 0, 0, 0, 0, 0, 0])             # the book's one-hot label
    >>> round(float(cross_entropy_error(y, t)), 6)
    0.510826
    >>> float(cross_entropy_error(np.array([[0.0, 1.0]]), np.array([0])))  # finite
    708.3964185322641
    """
    y, xp, _ = as_float_array(y, name="y")
    _same_library(xp, t)
    xp, device = namespace_of(y, t)
    _check_scores(xp, y, logits)
    target = target_rows(xp, tuple(y.shape), t, y.dtype, device)
    if logits:
        log_p = log_softmax(y, xp=xp)
    else:
        tiny = xp.finfo(y.dtype).smallest_normal
        log_p = xp.log(xp.maximum(y, xp.full_like(y, tiny)))
    # a -inf score where the target is 0 contributes 0, not 0 * -inf = NaN
    picked = xp.sum(target * xp.where(target != 0, log_p, xp.zeros_like(log_p)), axis=-1)
    n = 1 if y.ndim == 1 else y.shape[0]
    return -xp.sum(picked) / n
