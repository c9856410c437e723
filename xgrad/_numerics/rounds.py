"""The state of :func:`xgrad._numerics.richardson.run` between two rounds, packed
into three arrays where a round runs as one compiled program (JAX).

A compiled program pays for every array it takes and returns (each result is
a new Python object, tens of microseconds for the twenty arrays of a round).
The state of a round is the best estimates and their errors, the status, the
evaluations, the rounds and the stalls of every element, whether it is still
active, the newest row of the extrapolation table with its rounding bounds,
and the older steps: stacked by dtype (copies, no arithmetic: the numbers are
the same bits), it travels as the floats, the small integers, and the
evaluations (whose dtype is the quotient's). Array API only; used inside the
compiled programs, never on a library without a compiler, where the state
stays a tuple of arrays and nothing is copied.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from xgrad._infra.typing import Array, Namespace
from xgrad._numerics.batched import batching_of

__all__ = ["PROBE", "Carry", "Programs", "Split", "pack", "programs", "split_round", "unpack"]

# (df, error, status, nfev, nit), active, stalls, (table row, rounding bounds), older steps (newest first)
Carry = tuple[tuple[Array, ...], Array, Array, tuple[list[Array], list[Array]], list[Array]]


def pack(carry: Carry, xp: Namespace) -> tuple[Array, Array, Any]:
    """The floats ``(df, error, *t, *b, *steps)``, the integers ``(status, nit, stalls, active)``
    and ``nfev``, from the state of a round."""
    (df, error, status, nfev, nit), active, stalls, (t, b), steps = carry
    floats = [df, error, *t, *b, *steps]
    ints = [status, nit, stalls]
    if any(a.dtype != df.dtype for a in floats) or any(a.dtype != status.dtype for a in ints):
        raise TypeError("the state of a round mixes dtypes: it cannot be stacked exactly")
    return xp.stack(floats), xp.stack([*ints, xp.astype(active, status.dtype)]), nfev


def unpack(packed: tuple[Array, Array, Any], depth: int, xp: Namespace) -> Carry:
    """The state that :func:`pack` packed. The table row holds k entries and there are
    m older steps: k = m after round m - 1 <= `depth`, then k = depth + 1 and m = depth."""
    floats, ints, nfev = packed
    rows = floats.shape[0] - 2
    k, m = (rows // 3, rows // 3) if rows % 3 == 0 else (depth + 1, depth)
    if 2 * k + m != rows:
        raise ValueError(f"a packed state of {rows} rows does not fit a table of depth {depth}")
    row = [floats[i, ...] for i in range(floats.shape[0])]
    status, nit, stalls, active = (ints[i, ...] for i in range(4))
    fields = (row[0], row[1], status, nfev, nit)
    return fields, active != 0, stalls, (row[2:2 + k], row[2 + k:2 + 2 * k]), row[2 + 2 * k:]


PROBE = 2  # the first round's `going` in a fused program where a first step needs shrinking

# (xp, key, d, r, spent, h, x, power, carry, limits) -> (carry, next steps, going): a round on a plain state
Advance = Callable[..., tuple[Carry, Array, Array]]
# (xp, carry, atol) -> (df, error, status, nfev, nit): the fields once the rounds are over
Finish = Callable[..., tuple[Array, ...]]


@dataclass(frozen=True)
class Split:
    """A quotient in three parts, for rounds that run as one compiled program each,
    between the evaluations of `f` (a program of their own: `f` inside a larger program
    could round differently, the compiler fusing its operations with those around it):
    ``points(x, h, *consts)`` the points at which to evaluate `f` for the steps `h`,
    ``evaluate(points)`` its values there, checked, and ``quotient(values, h, x, *consts)``
    the quotients ``(d, r, spent)``. `points` and `quotient`: xgrad's own module-level
    functions of arrays (compiled once per process)."""

    points: Callable[..., Array]
    evaluate: Callable[[Array], Array]
    quotient: Callable[..., tuple[Array, Array, Any]]
    consts: tuple[Array, ...]


@dataclass(frozen=True)
class Programs:
    """The steps of the iteration for one library and one `key` of settings."""

    advance: Callable[..., Any]  # (d, r, spent, h, x, power, carry, limits) -> (carry, next steps, going)
    view: Callable[[Any], tuple[tuple[Array, ...], Array]]  # carry -> (df, error, status, nfev, nit), active
    finish: Callable[[Any, Any], tuple[Array, ...]]  # (carry, atol) -> the fields of the final state


_PROGRAMS: dict[tuple[Any, ...], Programs] = {}


def programs(xp: Namespace, key: tuple[Any, ...], advance: Advance, finish: Finish) -> Programs:
    """`advance` and `finish` for `xp` and the settings `key` (those that shape the computation,
    the table's depth first): on a plain state where the library has no compiler, else compiled
    once per process on the packed state."""
    cache_key = (getattr(xp, "__name__", str(xp)), *key)
    if cache_key in _PROGRAMS:
        return _PROGRAMS[cache_key]
    depth = key[0]
    batching = batching_of(xp)
    if batching is None:
        found = Programs(lambda *args: advance(xp, key, *args), lambda carry: (carry[0], carry[1]),
                         lambda carry, atol: finish(xp, carry, atol))
    else:
        def packed_advance(d: Array, r: Array, spent: Any, h: Array, x: Array, power: Array, packed: Any,
                           limits: Any) -> Any:
            carry = None if packed is None else unpack(packed, depth, xp)
            carry, h_next, going = advance(xp, key, d, r, spent, h, x, power, carry, limits)
            return pack(carry, xp), h_next, going

        def view(packed: Any) -> tuple[tuple[Array, ...], Array]:
            carry = unpack(packed, depth, xp)
            return carry[0], carry[1]

        found = Programs(batching.whole(packed_advance), batching.whole(view),
                         batching.whole(lambda packed, atol: finish(xp, unpack(packed, depth, xp), atol)))
    _PROGRAMS[cache_key] = found
    return found


_SPLIT: dict[tuple[Any, ...], Callable[..., Any]] = {}


def split_round(split: Split, key: tuple[Any, ...], advance: Advance, xp: Namespace) -> Callable[..., Any] | None:
    """A round after the values of `f`, as one compiled program on the packed state:
    ``(values, h, x, power, consts, packed, limits) -> (packed, next steps, next points,
    going)``, ``packed`` None in the first round, whose `going` is PROBE where a first
    step needs shrinking (the round is then done again, the eager way). None where the
    library has no compiler."""
    batching = batching_of(xp)
    if batching is None:
        return None
    cache_key = (getattr(xp, "__name__", str(xp)), split.points, split.quotient, *key)
    if cache_key not in _SPLIT:
        depth, points, quotient = key[0], split.points, split.quotient

        def program(values: Array, h: Array, x: Array, power: Array, consts: tuple[Array, ...], packed: Any,
                    limits: Any) -> Any:
            d, r, spent = quotient(values, h, x, *consts)
            carry = None if packed is None else unpack(packed, depth, xp)
            carry, h_next, going = advance(xp, key, d, r, spent, h, x, power, carry, limits)
            if packed is None:
                probe = xp.any(~xp.isfinite(d) & xp.isfinite(h) & (h != 0))
                going = xp.where(probe, PROBE, xp.astype(going, xp.int32))
            return pack(carry, xp), h_next, points(x, h_next, *consts), going

        _SPLIT[cache_key] = batching.whole(program)
    return _SPLIT[cache_key]
