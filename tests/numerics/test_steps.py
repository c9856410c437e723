"""Finite-difference steps, made and checked in one place (xgrad._numerics.steps):
the network's numerical gradient takes its steps from there too, so it refuses
the steps that the numerical functions refuse, with the same messages."""

from __future__ import annotations

import math

import numpy as np
import pytest


@pytest.mark.parametrize(("h", "message"), [(1e-30, r"is too small for `net.params\['W1'\]`"),
                                            (0.0, "`h` must be positive"), (math.nan, "`h` must be positive")])
def test_the_networks_numerical_gradient_refuses_the_same_steps(h, message):
    from xgrad import TwoLayerNet

    net = TwoLayerNet(4, 3, 2, seed=0)
    with pytest.raises(ValueError, match=message):
        net.numerical_gradient(np.ones((2, 4)), np.array([1, 0]), h=h)
