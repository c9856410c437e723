"""The complex-step derivative: ``Im f(x + i h) / h`` for a function that is
analytic and real on the real line, for :func:`xgrad.derivative`.

No difference is taken, so nothing cancels: the step can be as small as the
dtype allows and the truncation error (``h**2 f'''/6``) vanishes, leaving the
rounding of one evaluation. It is wrong, silently, for a function that is not
analytic (``abs``, ``max``, a comparison) or that drops the imaginary part
of its argument; so every element is checked against a central difference
on the real line (at a step of ``eps**(1/3)`` times the scale, and where that
disagrees, at one a hundred times smaller), and a disagreement at both is
refused. Array API only.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import array_api_compat

from xgrad._infra.backend import quiet_overflow
from xgrad._infra.typing import Array, Namespace
from xgrad._numerics.richardson import NONFINITE, ROUNDING_ULPS, State

__all__ = ["complex_step"]

TINY = 1e-30  # the step, relative to the scale: far below any rounding of x, far above underflow
CHECK = 1e-3  # the agreement required of the central check, relative to max(|df|, |f| / scale)
SHRINK = 100.0  # where the check disagrees, it is repeated at a step this much smaller


def _complex_dtype(xp: Namespace, dtype: object) -> object:
    return xp.complex128 if dtype == xp.float64 else xp.complex64


def _evaluate(f: Callable[[Array], Array], points: Array) -> Array:
    try:
        values = f(points)
    except (TypeError, RuntimeError, ValueError) as exc:  # comparisons and max() on complex, int casts
        raise TypeError(
            f"method='complex' needs an `f` that accepts complex input; it raised {type(exc).__name__}: {exc}. "
            "Use method='central' for an f that compares, takes abs() or max(), or casts to real") from exc
    xp = array_api_compat.array_namespace(points)
    if not array_api_compat.is_array_api_obj(values) or not xp.isdtype(values.dtype, "complex floating"):
        kind = getattr(values, "dtype", type(values).__name__)
        raise TypeError(
            f"method='complex' needs an `f` that keeps the imaginary part of its input; given complex points it "
            f"returned {kind} (abs, a cast to real or a real-only library call drops it). Use method='central'")
    return values


def complex_step(f: Callable[[Array], Array], x: Array, scale: Array, xp: Namespace) -> State:
    """The first derivative of `f` at every element of `x` by one complex
    evaluation, checked against a central difference (two real evaluations, four
    where the first check disagrees)."""
    cdtype = _complex_dtype(xp, x.dtype)
    eps = float(xp.finfo(x.dtype).eps)
    h = TINY * scale
    z = xp.astype(x, cdtype) + xp.astype(h, cdtype) * xp.asarray(1j, dtype=cdtype, device=array_api_compat.device(x))
    with quiet_overflow(xp):
        values = _evaluate(f, xp.stack([z]))[0, ...]
        df = xp.imag(values) / h
        size = xp.maximum(xp.abs(df), xp.abs(xp.real(values)) / scale)
        hc = (x + eps ** (1 / 3) * scale) - x
        agree, check = _agrees(f, x, hc, df, size, xp)
        one = xp.ones(x.shape, dtype=xp.int32, device=array_api_compat.device(x))
        nfev = xp.where(agree, 3 * one, 5 * one)
        if not bool(xp.all(agree)):  # a function that varies on a smaller scale: a smaller step must agree
            closer, check2 = _agrees(f, x, (x + hc / SHRINK) - x, df, size, xp)
            check = xp.where(agree, check, check2)
            agree = agree | closer
        finite = xp.isfinite(df) & xp.isfinite(check)
    wrong = finite & ~agree
    if bool(xp.any(wrong)):
        k = int(xp.argmax(xp.reshape(xp.astype(wrong, xp.int8), (-1,))))
        at, got, ref = (float(xp.reshape(a, (-1,))[k]) for a in (x, df, check))
        raise ValueError(
            f"method='complex' needs an `f` that is analytic near `x`: at x = {at} the complex step gives "
            f"{got:.6g} but a central difference gives {ref:.6g} (abs, max, comparisons or a library call that "
            "drops the imaginary part do this). Use method='central'")
    status = xp.where(finite, 0 * one, NONFINITE * one)
    nan = xp.full_like(x, math.nan)
    error = 2 * ROUNDING_ULPS * eps * xp.abs(df)  # one evaluation, rounded once or twice in f
    return State(df=xp.where(finite, df, nan), error=xp.where(finite, error, nan), status=status,
                 nfev=nfev, nit=one)


def _agrees(f: Callable[[Array], Array], x: Array, hc: Array, df: Array, size: Array,
            xp: Namespace) -> tuple[Array, Array]:
    """Whether the central difference at steps `hc` agrees with `df` to CHECK
    (plus its own rounding), and that difference."""
    eps = float(xp.finfo(x.dtype).eps)
    real = f(xp.stack([x + hc, x - hc]))  # on the real line: log at -1 is NaN there, not a branch cut
    if xp.isdtype(real.dtype, "complex floating"):
        real = xp.real(real)
    up, down = real[0, ...], real[1, ...]
    check = (up - down) / (2 * hc)
    rounding = 4 * eps * (xp.abs(up) + xp.abs(down)) / (2 * xp.abs(hc))
    return xp.abs(check - df) <= CHECK * size + rounding, check
