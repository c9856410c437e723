"""The network's numerical gradient, evaluated the fast way.

Every entry is the central difference ``(L(θ + h e_k) - L(θ - h e_k)) / 2h``
of the mean cross-entropy ``L``, as a direct loop would compute it; but
instead of one full forward pass per perturbed parameter, the perturbed losses
are derived from the unperturbed pass:

* ``b2[c]`` or ``W2[j, c]`` moves only logit ``c`` (by ``h`` or ``h*z1[n, j]``);
* ``b1[j]`` or ``W1[i, j]`` moves only hidden unit ``j``, and ``W1[i, j]`` only
  for the samples whose input ``i`` is non-zero (most MNIST pixels are zero).

A shift ``Δ`` of the logits changes sample ``n``'s loss by
``s_n log1p(Σ_c p_nc expm1(Δ_c)) - Σ_c t_nc Δ_c`` (``p`` the softmax, ``t`` the
target row, ``s_n = Σ_c t_nc``), which is computed without cancellation. A
shift ``d`` of a hidden pre-activation changes its output by
``σ(a+d)(1-σ(a))(-expm1(-d))`` for the sigmoid, again without cancellation,
from factors computed once per sample and unit. So the differences are at
least as accurate as the direct loop's. For ``W1`` only the pairs (sample,
pixel) with a non-zero pixel are visited, in groups of pixels with similar
counts, and each pixel's samples are added by a plain sum. The page "How the
fast numerical gradient works" in the documentation tells the whole story.
"""

from __future__ import annotations

import math
from typing import Any

import array_api_compat

from xgrad._infra.backend import compute_dtype, quiet_overflow
from xgrad._infra.host import to_numpy
from xgrad._infra.typing import Array, Namespace
from xgrad._net.core import Activation, forward
from xgrad._net.functions import softmax
from xgrad._numerics.diff import steps_for

__all__ = ["exact_differences"]

# slots of a group of pixels times hidden units (times classes for the direct
# sum): small enough for the intermediates to stay in cache
_CHUNK_ELEMENTS = 2**16


def exact_differences(params: dict[str, Array], x: Array, target: Array, /, *, activation: Activation,
                      h: float | None, xp: Namespace, device: Any) -> dict[str, Array]:
    """Central-difference gradient of the mean loss for every parameter.

    Exactly the difference a loop over the parameters would compute, at the
    same step (see the module notes), in a few array operations. `x` and
    `target` are checked inputs and target rows; float32 parameters are
    differenced in float64 where the backend has it, and the result has the
    parameters' dtype. A parameter that is not finite is refused where its
    steps are made, as every point of a difference is
    (:func:`~xgrad._numerics.steps.steps_for`), once.
    """
    dtype = params["W1"].dtype
    dt = compute_dtype(xp, device, dtype)
    p = {k: xp.astype(v, dt) for k, v in params.items()}
    # made before anything is computed from them: a parameter holding NaN or infinity is refused here, named
    steps = {k: steps_for(xp, v, h, "central", name=f"net.params['{k}']") for k, v in p.items()}
    x = xp.astype(x, dt)
    fwd = forward(p, x, activation=activation, xp=xp)
    ctx = _Context(xp, activation, fwd.a1, fwd.z1, softmax(fwd.scores, xp=xp), xp.astype(target, dt), x.shape[0])
    with quiet_overflow(xp):  # a step too large overflows; the check below says so
        grads = {
            "b2": ctx.output_bias(steps["b2"]),
            "W2": ctx.output_weights(steps["W2"]),
            "b1": ctx.hidden_bias(p["W2"], steps["b1"]),
            "W1": ctx.input_weights(x, p["W2"], steps["W1"]),
        }
    for k, g in grads.items():
        if not bool(xp.all(xp.isfinite(g))):
            raise ValueError(
                f"the numerical gradient of {k} is not finite: the loss differences overflow "
                f"for a step this large (h={h}); use a smaller `h` (at most about 1), or the "
                "default (h=None)"
            )
    return {k: xp.astype(grads[k], dtype) for k in ("W1", "b1", "W2", "b2")}


class _Context:
    """The unperturbed forward pass, shared by the four parameter groups."""

    def __init__(self, xp: Namespace, activation: Activation, a1: Array, z1: Array, p: Array, tgt: Array,
                 n: int) -> None:
        self.xp, self.activation, self.a1, self.z1, self.p, self.tgt, self.n = xp, activation, a1, z1, p, tgt, n
        self.s = xp.sum(tgt, axis=1)

    def _central(self, up: Array, down: Array, h: Array, axis: int = 0) -> Array:
        return self.xp.sum(up - down, axis=axis) / (2 * self.n) / h

    def output_bias(self, step: Array) -> Array:
        xp, p, tgt = self.xp, self.p, self.tgt
        # sample n, class c: only logit c moves, so the sum over classes has one term
        def change(d: Array) -> Array:
            return self.s[:, None] * xp.log1p(p * xp.expm1(d)) - tgt * d
        return self._central(change(step[None, :]), change(-step[None, :]), step)

    def output_weights(self, step: Array) -> Array:
        xp, p, tgt, z1 = self.xp, self.p, self.tgt, self.z1
        d = z1[:, :, None] * step[None, :, :]  # (N, H, C): logit c moves by h*z1[n, j]
        s = self.s[:, None, None]
        def change(dd: Array) -> Array:
            return s * xp.log1p(p[:, None, :] * xp.expm1(dd)) - tgt[:, None, :] * dd
        return self._central(change(d), change(-d), step)

    def _loss_pair(self, moves: _HiddenMoves, series: _Series, d: Array, rows: Array | None) -> Array:
        """``L_n(up) - L_n(down)`` for each (sample, unit) when pre-activations move by ``±d``.

        ``log1p(S+) - log1p(S-)`` is taken as one ``log1p((S+ - S-) / (1 + S-))``:
        the same absolute error, half the logarithms.
        """
        xp = self.xp
        up, down = moves.pair(d, rows)  # (K, H) changes of the hidden outputs
        at = series.at(rows)
        s_up, s_down = at.expected_expm1(up), at.expected_expm1(down)
        s = self.s if rows is None else xp.take(self.s, rows, axis=0)
        return s[:, None] * xp.log1p((s_up - s_down) / (1 + s_down)) - (up - down) * at.tw

    def hidden_bias(self, w2: Array, step: Array) -> Array:
        xp = self.xp
        d = xp.broadcast_to(step[None, :], self.a1.shape)
        series = _Series(xp, self.p, self.tgt, w2, float(xp.max(xp.abs(step))))
        pair = self._loss_pair(_HiddenMoves(xp, self.activation, self.a1), series, d, None)
        return xp.sum(pair, axis=0) / (2 * self.n) / step

    def input_weights(self, x: Array, w2: Array, step: Array) -> Array:
        """``W1[i, j]``: only samples with ``x[n, i] != 0``.

        Pixels are taken in order of how many samples use them, a chunk at a
        time; in a chunk, each pixel's samples fill one row of a grid padded
        to the chunk's largest count (a padding entry has ``x = 0``, so its
        loss change is exactly zero) and a plain sum along the row adds
        them. A pixel's step is the same for every sample, so each pixel's
        loss changes are summed first and divided by the step once.
        """
        xp = self.xp
        n_in, n_hidden = x.shape[1], self.a1.shape[1]
        dev = array_api_compat.device(x)
        pix, smp = xp.nonzero(xp.matrix_transpose(x))  # sorted by pixel, then sample
        values = xp.take(xp.reshape(x, (-1,)), smp * n_in + pix)
        counts = xp.sum(xp.astype(x != 0, xp.int64), axis=0)
        starts = xp.cumulative_sum(counts) - counts  # where each pixel's samples begin
        order = xp.argsort(-counts, stable=True)  # most used pixels first
        series = _Series(xp, self.p, self.tgt, w2, float(xp.max(xp.abs(step)) * xp.max(xp.abs(x))))
        moves = _HiddenMoves(xp, self.activation, self.a1)
        per_pair = n_hidden * (1 if series.terms else w2.shape[1])
        sums = []
        # the plan of the groups is made on the host: 784 numbers, one transfer
        for a, b, width in _pixel_groups(to_numpy(xp.take(counts, order)).tolist(), per_pair):
            pixels = order[a:b]
            slot = xp.arange(width, device=dev)[None, :]
            used = slot < xp.take(counts, pixels)[:, None]  # (P, width)
            src = xp.reshape(xp.where(used, xp.take(starts, pixels)[:, None] + slot, 0), (-1,))
            v = xp.where(xp.reshape(used, (-1,)), xp.take(values, src), 0.0)
            cols = xp.reshape(xp.broadcast_to(pixels[:, None], used.shape), (-1,))
            d = xp.take(step, cols, axis=0) * v[:, None]  # (P * width, H)
            change = self._loss_pair(moves, series, d, xp.take(smp, src))
            sums.append(xp.sum(xp.reshape(change, (b - a, width, n_hidden)), axis=1))
        unused = xp.zeros((n_in - sum(int(s.shape[0]) for s in sums), n_hidden), dtype=x.dtype, device=dev)
        total = xp.take(xp.concat([*sums, unused], axis=0), xp.argsort(order), axis=0)
        return total / (2 * self.n) / step


def _pixel_groups(counts: list[int], per_pair: int) -> list[tuple[int, int, int]]:
    """Consecutive groups ``(start, stop, width)`` of pixels sorted by falling
    `counts`, each padded to its first pixel's count `width`.

    A group holds at most about :data:`_CHUNK_ELEMENTS` elements of
    `per_pair` each, and only pixels whose count is at least 3/4 of its
    width: padding adds at most a third to the work. Unused pixels (count 0)
    are left out.
    """
    groups, a = [], 0
    while a < len(counts) and counts[a] > 0:
        width = counts[a]
        most = max(1, _CHUNK_ELEMENTS // (width * per_pair))
        b = a + 1
        while b < len(counts) and b - a < most and 4 * counts[b] >= 3 * width and counts[b] > 0:
            b += 1
        groups.append((a, b, width))
        a = b
    return groups


class _HiddenMoves:
    """Changes ``f(a + d) - f(a)`` and ``f(a - d) - f(a)`` of the hidden outputs.

    For the sigmoid, ``σ(a+d) - σ(a) = σ(-a) (1 - e^-d) σ(a+d)`` with
    ``σ(a+d) = P / (P + Q e^-d)``, ``(P, Q) = (1, e^-a)`` for ``a >= 0`` and
    ``(e^a, 1)`` below: products and quotients of positive terms, without
    cancellation or overflow. The factors that depend only on the sample
    (``σ(-a) P``, ``P``, ``Q``) are computed once per unit instead of once per
    pixel. Other activations use their ``change``.
    """

    def __init__(self, xp: Namespace, activation: Activation, a1: Array) -> None:
        self.xp, self.activation, self.a1 = xp, activation, a1
        self.sigmoid = activation.name == "sigmoid"
        if self.sigmoid:
            r, ahead = xp.exp(-xp.abs(a1)), a1 >= 0  # r in (0, 1]: never overflows
            self.p, self.q = xp.where(ahead, 1.0, r), xp.where(ahead, r, 1.0)
            self.tail_p = self.q / (1 + r) * self.p  # σ(-a) P, as q / (1 + r) is σ(-a) without overflow

    def pair(self, d: Array, rows: Array | None) -> tuple[Array, Array]:
        xp = self.xp
        def take(a: Array) -> Array:
            return a if rows is None else xp.take(a, rows, axis=0)
        if not self.sigmoid:
            a = take(self.a1)
            return self.activation.change(a, d, xp=xp), self.activation.change(a, -d, xp=xp)
        tail_p, p, q = take(self.tail_p), take(self.p), take(self.q)
        def change(em1: Array) -> Array:  # em1 = expm1(-shift)
            return tail_p * -em1 / (p + q * (1 + em1))
        return change(xp.expm1(-d)), change(xp.expm1(d))


class _Series:
    """``E_p[expm1(u * W2[j, :])]`` for each sample and hidden unit ``j``.

    The shifts ``u`` of a hidden unit are tiny, so the power series
    ``Σ_m u**m E_p[W2[j, :]**m] / m!`` converges at once; the number of terms
    is chosen so that the remainder lies below the rounding error of the
    first term, which makes the series as exact as summing ``expm1`` over the
    classes, at a fraction of the cost. Large shifts use the direct sum.
    """

    def __init__(self, xp: Namespace, p: Array, tgt: Array, w2: Array, max_shift: float) -> None:
        self.xp, self.p, self.w2 = xp, p, w2
        self.tw = tgt @ xp.matrix_transpose(w2)  # (N, H): Σ_c t_nc W2[j, c]
        self.terms = _series_terms(max_shift * float(xp.max(xp.abs(w2))))
        power, self.moments = xp.ones_like(w2), []
        for m in range(1, (self.terms or 0) + 1):
            power = power * w2 / m  # W2**m / m!
            self.moments.append(p @ xp.matrix_transpose(power))  # (N, H)

    def at(self, rows: Array | None) -> _SeriesRows:
        """The series for the samples `rows` (all when None), gathered once."""
        if rows is None:
            return _SeriesRows(self.xp, self.w2, self.p, self.moments, self.tw, self.terms)
        def take(a: Array) -> Array:
            return self.xp.take(a, rows, axis=0)
        moments = [take(m) for m in self.moments]
        return _SeriesRows(self.xp, self.w2, take(self.p) if self.terms is None else self.p, moments,
                           take(self.tw), self.terms)


class _SeriesRows:
    """:class:`_Series` restricted to some samples."""

    def __init__(self, xp: Namespace, w2: Array, p: Array, moments: list[Array], tw: Array,
                 terms: int | None) -> None:
        self.xp, self.w2, self.p, self.moments, self.tw, self.terms = xp, w2, p, moments, tw, terms

    def expected_expm1(self, u: Array) -> Array:
        xp = self.xp
        if self.terms is None:
            return xp.sum(self.p[:, None, :] * xp.expm1(u[:, :, None] * self.w2[None, :, :]), axis=-1)
        acc = self.moments[-1]
        for mom in reversed(self.moments[:-1]):  # Horner: u (μ1 + u (μ2 + u (...)))
            acc = mom + u * acc
        return u * acc


# the series' remainder, relative to its first term, is kept below this: under
# float64's rounding of that term (2**-53), so summing the series is as exact as
# summing expm1 over the classes
SERIES_REMAINDER = 2.0**-60
# beyond this many terms the direct sum over the classes is cheaper than the series
SERIES_MAX_TERMS = 24


def _series_terms(r: float, limit: int = SERIES_MAX_TERMS) -> int | None:
    """Fewest terms M with remainder ``r**M e**r / (M+1)!`` below
    :data:`SERIES_REMAINDER` (relative to the first term); None when the series
    would need more than `limit`."""
    if not math.isfinite(r) or r > 1:  # shifts this large need the direct sum anyway
        return None
    for m in range(1, limit + 1):
        if r**m * math.exp(r) / math.factorial(m + 1) <= SERIES_REMAINDER:
            return m
    return None

