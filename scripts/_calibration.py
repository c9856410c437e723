"""What gradient_check's tolerance has to separate: the criterion of a correct
gradient and of one with a single entry off by 1%.

Used by ``scripts/calibrate_gradient_check.py`` and by the test that the
documentation's claim about the float32 tolerance still holds; not part of
xgrad, which only applies the tolerances these measure.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xgrad import TwoLayerNet, gradient_check, to_numpy


def median_entry(g: Any) -> tuple[int, ...]:
    """Index of a median-sized entry among the non-zero entries of `g` (host).

    The calibration and the tests put a 1% error there: a typical entry,
    neither one of the few large ones nor one of the structural zeros (the
    weights of pixels that are black in every sample).
    """
    a = np.abs(np.asarray(to_numpy(g), np.float64)).ravel()
    nonzero = np.flatnonzero(a)
    if nonzero.size == 0:
        raise ValueError("`g` has no non-zero entry")
    k = nonzero[np.argsort(a[nonzero], kind="stable")[nonzero.size // 2]]
    return tuple(int(i) for i in np.unravel_index(int(k), tuple(g.shape)))


def calibration_row(net: TwoLayerNet, x: Any, t: Any, /, *, h: float | None = None) -> dict[str, Any]:
    """What the tolerance must separate, for one network and batch.

    Per parameter: the criterion of :func:`gradient_check` for the correct
    gradient (``correct``) and for one with its median-sized entry off by 1%
    (``one_percent``), both in units of the parameters' eps. Used by
    ``scripts/calibrate_gradient_check.py``.
    """
    check = gradient_check(net, x, t, h=h)
    eps = float(np.finfo(check.dtype).eps)
    numeric = net.numerical_gradient(x, t, h=h)
    out: dict[str, Any] = {}
    for k, g in net.gradient(x, t).items():
        num, ex = np.asarray(to_numpy(numeric[k]), np.float64), np.asarray(to_numpy(g), np.float64)
        scale = max(np.abs(num).max(), np.abs(ex).max())
        injected = 0.01 * abs(ex[median_entry(g)])
        out[k] = {"correct": check.max_error[k] / eps, "one_percent": injected / scale / eps,
                  "kinks": check.kinks[k]}
    return out
