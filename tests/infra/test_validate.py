"""The argument checks and copies that xgrad's public functions share.

NumPy's complex scalars are not real numbers (float() of one only warns and
drops the imaginary part). A user function gets a fresh copy of its argument,
which it may change in place, even where the caller's array is read-only or a
PyTorch tensor that requires grad.
"""

from __future__ import annotations

import numpy as np
import pytest
from _helpers import X0, doubling, doubling_sum

from xgrad import derivative, gradient_descent, numerical_diff, numerical_gradient
from xgrad._infra.host import to_numpy


@pytest.mark.parametrize("method", ["central", "forward", "backward"])
def test_read_only_arrays_and_a_function_that_writes_to_its_argument(method):
    x = X0.copy()
    x.flags.writeable = False
    np.testing.assert_allclose(numerical_diff(doubling, x, method=method), 8 * X0, rtol=1e-6)
    np.testing.assert_allclose(numerical_gradient(doubling_sum, x, method=method), 8 * X0, rtol=1e-6)


def test_copies_of_torch_tensors_that_require_grad_raise_no_warning():
    torch = pytest.importorskip("torch")
    x = torch.tensor(X0, requires_grad=True)
    g = numerical_gradient(lambda v: torch.sum(v.detach() ** 2), x, method="forward")
    np.testing.assert_allclose(to_numpy(g.detach()), 2 * X0, rtol=1e-6)


@pytest.mark.parametrize("make", [np.complex128, lambda v: np.asarray(v, dtype=np.complex64)])
def test_complex_numpy_scalars_are_not_real_numbers(make):
    # float() of a NumPy complex only warns and drops the imaginary part
    with pytest.raises(TypeError, match=r"`h` must be a real number; got"):
        numerical_diff(np.sin, np.array([1.0]), h=make(1e-4 + 1e-3j))
    with pytest.raises(TypeError, match=r"`lr` must be a real number; got"):
        gradient_descent(lambda v: (v**2).sum(), np.array([1.0]), lr=make(0.1 + 0j))
    with pytest.raises(TypeError, match=r"`rtol` must be a real number; got"):
        derivative(np.sin, np.array([1.0]), rtol=make(1e-8 + 0j))
