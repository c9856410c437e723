"""check_gradient, a function's gradient check: a hand-written gradient against error-controlled derivatives.

Small arrays are checked entry by entry; large ones along random sign vectors
(Rademacher directions), as many as a stated detection probability needs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import array_api_compat

from xgrad._infra.backend import compute_dtype
from xgrad._infra.host import to_numpy
from xgrad._infra.typing import Array, Namespace
from xgrad._infra.validate import as_float_array, as_scalar, check_callable, check_count, check_real, fresh_copy
from xgrad._numerics.batched import BLOCK_ELEMENTS, compiled_around, compiled_own, stacked_values
from xgrad._numerics.verdict import FLOOR_ULPS, PROMISE, SAFETY, Probes, Verdict, decide, typical_size

__all__ = ["GradientReport", "check_gradient"]

ENTRY_FALLBACK = 4096  # up to this size, kinks along directions send the check to entries


@dataclass(frozen=True)
class GradientReport:
    """What a function's check, :func:`check_gradient`, found.

    Attributes
    ----------
    passed : bool
        Every checked entry (or direction) agrees within its tolerance, none
        is unresolved, no value is NaN or infinite, and the check is
        `conclusive`.
    mode : str
        ``"entries"`` or ``"directions"``.
    checked : int
        Entries or directions compared.
    worst : list of tuple
        Up to five ``(index, numerical, given, allowed)``, unresolved ones and
        then the largest ``|numerical - given| / allowed`` first; `index` is a
        flat entry index or a direction number.
    kinks : list of int
        Entries (or directions) where the left and right derivatives differ
        (e.g. ReLU at 0): `given` passes there when it lies between them.
    tolerance : str
        How the allowed difference was set.
    unresolved : list of int
        Entries (or directions) where the numerical derivative did not
        converge, its error estimate above a tenth of its value, and `f`
        jumps there (it changes over a tiny step by more than its rounding):
        they fail, since nothing there can confirm `given`.
    conclusive : bool
        False when the rounding of `f` (float32, mostly) makes an error of 1%
        of a typical entry in one entry invisible: `resolution` above 0.01,
        a derivative lost in rounding (`rounding_limited`), or measurements
        that never settled (`unsettled`). Then `passed`
        is False although nothing failed: check in float64.
    resolution : float
        The smallest error in one entry, relative to the larger of that
        entry and the median non-zero entry, that the check catches for
        certain: twice the allowed difference over that size (along
        directions the smallest allowed difference, since an error in one
        entry moves every direction's slope by its full size).
    rescaled : list of int
        Entries (or directions) measured again with smaller first steps,
        where the first steps crossed kinks near the point (a ReLU network
        along a random direction) and the extrapolation missed the slope.
    rounding_limited : list of int
        Entries (or directions) whose derivative did not converge because
        the change of `f` is lost in its rounding (a flat, saturated `f` in
        float32): they make the check inconclusive, not failed.
    verdict : str
        ``"pass"``, ``"fail"`` (an entry or direction disagrees beyond its
        tolerance, NaN, or a jump) or ``"inconclusive"`` (nothing failed, but
        the check is not `conclusive`).
    unsettled : list[int]
        Entries (or directions) that failed, but whose measurements with
        smaller steps contradicted the first and never settled (kinks closer
        than the rounding of `f` lets the steps go): inconclusive, not failed.
    what : str
        What was checked: ``"gradient"``, ``"Jacobian"`` or ``"Hessian"``.
    """

    passed: bool
    mode: str
    checked: int
    worst: list[tuple[int, float, float, float]]
    kinks: list[int]
    tolerance: str
    unresolved: list[int] = field(default_factory=list)
    conclusive: bool = True
    resolution: float = 0.0
    rescaled: list[int] = field(default_factory=list)
    rounding_limited: list[int] = field(default_factory=list)
    unsettled: list[int] = field(default_factory=list)
    what: str = "gradient"
    verdict: str = ""

    def __str__(self) -> str:
        verdict = self.verdict.upper()
        lines = [f"{self.what} check: {verdict} ({self.checked} {self.mode}; {self.tolerance})"]
        if verdict == "INCONCLUSIVE":
            lines.append(f"  the rounding of f hides an error of {PROMISE:.0%} in one entry (the check catches "
                         f"{self.resolution:.2g} of an entry's size for certain): check in float64")
        lines += [f"  [{i}] numerical {n:.8g}  given {g:.8g}  allowed {a:.2g}" for i, n, g, a in self.worst]
        if self.kinks:
            lines.append(f"  kinks (one-sided derivatives differ) at {self.kinks[:10]}")
        if self.unresolved:
            lines.append(f"  no converged numerical derivative (is f continuous there?) at {self.unresolved[:10]}")
        if self.rounding_limited:
            lines.append(f"  derivative lost in the rounding of f at {self.rounding_limited[:10]}")
        if self.unsettled:
            lines.append(f"  measurements with smaller steps disagree (kinks?) at {self.unsettled[:10]}")
        return "\n".join(lines)

    def __post_init__(self) -> None:
        if not self.verdict:
            object.__setattr__(self, "verdict", "pass" if self.passed else "fail")


def _given(grad: Any, x: Array, xp: Namespace) -> Array:
    g = grad(fresh_copy(xp, x)) if callable(grad) else grad
    if isinstance(g, list | tuple):
        g = xp.asarray(g, device=array_api_compat.device(x))
    if not array_api_compat.is_array_api_obj(g):
        raise TypeError(f"`grad` must be an array (or return one); got {type(g).__name__}")
    if array_api_compat.array_namespace(g) is not xp:
        raise TypeError(f"`grad` must be an array of the library of `x`; got {type(g).__name__}")
    if xp.isdtype(g.dtype, "complex floating"):  # a cast would drop the imaginary part
        raise TypeError(f"`grad` must hold real numbers; got dtype {g.dtype}")
    if tuple(g.shape) != tuple(x.shape):
        raise ValueError(f"`grad` must have the shape of `x` {tuple(x.shape)}; got {tuple(g.shape)}")
    return xp.astype(g, x.dtype) if g.dtype != x.dtype else g


class _Directions:
    """The directions of a check: unit vectors (entries), built a chunk of rows at
    a time and never stored as an (n, n) identity, so that memory stays linear in
    the entries; or `count` random sign vectors, a (count, n) array."""

    def __init__(self, n: int, count: int | None, xp: Namespace, x: Array, seed: int) -> None:
        self.xp, self.n, self.dtype = xp, n, x.dtype
        self.device = array_api_compat.device(x)
        self.signs: Array | None = None
        if count is not None:
            import numpy as np  # the host edge: directions are drawn once on the host

            draw = np.random.default_rng(seed).choice([-1.0, 1.0], size=(count, n))
            self.signs = xp.asarray(draw.tolist(), dtype=x.dtype, device=self.device)
        self.count = n if count is None else count
        self.index = xp.arange(n, device=self.device)

    def slopes(self, flat_g: Array, dtype: Any) -> Array:
        """The given gradient along every direction, summed in `dtype`."""
        wide = self.xp.astype(flat_g, dtype)
        if self.signs is None:
            return wide
        return self.xp.sum(self.xp.astype(self.signs, dtype) * wide, axis=1)


def _along(f: Callable[[Array], Any], x: Array, dirs: _Directions, xp: Namespace,
           which: list[int] | None = None) -> Callable[[Array], Array]:
    """t of shape (2, k) -> f(x + t[a, j] * dirs[j]) for every a, j (dirs[which[j]]
    for a subset)."""
    flat = xp.reshape(x, (-1,))
    dev = array_api_compat.device(x)

    count = dirs.count if which is None else len(which)
    rows = xp.asarray(list(range(count)) if which is None else which, device=dev)
    rows = xp.reshape(xp.stack([rows, rows], axis=1), (-1,))  # point r: direction rows[r], the steps of column r // 2
    moved = _entry_points if dirs.signs is None else _sign_points
    build, table = compiled_own(moved, xp), dirs.index if dirs.signs is None else dirs.signs
    shape, dtype = tuple(x.shape), x.dtype  # what the compiled call keeps while f lives: no array of this check


    def one(v: Any) -> Array:
        return as_scalar(v, xp, dev, dtype, "`f`")

    def around(values_of: Callable[[Array], Array]) -> Callable[..., Array]:
        def core(t: Array, flat: Array, each: Array, table: Array) -> Array:
            steps = xp.reshape(xp.permute_dims(t, (1, 0)), (-1,))
            block = moved(flat, steps, each, table)
            values = values_of(xp.reshape(block, (steps.shape[0], *shape)))
            return xp.permute_dims(xp.reshape(values, (t.shape[1], t.shape[0])), (1, 0))

        return core

    kind = f"check_gradient {'entries' if dirs.signs is None else 'signs'} {tuple(x.shape)} {x.dtype} {dev}"

    def phi(t: Array) -> Array:
        sides = t.shape[0]
        each = rows if sides == 2 else xp.reshape(xp.stack([rows[::2]] * sides, axis=1), (-1,))
        if math.prod(t.shape) * flat.shape[0] <= BLOCK_ELEMENTS:  # all the points at once: one compiled call
            values = compiled_around(f, kind, one, around, (t, flat, each, table), xp)
            if values is not None:
                return values
        steps = xp.reshape(xp.permute_dims(t, (1, 0)), (-1,))  # point r: direction r // 2, step t[r % 2, r // 2]

        def points(lo: int, hi: int) -> Array:  # the points of a chunk, built in one call
            whole = (lo, hi) == (0, steps.shape[0])
            block = build(flat, steps if whole else steps[lo:hi], each if whole else each[lo:hi], table)
            return xp.reshape(block, (hi - lo, *x.shape))

        values = stacked_values(f, steps.shape[0], points, one, xp, flat.shape[0])
        return xp.permute_dims(xp.reshape(values, (t.shape[1], sides)), (1, 0))

    return phi


def _entry_points(flat: Array, steps: Array, rows: Array, index: Array) -> Array:
    """Point r: `flat` moved by ``steps[r]`` along the unit vector ``rows[r]``."""
    xp = array_api_compat.array_namespace(flat)
    return flat[None, :] + steps[:, None] * xp.astype(rows[:, None] == index[None, :], flat.dtype)


def _sign_points(flat: Array, steps: Array, rows: Array, signs: Array) -> Array:
    """Point r: `flat` moved by ``steps[r]`` along the sign vector ``signs[rows[r]]``."""
    xp = array_api_compat.array_namespace(flat)
    return flat[None, :] + steps[:, None] * xp.take(signs, rows, axis=0)


def directions_for(detection: float) -> int:
    """Random sign vectors needed so that errors in several entries which
    cancel along one direction are still seen with probability `detection`:
    each direction misses such a pair with probability at most 1/2."""
    return max(2, math.ceil(math.log2(1 / (1 - detection))))


def check_gradient(
    f: Callable[[Array], Any],
    grad: Any,
    x: Any,
    /,
    *,
    max_entries: int = 64,
    detection: float = 0.999,
    seed: int = 0,
) -> GradientReport:
    """A function's gradient check: a gradient of a scalar function against numerical derivatives.

    Parameters
    ----------
    f : callable
        A scalar function of an array of the shape of `x`.
    grad : callable or array
        The gradient to check: a function of `x`, or its value at `x`.
    x : array
        Where to check; any shape, any backend.
    max_entries : int
        Arrays up to this size are checked entry by entry (two evaluations
        of `f` per entry and step); larger ones along random sign vectors.
    detection : float
        For large arrays: the probability of seeing errors in several
        entries that cancel along one direction (an error in one entry is
        seen along every sign vector).
    seed : int
        Seeds the random directions.

    Returns
    -------
    GradientReport
        ``passed``, the worst entries with their numerical and given values,
        the tolerance and where one-sided derivatives differ (kinks).

    Raises
    ------
    TypeError
        If `f` returns anything but a real number (a float narrower than the
        dtype of `x` included), or `grad` is not a real array of the library
        of `x`; if `x` is narrower than float32 (float16 quotients cannot
        resolve a wrong gradient); if `seed` is not an integer.
    ValueError
        If `x` is empty, `f` returns more than one number, `grad` has another
        shape than `x`, `max_entries` or `seed` is negative, or `detection` is not
        between 0 and 1.

    Notes
    -----
    An entry passes when ``|numerical - given| <= 5 * error
    + eps**(2/3) |numerical| + 8 eps |given|_max`` where `error` is
    :func:`derivative`'s error estimate (along directions the last term is
    multiplied by ``sqrt(size)``). Where it fails, the
    one-sided derivatives are computed: if they differ (a kink, e.g. ReLU at
    0), `given` passes when it lies between them, and the entry is listed in
    ``kinks``. A failing entry is measured again with smaller first steps
    (kinks near the point; ``rescaled``). NaN or infinity in `f`, `grad` or
    the derivatives fails.

    The check promises to catch an error of 1% of an entry in any one entry
    (an entry at least the median non-zero one). Where the rounding of `f`
    makes that error invisible (float32, mostly) it answers
    ``verdict="inconclusive"`` (``passed`` False, ``conclusive`` False)
    instead of passing; check in float64 then. "How the function checks
    decide" in the documentation has the rule and its calibration
    (``scripts/calibrate_check_gradient.py``).

    On JAX, a traceable `f` is traced and compiled, once per `f` and shape,
    and evaluated at all the points of a round in one call: its Python code
    runs once per compilation. An `f` that cannot be traced is called once
    per point ("What runs where" in the documentation).

    Examples
    --------
    >>> import numpy as np
    >>> from xgrad import check_gradient
    >>> f = lambda x: np.sum(x**3)
    >>> check_gradient(f, lambda x: 3 * x**2, np.array([1.0, 2.0])).passed
    True
    >>> report = check_gradient(f, lambda x: 3 * x**2 * [1.0, 1.01], np.array([1.0, 2.0]))
    >>> report.passed, report.worst[0][0]
    (False, 1)
    """
    check_callable(f)
    x, xp, max_entries, detection, seed = checked_point(x, max_entries, detection, seed)
    g = _given(grad, x, xp)
    n = math.prod(x.shape)
    count = None if n <= max_entries else directions_for(detection)
    dirs = _Directions(n, count, xp, x, seed)
    report = _compare(f, x, g, dirs, "entries" if count is None else "directions", xp)
    if report.kinks and count is not None and n <= ENTRY_FALLBACK:
        # a kink along a random direction hides which entry is wrong: check entries
        report = _compare(f, x, g, _Directions(n, None, xp, x, seed), "entries", xp)
    return report


def check_precision(x: Array, xp: Namespace) -> None:
    """Refuse dtypes narrower than float32: in float16 the derivatives' error
    estimates, which set the tolerance, let gradients 20% off pass."""
    if xp.finfo(x.dtype).bits < 32:
        raise TypeError(
            f"`x` of dtype {x.dtype} is too coarse for a gradient check: its difference quotients "
            "cannot tell a gradient 20% off from rounding. Check in float32 or float64, e.g. "
            "with xp.astype(x, xp.float32) (and `f` computing in the dtype of its argument)"
        )


def _compare(f: Callable[[Array], Any], x: Array, g: Array, dirs: _Directions, mode: str,
             xp: Namespace) -> GradientReport:
    k = dirs.count
    zero = xp.zeros((k,), dtype=x.dtype, device=array_api_compat.device(x))
    # the given slopes summed in float64 where the device has it (not MPS, JAX without x64)
    wide = compute_dtype(xp, array_api_compat.device(x), x.dtype, warn=False)
    flat = xp.reshape(g, (-1,))
    given = xp.astype(dirs.slopes(flat, wide), x.dtype)
    n = math.prod(g.shape)
    probes = Probes(phi=_along(f, x, dirs, xp), given=given, size=float(xp.max(xp.abs(g))),
                    terms=1 if mode == "entries" else n, typical=typical_size(g, xp),
                    entries=xp.abs(flat) if mode == "entries" else None,
                    subset=lambda idx: _along(f, x, dirs, xp, idx))
    return report(decide(probes, zero, xp), probes, mode, xp)


def report(v: Verdict, p: Probes, mode: str, xp: Namespace, what: str = "gradient") -> GradientReport:
    """The report of one check from its verdict."""
    how = (f"|numerical - given| <= {SAFETY:g} x the derivative's error estimate + "
           f"{'eps**(2/3)' if not p.nested else f'(eps**(2/3) + {p.nested:.1g})'} |numerical| + "
           f"{FLOOR_ULPS:g} ulps of max|given|" + (f" x sqrt({p.terms})" if p.terms > 1 else ""))
    failed = not v.finite or bool(xp.any(v.bad))
    verdict = "fail" if failed else ("pass" if v.conclusive else "inconclusive")
    unresolved = xp.zeros_like(v.bad)
    if v.unresolved or v.lost:
        marks = set(v.unresolved) | set(v.lost)
        idx = xp.arange(v.bad.shape[0], device=array_api_compat.device(v.bad))
        for i in marks:
            unresolved = unresolved | (idx == i)
    return GradientReport(passed=verdict == "pass", mode=mode, checked=int(v.bad.shape[0]),
                          worst=_worst(v.numerical, p.given, v.allowed, unresolved, xp), kinks=v.kinks,
                          tolerance=how, unresolved=v.unresolved, conclusive=v.conclusive,
                          resolution=v.resolution, rescaled=v.rescaled, rounding_limited=v.lost,
                          unsettled=v.unsettled, what=what, verdict=verdict)


def _worst(num: Array, given: Array, allowed: Array, unresolved: Array,
           xp: Namespace) -> list[tuple[int, float, float, float]]:
    diff = xp.abs(num - given)
    safe = xp.where(allowed > 0, allowed, xp.ones_like(allowed))  # 0/0 warns on NumPy
    ratio = xp.where(diff == 0, xp.zeros_like(diff), xp.where(allowed > 0, diff / safe, xp.full_like(diff, math.inf)))
    ratio = xp.where(xp.isnan(ratio) | unresolved, xp.full_like(ratio, math.inf), ratio)
    order = xp.argsort(-ratio)[:min(5, ratio.shape[0])]
    # read back to the host at once, not element by element (each read waits for the device)
    top = to_numpy(xp.stack([xp.astype(order, num.dtype), *(xp.take(a, order, axis=0) for a in (num, given, allowed))]))
    return [(int(i), float(n), float(g), float(a)) for i, n, g, a in top.T.tolist()]


def checked_point(x: Any, max_entries: Any, detection: Any, seed: Any) -> tuple[Array, Namespace, int, float, int]:
    """`x` as a float array of float32 or wider, and the shared settings, checked."""
    x, xp, _ = as_float_array(x)
    check_precision(x, xp)
    if math.prod(x.shape) == 0:
        raise ValueError(f"`x` is empty (shape {tuple(x.shape)}): there is nothing to check")
    max_entries = check_count(max_entries, "max_entries", minimum=1)
    seed = check_count(seed, "seed")
    detection = check_real(detection, "detection")
    if not 0 < detection < 1:
        raise ValueError(f"`detection` must be between 0 and 1; got {detection!r}")
    return x, xp, max_entries, detection, seed
