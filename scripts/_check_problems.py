"""Functions with known Jacobians and Hessians, on any backend, and the same
maps with one entry off by 1%: what ``scripts/calibrate_jacobian_check.py``
measures and ``tests/numerics/test_jaccheck.py`` checks.

Not part of xgrad.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xgrad import to_numpy


def jacobian_problems(b: Any, n: int, m: int, dtype: str, seed: int) -> dict[str, tuple[Any, Any, Any]]:
    """name -> (f, jac, x): vector functions of x (n entries) and their Jacobians."""
    xp, dt = b.xp, getattr(b.xp, dtype)
    rng = np.random.default_rng(seed)
    a = b.asarray(rng.normal(size=(m, n)) / np.sqrt(n), dtype=dt)
    x = b.asarray(rng.normal(size=n), dtype=dt)

    def softmax(v):
        e = xp.exp(v - xp.max(v))
        return e / xp.sum(e)

    def softmax_jac(v):
        s = softmax(v)
        return xp.eye(n, dtype=dt, device=b.device) * s[None, :] - s[:, None] * s[None, :]

    def residuals(v):  # Rosenbrock's least-squares residuals: 10 (x[i+1] - x[i]^2), 1 - x[i]
        return xp.concat([10 * (v[1:] - v[:-1] ** 2), 1 - v[:-1]])

    def residuals_jac(v):
        eye = xp.eye(n, dtype=dt, device=b.device)
        top = 10 * (eye[1:, :] - 2 * v[:-1, None] * eye[:-1, :])
        return xp.concat([top, -eye[:-1, :]])

    return {
        "linear map": (lambda v: a @ v, lambda v: a, x),
        "softmax": (softmax, softmax_jac, x),
        "tanh layer": (lambda v: xp.tanh(a @ v), lambda v: (1 - xp.tanh(a @ v) ** 2)[:, None] * a, x),
        "rosenbrock residuals": (residuals, residuals_jac, x),
    }


def hessian_problems(b: Any, n: int, dtype: str, seed: int) -> dict[str, tuple[Any, Any, Any, Any]]:
    """name -> (f, grad, hess, x): scalar functions with their gradients and Hessians."""
    xp, dt = b.xp, getattr(b.xp, dtype)
    rng = np.random.default_rng(seed)
    s = rng.normal(size=(n, n)) / np.sqrt(n)
    sym = b.asarray(s + s.T, dtype=dt)
    w = b.asarray(rng.normal(size=(7, n)) / np.sqrt(n), dtype=dt)
    c = b.asarray(rng.uniform(0.5, 2.0, size=7), dtype=dt)
    x = b.asarray(rng.normal(size=n) * 0.5, dtype=dt)

    def lse_grad(v):
        e = xp.exp(v - xp.max(v))
        return e / xp.sum(e)

    def lse_hess(v):
        p = lse_grad(v)
        return xp.eye(n, dtype=dt, device=b.device) * p[None, :] - p[:, None] * p[None, :]

    def rosen(v):
        return xp.sum(100 * (v[1:] - v[:-1] ** 2) ** 2 + (1 - v[:-1]) ** 2)

    def rosen_grad(v):
        inner = -400 * v[:-1] * (v[1:] - v[:-1] ** 2) - 2 * (1 - v[:-1])
        outer = 200 * (v[1:] - v[:-1] ** 2)
        zero = 0 * v[:1]
        return xp.concat([inner, zero]) + xp.concat([zero, outer])

    def rosen_hess(v):
        diag = xp.concat([1200 * v[:-1] ** 2 - 400 * v[1:] + 2, 0 * v[:1]]) + xp.concat([0 * v[:1], 200 + 0 * v[1:]])
        off = -400 * v[:-1]
        eye = xp.eye(n, dtype=dt, device=b.device)
        up = xp.concat([xp.concat([0 * eye[:-1, :1], eye[:-1, :-1] * off[None, :]], axis=1), 0 * eye[:1, :]])
        return eye * diag[None, :] + up + xp.matrix_transpose(up)

    def tanh_hess(v):
        t = xp.tanh(w @ v)
        return xp.matrix_transpose(w) @ ((c * (-2 * t * (1 - t**2)))[:, None] * w)

    return {
        "quadratic": (lambda v: xp.sum(v * (sym @ v)) / 2, lambda v: sym @ v, lambda v: sym, x),
        "log-sum-exp": (lambda v: xp.log(xp.sum(xp.exp(v - xp.max(v)))) + xp.max(v), lse_grad, lse_hess, x),
        "tanh layer": (lambda v: xp.sum(c * xp.tanh(w @ v)),
                       lambda v: xp.matrix_transpose(w) @ (c * (1 - xp.tanh(w @ v) ** 2)), tanh_hess, x),
        "rosenbrock": (rosen, rosen_grad, rosen_hess, x),
    }


def one_percent_off(b: Any, matrix_fn: Any) -> Any:
    """`matrix_fn` with its median-sized non-zero entry scaled by 1.01 (on the host)."""

    def wrong(v):
        a = np.asarray(to_numpy(matrix_fn(v)), dtype=np.float64).copy()
        flat = np.abs(a).ravel()
        nonzero = np.flatnonzero(flat)
        k = nonzero[np.argsort(flat[nonzero], kind="stable")[nonzero.size // 2]]
        a.flat[k] *= 1.01
        return b.asarray(a, dtype=v.dtype)

    return wrong
