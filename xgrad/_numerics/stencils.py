"""Difference quotients of the n-th derivative, for :func:`xgrad.derivative`.

A central element uses the centred stencil of the n-th derivative (its
error runs in even powers of the step); a one-sided element uses the n-th
forward (or backward) difference (error in all powers). Either needs n + 1
values of `f` per step, one of them at `x` itself for n even (central) or
always (one-sided): that one is evaluated once, at the first step, where all
elements of `x` share it. Array API only.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import array_api_compat

from xgrad._infra.typing import Array, Namespace
from xgrad._numerics.richardson import ROUNDING_ULPS, Quotient, central_quotient

__all__ = ["MAX_ORDER", "quotient_for"]

# the highest derivative each precision can deliver: the rounding error of an
# n-th difference grows like eps / h**n, and float32's 7 digits leave too few
# for a third derivative
MAX_ORDER = {"double": 4, "single": 2}

# central stencils: (offsets in units of h, coefficients); divide by h**n
CENTRAL = {
    2: ((1, 0, -1), (1.0, -2.0, 1.0)),
    3: ((2, 1, -1, -2), (0.5, -1.0, 1.0, -0.5)),
    4: ((2, 1, 0, -1, -2), (1.0, -4.0, 6.0, -4.0, 1.0)),
}


def _one_sided(n: int) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """The n-th forward difference: offsets n, n-1, ..., 0 with binomial weights."""
    offsets = tuple(range(n, -1, -1))
    return offsets, tuple(float((-1) ** (n - k) * math.comb(n, k)) for k in offsets)


def quotient_for(f: Callable[[Array], Array], x: Array, central: Array, n: int, xp: Namespace) -> Quotient:
    """The quotient of the `n`-th derivative at every element of `x`,
    central where `central` holds and one-sided (toward the sign of the
    signed step) elsewhere. `f` is called with a stack of shape
    ``(k, *x.shape)``."""
    if n == 1:
        return central_quotient(f, x, central, xp)
    c_off, c_coef = CENTRAL[n]
    o_off, o_coef = _one_sided(n)
    dev = array_api_compat.device(x)
    # slot k holds offset c_off[k] for central elements and o_off[k] for one-sided ones
    zero_slots = [k for k in range(n + 1) if c_off[k] == 0 and o_off[k] == 0]
    any_central, all_central = bool(xp.any(central)), bool(xp.all(central))
    if not any_central or all_central:  # every element has its zero offset in the same slot
        offs = c_off if all_central else o_off
        zero_slots = [k for k in range(n + 1) if offs[k] == 0]
    cached: dict[int, Array] = {}
    eps = float(xp.finfo(x.dtype).eps)

    def quotient(h: Array) -> tuple[Array, Array, Array]:
        slots = [k for k in range(n + 1) if k not in cached]
        points = [x + xp.where(central, float(c_off[k]) * h, float(o_off[k]) * h) for k in slots]
        values = f(xp.stack(points))
        fk = {k: values[i, ...] for i, k in enumerate(slots)}
        spent = xp.full(x.shape, len(slots), dtype=xp.int32, device=dev)
        for k in zero_slots:
            cached.setdefault(k, fk.get(k, cached.get(k)))
        fk.update(cached)
        total = xp.zeros_like(x)
        size = xp.zeros_like(x)
        for k in range(n + 1):
            c = xp.where(central, c_coef[k] * xp.ones_like(x), o_coef[k] * xp.ones_like(x))
            total = total + c * fk[k]
            size = size + xp.abs(c) * xp.abs(fk[k])
        hn = h**n
        # each value carries about eps (|f| + |x f'|); the slope from the outermost values
        first, last = 0, n
        width = xp.where(central, float(c_off[first] - c_off[last]) * h, float(o_off[first] - o_off[last]) * h)
        slope = xp.abs(fk[first] - fk[last]) / xp.abs(width)
        weights = sum(abs(c) for c in c_coef) if all_central else sum(abs(c) for c in o_coef)
        noise = size + weights * xp.abs(x) * slope
        return total / hn, ROUNDING_ULPS * eps * noise / xp.abs(hn), spent

    return quotient
