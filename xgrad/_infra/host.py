"""The host edge: arrays of any backend to NumPy, for files, plots and JSON."""

from __future__ import annotations

from typing import Any

import array_api_compat

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

    if array_api_compat.is_cupy_array(a):
        return a.get()
    if array_api_compat.is_torch_array(a):
        a = a.detach().cpu()
    if isinstance(a, np.ndarray | np.generic) or not array_api_compat.is_array_api_obj(a):
        return np.array(a, copy=True)  # NumPy, lists and Python numbers
    return np.from_dlpack(a).copy()

