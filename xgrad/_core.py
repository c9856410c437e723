"""The two-layer network as pure functions: parameters and arrays in, arrays out.

One activation table, one forward pass and one backward pass, shared by
:class:`xgrad.TwoLayerNet`, the training loop and the numerical gradient, so
that the function differentiated, checked and trained is the same one. Nothing
here checks its inputs: callers pass arrays that went through the network's
boundary (:meth:`xgrad.TwoLayerNet.checked_inputs`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import array_api_compat

from xgrad._backend import index_dtype
from xgrad._functions import log_softmax, relu, sigmoid
from xgrad._typing import Array, Namespace

__all__ = ["ACTIVATIONS", "PARAM_NAMES", "Activation", "Forward", "activation_named", "backward",
           "count_correct", "forward", "loss_and_gradient", "mean_loss"]

PARAM_NAMES = ("W1", "b1", "W2", "b2")


@dataclass(frozen=True)
class Activation:
    """A hidden-layer activation: the function, its backward rule and its exact change.

    Attributes
    ----------
    name : str
    apply : callable ``(a, *, xp) -> z``
        The activation itself.
    backward : callable ``(a, z, dz, *, xp) -> da``
        The gradient with respect to the pre-activation `a`, given the output
        `z` and the gradient `dz` with respect to it.
    change : callable ``(a, d, *, xp) -> z``
        ``apply(a + d) - apply(a)`` computed without cancellation: the
        numerical gradient's exact differences need it.
    """

    name: str
    apply: Callable[..., Array]
    backward: Callable[..., Array]
    change: Callable[..., Array]


def _sigmoid_backward(a: Array, z: Array, dz: Array, *, xp: Namespace) -> Array:
    return dz * (z * (1 - z))


def _sigmoid_change(a: Array, d: Array, *, xp: Namespace) -> Array:
    # σ(a+d) - σ(a) = σ(a+d) σ(-a) (1 - e^-d): a product, no cancellation
    return sigmoid(a + d, xp=xp) * sigmoid(-a, xp=xp) * -xp.expm1(-d)


def _relu_backward(a: Array, z: Array, dz: Array, *, xp: Namespace) -> Array:
    return xp.where(a > 0, dz, xp.zeros_like(dz))


def _relu_change(a: Array, d: Array, *, xp: Namespace) -> Array:
    moved = a + d
    both = (a > 0) & (moved > 0)
    return xp.where(both, d, relu(moved, xp=xp) - relu(a, xp=xp))


ACTIVATIONS: dict[str, Activation] = {
    "sigmoid": Activation("sigmoid", sigmoid, _sigmoid_backward, _sigmoid_change),
    "relu": Activation("relu", relu, _relu_backward, _relu_change),
}


def activation_named(name: object) -> Activation:
    """The table's entry for `name`; a ValueError names the choices."""
    if not isinstance(name, str) or name not in ACTIVATIONS:
        choices = " or ".join(repr(k) for k in ACTIVATIONS)
        raise ValueError(f"`activation` must be {choices}; got {name!r}")
    return ACTIVATIONS[name]


class Forward(NamedTuple):
    """What one forward pass leaves for the backward pass."""

    a1: Array  #: hidden pre-activations ``(batch, hidden)``
    z1: Array  #: hidden outputs ``(batch, hidden)``
    scores: Array  #: output scores (logits) ``(batch, output)``


def forward(params: dict[str, Array], x: Array, /, *, activation: Activation, xp: Namespace) -> Forward:
    """Input → affine → activation → affine: the scores and the hidden layer."""
    a1 = x @ params["W1"] + params["b1"]
    z1 = activation.apply(a1, xp=xp)
    return Forward(a1, z1, z1 @ params["W2"] + params["b2"])


def mean_loss(scores: Array, target: Array, /, *, xp: Namespace) -> Array:
    """Mean cross-entropy of target rows against scores (stable log-softmax)."""
    return -xp.sum(target * log_softmax(scores, xp=xp)) / scores.shape[0]


def backward(params: dict[str, Array], x: Array, target: Array, fwd: Forward, /, *, activation: Activation,
             xp: Namespace, scale: float = 1.0, rows_sum_to_one: bool = False) -> tuple[Array, dict[str, Array]]:
    """The mean cross-entropy and its gradient (times `scale`) from a forward pass.

    SGD passes ``scale=lr``, so the learning rate multiplies the small
    ``(batch, output)`` error instead of every gradient; ``rows_sum_to_one``
    (one-hot targets) saves a reduction.
    """
    # softmax and log-softmax from one exponential of the shifted scores
    shifted = fwd.scores - xp.max(fwd.scores, axis=1, keepdims=True)
    e = xp.exp(shifted)
    total = xp.sum(e, axis=1, keepdims=True)
    n = x.shape[0]
    loss = -xp.sum(target * (shifted - xp.log(total))) / n
    y = e / total if rows_sum_to_one else e / total * xp.sum(target, axis=1, keepdims=True)
    dy = (y - target) * (scale / n)
    da1 = activation.backward(fwd.a1, fwd.z1, dy @ xp.matrix_transpose(params["W2"]), xp=xp)
    # bias gradients sum over the batch; a product with a row of ones does it
    # in one BLAS call, about three times faster than a reduction on small arrays
    ones = xp.ones_like(x[:, 0])
    grads = {
        "W1": xp.matrix_transpose(x) @ da1,
        "b1": ones @ da1,
        "W2": xp.matrix_transpose(fwd.z1) @ dy,
        "b2": ones @ dy,
    }
    return loss, grads


def loss_and_gradient(params: dict[str, Array], x: Array, target: Array, /, *, activation: Activation,
                      xp: Namespace, scale: float = 1.0,
                      rows_sum_to_one: bool = False) -> tuple[Array, dict[str, Array]]:
    """:func:`forward` then :func:`backward`: the training step's one call."""
    fwd = forward(params, x, activation=activation, xp=xp)
    return backward(params, x, target, fwd, activation=activation, xp=xp, scale=scale,
                    rows_sum_to_one=rows_sum_to_one)


def count_correct(params: dict[str, Array], x: Array, labels: Array, /, *, activation: Activation,
                  xp: Namespace, batch_size: int = 10_000) -> int:
    """How many samples' highest score is their class in `labels` (indices);
    `batch_size` samples at a time, each batch cast to the parameters' dtype."""
    device = array_api_compat.device(x)
    dtype, counts = params["W1"].dtype, index_dtype(xp, device)
    correct = xp.asarray(0, dtype=counts, device=device)
    for s in range(0, x.shape[0], batch_size):
        e = min(s + batch_size, x.shape[0])
        scores = forward(params, xp.astype(x[s:e, ...], dtype, copy=False), activation=activation, xp=xp).scores
        correct = correct + xp.sum(xp.astype(xp.argmax(scores, axis=1) == labels[s:e], counts))
    return int(correct)
