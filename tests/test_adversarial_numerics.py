"""Hostile input to the numerical-differentiation API, on every backend.

Each test here failed before its fix: a user function returning a complex, a
narrower float or an array of another library; a user function that changes
its argument in place; a gradient of another library or of complex dtype; a
seed that is not a seed. The right behaviour is a clear error that names the
argument, or the right answer (checked against analytic derivatives).
"""

from __future__ import annotations

import numpy as np
import pytest
from _helpers import assert_close

from xgrad import derivative
from xgrad._host import to_numpy

POINTS = [0.3, 1.0, 2.0]


def _foreign(backend, host):
    """`host` as an array of a library other than the backend's."""
    if backend.name != "numpy":
        return np.asarray(host)
    import array_api_strict

    return array_api_strict.asarray(host)


# --- derivative: what f returns ----------------------------------------------------------------------


def test_derivative_refuses_a_result_narrower_than_x(backend):
    # float32 values under a float64 error estimate: the estimate claimed 1e-5
    # where the error was 6e-5, and `success` was True
    xp = backend.xp
    x = backend.asarray(np.array(POINTS))
    with pytest.raises(TypeError, match=r"`f` returned a .*float32 value for an `x` of dtype .*float64"):
        derivative(lambda v: xp.sin(xp.astype(v, xp.float32)), x)


def test_derivative_refuses_a_complex_result(backend):
    xp = backend.xp
    x = backend.asarray(np.array(POINTS))
    with pytest.raises(TypeError, match="`f` must return a real number; got dtype .*complex128"):
        derivative(lambda v: xp.astype(v, xp.complex128) * 1j, x)


def test_derivative_refuses_a_result_of_another_library(backend):
    x = backend.asarray(np.array(POINTS))
    with pytest.raises(TypeError, match="`f` must return an array of the library of `x`"):
        derivative(lambda v: _foreign(backend, np.sin(to_numpy(v))), x)


def test_derivative_still_takes_integer_results_and_float32_for_float32(backend):
    xp = backend.xp
    x = backend.asarray(np.array(POINTS, dtype=np.float32))
    res = derivative(xp.sin, x)
    assert_close(res.df, np.cos(POINTS), backend=backend, rtol=1e-4, dtype=xp.float32)
    steps = derivative(lambda v: xp.astype(v > 1.5, xp.int32), backend.asarray(np.array(POINTS)))
    assert_close(steps.df, [0.0, 0.0, 0.0], backend=backend)
