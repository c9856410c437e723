"""Gradient checks: backpropagation against numerical differences."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from xgrad._typing import Array
from xgrad._validate import check_positive

if TYPE_CHECKING:
    from xgrad._net import TwoLayerNet

__all__ = ["GradientCheck", "directional_check", "gradient_check"]

# relative error (in norm) a correct backprop reaches against central differences
_TOLERANCE = {"float64": 1e-7, "float32": 1e-4}


def _dtype_name(dtype: Any) -> str:
    return str(dtype).replace("torch.", "").replace("dtype(", "").strip("')\"")


@dataclass(frozen=True)
class GradientCheck:
    """What :func:`gradient_check` found, one row per parameter.

    Attributes
    ----------
    mean_abs_diff : dict
        The book's measure: mean of ``|numerical - backprop|``.
    rel_error : dict
        ``||numerical - backprop|| / (||numerical|| + ||backprop||)``: scale-free.
    tolerance : float
        The largest `rel_error` that passes for the network's dtype.
    """

    mean_abs_diff: dict[str, float]
    rel_error: dict[str, float]
    tolerance: float
    dtype: str
    passed_by_param: dict[str, bool] = field(init=False)

    def __post_init__(self) -> None:
        ok = {k: v <= self.tolerance for k, v in self.rel_error.items()}
        object.__setattr__(self, "passed_by_param", ok)

    @property
    def passed(self) -> bool:
        """True when every parameter passes."""
        return all(self.passed_by_param.values())

    def __str__(self) -> str:
        lines = [f"{'param':6} {'mean |diff|':>12} {'rel. error':>11}  result ({self.dtype}, tol {self.tolerance:.0e})"]
        for k in self.rel_error:
            verdict = "pass" if self.passed_by_param[k] else "FAIL"
            lines.append(f"{k:6} {self.mean_abs_diff[k]:12.2e} {self.rel_error[k]:11.2e}  {verdict}")
        return "\n".join(lines)


def gradient_check(net: TwoLayerNet, x: Array, t: Array, /, *, h: float | None = None) -> GradientCheck:
    """Compare ``net.gradient`` (backprop) with ``net.numerical_gradient``.

    Parameters
    ----------
    net : TwoLayerNet
    x, t : array
        A few samples and their labels (the book uses three).
    h : float, optional
        Step of the central differences; ``1e-4`` is the book's.

    Returns
    -------
    GradientCheck
        Per parameter the book's mean absolute difference, a relative error,
        and a pass or fail against a tolerance for the dtype.

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
    xp = net.xp
    exact = net.gradient(x, t)
    numeric = net.numerical_gradient(x, t, h=h)
    mean_abs, rel = {}, {}
    for k in exact:
        diff = numeric[k] - exact[k]
        mean_abs[k] = float(xp.mean(xp.abs(diff)))
        scale = float(_norm(xp, numeric[k]) + _norm(xp, exact[k]))
        rel[k] = float(_norm(xp, diff)) / scale if scale > 0 else 0.0
    dtype = _dtype_name(net.params["W1"].dtype)
    return GradientCheck(mean_abs, rel, _TOLERANCE.get(dtype, 1e-3), dtype)


def _norm(xp: Any, a: Array) -> Array:
    return xp.sqrt(xp.sum(a * a))


def directional_check(net: TwoLayerNet, x: Array, t: Array, /, *, seed: int = 0,
                      eps: float | None = None) -> dict[str, float]:
    """A cheap check on any backend: the slope of the loss along one random
    unit direction ``u``, by backprop (``∇L·u``) and by a central difference
    of two loss evaluations (in float64 where the backend has it).

    Returns a dict with ``"backprop"``, ``"numerical"`` and ``"rel_error"``; a
    correct gradient gives a relative error near ``1e-9`` for a float64
    network and ``1e-6`` for a float32 one.

    Examples
    --------
    >>> import numpy as np
    >>> from xgrad import TwoLayerNet
    >>> from xgrad import directional_check
    >>> net = TwoLayerNet(10, 5, 3, seed=0, weight_init_std=1.0)
    >>> x = np.random.default_rng(1).random((4, 10)); t = np.array([0, 1, 2, 1])
    >>> directional_check(net, x, t)["rel_error"] < 1e-7
    True
    """
    import numpy as np  # the direction is drawn on the host, then moved once

    from xgrad._netgrad import compute_dtype

    rng = np.random.default_rng(seed)
    u = {k: rng.standard_normal(tuple(v.shape)) for k, v in net.params.items()}
    norm = math.sqrt(sum(float(np.sum(v * v)) for v in u.values()))
    xp = net.xp
    grads = net.gradient(x, t)
    # the loss is differenced in float64 where the backend has it (see numerical_gradient)
    wide = net.astype(compute_dtype(xp, net.device, net.dtype, warn=False))  # rel_error tells
    u_dev = {k: wide._to_device(v / norm) for k, v in u.items()}
    slope = float(sum(xp.sum(xp.astype(grads[k], wide.dtype) * u_dev[k]) for k in grads))
    scale = max(1.0, math.sqrt(sum(float(xp.sum(v * v)) for v in wide.params.values())))
    step = float(xp.finfo(wide.dtype).eps) ** (1 / 3) * scale if eps is None else check_positive(eps, "eps")
    x_wide = xp.astype(x, wide.dtype)
    t_wide = t if xp.isdtype(t.dtype, "integral") else xp.astype(t, wide.dtype)

    def moved(sign: float) -> float:
        params = {k: v + (sign * step) * u_dev[k] for k, v in wide.params.items()}
        return float(wide.with_params(params).loss(x_wide, t_wide))

    numerical = (moved(1.0) - moved(-1.0)) / (2 * step)
    rel = abs(numerical - slope) / max(abs(numerical) + abs(slope), float(xp.finfo(wide.dtype).smallest_normal))
    return {"backprop": slope, "numerical": numerical, "rel_error": rel}
