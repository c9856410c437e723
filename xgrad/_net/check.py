"""The network's gradient check: backpropagation against numerical differences, entry by entry."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from xgrad._infra.backend import compute_dtype
from xgrad._infra.typing import Array
from xgrad._infra.validate import check_optional_positive
from xgrad._net.net import TwoLayerNet, check_network

__all__ = ["GradientCheck", "dtype_name", "gradient_check"]

# The largest entrywise error, relative to the parameter's largest gradient
# entry, that a correct backprop reaches against the numerical gradient. Keyed
# by (parameter dtype, dtype the differences were computed in); measured by
# scripts/calibrate_gradient_check.py (see the Notes of gradient_check).
TOLERANCE = {
    ("float64", "float64"): 1e-7,
    ("float32", "float64"): 40 * 2.0**-23,  # 4.8e-6
    ("float32", "float32"): 400 * 2.0**-23,  # 4.8e-5: no float64 on the backend
}


def dtype_name(dtype: Any) -> str:
    """A dtype's plain name ('float32'), whatever its library prints."""
    return str(dtype).split(".")[-1].replace("dtype(", "").strip("')\"<>")


@dataclass(frozen=True)
class GradientCheck:
    """What the network's check, :func:`gradient_check`, found, one row per parameter.

    Attributes
    ----------
    max_error : dict
        The criterion: ``max |numerical - backprop|`` over the parameter's
        entries, divided by the largest ``|numerical|`` or ``|backprop|`` entry
        of that parameter (NaN if any entry is not finite).
    tolerance : float
        The largest `max_error` that passes, for the dtypes in use.
    worst : dict
        Per parameter the worst entry: ``(index, numerical, backprop)``.
    mean_abs_diff : dict
        The book's measure: mean of ``|numerical - backprop|``.
    rel_error : dict
        ``||numerical - backprop|| / (||numerical|| + ||backprop||)`` (2-norms),
        for information: a single wrong entry hardly moves it.
    kinks : dict
        Entries left out of the verdict because the difference ``θ ± h``
        crosses a ReLU kink for some sample (the numerical gradient is not a
        derivative there); zero for sigmoid networks.
    dtype, compute_dtype : str
        The parameters' dtype, and the one the differences were computed in.
    """

    max_error: dict[str, float]
    tolerance: float
    worst: dict[str, tuple[tuple[int, ...], float, float]]
    mean_abs_diff: dict[str, float]
    rel_error: dict[str, float]
    kinks: dict[str, int]
    dtype: str
    compute_dtype: str
    passed_by_param: dict[str, bool] = field(init=False)

    def __post_init__(self) -> None:
        # a NaN error compares False: it fails
        ok = {k: bool(v <= self.tolerance) for k, v in self.max_error.items()}
        object.__setattr__(self, "passed_by_param", ok)

    @property
    def passed(self) -> bool:
        """True when every parameter passes."""
        return all(self.passed_by_param.values())

    def __str__(self) -> str:
        head = (f"{'param':6} {'max error':>10} {'mean |diff|':>12} {'rel. error':>11}  "
                f"{'worst entry (numerical vs backprop)':38} result ({self.dtype}, tol {self.tolerance:.1e})")
        lines = [head]
        for k in self.max_error:
            verdict = "pass" if self.passed_by_param[k] else "FAIL"
            index, num, exact = self.worst[k]
            where = f"{k}[{', '.join(map(str, index))}]: {num:.6g} vs {exact:.6g}"
            note = f"  ({self.kinks[k]} at ReLU kinks skipped)" if self.kinks[k] else ""
            lines.append(f"{k:6} {self.max_error[k]:10.2e} {self.mean_abs_diff[k]:12.2e} "
                         f"{self.rel_error[k]:11.2e}  {where:38} {verdict}{note}")
        return "\n".join(lines)


def gradient_check(net: TwoLayerNet, x: Array, t: Array, /, *, h: float | None = None) -> GradientCheck:
    """The network's gradient check: ``net.gradient`` (backprop) against ``net.numerical_gradient``.

    Parameters
    ----------
    net : TwoLayerNet
    x, t : array
        A few samples and their labels (the book uses three); they pass the
        network's input checks (:meth:`TwoLayerNet.checked_inputs`).
    h : float, optional
        Step of the central differences, positive and finite; ``1e-4`` is the
        book's. By default it follows each parameter's dtype and size.

    Returns
    -------
    GradientCheck
        Per parameter the largest entrywise error relative to the parameter's
        gradient scale, the worst entry, the book's mean absolute difference,
        and a pass or fail; ``str()`` prints them as a table.

    Notes
    -----
    An entry passes when ``|numerical - backprop| <= tol * s`` with ``s`` the
    largest ``|numerical|`` or ``|backprop|`` entry of its parameter; any NaN
    or infinity fails. Float32 networks are differenced in float64 where the
    backend has it, so the numerical side is nearly exact and ``tol`` only has
    to cover float32 backprop rounding:

    ===========  ===========  ==================  ===================  ======
    parameters   differences  worst correct       smallest 1% error    ``tol``
    ===========  ===========  ==================  ===================  ======
    float32      float64      7.5 eps (8.9e-7)    230 eps (2.7e-5)     40 eps
    float64      float64      1.6e7 eps (3.5e-9)  1.2e11 eps (2.8e-5)  1e-7
    float32      float32      73 eps (8.7e-6)     230 eps (2.7e-5)     400 eps
    ===========  ===========  ==================  ===================  ======

    Measured by ``scripts/calibrate_gradient_check.py`` on the 784-50-10
    network: sigmoid and ReLU, seeds 0-2, batches of 1, 3, 10 and 100 MNIST
    or uniform random images, the default step and ``h=1e-4``; "smallest 1%
    error" is a 1% change of the median-sized non-zero entry of W1, b1, W2 or
    b2, in the same units. Without float64 (array-api-strict's
    ``no_float64`` device, JAX without x64) the numerical side rounds in
    float32 too: the tolerance is five times the worst correct error, which
    catches a 1% error in W1, b1 or W2 and a 2% one in b2.
    The documentation's page "How the gradient check decides" has the full
    tables.

    Examples
    --------
    >>> import numpy as np
    >>> from xgrad import TwoLayerNet, gradient_check
    >>> net = TwoLayerNet(784, 50, 10, activation="relu", seed=0)
    >>> x = np.random.default_rng(0).random((3, 784)); t = np.array([3, 1, 4])
    >>> check = gradient_check(net, x, t)
    >>> check.passed, check.mean_abs_diff["W1"] < 1e-10
    (True, True)
    """
    check_network(net)
    h = check_optional_positive(h, "h")
    xp = net.xp
    x, _ = net.checked_inputs(x, t)
    exact = net.gradient(x, t)
    numeric = net.numerical_gradient(x, t, h=h)
    kinks = _relu_kinks(net, x, h) if net.activation == "relu" else {}
    dtype = dtype_name(net.params["W1"].dtype)
    wide = dtype_name(compute_dtype(xp, net.device, net.dtype, warn=False))
    rows = {k: _compare(numeric[k], exact[k], kinks.get(k)) for k in exact}
    return GradientCheck(
        max_error={k: r[0] for k, r in rows.items()},
        tolerance=TOLERANCE.get((dtype, wide), TOLERANCE[("float32", "float32")]),
        worst={k: r[1] for k, r in rows.items()},
        mean_abs_diff={k: r[2] for k, r in rows.items()},
        rel_error={k: r[3] for k, r in rows.items()},
        kinks={k: r[4] for k, r in rows.items()},
        dtype=dtype, compute_dtype=wide,
    )


def _compare(numeric: Array, exact: Array, skip: Any) -> tuple[float, tuple[tuple[int, ...], float, float],
                                                              float, float, int]:
    """max error / scale, worst entry, mean |diff|, 2-norm relative error, entries skipped."""
    import numpy as np  # a gradient check reports on the host

    from xgrad._infra.host import to_numpy

    num, ex = np.asarray(to_numpy(numeric), np.float64), np.asarray(to_numpy(exact), np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.abs(num - ex)
        finite = bool(np.all(np.isfinite(num)) and np.all(np.isfinite(ex)))
        counted = np.where(skip, 0.0, diff) if skip is not None else diff
        scale = float(max(np.max(np.abs(num)), np.max(np.abs(ex))))
        k = int(np.argmax(np.where(np.isfinite(counted), counted, np.inf)))
        worst = float(counted.flat[k])
        max_error = (worst / scale if scale > 0 else 0.0) if finite else math.nan
        norms = float(np.linalg.norm(num) + np.linalg.norm(ex))
        rel = float(np.linalg.norm(num - ex)) / norms if norms > 0 else 0.0
    index = tuple(int(i) for i in np.unravel_index(k, num.shape))
    skipped = int(np.sum(skip)) if skip is not None else 0
    return max_error, (index, float(num.flat[k]), float(ex.flat[k])), float(np.mean(diff)), rel, skipped


def _relu_kinks(net: TwoLayerNet, x: Array, h: float | None) -> dict[str, Any]:
    """Host masks of the W1 and b1 entries whose difference ``θ ± h`` moves some
    sample's hidden pre-activation across 0, where ReLU has a kink."""
    import numpy as np

    from xgrad._infra.host import to_numpy
    from xgrad._numerics.diff import steps_for

    xp = net.xp
    dt = compute_dtype(xp, net.device, net.dtype, warn=False)
    p = {k: xp.astype(v, dt) for k, v in net.params.items()}
    xw = xp.astype(x, dt)
    a1 = np.abs(to_numpy(xw @ p["W1"] + p["b1"]))  # (N, H)
    step_w1, step_b1 = (to_numpy(steps_for(xp, p[k], h, "central")) for k in ("W1", "b1"))
    ax = np.abs(to_numpy(xw))  # (N, I)
    w1 = np.zeros(step_w1.shape, dtype=bool)
    for n in range(ax.shape[0]):  # (I, H) at a time: memory stays that of W1
        w1 |= (ax[n, :, None] * step_w1 >= a1[n, None, :]) & (ax[n, :, None] > 0)
    b1 = np.any(a1 <= step_b1[None, :], axis=0)
    return {"W1": w1, "b1": b1}
