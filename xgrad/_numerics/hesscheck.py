"""check_hessian: a hand-written Hessian (or Hessian-vector product) against
numerical derivatives of a given gradient, or of numerical gradients of f."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import array_api_compat

from xgrad._infra.typing import Array, Namespace
from xgrad._infra.validate import as_scalar, check_callable
from xgrad._numerics.derivative import derivative
from xgrad._numerics.gradcheck import GradientReport, checked_point
from xgrad._numerics.jaccheck import check_linear, entry_phi, given_map, pair_phi, values_of

__all__ = ["NESTED", "check_hessian"]

# relative accuracy of a derivative of numerical derivatives beyond the outer
# error estimate, times (|numerical| + max|given|): the inner derivatives' errors,
# divided by the outer step, are noise the outer estimate does not model;
# measured by scripts/calibrate_jacobian_check.py
NESTED = {64: 1e-7, 32: 1.0}


def _directional(f: Callable[[Array], Any], x: Array, xp: Namespace, points: Callable[[Array], Array],
                 dirs: Callable[[int], Array]) -> Callable[[Array], Array]:
    """t of shape (2, k) -> the derivative of f at points(t)[a, e] along dirs(e),
    by one :func:`derivative` over every (a, e)."""
    dev = array_api_compat.device(x)

    def phi(t: Array) -> Array:
        base = points(t)  # (2, k, n)

        def psi(s: Array) -> Array:  # s of shape (2, 2, k)
            out = []
            for b in range(s.shape[0]):
                for a in range(s.shape[1]):
                    for e in range(s.shape[2]):
                        point = xp.reshape(base[a, e, ...] + s[b, a, e] * dirs(e), x.shape)
                        out.append(as_scalar(f(point), xp, dev, x.dtype, "`f`"))
            return xp.reshape(xp.stack(out), s.shape)

        return derivative(psi, xp.zeros(t.shape, dtype=x.dtype, device=dev), scale=1.0).df

    return phi


def check_hessian(
    f: Callable[[Array], Any],
    hess: Any,
    x: Any,
    /,
    *,
    hvp: Callable[[Array, Array], Any] | None = None,
    grad: Callable[[Array], Any] | None = None,
    max_entries: int = 64,
    detection: float = 0.999,
    seed: int = 0,
) -> GradientReport:
    """A Hessian check: a scalar function's Hessian, or Hessian-vector product, against numerical derivatives.

    Parameters
    ----------
    f : callable
        A scalar function of an array of the shape of `x`.
    hess : callable, array or None
        The Hessian to check, of shape ``x.shape + x.shape``: a function of
        `x`, or its value at `x`. None when `hvp` is given.
    x : array
        Where to check; any shape, any backend, float32 or wider.
    hvp : callable, optional
        Instead of `hess`: ``hvp(x, v)``, the product ``H v`` (shape of `x`).
    grad : callable, optional
        The gradient of `f`, if you trust it (check it first with
        :func:`check_gradient`): the Hessian is then differenced from it, one
        derivative per entry, which is cheaper and sharper than second
        derivatives of `f` (derivatives of numerical gradients).
    max_entries : int
        Hessians with up to this many entries are checked entry by entry;
        larger ones along random sign projections ``v^T H u`` (fast mode:
        ``H`` is never formed from `hvp`).
    detection : float
        In fast mode: the probability of seeing errors in several entries
        that cancel in one projection (an error in one entry is seen by
        every projection).
    seed : int
        Seeds the random projections.

    Returns
    -------
    GradientReport
        As :func:`check_gradient`'s, with ``what="Hessian"``; indices are
        flat indices into ``x.shape + x.shape`` or projection numbers.

    Notes
    -----
    With `grad`, this is :func:`check_jacobian` of `grad`. Without it, each
    entry (or projection) is the derivative of a numerical directional
    derivative of `f`; its error estimate misses the inner derivatives'
    noise, so the tolerance adds ``1e-7`` (float64) or ``1`` (float32)
    times ``|numerical| + max|given|``: correct Hessians reached 3.1e-9 and
    0.36 (``scripts/calibrate_jacobian_check.py``). In float32 without
    `grad` only gross errors fail and the rest is inconclusive: give `grad`,
    or use float64.

    Examples
    --------
    >>> import numpy as np
    >>> from xgrad import check_hessian
    >>> f = lambda x: x[0] ** 2 * x[1] + np.exp(x[1])
    >>> hess = lambda x: np.array([[2 * x[1], 2 * x[0]], [2 * x[0], np.exp(x[1])]])
    >>> check_hessian(f, hess, np.array([1.0, 0.5])).verdict
    'pass'
    >>> check_hessian(f, lambda x: hess(x) * [[1.0, 1.01], [1.0, 1.0]], np.array([1.0, 0.5])).verdict
    'fail'
    """
    check_callable(f)
    x, xp, max_entries, detection, seed = checked_point(x, max_entries, detection, seed)
    flat = xp.reshape(x, (-1,))
    n = flat.shape[0]
    lin = given_map(hess, hvp, None, x, tuple(x.shape), xp, names=("hess", "hvp", "hvp"))
    if grad is not None:
        check_callable(grad, "grad")
        value = values_of(grad, x, tuple(x.shape), xp, "`grad`")
        return check_linear(lin, x, xp, entry_phi=lambda: entry_phi(value, flat, n, xp),
                            pair_phi=lambda vs, us: pair_phi(value, flat, vs, us, xp), max_entries=max_entries,
                            detection=detection, seed=seed, what="Hessian", noise_terms=n)
    as_scalar(f(xp.reshape(flat, x.shape)), xp, array_api_compat.device(x), x.dtype, "`f`")
    index = xp.arange(n, device=array_api_compat.device(x))

    def unit(j: int) -> Array:
        return xp.astype(index == j, x.dtype)

    def entries() -> Callable[[Array], Array]:
        # entry e = i n + j: the derivative along e_i at x + t e_j
        def points(t: Array) -> Array:
            return xp.stack([xp.stack([flat + t[a, e] * unit(e % n) for e in range(t.shape[1])])
                             for a in range(t.shape[0])])
        return _directional(f, x, xp, points, lambda e: unit(e // n))

    def pairs(vs: Array, us: Array) -> Callable[[Array], Array]:
        def points(t: Array) -> Array:
            return xp.stack([xp.stack([flat + t[a, d] * us[d, ...] for d in range(t.shape[1])])
                             for a in range(t.shape[0])])
        return _directional(f, x, xp, points, lambda d: vs[d, ...])

    nested = NESTED[32 if xp.finfo(x.dtype).bits <= 32 else 64]
    return check_linear(lin, x, xp, entry_phi=entries, pair_phi=pairs, max_entries=max_entries,
                        detection=detection, seed=seed, what="Hessian", nested=nested, noise_terms=1)
