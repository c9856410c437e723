"""check_jacobian: a hand-written Jacobian (or its products with vectors)
against error-controlled derivatives, entry by entry for small maps and along
random sign projections for large ones.

The shared machinery of the linear-map checks lives here too:
:func:`xgrad.check_hessian` checks a Hessian as the Jacobian of a gradient.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import array_api_compat

from xgrad._infra.backend import compute_dtype
from xgrad._infra.typing import Array, Namespace
from xgrad._infra.validate import (
    check_callable,
    check_result_dtype,
    fresh_copy,
)
from xgrad._numerics.gradcheck import GradientReport, checked_point, report
from xgrad._numerics.verdict import Probes, decide, typical_size

__all__ = ["Linear", "check_jacobian", "check_linear", "pairs_for", "sign_vectors"]


def pairs_for(detection: float) -> int:
    """Projection pairs ``(v, u)`` of random signs needed so that errors in
    several entries which cancel in ``v^T E u`` are still seen with
    probability `detection`: a non-zero E gives ``E u = 0`` with probability
    at most 1/2, and then ``v^T (E u) = 0`` with probability at most 1/2, so
    one pair misses with probability at most 3/4. An error in one entry is
    seen by every pair (``v_i u_j = ±1``)."""
    return max(2, math.ceil(math.log(1 - detection) / math.log(0.75)))


def sign_vectors(count: int, n: int, xp: Namespace, x: Array, rng: Any) -> Array:
    """`count` random sign vectors of length `n` on the device of `x` (drawn on the host)."""
    draw = rng.choice([-1.0, 1.0], size=(count, n))
    return xp.asarray(draw.tolist(), dtype=x.dtype, device=array_api_compat.device(x))


@dataclass(frozen=True)
class Linear:
    """The map to check, flat: an (m, n) matrix, or its products with vectors."""

    m: int
    n: int
    matrix: Array | None = None
    vjp: Callable[[Array], Array] | None = None  # v (m,) -> v^T J (n,)
    jvp: Callable[[Array], Array] | None = None  # u (n,) -> J u (m,)

    def full(self, xp: Namespace, x: Array) -> Array:
        """The (m, n) matrix, from products with unit vectors where only those were given."""
        if self.matrix is not None:
            return self.matrix
        dev = array_api_compat.device(x)
        if self.jvp is not None:
            eye = xp.eye(self.n, dtype=x.dtype, device=dev)
            return xp.stack([self.jvp(eye[j, ...]) for j in range(self.n)], axis=1)
        assert self.vjp is not None
        eye = xp.eye(self.m, dtype=x.dtype, device=dev)
        return xp.stack([self.vjp(eye[i, ...]) for i in range(self.m)])

    def projected(self, vs: Array, us: Array, wide: Any, xp: Namespace) -> tuple[Array, float]:
        """``v_d^T J u_d`` for every pair, summed in `wide`, and the RMS entry
        estimated from the products (where no matrix was given)."""
        if self.matrix is not None:
            a = xp.astype(self.matrix, wide)
            out = xp.sum(xp.astype(vs, wide) * xp.matmul(xp.astype(us, wide), xp.matrix_transpose(a)), axis=1)
            return out, typical_size(self.matrix, xp)
        rows, squares = [], []
        for d in range(vs.shape[0]):
            if self.vjp is not None:
                w = xp.astype(self.vjp(vs[d, ...]), wide)
                rows.append(xp.sum(w * xp.astype(us[d, ...], wide)))
            else:
                assert self.jvp is not None
                w = xp.astype(self.jvp(us[d, ...]), wide)
                rows.append(xp.sum(w * xp.astype(vs[d, ...], wide)))
            squares.append(float(xp.sum(w * w)))
        rms = math.sqrt(sum(squares) / len(squares) / (self.m * self.n))
        return xp.stack(rows), rms


def check_linear(lin: Linear, x: Array, xp: Namespace, *, entry_phi: Callable[[], Callable[[Array], Array]],
                 pair_phi: Callable[[Array, Array], Callable[[Array], Array]], max_entries: int,
                 detection: float, seed: int, what: str, nested: float = 0.0,
                 noise_terms: int = 1) -> GradientReport:
    """Entries (m n <= `max_entries`) or sign projections of a linear map
    against the numerical derivatives the two `phi` builders give."""
    dev = array_api_compat.device(x)
    wide = compute_dtype(xp, dev, x.dtype, warn=False)
    if lin.m * lin.n <= max_entries:
        a = xp.reshape(lin.full(xp, x), (-1,))
        size = float(xp.max(xp.abs(a)))
        probes = Probes(phi=entry_phi(), given=a, size=size, terms=1, typical=typical_size(a, xp),
                        entries=xp.abs(a), nested=nested)
        mode = "entries"
    else:
        import numpy as np  # the host edge: directions are drawn once on the host

        rng = np.random.default_rng(seed)
        k = pairs_for(detection)
        vs, us = sign_vectors(k, lin.m, xp, x, rng), sign_vectors(k, lin.n, xp, x, rng)
        given, typical = lin.projected(vs, us, wide, xp)
        size = float(xp.max(xp.abs(lin.matrix))) if lin.matrix is not None else typical
        def subset(idx: list[int]) -> Callable[[Array], Array]:
            rows = xp.asarray(idx, device=dev)
            return pair_phi(xp.take(vs, rows, axis=0), xp.take(us, rows, axis=0))

        probes = Probes(phi=pair_phi(vs, us), given=xp.astype(given, x.dtype), size=size, terms=lin.m * lin.n,
                        typical=typical, nested=nested, noise_terms=noise_terms, subset=subset)
        mode = "projections"
    zero = xp.zeros((probes.given.shape[0],), dtype=x.dtype, device=dev)
    return report(decide(probes, zero, xp), probes, mode, xp, what)


def values_of(f: Callable[[Array], Any], x: Array, out_shape: tuple[int, ...] | None, xp: Namespace,
              name: str = "`f`") -> Callable[[Array], Array]:
    """flat point -> flat values of `f`, checked to be a real array of the library,
    dtype and (after the first call) shape of the first value."""
    shape = [out_shape]

    def call(flat: Array) -> Array:
        value = f(xp.reshape(flat, x.shape))
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = xp.asarray(value, dtype=x.dtype, device=array_api_compat.device(x))
        if not array_api_compat.is_array_api_obj(value):
            raise TypeError(f"{name} must return an array; got {type(value).__name__}")
        if array_api_compat.array_namespace(value) is not xp:
            raise TypeError(f"{name} must return an array of the library of `x`; got {type(value).__name__}")
        check_result_dtype(xp, value.dtype, xp, x.dtype, name)
        if shape[0] is None:
            shape[0] = tuple(value.shape)
        elif tuple(value.shape) != shape[0]:
            raise ValueError(f"{name} must return an array of shape {shape[0]} at every point; "
                             f"got shape {tuple(value.shape)}")
        return xp.reshape(xp.astype(value, x.dtype), (-1,))

    return call


def entry_phi(value: Callable[[Array], Array], flat: Array, m: int, xp: Namespace) -> Callable[[Array], Array]:
    """t of shape (2, m n) -> value(x + t[a, i n + j] e_j)[i]: one evaluation per
    column and step where the steps of the column's entries agree."""
    n = flat.shape[0]
    index = xp.arange(n, device=array_api_compat.device(flat))

    def phi(t: Array) -> Array:
        out = []
        for a in range(t.shape[0]):
            cols = []
            for j in range(n):
                ts = t[a, j::n]
                unit = xp.astype(index == j, flat.dtype)
                if float(xp.max(ts)) == float(xp.min(ts)):
                    cols.append(value(flat + ts[0] * unit))
                else:
                    cols.append(xp.stack([value(flat + ts[i] * unit)[i] for i in range(m)]))
            out.append(xp.reshape(xp.stack(cols, axis=1), (-1,)))
        return xp.stack(out)

    return phi


def pair_phi(value: Callable[[Array], Array], flat: Array, vs: Array, us: Array,
             xp: Namespace) -> Callable[[Array], Array]:
    """t of shape (2, k) -> v_d . value(x + t[a, d] u_d)."""

    def phi(t: Array) -> Array:
        rows = [[xp.sum(vs[d, ...] * value(flat + t[a, d] * us[d, ...])) for d in range(t.shape[1])]
                for a in range(t.shape[0])]
        return xp.stack([xp.stack(r) for r in rows])

    return phi


def given_map(jac: Any, vjp: Any, jvp: Any, x: Array, out_shape: tuple[int, ...], xp: Namespace,
              names: tuple[str, str, str] = ("jac", "vjp", "jvp")) -> Linear:
    """The user's Jacobian (an array or a function of x), or its vjp or jvp, flat and checked."""
    m, n = math.prod(out_shape), math.prod(x.shape)
    given = [(name, v) for name, v in zip(names, (jac, vjp, jvp), strict=True) if v is not None]
    if len(given) != 1:
        options = f"`{names[0]}` or `{names[1]}=`" + (f" or `{names[2]}=`" if names[2] != names[1] else "")
        raise TypeError(f"give exactly one of {options}; got " + (", ".join(f"`{g[0]}`" for g in given) or "none"))
    name, value = given[0]
    if name == names[0]:
        a = value(fresh_copy(xp, x)) if callable(value) else value
        a = _real_array(a, xp, x, name)
        if tuple(a.shape) != (*out_shape, *x.shape):
            raise ValueError(f"`{name}` must have shape {(*out_shape, *x.shape)} (the shape of f's value, then "
                             f"that of `x`); got {tuple(a.shape)}")
        return Linear(m, n, matrix=xp.reshape(a, (m, n)))
    check_callable(value, name)
    if name == names[1]:
        def vjp_flat(v: Array) -> Array:
            w = _real_array(value(fresh_copy(xp, x), xp.reshape(v, out_shape)), xp, x, name)
            if tuple(w.shape) != tuple(x.shape):
                raise ValueError(f"`{name}(x, v)` must return an array of the shape of `x` {tuple(x.shape)}; "
                                 f"got {tuple(w.shape)}")
            return xp.reshape(w, (-1,))
        return Linear(m, n, vjp=vjp_flat)

    def jvp_flat(u: Array) -> Array:
        w = _real_array(value(fresh_copy(xp, x), xp.reshape(u, x.shape)), xp, x, name)
        if tuple(w.shape) != out_shape:
            raise ValueError(f"`{name}(x, u)` must return an array of the shape of f's value {out_shape}; "
                             f"got {tuple(w.shape)}")
        return xp.reshape(w, (-1,))
    return Linear(m, n, jvp=jvp_flat)


def _real_array(a: Any, xp: Namespace, x: Array, name: str) -> Array:
    if isinstance(a, list | tuple):
        a = xp.asarray(a, dtype=x.dtype, device=array_api_compat.device(x))
    if not array_api_compat.is_array_api_obj(a):
        raise TypeError(f"`{name}` must be an array (or return one); got {type(a).__name__}")
    if array_api_compat.array_namespace(a) is not xp:
        raise TypeError(f"`{name}` must be an array of the library of `x`; got {type(a).__name__}")
    if xp.isdtype(a.dtype, "complex floating"):
        raise TypeError(f"`{name}` must hold real numbers; got dtype {a.dtype}")
    return xp.astype(a, x.dtype) if a.dtype != x.dtype else a


def check_jacobian(
    f: Callable[[Array], Any],
    jac: Any,
    x: Any,
    /,
    *,
    vjp: Callable[[Array, Array], Any] | None = None,
    jvp: Callable[[Array, Array], Any] | None = None,
    max_entries: int = 256,
    detection: float = 0.999,
    seed: int = 0,
) -> GradientReport:
    """A Jacobian check: a vector function's Jacobian, or its products, against numerical derivatives.

    Parameters
    ----------
    f : callable
        A function of an array of the shape of `x`, returning an array of
        any (fixed) shape ``out_shape``.
    jac : callable, array or None
        The Jacobian to check, of shape ``out_shape + x.shape``: a function
        of `x`, or its value at `x`. None when `vjp` or `jvp` is given.
    x : array
        Where to check; any shape, any backend, float32 or wider.
    vjp : callable, optional
        Instead of `jac`: ``vjp(x, v)``, the product ``v^T J`` (shape of
        `x`) for ``v`` of shape ``out_shape``, as reverse-mode autodiff gives.
    jvp : callable, optional
        Instead of `jac`: ``jvp(x, u)``, the product ``J u`` (``out_shape``)
        for ``u`` of the shape of `x`, as forward-mode autodiff gives.
    max_entries : int
        Jacobians with up to this many entries are checked entry by entry;
        larger ones along random sign projections ``v^T J u`` (fast mode:
        ``J`` is never formed from `vjp` or `jvp`).
    detection : float
        In fast mode: the probability of seeing errors in several entries
        that cancel in one projection; an error in one entry is seen by
        every projection. 0.999 takes 25 projections.
    seed : int
        Seeds the random projections.

    Returns
    -------
    GradientReport
        As :func:`check_gradient`'s, with ``what="Jacobian"``; indices are
        flat indices into ``out_shape + x.shape`` (entries) or projection
        numbers, and ``verdict`` is ``"pass"``, ``"fail"`` or
        ``"inconclusive"``.

    Notes
    -----
    Each entry ``J[i, j]`` (or projection ``v^T J u``) is the derivative at 0
    of ``f(x + t e_j)[i]`` (or ``v . f(x + t u)``) by :func:`derivative`,
    compared as in :func:`check_gradient`. The check promises to catch an
    error of 1% of a typical entry (the median non-zero ``|J|``, or in fast
    mode from `vjp` or `jvp` the root-mean-square entry) in any one entry; where
    the rounding of `f` hides such an error (float32, large projections)
    the verdict is ``"inconclusive"``. "How the function checks decide" in
    the documentation has the rule and its calibration
    (``scripts/calibrate_jacobian_check.py``).

    Examples
    --------
    >>> import numpy as np
    >>> from xgrad import check_jacobian
    >>> A = np.array([[1.0, 2.0, 0.5], [3.0, -1.0, 2.0]])
    >>> f = lambda x: np.tanh(A @ x)
    >>> jac = lambda x: (1 - np.tanh(A @ x) ** 2)[:, None] * A
    >>> check_jacobian(f, jac, np.array([0.1, 0.2, -0.3])).verdict
    'pass'
    >>> wrong = lambda x: jac(x) * np.array([[1.0, 1.0, 1.0], [1.0, 1.01, 1.0]])
    >>> report = check_jacobian(f, wrong, np.array([0.1, 0.2, -0.3]))
    >>> report.verdict, report.worst[0][0]   # flat index of J[1, 1]
    ('fail', 4)
    """
    check_callable(f)
    x, xp, max_entries, detection, seed = checked_point(x, max_entries, detection, seed)
    flat = xp.reshape(x, (-1,))
    out_shape = tuple(getattr(f(fresh_copy(xp, x)), "shape", ()))
    value = values_of(f, x, out_shape, xp)
    m = math.prod(out_shape)
    lin = given_map(jac, vjp, jvp, x, out_shape, xp)
    return check_linear(lin, x, xp, entry_phi=lambda: entry_phi(value, flat, m, xp),
                        pair_phi=lambda vs, us: pair_phi(value, flat, vs, us, xp), max_entries=max_entries,
                        detection=detection, seed=seed, what="Jacobian", noise_terms=m)

