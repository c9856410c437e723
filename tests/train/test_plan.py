"""The minibatch plan: the seed stream's layout, drawn a block at a time."""

from __future__ import annotations

import numpy as np

from xgrad import resolve_backend, to_numpy
from xgrad._infra.backend import index_dtype
from xgrad._train.plan import MINIBATCH_STREAM, PLAN_BLOCK, MinibatchPlan, block_end


def _plan(backend, **kw):
    return MinibatchPlan(**{"seed": 4, "n_train": 37, "batch_size": 5, "backend": backend, **kw})


def test_each_iteration_draws_its_row_of_the_seed_stream(backend):
    plan = _plan(backend)
    for i in (0, 1, PLAN_BLOCK - 1, PLAN_BLOCK, 2 * PLAN_BLOCK + 17):
        rows, row = plan.rows(i)
        want = np.random.default_rng([4, MINIBATCH_STREAM, i // PLAN_BLOCK]).integers(0, 37, size=(PLAN_BLOCK, 5))
        assert row == i % PLAN_BLOCK and tuple(rows.shape) == (PLAN_BLOCK, 5)
        np.testing.assert_array_equal(to_numpy(rows)[row], want[row])
    assert rows.dtype == index_dtype(backend.xp, backend.device)


def test_a_block_is_drawn_once_and_again_only_when_left(monkeypatch):
    plan = _plan(resolve_backend("numpy"))
    drawn, real = [], MinibatchPlan.block
    monkeypatch.setattr(MinibatchPlan, "block", lambda self, b: drawn.append(b) or real(self, b))
    first = plan.rows(5)[0]
    assert plan.rows(PLAN_BLOCK - 1)[0] is first
    plan.rows(PLAN_BLOCK)
    plan.rows(PLAN_BLOCK + 3)
    plan.rows(7)  # back to the first block (a run resumed earlier): drawn again, the same indices
    assert drawn == [0, 1, 0]
    np.testing.assert_array_equal(plan.rows(7)[0], first)


def test_resuming_redraws_the_same_indices_and_the_seed_changes_them():
    b = resolve_backend("numpy")
    np.testing.assert_array_equal(_plan(b).rows(1234)[0], _plan(b).block(1))
    assert not np.array_equal(_plan(b).block(0), _plan(b, seed=5).block(0))
    assert not np.array_equal(_plan(b).block(0), _plan(b).block(1))
    assert to_numpy(_plan(b).block(0)).max() < 37


def test_block_end():
    assert [block_end(i) for i in (0, PLAN_BLOCK - 1, PLAN_BLOCK, 2 * PLAN_BLOCK + 1)] == [
        PLAN_BLOCK, PLAN_BLOCK, 2 * PLAN_BLOCK, 3 * PLAN_BLOCK]
