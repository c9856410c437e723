"""The training data as the training loop holds them on the device, and one minibatch.

Images that come from the data set's files are 8-bit levels ``k`` meaning
``k / 255``. They stay 8-bit on the device, a quarter of the bytes of float32,
and only the rows of a minibatch become floats: in float32, as
:func:`xgrad.load_mnist` normalises them (a float64 run widens those float32
numbers, as it always has), so a run gives bit for bit the numbers it gave
when the whole set was normalised up front. A backend whose conversion of the
256 levels does not give exactly those numbers (one that divides by a
constant as a multiplication by its reciprocal) keeps float images instead.
Images given as numbers (``train(data=...)``) are kept as those numbers in the
run's dtype. Labels stay class indices; the one-hot rows of a minibatch are
taken from a small identity matrix when it is drawn (no table of a row per
sample).

Examples
--------
>>> import numpy as np
>>> from xgrad import resolve_backend
>>> b = resolve_backend("numpy")
>>> source = Levels(np.array([[0, 255], [51, 102]], dtype=np.uint8))
>>> floats = b.asarray(source.floats())
>>> data = train_data(b, source, floats, b.asarray(np.array([2, 0])), n_classes=3)
>>> data.levels, data.images.dtype
(True, dtype('uint8'))
>>> idx = b.asarray(np.array([1, 1, 0]))
>>> xb, tb = minibatch(data.images, data.labels, data.eye, idx, levels=data.levels, dtype=data.dtype, xp=b.xp)
>>> xb
array([[0.2, 0.4],
       [0.2, 0.4],
       [0. , 1. ]], dtype=float32)
>>> tb
array([[1., 0., 0.],
       [1., 0., 0.],
       [0., 0., 1.]], dtype=float32)

An eager training loop draws its minibatches through :func:`batcher`, the
same numbers with the arrays and the gather bound once:

>>> from xgrad._infra.backend import library
>>> batch = batcher(data, library("numpy"))
>>> [bool((a == c).all()) for a, c in zip(batch(idx), (xb, tb))]
[True, True]
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from xgrad._infra.backend import Backend, Library
from xgrad._infra.typing import Array, DType, Namespace

__all__ = ["LEVELS", "Levels", "TrainData", "batcher", "host_floats", "minibatch", "train_data"]

LEVELS = 255
"""The largest 8-bit level: level ``k`` is the value ``k / LEVELS``."""


@dataclass(frozen=True, eq=False)
class Levels:
    """Host images as the data set's files hold them: uint8 levels ``k``, meaning ``k / 255``.

    Attributes
    ----------
    raw : numpy.ndarray
        uint8 levels of shape ``(samples, features)``.
    """

    raw: Any

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.raw.shape)

    def floats(self) -> Any:
        """The images as float32 numbers, as :func:`xgrad.load_mnist` gives them."""
        import numpy as np  # the host edge

        out = self.raw.astype(np.float32)
        out /= np.float32(LEVELS)
        return out


def host_floats(x: Any) -> Any:
    """Host images as numbers: :class:`Levels` normalised, anything else as it is."""
    return x.floats() if isinstance(x, Levels) else x


@dataclass(frozen=True, eq=False)
class TrainData:
    """Training images and labels on the device, which :func:`minibatch` draws from.

    Attributes
    ----------
    images : array
        ``(samples, features)``: uint8 levels when `levels`, else numbers in `dtype`.
    labels : array
        ``(samples,)`` class indices, of the namespace's index dtype.
    eye : array
        The ``(n_classes, n_classes)`` identity in `dtype`: a label's one-hot row is its row.
    dtype : dtype
        The run's floating dtype.
    levels : bool
        Whether `images` hold 8-bit levels ``k`` meaning ``k / 255``.
    xp : namespace
    """

    images: Array
    labels: Array
    eye: Array
    dtype: DType
    levels: bool
    xp: Namespace

    @property
    def n_train(self) -> int:
        return int(self.images.shape[0])


def minibatch(images: Array, labels: Array, eye: Array, idx: Array, /, *, levels: bool, dtype: DType,
              xp: Namespace, take: str | None = None, traced: bool = False) -> tuple[Array, Array]:
    """The minibatch of rows `idx` (1-d indices) of :class:`TrainData`'s arrays,
    given as arrays (what a compiled step receives as arguments): images in
    `dtype` and one-hot targets.

    `take` names the arrays' method ``(axis, indices)`` that gathers rows where
    ``xp.take(x, idx, axis=0)`` costs more (the backend table's ``gather``:
    PyTorch's ``index_select``, as array_api_compat's take first maps negative
    indices, three more operations); the values are the same.
    No host synchronisation and no branch on values: it traces under ``jax.jit``.

    `traced` (a step compiled from a trace, the same values): rows are
    gathered by indexing, which takes the indices to be in range (the plan's
    are), where a traced take checks every one and fills the rows of those
    out of range, a comparison and a choice per element of the minibatch;
    and the one-hot rows come from comparing the labels with the classes,
    not from a second gather.
    """
    if traced:
        xb, tb = images[idx, ...], labels[idx]
        onehot = xp.astype(tb[:, None] == xp.arange(eye.shape[0], dtype=tb.dtype), eye.dtype)
        return (_level_values(xb, dtype, xp) if levels else xb), onehot
    return _bound(images, labels, eye, levels=levels, dtype=dtype, xp=xp, take=take)(idx)


def batcher(data: TrainData, lib: Library | None = None) -> Callable[[Array], tuple[Array, Array]]:
    """:func:`minibatch` of `data`'s arrays, bound once: ``batch(idx) -> (xb,
    tb)``, the same numbers with less work per call, for an eager loop, which
    draws thousands of minibatches. `lib` is the backend's record: rows are
    gathered by its ``gather`` method, else by ``xp.take``; the values are the same.
    """
    return _bound(data.images, data.labels, data.eye, levels=data.levels, dtype=data.dtype, xp=data.xp,
                  take=lib.gather if lib is not None else None)


def _bound(images: Array, labels: Array, eye: Array, *, levels: bool, dtype: DType, xp: Namespace,
           take: str | None) -> Callable[[Array], tuple[Array, Array]]:
    """The eager :func:`minibatch` of these arrays, ``batch(idx) -> (xb, tb)``,
    each array's gather bound once (by its `take` method, else ``xp.take``)."""
    images_at, labels_at, eye_at = (
        functools.partial(getattr(a, take), 0) if take else functools.partial(xp.take, a, axis=0)
        for a in (images, labels, eye))
    if levels:
        return lambda idx: (_level_values(images_at(idx), dtype, xp), eye_at(labels_at(idx)))
    return lambda idx: (images_at(idx), eye_at(labels_at(idx)))


def _level_values(levels: Array, dtype: DType, xp: Namespace) -> Array:
    """uint8 levels as numbers: float32 ``k / 255``, then widened to `dtype`."""
    out = xp.astype(levels, xp.float32)
    out /= LEVELS  # in place, into the copy astype made (an immutable array gives a new one)
    return out if dtype == xp.float32 else xp.astype(out, dtype)


def train_data(b: Backend, source: Any, floats: Array, labels: Array, /, *, n_classes: int) -> TrainData:
    """The training data of a run on `b`'s device.

    `source` is the host images as given: :class:`Levels` are moved to the
    device as they are where `b` converts them exactly, anything else is
    read from `floats`, the images already on the device in the run's dtype.
    `labels` are the class indices on the device, already checked.
    """
    xp, dtype = b.xp, floats.dtype
    levels = isinstance(source, Levels) and _exact_levels(b, dtype)
    images = b.asarray(source.raw) if levels else floats
    eye = xp.eye(n_classes, dtype=dtype, device=b.device)
    return TrainData(images, labels, eye, dtype, levels, xp)


def _exact_levels(b: Backend, dtype: DType) -> bool:
    """Whether `b` turns every 8-bit level into the number the host gives it (one small sync)."""
    import numpy as np  # the host edge: the 256 levels, converted on both sides

    from xgrad._infra.host import to_numpy

    every = np.arange(LEVELS + 1, dtype=np.uint8).reshape(1, -1)
    device = to_numpy(_level_values(b.asarray(every), dtype, b.xp))
    return bool(np.array_equal(device, Levels(every).floats().astype(device.dtype)))
