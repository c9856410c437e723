"""xgrad.numerical_gradient on hostile input: an `f` that changes its argument
in place gets copies, with every method, vectorized or not, and in the check for
a closure that ignores its argument. (Its accuracy and argument errors are
tested in test_diff.py, beside numerical_diff's.)"""

from __future__ import annotations

import numpy as np
import pytest
from _helpers import X0, assert_close, caller_array, doubling, doubling_sum

from xgrad import numerical_gradient
from xgrad._infra.host import to_numpy


def _doubling_rows(v):
    import array_api_compat

    return array_api_compat.array_namespace(v).sum(doubling(v), axis=-1)


@pytest.mark.parametrize("method", ["central", "forward", "backward"])
@pytest.mark.parametrize("vectorized", [False, True])
def test_numerical_gradient_hands_f_copies(backend, method, vectorized):
    # forward differences gave 4e9 instead of 12: f(x) doubled the point in place
    x, before = caller_array(backend)
    f = _doubling_rows if vectorized else doubling_sum
    g = numerical_gradient(f, x, method=method, vectorized=vectorized)
    np.testing.assert_array_equal(to_numpy(x), before)
    assert_close(g, 8 * X0, backend=backend, rtol=1e-6)


def test_the_closure_check_hands_f_a_copy(backend):
    # f constant in its argument: the closure warning, and the caller's array as it was
    x, before = caller_array(backend)
    xp = backend.xp

    def constant(v):
        v *= 0
        return xp.sum(v)

    with pytest.warns(RuntimeWarning, match="returned the same value at every perturbed point"):
        g = numerical_gradient(constant, x)
    np.testing.assert_array_equal(to_numpy(x), before)
    assert_close(g, np.zeros(3), backend=backend)
