"""The engine behind :func:`xgrad.derivative`: difference quotients over a
shrinking sequence of steps, extrapolated to a zero step (Richardson, by
Neville's scheme), with an error estimate that decides when to stop.

Every element of `x` carries its own step, its own row of the extrapolation
table and its own verdict; all elements advance together, so `f` is called
once per round on a stack of points. Array API only.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import array_api_compat

from xgrad._infra.backend import quiet_overflow
from xgrad._infra.typing import Array, Namespace
from xgrad._numerics import rounds as _rounds
from xgrad._numerics.batched import compiled_own

__all__ = ["Quotient", "Settings", "State", "difference_quotient", "points", "quotient_of_values", "run"]

# The first step as a fraction of the scale, and the step ratios while lost,
# far from convergence and near it. Single precision cannot afford small
# steps (rounding grows like eps / h), so it starts larger and shrinks slower.
# The ratios are not powers of two: with halving, a first step near a multiple
# of 2**k periods of a periodic f (sin(50 x) at x = -1930.17) makes k steps in
# a row see the same value and agree on a wrong derivative.
FIRST_FRACTION = {"double": 0.25, "single": 0.3}
LEAP, FINE = 15.0, 2.2
COARSE = {"double": 3.9, "single": 2.2}
SETTLED, LOST = 1e-3, 0.1  # relative error estimates that choose the ratio
DEPTH = 6  # at most this many older quotients enter one extrapolation
MIN_ORDER = 2  # convergence needs an extrapolation over three quotients at least
ROUNDING_ULPS = 2.0  # the error of one evaluation of f, in units of eps * |f|

PROBES = 6  # at most this many shrinks by LEAP of a first step at which f is not finite (exp(x + h) overflows)

CONVERGED, NOISE_FLOOR, MAXITER, NONFINITE, NO_RELATIVE, STOPPED = 0, 1, -2, -3, -4, -5
IN_PROGRESS = 2  # what a callback sees for elements still iterating


@dataclass(frozen=True)
class Settings:
    rtol: float
    atol: float
    maxiter: int
    depth: int = DEPTH  # older quotients that enter one extrapolation (the order of the formula)
    step_factor: float | None = None  # a fixed ratio of successive steps; None: chosen from the estimates
    callback: Callable[[State, Array], None] | None = None  # called with the state and the active mask
    lockstep: int = 0  # leading axes along which elements share their step (f sees one point for all of them)


@dataclass
class State:
    """What the iteration knows about every element."""

    df: Array
    error: Array
    status: Array
    nfev: Array
    nit: Array


# signed steps -> difference quotients, bounds on their rounding error, evaluations of f spent per element
Quotient = Callable[[Array], tuple[Array, Array, Array]]


def central_quotient(f: Callable[[Array], Array], x: Array, central: Array, xp: Namespace) -> Quotient:
    """The first-derivative quotient of :func:`difference_quotient` as a :data:`Quotient`."""
    two: list[Array] = []  # made at the first call: a compiled round (traced_quotient) may never make one

    def quotient(h: Array) -> tuple[Array, Array, Array]:
        d, r = difference_quotient(f, x, h, central, xp)
        if not two:
            two.append(xp.full(x.shape, 2, dtype=xp.int32, device=array_api_compat.device(x)))
        return d, r, two[0]

    return quotient


def quotient_of_values(values: Array, h: Array, x: Array, central: Array) -> tuple[Array, Array, Array]:
    """The quotient of :func:`central_quotient` from the values of `f` at the points
    ``_points(x, h, central)``: the same operations, for :class:`xgrad._numerics.rounds.Split`."""
    xp = array_api_compat.array_namespace(x)
    d, r = _from_values(values, x, h, central)
    return d, r, xp.full_like(x, 2, dtype=xp.int32)


def difference_quotient(f: Callable[[Array], Array], x: Array, h: Array, central: Array,
                        xp: Namespace) -> tuple[Array, Array]:
    """Difference quotients at signed steps `h` and their rounding error.

    Central elements use ``(f(x+h) - f(x-h)) / 2h`` (error in even powers of h),
    one-sided ones ``(f(x+h) - f(x)) / h`` (all powers). The steps are rounded so
    that the points are exactly ``x`` plus the step used in the quotient.
    """
    values = f(compiled_own(points, xp)(x, h, central))
    return compiled_own(_from_values, xp)(values, x, h, central)  # (one compiled call each on JAX)


def points(x: Array, h: Array, central: Array) -> Array:
    """The points of the quotients at the steps `h`: ``x + h``, and ``x - h`` (central) or ``x``."""
    xp = array_api_compat.array_namespace(x)
    return xp.stack([x + h, xp.where(central, x - h, x)])


def _from_values(values: Array, x: Array, h: Array, central: Array) -> tuple[Array, Array]:
    xp = array_api_compat.array_namespace(x)
    up = x + h
    down = xp.where(central, x - h, x)
    f_up, f_down = values[0, ...], values[1, ...]
    width = (up - x) + (x - down)
    width = xp.where(central, width, up - x)
    d = (f_up - f_down) / width
    eps = xp.finfo(x.dtype).eps
    # each value of f carries about eps (|f| + |x f'|): where f cancels to near 0
    # (sin(10 x) near its zeros) eps |f| alone would claim digits it does not have
    noise = xp.abs(f_up) + xp.abs(f_down) + 2 * xp.abs(x) * xp.abs(d)
    rounding = ROUNDING_ULPS * eps * noise / xp.abs(width)
    return d, rounding


def _table_row(d: Array, r: Array, h: Array, prev: tuple[list[Array], list[Array]] | None,
               steps: list[Array], power: Array, depth: int, xp: Namespace) -> tuple[list[Array], list[Array]]:
    """The new row of the Neville table: the quotient `d` and its extrapolations
    to a zero step, using the previous row `prev` and the older `steps` (newest
    first); `r` and the second list bound their rounding errors."""
    t, b = [d], [r]
    if prev is None:
        return t, b
    t_old, b_old = prev
    for j in range(1, min(len(t_old), depth) + 1):
        rho = (xp.abs(steps[j - 1]) / xp.abs(h)) ** power - 1
        t.append(t[j - 1] + (t[j - 1] - t_old[j - 1]) / rho)
        b.append(b[j - 1] + (b[j - 1] + b_old[j - 1]) / rho)
    return t, b


def _best(t: list[Array], b: list[Array], prev: tuple[list[Array], list[Array]] | None,
          xp: Namespace) -> tuple[Array, Array]:
    """The entry of the new row with the smallest estimated error, and that
    error. The truncation error of entry j is estimated by its change from
    entry j-1 of the previous row (made of the same quotients but the newest);
    rounding adds the bound carried in `b`."""
    inf = xp.full_like(t[0], math.inf)
    best_t, best_e = t[0], inf
    if prev is None:
        return best_t, best_e
    if len(t) == 1:  # no extrapolation (order 2): the change of the quotient itself
        e = xp.abs(t[0] - prev[0][0])
        return best_t, xp.where(xp.isfinite(e), e, inf) + b[0]
    for j in range(1, len(t)):
        e = xp.abs(t[j] - prev[0][j - 1])
        e = xp.where(xp.isfinite(e), e, inf) + b[j]
        better = e < best_e
        best_t = xp.where(better, t[j], best_t)
        best_e = xp.where(better, e, best_e)
    return best_t, best_e


def run(quotient: Quotient, x: Array, h: Array, power: Array, settings: Settings, xp: Namespace,
        split: _rounds.Split | None = None) -> State:
    """Iterate from the signed first steps `h` until every element has
    converged or has to stop. `power` is 2 where the error of the quotient
    runs in even powers of the step, 1 where in all powers. `split`: the same
    quotient in parts, with which a round is one compiled program after the
    evaluation of `f` where the library has a compiler."""
    precision = "double" if float(xp.finfo(x.dtype).eps) < 1e-10 else "single"
    key = (settings.depth, settings.lockstep, settings.depth < DEPTH, precision, settings.step_factor is None)
    limits = (settings.rtol, settings.atol, settings.step_factor or 0.0)
    programs = _rounds.programs(xp, key, _advance, _finish)
    after = None if split is None else _rounds.split_round(split, key, _advance, xp)
    carry: Any = None
    with quiet_overflow(xp):  # overflow, inf - inf and 0/0 show up as non-finite estimates, reported in status
        points = None if after is None or split is None else compiled_own(split.points, xp)(x, h, *split.consts)
        for it in range(settings.maxiter):
            out = None
            if after is not None and split is not None:  # the values of f, then the rest of the round in one call
                packed, h_next, points_next, going = after(split.evaluate(points), h, x, power, split.consts,
                                                           carry, limits)
                if it or int(going) != _rounds.PROBE:
                    out, points = (packed, h_next, going), points_next
                else:  # a first step at which f is not finite: shrunk the eager way
                    after = None
            if out is None:  # the quotient, then the array work of the round (compiled where the library can)
                if it:
                    d, r, spent = quotient(h)
                else:
                    h, d, r, spent = _first_finite(quotient, x, h, settings.lockstep, xp)
                out = programs.advance(d, r, spent, h, x, power, carry, limits)
            carry, h_next, going = out
            if settings.callback is not None:
                fields, active = programs.view(carry)
                state = State(*fields)
                try:
                    settings.callback(state, active)
                except StopIteration:
                    stopped = xp.where(active, xp.full_like(state.status, STOPPED), state.status)
                    state.status = compiled_own(_final_status, xp)(state.df, state.error, stopped,
                                                                   xp.zeros_like(active), settings.atol)
                    return state
            if not bool(going):  # any(active), computed in the round
                break
            h = h_next
        return State(*programs.finish(carry, settings.atol))


def _advance(xp: Namespace, key: tuple[Any, ...], d: Array, r: Array, spent: Any, h: Array, x: Array,
             power: Array, carry: _rounds.Carry | None,
             limits: tuple[Any, Any, Any]) -> tuple[_rounds.Carry, Array, Array]:
    """A round after the quotients `d` (rounding bounds `r`) at the steps `h`: the new state, the
    next steps and whether any element is still active. Before the first round (`carry` None)
    `spent` are the evaluations that made the first quotients."""
    depth, lockstep, capped, precision, adaptive = key
    steps: list[Array]
    if carry is None:
        df, error, status, zeros, nit = _initial_fields(x)
        fields, active, stalls = (df, error, status, spent, nit), xp.ones_like(x, dtype=xp.bool), xp.zeros_like(zeros)
        prev, steps, spent = None, [], None
    else:
        fields, active, stalls, prev, steps = carry
    t, b, fields, active, stalls, h_next, going = _round(xp, depth, lockstep, capped, precision, adaptive, d, r,
                                                         spent, h, x, power, prev, steps, fields, active, stalls,
                                                         limits)
    return (fields, active, stalls, (t, b), [h, *steps][:depth]), h_next, going


def _finish(xp: Namespace, carry: _rounds.Carry, atol: Any) -> tuple[Array, ...]:
    (df, error, status, nfev, nit), active = carry[0], carry[1]
    return df, error, compiled_own(_final_status, xp)(df, error, status, active, atol), nfev, nit


def _final_status(df: Array, error: Array, status: Array, active: Array, atol: Any) -> Array:
    """The status once the rounds are over: out of rounds where still active, no relative
    accuracy where the error estimate is as large as the answer, no estimate where not finite."""
    xp = array_api_compat.array_namespace(df)
    status = xp.where(active, xp.full_like(status, MAXITER), status)
    # quotients that agree because each is 0 or lost in rounding (x**2 at 1e-300 with steps of 0.25)
    # meet a relative test by the letter; an error estimate as large as the answer is no success
    vague = (status >= 0) & ~(error < atol + xp.abs(df))
    status = xp.where(vague, xp.full_like(status, NO_RELATIVE), status)
    return xp.where(~xp.isfinite(df), xp.full_like(status, NONFINITE), status)


def _round(xp: Namespace, depth: int, lockstep: int, capped: bool, precision: str, adaptive: bool, d: Array,
           r: Array, spent: Array | None, h: Array, x: Array, power: Array,
           prev: tuple[list[Array], list[Array]] | None, steps: list[Array], fields: tuple[Array, ...],
           active: Array, stalls: Array, limits: tuple[Any, Any, Any]) -> tuple[Any, ...]:
    """One round of :func:`run` after the quotients `d` (rounding bounds `r`) at the steps `h`:
    the new row of the table, the state, the elements still active, and the next steps."""
    df, error, status, nfev, nit = fields
    rtol, atol, factor = limits
    if spent is not None:
        nfev = xp.where(active, nfev + spent, nfev)
        # a step that left the domain of f after a finite start (a pole, say): stop with the best so far
        active = active & xp.isfinite(d)
    t, b = _table_row(d, r, h, prev, steps, power, depth, xp)
    cand, cand_e = _best(t, b, prev, xp)
    state = State(df, error, status, nfev, nit)
    if prev is None:  # the first quotient is the estimate until an extrapolation has an error estimate
        state.df = xp.where(active & xp.isfinite(d), d, state.df)
    state.nit = xp.where(active, state.nit + 1, state.nit)
    better = active & ((cand_e < state.error) | _rescues(cand, cand_e, state, xp)
                       | _contradicts(cand, cand_e, state, xp))
    state.df = xp.where(better, cand, state.df)
    state.error = xp.where(better, cand_e, state.error)
    converged, gone = _within(t, b, prev, rtol, atol, capped, depth, xp)
    done_now = active & converged
    stalls = xp.where(active & ~better, stalls + 1, xp.zeros_like(stalls))
    floor = active & ~done_now & (stalls >= 2) & _at_floor(d, r, state, xp)
    state.status = xp.where(done_now, xp.zeros_like(state.status), state.status)
    state.status = xp.where(floor, xp.full_like(state.status, NOISE_FLOOR), state.status)
    lost = active & ~done_now & ~floor & gone  # smaller steps only lose more
    state.status = xp.where(lost, xp.full_like(state.status, NO_RELATIVE), state.status)
    active = active & ~done_now & ~floor & ~lost
    ratio = _ratio(state, COARSE[precision], xp) if adaptive else factor
    h_next = (x + h / ratio) - x
    h_next = h_next if lockstep else xp.where(active, h_next, h)
    return t, b, (state.df, state.error, state.status, state.nfev, state.nit), active, stalls, h_next, xp.any(active)


def _first_finite(quotient: Quotient, x: Array, h: Array, lockstep: int,
                  xp: Namespace) -> tuple[Array, Array, Array, Array]:
    """The first quotient, with the first step shrunk by LEAP (at most PROBES
    times) where `f` is not finite at it: exp at 700 with a step of 175
    overflows, and an extrapolation from an infinite quotient is no estimate.
    Returns the steps, the quotients, their rounding bounds and the
    evaluations spent. With `lockstep` leading axes, the elements along them
    shrink together (they share their points)."""
    d, r, spent = quotient(h)
    for _ in range(PROBES):
        bad = ~xp.isfinite(d) & xp.isfinite(h) & (h != 0)
        if lockstep:
            bad = xp.broadcast_to(xp.any(bad, axis=tuple(range(lockstep))), bad.shape)
        if not bool(xp.any(bad)):
            break
        h = xp.where(bad, (x + h / LEAP) - x, h)
        d2, r2, more = quotient(h)
        d, r = xp.where(bad, d2, d), xp.where(bad, r2, r)
        spent = xp.where(bad, spent + more, spent)
    return h, d, r, spent


def first_step(x: Array, scale: Array, direction: Array, fraction: float, xp: Namespace) -> Array:
    """`fraction` of the scale, signed for one-sided elements, rounded so that
    ``x + h`` is exactly ``x`` plus the step."""
    sign = xp.where(direction == 0, xp.ones_like(x), xp.sign(direction))
    h = sign * fraction * scale
    return (x + h) - x


def _at_floor(d: Array, r: Array, state: State, xp: Namespace) -> Array:
    """Whether the newest quotient agrees with the best estimate to within the
    noise and the estimate has settled: smaller steps cannot help. Called
    after the best error stopped improving. (An estimate that never settled
    is not accepted here: it runs out of rounds and fails.)"""
    noise = 10 * r
    size = xp.abs(state.df)
    agrees = xp.abs(d - state.df) <= noise + 10 * state.error + SETTLED * size
    return agrees & (state.error <= SETTLED * size)


def _rescues(cand: Array, cand_e: Array, state: State, xp: Namespace) -> Array:
    """A candidate within LOST of itself replaces a best that is not: absolute
    errors of estimates made while the steps were far too large (crossing a
    pole, say) are not comparable with later ones."""
    lost = ~(state.error <= LOST * xp.abs(state.df))
    return lost & (cand_e <= LOST * xp.abs(cand))


def _contradicts(cand: Array, cand_e: Array, state: State, xp: Namespace) -> Array:
    """A candidate that disagrees with the best by more than twice their errors
    together discredits it: the best came from larger steps, where quotients of
    a periodic function can agree by coincidence (sin at 85 with steps near
    multiples of 2 pi), so the newer estimate is kept."""
    return xp.abs(cand - state.df) > 2 * (cand_e + state.error)


def _ratio(state: State, coarse: float, xp: Namespace) -> Array:
    """How much to shrink the step: little once the estimates settle, much
    while they are far off after two rounds."""
    size = xp.abs(state.df)
    settled = state.error <= SETTLED * size
    lost = ~(state.error <= LOST * size) & (state.nit >= 2)
    one = xp.ones_like(state.df)
    return xp.where(settled, FINE * one, xp.where(lost, LEAP * one, coarse * one))


def _within(t: list[Array], b: list[Array], prev: tuple[list[Array], list[Array]] | None, rtol: Any, atol: Any,
            capped: bool, depth: int, xp: Namespace) -> tuple[Array, Array]:
    """Whether some entry of order MIN_ORDER or more changed from the previous
    row by less than the tolerances (first mask), and whether only entries
    lost in rounding did (second mask: their rounding bound `b` is at least
    ``atol`` plus their value, so they are 0 or noise and say nothing of the
    derivative). With the extrapolation capped by an `order`, the top entry
    is also compared with the top entry of the previous row (its own order:
    nothing higher exists). An entry whose bound is over LOST of its value counts for
    neither: such quotients are quantised (a cdf near 1 moves in steps of
    eps) and two of them agree exactly by chance."""
    ok = xp.zeros_like(t[0], dtype=xp.bool)
    gone = ok
    if prev is None:
        return ok, gone
    for j in range(min(MIN_ORDER, len(t) - 1), len(t)):
        change = xp.abs(t[j] - prev[0][max(j - 1, 0)])
        if capped and j == depth and len(prev[0]) > j:
            change = xp.minimum(change, xp.abs(t[j] - prev[0][j]))
        size = xp.abs(t[j])
        agree = change <= atol + rtol * size
        lost = ~(b[j] < atol + size)
        chance = ~lost & (b[j] > atol + LOST * size)
        ok = ok | (agree & ~lost & ~chance)
        gone = gone | (agree & lost)
    return ok, gone & ~ok


def _initial_fields(x: Array) -> tuple[Array, ...]:
    xp = array_api_compat.array_namespace(x)
    zeros = xp.zeros_like(x, dtype=xp.int32)
    return xp.full_like(x, math.nan), xp.full_like(x, math.inf), xp.full_like(zeros, MAXITER), zeros, zeros
