"""The network's building blocks: activations, softmax, cross-entropy.

All of them take arrays of any array-API backend and are numerically stable
for inputs of any size: no overflow in ``exp``, no ``log(0)``, no ``1e-7``
added inside a logarithm.
"""

from __future__ import annotations

from typing import Any

from xgrad._backend import namespace_of
from xgrad._typing import Array, Namespace

__all__ = ["cross_entropy_error", "log_softmax", "relu", "sigmoid", "softmax"]


def sigmoid(x: Array, /) -> Array:
    """The logistic function ``1 / (1 + exp(-x))``, without overflow.

    Examples
    --------
    >>> import numpy as np
    >>> from xgrad import sigmoid
    >>> sigmoid(np.array([-1000.0, 0.0, 1000.0]))
    array([0. , 0.5, 1. ])
    """
    xp, _ = namespace_of(x)
    return sigmoid_xp(xp, x)


def sigmoid_xp(xp: Namespace, x: Array) -> Array:
    """:func:`sigmoid` for callers that know the namespace."""
    e = xp.exp(-xp.abs(x))  # in (0, 1]: never overflows
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


def relu(x: Array, /) -> Array:
    """``max(x, 0)`` elementwise.

    Examples
    --------
    >>> import numpy as np
    >>> from xgrad import relu
    >>> relu(np.array([-1.0, 0.0, 2.0]))
    array([0., 0., 2.])
    """
    xp, _ = namespace_of(x)
    return relu_xp(xp, x)


def relu_xp(xp: Namespace, x: Array) -> Array:
    """:func:`relu` for callers that know the namespace."""
    return xp.where(x > 0, x, xp.zeros_like(x))


def log_softmax(x: Array, /, *, axis: int = -1) -> Array:
    """``log(softmax(x))`` computed stably (shift by the maximum first).

    Examples
    --------
    >>> import numpy as np
    >>> from xgrad import log_softmax
    >>> log_softmax(np.array([0.0, 1000.0]))   # log(softmax) would give -inf
    array([-1000.,     0.])
    """
    xp, _ = namespace_of(x)
    return log_softmax_xp(xp, x, axis=axis)


def log_softmax_xp(xp: Namespace, x: Array, *, axis: int = -1) -> Array:
    """:func:`log_softmax` for callers that know the namespace."""
    shifted = x - xp.max(x, axis=axis, keepdims=True)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=axis, keepdims=True))


def softmax(x: Array, /, *, axis: int = -1) -> Array:
    """Softmax along `axis` (the last by default), stable for large scores.

    Works on one score vector or a batch of them (one per row).

    Examples
    --------
    >>> import numpy as np
    >>> from xgrad import softmax
    >>> p = softmax(np.array([1010.0, 1000.0, 990.0]))   # exp(1010) would overflow
    >>> bool(np.isfinite(p).all()), round(float(p.sum()), 12), int(p.argmax())
    (True, 1.0, 0)
    """
    xp, _ = namespace_of(x)
    return softmax_xp(xp, x, axis=axis)


def softmax_xp(xp: Namespace, x: Array, *, axis: int = -1) -> Array:
    """:func:`softmax` for callers that know the namespace."""
    e = xp.exp(x - xp.max(x, axis=axis, keepdims=True))
    return e / xp.sum(e, axis=axis, keepdims=True)


def one_hot(t: Array, n_classes: int, dtype: Any, xp: Namespace, device: Any) -> Array:
    """Integer labels ``(N,)`` as rows of a one-hot matrix ``(N, n_classes)``."""
    classes = xp.arange(n_classes, device=device)
    return xp.astype(t[..., None] == classes, dtype)


def check_labels(y_shape: tuple[int, ...], t: Array, xp: Namespace) -> bool:
    """Validate labels against scores of shape `y_shape`; True for class indices.

    The kind is read from the dtype, never guessed from sizes: integer labels
    are class indices of shape ``y.shape[:-1]``; floating labels are one-hot
    (or probability) rows of the shape of `y`.
    """
    if xp.isdtype(t.dtype, "integral"):
        if tuple(t.shape) != tuple(y_shape[:-1]):
            raise ValueError(
                f"integer labels must have shape {tuple(y_shape[:-1])} (one class index "
                f"per sample); got {tuple(t.shape)}"
            )
        return True
    if xp.isdtype(t.dtype, "real floating"):
        if tuple(t.shape) != tuple(y_shape):
            raise ValueError(
                f"one-hot labels must have the shape of the scores {tuple(y_shape)}; got "
                f"{tuple(t.shape)}. Integer class labels need an integer dtype."
            )
        return False
    raise TypeError(f"labels must be integers (class indices) or floats (one-hot); got dtype {t.dtype}")


def cross_entropy_error(y: Array, t: Array, /, *, logits: bool = False) -> Array:
    """Mean cross-entropy of predictions `y` against labels `t`.

    Parameters
    ----------
    y : array, shape (N, C) or (C,)
        Probabilities (the output of :func:`softmax`), or raw scores with
        ``logits=True``; the latter is exact for any scores and is what
        :class:`TwoLayerNet` uses.
    t : array
        Integer class indices, shape ``(N,)`` (or ``()`` for one sample), or
        one-hot rows of the shape of `y`. The dtype decides which.
    logits : bool
        Whether `y` holds scores rather than probabilities.

    Returns
    -------
    array
        A 0-d array: the loss averaged over the samples.

    Examples
    --------
    >>> import numpy as np
    >>> from xgrad import cross_entropy_error
    >>> y = np.array([0.1, 0.05, 0.6, 0.0, 0.05, 0.1, 0.0, 0.1, 0.0, 0.0])
    >>> round(float(cross_entropy_error(y, np.array(2))), 6)     # -log(0.6)
    0.510826
    >>> float(cross_entropy_error(np.array([[0.0, 1.0]]), np.array([0])))  # finite
    708.3964185322641
    """
    xp, device = namespace_of(y, t)
    integer = check_labels(tuple(y.shape), t, xp)
    if logits:
        log_p = log_softmax_xp(xp, y)
    else:
        tiny = xp.finfo(y.dtype).smallest_normal
        log_p = xp.log(xp.maximum(y, xp.full_like(y, tiny)))
    if integer:
        picked = xp.sum(one_hot(t, y.shape[-1], y.dtype, xp, device) * log_p, axis=-1)
    else:
        picked = xp.sum(t * log_p, axis=-1)
    n = 1 if y.ndim == 1 else y.shape[0]
    return -xp.sum(picked) / n
