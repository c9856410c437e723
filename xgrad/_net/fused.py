"""Kernel fusion for a training iteration: the core's elementwise groups as one GPU kernel each.

On a GPU the book's small network spends its time launching kernels, most of
them small elementwise ones. :mod:`xgrad._net.core` writes a training iteration's
elementwise work as a few named groups (the bias add and activation, the
activation's backward rule, the softmax pieces, the output error); a *fuse*
passed to :func:`xgrad._net.core.loss_and_gradient` wraps each group before it is
called. There is one copy of the maths: the fuse changes how a group runs,
never what it computes.

What ``cupy.fuse`` can trace, and so what the groups are written with:
elementwise operators and ufuncs (``+``, ``*``, ``exp``, ``where``, ...), at
most one reduction over all axes at the end (no ``keepdims``, no
``axis`` reductions before elementwise work), Python numbers and arrays as
arguments (no namespace, no shapes, no array creation such as ``zeros_like``).
A fused function is traced once per argument signature (dtype and ndim of the
arrays, type of the numbers) and compiled once; called without any CuPy array
it just calls the Python function. Numbers reach the kernel as arguments, so
only what selects code (the namespace, the activation) is bound statically.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable
from typing import Any, Protocol

from xgrad._infra.backend import library_of
from xgrad._infra.typing import Namespace

__all__ = ["CupyFusion", "Fuse", "fused_ops", "no_fusion"]


class Fuse(Protocol):
    """Wraps one of the core's groups: ``fuse(group, **static)(*arrays)``
    computes ``group(*arrays, **static)``.

    `static` holds keyword options that select code (the namespace ``xp``,
    an activation), never numbers: numbers are passed with the arrays.
    """

    def __call__(self, group: Callable[..., Any], /, **static: Hashable) -> Callable[..., Any]: ...


def no_fusion(group: Callable[..., Any], /, **static: Hashable) -> Callable[..., Any]:
    """The identity fuse: `group` itself, with its static options bound.

    Examples
    --------
    >>> from xgrad._net.fused import no_fusion
    >>> no_fusion(lambda a, b, *, sign: sign * (a - b), sign=-1)(3, 1)
    -2
    """
    return functools.partial(group, **static)


class CupyFusion:
    """``cupy.fuse`` for each group and set of static options, created once and kept.

    Parameters
    ----------
    fuse : callable
        ``cupy.fuse`` (a stand-in in tests).
    """

    def __init__(self, fuse: Callable[..., Any]) -> None:
        self._fuse = fuse
        self._kernels: dict[tuple[Any, ...], Callable[..., Any]] = {}

    def __call__(self, group: Callable[..., Any], /, **static: Hashable) -> Callable[..., Any]:
        key = (group, *sorted(static.items()))
        kernel = self._kernels.get(key)
        if kernel is None:
            kernel = self._kernels[key] = self._fuse(kernel_name=_kernel_name(group, static))(
                _bound(group, static))
        return kernel

    def __len__(self) -> int:
        """How many fused kernels were made."""
        return len(self._kernels)


def _bound(group: Callable[..., Any], static: dict[str, Hashable]) -> Callable[..., Any]:
    """`group` with its static options bound, as a plain function of arrays
    and numbers (what ``cupy.fuse`` accepts)."""

    def bound(*args: Any) -> Any:
        return group(*args, **static)

    bound.__name__ = bound.__qualname__ = getattr(group, "__name__", "group")
    return bound


def _kernel_name(group: Callable[..., Any], static: dict[str, Hashable]) -> str:
    """``xgrad_<group>[_<activation>]``: a C identifier naming the kernel in profiles."""
    names = [getattr(group, "__name__", "group"), *(getattr(v, "name", None) for v in static.values())]
    return "_".join(["xgrad", *(n for n in names if isinstance(n, str) and n.isidentifier())])


@functools.cache
def _fusion(fuse: Callable[..., Any]) -> CupyFusion:
    return CupyFusion(fuse)


def fused_ops(xp: Namespace) -> Fuse | None:
    """The fuse for the training iterations on namespace `xp`: one ``cupy.fuse``
    kernel per group on CuPy (the same object for every call, so kernels
    are compiled once per process); None elsewhere, where fusion does not
    apply and the groups run as written.

    Examples
    --------
    >>> import numpy as np
    >>> from xgrad._net.fused import fused_ops
    >>> fused_ops(np) is None
    True
    """
    lib = library_of(xp)
    if lib is None or lib.fuse is None:
        return None
    return _fusion(getattr(lib.load(), lib.fuse))
