"""The network's directional check: the slope of the loss along one
direction, by backpropagation and by a central difference of two losses."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

from xgrad._infra.backend import compute_dtype
from xgrad._infra.typing import Array
from xgrad._infra.validate import check_count, check_optional_positive
from xgrad._net.check import dtype_name

if TYPE_CHECKING:
    from xgrad._net.net import TwoLayerNet

__all__ = ["DirectionalCheck", "directional_check"]

# relative error of the slope along directional_check's direction: five times
# the worst that a correct backprop reached on the 784-50-10 network (sigmoid
# and ReLU, seeds 0-2, 1-100 MNIST images, three directions each, the default
# step and h=1e-4): 2.0e-5 with float64 differences (8.6e-11 in float64 and
# 3.7e-8 in float32 with the default step), 9.1e-3 without float64; measured
# by scripts/calibrate_directional_check.py (see directional_check's Notes)
DIRECTIONAL_TOLERANCE = {("float64", "float64"): 1e-4, ("float32", "float64"): 1e-4,
                         ("float32", "float32"): 5e-2}


@dataclass(frozen=True)
class DirectionalCheck:
    """What :func:`directional_check` found.

    Supports dict-style access (``check["rel_error"]``) to its fields.

    Attributes
    ----------
    backprop, numerical : float
        The slope along the direction: ``∇L·u`` and the central difference.
    rel_error : float
        ``|numerical - backprop| / (|numerical| + |backprop|)``; NaN if either
        is not finite.
    tolerance : float
        The largest `rel_error` that passes for the dtypes in use.
    h : float
        The step along the direction.
    rounding : float
        A bound on the rounding error of `numerical`:
        ``eps * (|L(θ + h u)| + |L(θ - h u)|) / (2 h)``, with ``eps`` that of
        the dtype the loss was differenced in.
    """

    backprop: float
    numerical: float
    rel_error: float
    tolerance: float
    h: float
    rounding: float = 0.0

    @property
    def conclusive(self) -> bool:
        """False when rounding of the loss could alone move `rel_error` by
        half the tolerance or more: then the check cannot tell a right
        gradient from a wrong one, and `passed` is False."""
        if not (math.isfinite(self.numerical) and math.isfinite(self.backprop)):
            return True  # a slope that is not finite fails for certain
        size = abs(self.numerical) + abs(self.backprop)
        return bool(self.rounding <= 0.5 * self.tolerance * size)

    @property
    def passed(self) -> bool:
        """True when the check is `conclusive` and `rel_error` is finite and
        within `tolerance`."""
        return bool(self.rel_error <= self.tolerance) and self.conclusive

    def __getitem__(self, key: str) -> float:
        if key not in ("backprop", "numerical", "rel_error", "tolerance", "h", "rounding"):
            raise KeyError(key)
        return float(getattr(self, key))


def directional_check(net: TwoLayerNet, x: Array, t: Array, /, *, seed: int = 0,
                      h: float | None = None, eps: float | None = None) -> DirectionalCheck:
    """A cheap check on any backend: the slope of the loss along one unit
    direction ``u``, by backprop (``∇L·u``) and by a central difference of
    two loss evaluations (in float64 where the backend has it).

    Parameters
    ----------
    net : TwoLayerNet
    x, t : array
        Samples and labels, checked as by :meth:`TwoLayerNet.checked_inputs`.
    seed : int
        Seeds the random part of the direction.
    h : float, optional
        The step along `u`, positive and finite; by default ``eps**(1/3)``
        times the parameters' norm (at least 1).
    eps : float, optional
        Deprecated: the former name of `h` (a DeprecationWarning says so).

    Returns
    -------
    DirectionalCheck
        The two slopes, their relative error, the rounding bound of the
        difference and ``passed``.

    Warns
    -----
    RuntimeWarning
        When the check is not conclusive: the rounding of the two losses
        could hide a wrong slope (a gradient near zero, or a tiny `h`).

    Notes
    -----
    The direction is ``u ∝ ĝ + r``: backprop's gradient ``g`` scaled to unit
    length plus a random unit vector ``r`` that gives each parameter (W1, b1,
    W2, b2) the same share (``r`` alone where ``g`` is zero or not finite).
    The slope is then about ``|g| / √2``, large against the rounding of the
    loss even where the loss is differenced in float32; a random direction
    alone gives a slope of about ``|g| / √N`` over ``N`` parameters, which
    float32 rounding and ReLU kinks swamp. Backprop's gradient along its own
    direction reveals a layer whose gradient is flipped, scaled or replaced;
    a zeroed layer shows only in the random part, about that layer's
    gradient norm over the square root of its size. One direction averages over every entry,
    so a small error in a few entries goes unseen: use :func:`gradient_check`
    for that.

    The tolerance is five times the worst relative error of a correct
    backprop on the 784-50-10 network (sigmoid and ReLU, seeds 0-2, 1, 3, 10
    and 100 MNIST images, three directions each, the default step and
    ``h=1e-4``; ``scripts/calibrate_directional_check.py``):

    ===========  ===========  ====================  =====================  =========
    parameters   differences  worst correct         with the default step  tolerance
    ===========  ===========  ====================  =====================  =========
    float64      float64      2.0e-5 (``h=1e-4``)   8.6e-11                1e-4
    float32      float64      2.0e-5 (``h=1e-4``)   3.7e-8                 1e-4
    float32      float32      9.1e-3 (JAX, 1e-4)    7.2e-3                 5e-2
    ===========  ===========  ====================  =====================  =========

    The worst errors come from ReLU kinks within the step. Without float64
    (array-api-strict's ``no_float64`` device, JAX without x64) the default
    step is about ``1e-2`` and only errors that move the slope by more than
    5% are caught: a flipped or doubled ``W2`` always, a flipped ``W1`` in
    half the cases above, a zeroed layer rarely. The check is `conclusive`
    when `rounding` is at most half the tolerance times
    ``|numerical| + |backprop|``; the actual rounding error stayed below the
    bound (at most 0.88 of it) in those cases.

    Examples
    --------
    >>> import numpy as np
    >>> from xgrad import TwoLayerNet
    >>> from xgrad import directional_check
    >>> net = TwoLayerNet(10, 5, 3, seed=0, weight_init_std=1.0)
    >>> x = np.random.default_rng(1).random((4, 10)); t = np.array([0, 1, 2, 1])
    >>> check = directional_check(net, x, t)
    >>> check.passed, check.conclusive, check["rel_error"] < 1e-7
    (True, True, True)
    """
    check_count(seed, "seed")
    if eps is not None:
        warnings.warn("directional_check's `eps` is deprecated; pass the step as `h`", DeprecationWarning,
                      stacklevel=2)
    if h is not None and eps is not None:
        raise TypeError("pass the step as `h` only (`eps` is its former name)")
    h = check_optional_positive(h if eps is None else eps, "h" if eps is None else "eps")
    x, target = net.checked_inputs(x, t)
    xp = net.xp
    grads = net.gradient(x, t)
    # the loss is differenced in float64 where the backend has it (see numerical_gradient)
    wide = net.astype(compute_dtype(xp, net.device, net.dtype, warn=False))  # `rounding` tells
    g = {k: xp.astype(v, wide.dtype) for k, v in grads.items()}
    u = _direction(wide, g, seed)
    slope = float(sum(xp.sum(g[k] * u[k]) for k in g))
    scale = max(1.0, math.sqrt(sum(float(xp.sum(v * v)) for v in wide.params.values())))
    eps_wide = float(xp.finfo(wide.dtype).eps)
    step = eps_wide ** (1 / 3) * scale if h is None else h
    x_wide, t_wide = xp.astype(x, wide.dtype), xp.astype(target, wide.dtype)

    def moved(sign: float) -> float:
        params = {k: v + (sign * step) * u[k] for k, v in wide.params.items()}
        return float(wide.with_params(params).loss(x_wide, t_wide))

    above, below = moved(1.0), moved(-1.0)
    numerical = (above - below) / (2 * step)
    rounding = eps_wide * (abs(above) + abs(below)) / (2 * step)
    denom = max(abs(numerical) + abs(slope), float(xp.finfo(wide.dtype).smallest_normal))
    rel = abs(numerical - slope) / denom if math.isfinite(numerical) and math.isfinite(slope) else math.nan
    key = (dtype_name(net.dtype), dtype_name(wide.dtype))
    tolerance = DIRECTIONAL_TOLERANCE.get(key, DIRECTIONAL_TOLERANCE[("float32", "float32")])
    result = DirectionalCheck(slope, numerical, rel, tolerance, step, rounding)
    if not result.conclusive:
        warnings.warn(f"directional_check cannot tell: the rounding of the loss ({rounding:.1e} in the slope) "
                      f"is not small against the slope ({slope:.1e}) times the tolerance ({tolerance:.0e}); "
                      "pass a larger `h`, use float64, or use gradient_check", RuntimeWarning, stacklevel=2)
    return result


def _direction(wide: TwoLayerNet, g: dict[str, Array], seed: int) -> dict[str, Array]:
    """Unit direction ``∝ g/|g| + r`` on the device, ``r`` a random unit
    vector with an equal share in every parameter (``r`` alone if ``g`` is 0
    or not finite)."""
    import numpy as np  # the random part is drawn on the host, then moved once

    xp = wide.xp
    rng = np.random.default_rng(seed)
    share = 1 / math.sqrt(len(wide.params))
    r = {}
    for k, v in wide.params.items():
        draw = rng.standard_normal(tuple(v.shape))
        r[k] = wide.to_device(draw * (share / max(float(np.linalg.norm(draw)), 1e-300)))
    g_norm = math.sqrt(sum(float(xp.sum(v * v)) for v in g.values()))
    if not (math.isfinite(g_norm) and g_norm > 0):
        return r
    u = {k: g[k] / g_norm + r[k] for k in r}
    norm = math.sqrt(sum(float(xp.sum(v * v)) for v in u.values()))
    return {k: v / norm for k, v in u.items()}
