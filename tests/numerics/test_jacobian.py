"""jacobian(f, x, vectorized=True): `f` must give each point of a stack the values it has alone."""

from __future__ import annotations

import numpy as np
import pytest

from xgrad import jacobian
from xgrad._infra.host import to_numpy

A = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])


def test_an_f_that_mixes_the_points_of_a_stack_is_refused(backend):
    xp, a = backend.xp, backend.asarray(A)
    x = backend.asarray(np.array([0.5, -1.0]))
    with pytest.raises(ValueError, match=r"one row per point, each depending on its point alone"):
        jacobian(lambda p: p @ a.T + xp.sum(p[:, 0]), x, vectorized=True)


def test_a_vectorized_f_costs_one_more_call_of_one_point(backend):
    a = backend.asarray(A)
    calls = []

    def f(p):
        calls.append(p.shape[0])
        return p @ a.T

    res = jacobian(f, backend.asarray(np.array([0.5, -1.0])), vectorized=True)
    assert np.allclose(to_numpy(res.df), A, rtol=1e-12)
    # f(x) alone, the first stack, its first point alone (the check), then stacks only
    assert calls[0] == 1 and calls[1] > 1 and calls[2] == 1 and all(k > 1 for k in calls[3:])
