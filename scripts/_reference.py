"""The network's numerical gradient by the direct route, one entry at a time:
the reference that the fast path (``TwoLayerNet.numerical_gradient``) is
tested and benchmarked against.

It lives here, not in xgrad: only the tests and the benchmarks call it.
"""

from __future__ import annotations

import math
from typing import Any

from xgrad import TwoLayerNet, log_softmax
from xgrad._infra.validate import check_optional_positive
from xgrad._numerics.steps import steps_for


def direct_numerical_gradient(net: TwoLayerNet, x: Any, t: Any, name: str, index: tuple[int, ...],
                              *, h: float | None = None) -> Any:
    """One entry by the direct route: two full forward passes at ``θ ± h e_k``.

    The reference the fast path is tested and benchmarked against.
    """
    xp = net.xp
    h = check_optional_positive(h, "h")
    x, target = net.checked_inputs(x, t)
    theta = net.params[name]
    hk = steps_for(xp, theta, h, "central")[index]
    flat_k = int(sum(i * math.prod(theta.shape[a + 1 :]) for a, i in enumerate(index)))
    hit = xp.reshape(xp.arange(math.prod(theta.shape), device=net.device) == flat_k, theta.shape)
    def sample_losses(params: dict[str, Any]) -> Any:
        a2 = net.with_params(params).scores(x)
        return -xp.sum(target * log_softmax(a2, xp=xp), axis=1)

    up = sample_losses({**net.params, name: xp.where(hit, theta + hk, theta)})
    down = sample_losses({**net.params, name: xp.where(hit, theta - hk, theta)})
    # subtract per sample before averaging: the sum's rounding would not cancel
    return xp.sum(up - down) / x.shape[0] / (2 * hk)
