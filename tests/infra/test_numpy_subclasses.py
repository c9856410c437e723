"""NumPy's masked arrays and matrices are refused wherever arrays come in.

Their arithmetic is not the array API's: a masked array's mask was dropped
(``train`` trained on the masked-out values) or half-followed
(``numerical_gradient`` gave a masked entry the gradient 0 and an unmasked
result), and ``*`` on a ``numpy.matrix`` is a matrix product.
"""

from __future__ import annotations

import numpy as np
import pytest

import xgrad


def _square_sum(x):
    return (x * x).sum()


def _masked(shape=(2,)):
    data = np.arange(1.0, 1.0 + np.prod(shape)).reshape(shape)
    mask = np.zeros(shape, dtype=bool)
    mask.flat[-1] = True
    return np.ma.array(data, mask=mask)


CALLS = {
    "numerical_gradient": lambda a: xgrad.numerical_gradient(_square_sum, a),
    "numerical_diff": lambda a: xgrad.numerical_diff(lambda x: x * x, a),
    "gradient_descent": lambda a: xgrad.gradient_descent(_square_sum, a, lr=0.1, step_num=2),
    "derivative": lambda a: xgrad.derivative(lambda x: x * x, a),
    "namespace_of": lambda a: xgrad.namespace_of(a),
}


@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
def test_numerics_refuse_a_masked_array(call):
    with pytest.raises(TypeError, match="masked array, whose mask xgrad would not follow"):
        call(_masked())


@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
def test_numerics_refuse_a_matrix(call):
    with pytest.raises(TypeError, match=r"numpy.matrix, whose `\*` is a matrix product"):
        call(np.matrix([[1.0, 2.0]]))


def test_a_plain_array_with_the_same_numbers_still_works():
    # the refusal is about the type, not the numbers: the filled array gives the known answer
    grad = xgrad.numerical_gradient(_square_sum, _masked().filled(0.0))
    np.testing.assert_allclose(grad, [2.0, 0.0], atol=1e-8)


def test_network_refuses_masked_inputs():
    net = xgrad.TwoLayerNet(3, 4, 2, seed=0)
    x = _masked((2, 3))
    with pytest.raises(TypeError, match="`x` is a NumPy masked array"):
        net.loss(x, np.array([0, 1]))
    with pytest.raises(TypeError, match="`t` is a NumPy masked array"):
        net.accuracy(x.filled(0.0), np.ma.array([0, 1], mask=[False, True]))


def test_train_refuses_masked_data():
    rng = np.random.default_rng(0)
    x = np.ma.array(rng.random((20, 4)), mask=np.zeros((20, 4), dtype=bool))
    x.mask[:, 0] = True
    t = np.arange(20) % 3
    with pytest.raises(TypeError, match="`x_train` is a NumPy masked array"):
        xgrad.train("numpy", data=((x, t), (x.filled(0.0), t)), iters=1, batch_size=5, hidden_size=3,
                    progress=False)
