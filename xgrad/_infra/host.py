"""The host edge: arrays of any backend to NumPy, for files, plots and JSON."""

from __future__ import annotations

from typing import Any

import array_api_compat

from xgrad._infra.backend import library_of
from xgrad._infra.typing import Array

__all__ = ["to_numpy"]


def to_numpy(a: Array, /) -> Any:
    """A NumPy copy of `a`: an array of any backend, a list or a number.

    The host edge, for files, plots and printing; the copy never shares
    memory with `a`.

    Examples
    --------
    >>> import numpy as np
    >>> from xgrad import to_numpy
    >>> a = np.arange(3.0)
    >>> b = to_numpy(a); b[0] = 9.0
    >>> a, b
    (array([0., 1., 2.]), array([9., 1., 2.]))
    """
    import numpy as np

    if isinstance(a, np.ndarray | np.generic) or not array_api_compat.is_array_api_obj(a):
        return np.array(a, copy=True)  # NumPy, lists and Python numbers
    lib = library_of(array_api_compat.array_namespace(a))
    if lib is not None and lib.to_numpy is not None:
        return lib.to_numpy(a)
    return np.from_dlpack(a).copy()

