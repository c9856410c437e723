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


@pytest.mark.parametrize("value", [np.array(["central"]), {"central"}, ["central"], None, 1],
                         ids=["array", "set", "list", "None", "int"])
@pytest.mark.parametrize("call", [
    lambda m: numerical_diff(doubling, 1.0, method=m),
    lambda m: numerical_gradient(doubling_sum, np.array([1.0, 2.0]), method=m),
], ids=["numerical_diff", "numerical_gradient"])
def test_a_string_option_given_anything_but_a_string_names_the_argument(value, call):
    with pytest.raises(ValueError, match=r"^`method` must be one of 'central', 'forward', 'backward', as a string; got "
                       + type(value).__name__.replace("NoneType", "None")):
        call(value)


@pytest.mark.parametrize(("keyword", "value", "choices"), [
    ("activation", np.array(["relu"]), "'sigmoid' or 'relu'"),
    ("activation", {"relu"}, "'sigmoid' or 'relu'"),
])
def test_the_networks_string_options_share_the_one_check(keyword, value, choices):
    from xgrad import TwoLayerNet

    with pytest.raises(ValueError, match=f"^`{keyword}` must be {choices}, as a string; got {type(value).__name__}$"):
        TwoLayerNet(4, 3, 2, **{keyword: value})


@pytest.mark.parametrize("function", [numerical_diff, numerical_gradient, derivative],
                         ids=["numerical_diff", "numerical_gradient", "derivative"])
@pytest.mark.parametrize("sign", [1, -1])
def test_f_returning_an_integer_beyond_the_float_range_says_so(function, sign):
    x = np.array([1.0, 2.0]) if function is numerical_gradient else 1.0
    with pytest.raises(ValueError, match=r"^`f` returned the integer -?1000000000\.\.\.0000000000 \(401 digits\), "
                       r"beyond the range of floating point .*return a float"):
        function(lambda x: sign * 10**400, x)


def test_a_python_integer_within_the_float_range_is_its_float():
    assert float(numerical_diff(lambda x: 10**300, 1.0)) == 0.0


@pytest.mark.parametrize("x", [[[1.0, 2.0], [3.0]], [[1.0], 2.0]], ids=["rows", "row-and-number"])
def test_a_ragged_nested_list_says_its_rows_differ(x):
    with pytest.raises(TypeError, match=r"`x` must be an array or a number; got list, ragged: its rows have "
                       "different lengths. Give rows of equal length"):
        numerical_gradient(doubling_sum, x)
