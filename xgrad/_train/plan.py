"""The minibatch plan of a training run: which training rows each iteration draws.

The indices are drawn in blocks of :data:`PLAN_BLOCK` iterations: block ``b``
comes from the NumPy generator seeded ``[seed, MINIBATCH_STREAM, b]``, apart
from the initial weights (seeded by `seed` alone), so a run resumed at any
iteration redraws the same indices, on every backend. A block is drawn on the
host and moved to the device once; a step reads its row there.

Examples
--------
>>> from xgrad import resolve_backend
>>> plan = MinibatchPlan(seed=0, n_train=50, batch_size=4, backend=resolve_backend("numpy"))
>>> rows, row = plan.rows(1003)  # iteration 1003 (0-based): the second block, its row 3
>>> rows.shape, row, block_end(1003)
((1000, 4), 3, 2000)
"""

from __future__ import annotations

from xgrad._infra.backend import Backend, index_dtype
from xgrad._infra.typing import Array

__all__ = ["MINIBATCH_STREAM", "PLAN_BLOCK", "MinibatchPlan", "block_end"]

PLAN_BLOCK = 1000
"""Iterations whose minibatch indices are drawn together."""
MINIBATCH_STREAM = 1
"""The seed stream of the minibatch indices: ``[seed, MINIBATCH_STREAM, block]``."""


def block_end(i: int) -> int:
    """The first iteration (0-based) after the plan's block that holds iteration `i`."""
    return (i // PLAN_BLOCK + 1) * PLAN_BLOCK


class MinibatchPlan:
    """The minibatch indices of a run, a block at a time, on its device.

    Each iteration draws `batch_size` rows of `n_train`, with replacement, as
    the book does.
    """

    def __init__(self, *, seed: int, n_train: int, batch_size: int, backend: Backend) -> None:
        self.seed, self.n_train, self.batch_size, self.backend = seed, n_train, batch_size, backend
        self._drawn: tuple[int, Array] | None = None  # the last block drawn, and its number

    def block(self, b: int) -> Array:
        """Block `b` of the plan: ``(PLAN_BLOCK, batch_size)`` indices on the device."""
        import numpy as np  # minibatch indices are drawn on the host, moved once per block

        rng = np.random.default_rng([self.seed, MINIBATCH_STREAM, b])
        idx = rng.integers(0, self.n_train, size=(PLAN_BLOCK, self.batch_size))
        return self.backend.asarray(idx, dtype=index_dtype(self.backend.xp, self.backend.device))

    def rows(self, i: int) -> tuple[Array, int]:
        """The block holding iteration `i`'s indices (0-based), and `i`'s row in
        it; drawn when `i` leaves the block drawn last."""
        b = i // PLAN_BLOCK
        if self._drawn is None or self._drawn[0] != b:
            self._drawn = (b, self.block(b))
        return self._drawn[1], i % PLAN_BLOCK
