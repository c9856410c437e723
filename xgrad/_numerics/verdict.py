"""How the derivative checks decide: numerical slopes along probes against given
ones, each within a tolerance from its error estimate, and whether the check
could have seen an error of the size it promises to catch.

A *probe* is a number the check computes both ways: an entry of a gradient,
Jacobian or Hessian, or its value along random sign vectors. The numerical
side is the derivative at 0 of ``phi(t)``, an elementwise function of the
steps; :func:`decide` compares it with the given side and returns the verdict
that :func:`xgrad.check_gradient`, :func:`xgrad.check_jacobian` and
:func:`xgrad.check_hessian` report.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import array_api_compat

from xgrad._infra.typing import Array, Namespace
from xgrad._numerics.derivative import DerivativeResult, derivative

__all__ = ["PROMISE", "Probes", "Verdict", "decide", "typical_size"]

SAFETY = 5.0  # the derivative's error estimate, times this, is allowed (see the benchmarks)
FLOOR_ULPS = 8.0  # plus this many ulps of the gradient's size, for rounding in `grad`
RELATIVE_FLOOR = 2 / 3  # plus eps**(2/3) |numerical|: rounding in f (long sums) can exceed
# the derivative's model of it, and no difference quotient resolves more
UNRESOLVED = 0.1  # a derivative that did not converge, with an error estimate above this fraction
# of its value and of max|given| (a jump: 0.76 for floor at 0), confirms nothing; correct float32
# gradients that ran out of rounds stay below 0.02 (scripts/bench_check_gradient.py's problems)
PROMISE = 0.01  # the checks promise to catch an error of 1% of a typical entry in any one entry
SMALLER = (1e-2, 1e-4, 1e-6)  # probes that fail are measured again with first steps this much smaller
JUMP = 8.0  # a change of f over a tiny step beyond this many times its rounding, which does
# not shrink with the step, is a jump


@dataclass(frozen=True)
class Probes:
    """What one check compares.

    phi : t of shape (2, k) -> values of shape (2, k); ``phi'(0)[e]`` is probe e
    given : the given value of every probe, shape (k,)
    size : the largest given entry, for the rounding of the given probes
    terms : entries summed in one given probe (1 for entries)
    typical : a typical (median non-zero) given entry; the promise is PROMISE of it
    entries : per probe, the size of its own entry (entries mode), or None (projections)
    nested : accuracy of the numerical side beyond its error estimate (a derivative of
        numerical derivatives), relative to |numerical| + size; 0 for plain differences
    noise_terms : values of f summed in one value of phi (its rounding grows with their root)
    subset : probes -> the phi of those probes alone (to measure a few again cheaply), or None
    """

    phi: Callable[[Array], Array]
    given: Array
    size: float
    terms: int
    typical: float
    entries: Array | None = None
    nested: float = 0.0
    noise_terms: int = 1
    subset: Callable[[list[int]], Callable[[Array], Array]] | None = None


@dataclass(frozen=True)
class Verdict:
    numerical: Array
    allowed: Array
    bad: Array
    unresolved: list[int]
    lost: list[int]
    kinks: list[int]
    rescaled: list[int]
    finite: bool
    resolution: float
    unsettled: list[int]

    @property
    def conclusive(self) -> bool:
        return not self.lost and not self.unsettled and self.resolution <= PROMISE


def typical_size(values: Array, xp: Namespace) -> float:
    """The median magnitude of the non-zero entries (0 if there are none)."""
    a = xp.sort(xp.reshape(xp.abs(values), (-1,)))
    zeros = int(xp.sum(xp.astype(a == 0, xp.int32)))
    n = a.shape[0] - zeros
    return 0.0 if n <= 0 else float(a[zeros + n // 2])


def decide(p: Probes, zero: Array, xp: Namespace) -> Verdict:
    """Measure every probe, explain failures by kinks at 0 or kinks crossed by
    the first steps, and say whether the promised error was within reach."""
    eps = float(xp.finfo(zero.dtype).eps)
    res = derivative(p.phi, zero, scale=1.0)
    num, allowed = res.df, _allowed(res, p, eps, xp)
    lost = _lost(res, p.size, xp)
    bad = ~(xp.abs(num - p.given) <= allowed) | lost
    kink = xp.zeros_like(bad)
    if bool(xp.any(bad)):
        bad, kink = _kinks(p, zero, allowed, bad, xp)
    rescaled: list[int] = []
    pending, confirmed, contradicted = bad, xp.zeros_like(bad), xp.zeros_like(bad)
    for shrink in SMALLER:
        if not bool(xp.any(pending)):
            break
        # steps of the first scale may cross kinks near 0 (ReLU networks along a
        # random direction) and extrapolate to a wrong slope: smaller first steps stay clear
        again, allowed2, lost2 = _again(p, pending, zero, shrink, eps, xp)
        ok2 = xp.abs(again.df - p.given) <= allowed2
        contradict = pending & ~lost & ~lost2 & ~(xp.abs(again.df - num) <= allowed + allowed2)
        # it replaces the first where it is at least as sharp, or where the two contradict
        # each other (the first was off by more than both tolerances: kinks); where they
        # agree, the blurrier one (smaller steps round more) must not pass what the first saw
        fixed = pending & ~lost2 & ok2 & ((allowed2 <= allowed) | lost | contradict)
        confirmed = confirmed | (pending & ~fixed & ~lost2 & ~ok2 & ~contradict)  # the failure, measured twice
        contradicted = contradicted | contradict
        if bool(xp.any(fixed)):
            rescaled += _indices(fixed)
            num, allowed = xp.where(fixed, again.df, num), xp.where(fixed, allowed2, allowed)
            lost, bad = lost & ~fixed, bad & ~fixed
        pending = pending & ~fixed
        if bool(xp.any(pending)):  # kinks near 0 that one-sided steps of this scale see
            still, near = _kinks(p, zero, allowed, pending, xp, shrink)
            kink, bad, pending = kink | (near & ~still), bad & ~(pending & ~still), still
    # a failure stands unless smaller steps contradicted it (kinks closer than the first
    # steps); where the check is not sharp enough to promise anything, it must also have
    # been measured again and agreed: there kinks closer than the rounding of f lets the
    # steps go look like errors (float32 ReLU networks along random directions)
    precise = _reach(p, allowed, kink, xp) <= PROMISE
    unsettled = bad & ~lost & (contradicted | (~confirmed if not precise else xp.zeros_like(bad)))
    bad = bad & ~unsettled
    unresolved = bad & lost
    jumps = _jumps(p, zero, unresolved, eps, xp) if bool(xp.any(unresolved)) else unresolved
    drowned = unresolved & ~jumps  # no derivative, but f's change is lost in its rounding
    bad = bad & ~drowned
    kinks = _indices(kink)
    finite = bool(xp.all(xp.isfinite(p.given))) and bool(xp.all(xp.isfinite(num)))
    resolution = _reach(p, allowed, kink, xp)
    return Verdict(num, allowed, bad, _indices(bad & lost), _indices(drowned), kinks, sorted(set(rescaled)),
                   finite, resolution, _indices(unsettled))


def _measure(p: Probes, mask: Array, zero: Array, scale: float, xp: Namespace,
             direction: int = 0) -> DerivativeResult:
    """The probes of `mask` measured with first steps of `scale` (central or
    one-sided), spread back over all probes (meaningful where `mask`)."""
    idx = _indices(mask)
    if p.subset is None or len(idx) == zero.shape[0]:
        return derivative(p.phi, zero, scale=scale, step_direction=direction)
    part = derivative(p.subset(idx), zero[:len(idx)], scale=scale, step_direction=direction)
    where = {i: j for j, i in enumerate(idx)}
    pos = xp.asarray([where.get(i, 0) for i in range(zero.shape[0])], device=array_api_compat.device(zero))
    return DerivativeResult(*(xp.take(getattr(part, k), pos, axis=0) for k in
                              ("df", "error", "success", "status", "nfev", "nit")))


def _again(p: Probes, bad: Array, zero: Array, shrink: float, eps: float,
           xp: Namespace) -> tuple[DerivativeResult, Array, Array]:
    """The failing probes measured again with first steps `shrink` times the first."""
    again = _measure(p, bad, zero, shrink, xp)
    return again, _allowed(again, p, eps, xp), _lost(again, p.size, xp)


def _allowed(res: DerivativeResult, p: Probes, eps: float, xp: Namespace) -> Array:
    return (SAFETY * res.error + eps**RELATIVE_FLOOR * xp.abs(res.df) + p.nested * (xp.abs(res.df) + p.size)
            + FLOOR_ULPS * eps * p.size * math.sqrt(p.terms))


def _lost(res: DerivativeResult, size: float, xp: Namespace) -> Array:
    """Derivatives that did not converge and whose error estimate exceeds
    UNRESOLVED times their value and the given size."""
    scale = xp.maximum(xp.abs(res.df), xp.full_like(res.df, size))
    return ~res.success & ~(res.error <= UNRESOLVED * scale)


def _kinks(p: Probes, zero: Array, allowed: Array, bad: Array, xp: Namespace,
           scale: float = 1.0) -> tuple[Array, Array]:
    """Where one-sided derivatives differ, accept any value between them."""
    right = _measure(p, bad, zero, scale, xp, 1)
    left = _measure(p, bad, zero, scale, xp, -1)
    slack = SAFETY * (right.error + left.error) + allowed
    differ = (xp.abs(right.df - left.df) > slack) & ~_lost(right, p.size, xp) & ~_lost(left, p.size, xp)
    lo, hi = xp.minimum(left.df, right.df), xp.maximum(left.df, right.df)
    between = (p.given >= lo - slack) & (p.given <= hi + slack)
    return bad & ~(differ & between), bad & differ


def _jumps(p: Probes, zero: Array, where: Array, eps: float, xp: Namespace) -> Array:
    """Probes whose function changes across a tiny step (sqrt(eps)) by more
    than its rounding, and by as much across a step 16 times smaller: a jump,
    not a derivative lost in rounding (a continuous f changes 16 times less)."""
    changes = []
    for h in (math.sqrt(eps), math.sqrt(eps) / 16):
        v = p.phi(xp.stack([zero + h, zero - h]))
        rounding = eps * (xp.abs(v[0, ...]) + xp.abs(v[1, ...])) * math.sqrt(p.noise_terms)
        changes.append((xp.abs(v[0, ...] - v[1, ...]), rounding))
    (wide, rounding), (narrow, _) = changes
    return where & (wide > JUMP * rounding) & (narrow > 0.5 * wide)


def _reach(p: Probes, allowed: Array, kink: Array, xp: Namespace) -> float:
    """The smallest error in one entry, relative to the larger of that entry
    and a typical one, that the check catches for certain. An error e in one
    entry moves its probe (entries) or every sign-vector probe by e; a probe
    whose numerical error is within `allowed` fails for certain when
    e > 2 allowed. Kinks, which pass a range, are left out."""
    if p.typical <= 0:  # no non-zero entry: nothing to take a relative error of
        return 0.0
    if p.entries is not None:
        scale = xp.maximum(p.entries, xp.full_like(p.entries, p.typical))
        ratio = xp.where(kink, xp.zeros_like(allowed), 2 * allowed / scale)
        return float(xp.max(ratio))
    return 2 * float(xp.min(allowed)) / p.typical


def _indices(mask: Array) -> list[int]:
    """The positions of the true entries: read once, not entry by entry (each read of
    an element waits for the device and, on JAX, dispatches an operation)."""
    xp = array_api_compat.array_namespace(mask)
    if not bool(xp.any(mask)):
        return []
    return [int(i) for i in xp.nonzero(mask)[0]]
