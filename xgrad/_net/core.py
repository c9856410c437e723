"""The two-layer network as pure functions: parameters and arrays in, arrays out.

One activation table, one forward pass and one backward pass, shared by
:class:`xgrad.TwoLayerNet`, the training loop and the numerical gradient, so
that the function differentiated, checked and trained is the same one. Nothing
here checks its inputs: callers pass arrays that went through the network's
boundary (:meth:`xgrad.TwoLayerNet.checked_inputs`).

A training iteration's elementwise work is written as a few named groups
(:func:`bias_activation`, :func:`activation_backward`, :func:`shifted_exp`,
:func:`cross_entropy_sum`, :func:`output_error`); a `fuse` from
:func:`xgrad._net.fused.fused_ops` compiles each into one GPU kernel on CuPy,
where kernel launches dominate the small network's iteration.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import array_api_compat

from xgrad._infra.backend import index_dtype
from xgrad._infra.typing import Array, Namespace
from xgrad._infra.validate import check_choice
from xgrad._net.functions import log_softmax, relu, sigmoid
from xgrad._net.fused import Fuse

__all__ = ["ACTIVATIONS", "PARAM_NAMES", "Activation", "Forward", "activation_backward", "activation_named",
           "backward", "bias_activation", "count_correct", "cross_entropy_sum", "forward", "loss_and_gradient",
           "mean_loss", "output_error", "sgd_step", "sgd_stepper", "sgd_update", "shifted_exp"]

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
    traceable : bool
        Whether `apply` and `backward` use only elementwise operators and
        functions (no array creation), so that kernel fusion can trace them;
        False (the default) keeps a new entry out of fusion until checked.
    """

    name: str
    apply: Callable[..., Array]
    backward: Callable[..., Array]
    change: Callable[..., Array]
    traceable: bool = False


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
    "sigmoid": Activation("sigmoid", sigmoid, _sigmoid_backward, _sigmoid_change, traceable=True),
    # relu and its rule create zeros (zeros_like), which kernel fusion cannot trace
    "relu": Activation("relu", relu, _relu_backward, _relu_change, traceable=False),
}


def activation_named(name: object) -> Activation:
    """The table's entry for `name`; a TypeError or ValueError names the choices."""
    return ACTIVATIONS[check_choice(name, "activation", ACTIVATIONS)]


class Forward(NamedTuple):
    """What one forward pass leaves for the backward pass."""

    a1: Array  #: hidden pre-activations ``(batch, hidden)``
    z1: Array  #: hidden outputs ``(batch, hidden)``
    scores: Array  #: output scores (logits) ``(batch, output)``


# The iteration's elementwise groups. Each takes arrays and numbers positionally and
# what selects code (`xp`, the activation) by keyword, so that a fuse (see
# xgrad._net.fused) can compile it into one GPU kernel; without one they run as
# written. They hold no reductions along an axis and create no arrays.

def bias_activation(a_lin: Array, b: Array, /, *, activation: Activation, xp: Namespace) -> tuple[Array, Array]:
    """The hidden layer from ``x @ W1``: pre-activations and outputs."""
    a1 = a_lin + b
    return a1, activation.apply(a1, xp=xp)


def activation_backward(a: Array, z: Array, dz: Array, /, *, activation: Activation, xp: Namespace) -> Array:
    """The activation's backward rule: the gradient with respect to `a`."""
    return activation.backward(a, z, dz, xp=xp)


def shifted_exp(scores: Array, top: Array, /, *, xp: Namespace) -> tuple[Array, Array]:
    """Scores shifted by their row maximum `top`, and their exponential."""
    shifted = scores - top
    return shifted, xp.exp(shifted)


def cross_entropy_sum(shifted: Array, total: Array, target: Array, /, *, xp: Namespace) -> Array:
    """Summed cross-entropy from shifted scores and their row sums of
    exponentials `total` (a log-softmax): one reduction, over everything."""
    return -xp.sum(target * (shifted - xp.log(total)))


def output_error(e: Array, total: Array, target: Array, scale_over_n: float, mass: Array | None, /, *,
                 xp: Namespace) -> Array:
    """``(softmax - target) * scale_over_n``: the scores' gradient, from the
    exponentials `e` and their row sums `total`; `mass` (the target's row
    sums) is None for rows that sum to one."""
    y = e / total if mass is None else e / total * mass
    return (y - target) * scale_over_n


class _Groups(NamedTuple):
    """The elementwise groups of a training iteration with their choices bound:
    each a function of arrays and numbers only, through the fuse where there is one."""

    hidden: Callable[..., tuple[Array, Array]]  #: :func:`bias_activation`
    shift: Callable[..., tuple[Array, Array]]  #: :func:`shifted_exp`
    cross_entropy: Callable[..., Array]  #: :func:`cross_entropy_sum`
    error: Callable[..., Array]  #: :func:`output_error`
    activation_back: Callable[..., Array]  #: :func:`activation_backward`


def _bound(fuse: Fuse | None, group: Callable[..., Any], /, **static: Any) -> Callable[..., Any]:
    """`group` with its `static` options bound, through `fuse` when there is one."""
    return functools.partial(group, **static) if fuse is None else fuse(group, **static)


def _hidden(activation: Activation, xp: Namespace, fuse: Fuse | None) -> Callable[..., tuple[Array, Array]]:
    # an activation that cannot be traced runs as written
    return _bound(fuse if activation.traceable else None, bias_activation, activation=activation, xp=xp)


def _groups(activation: Activation, xp: Namespace, fuse: Fuse | None) -> _Groups:
    """Every group of an iteration, bound in the order the iteration runs them."""
    traced = fuse if activation.traceable else None
    return _Groups(_hidden(activation, xp, fuse), _bound(fuse, shifted_exp, xp=xp),
                   _bound(fuse, cross_entropy_sum, xp=xp), _bound(fuse, output_error, xp=xp),
                   _bound(traced, activation_backward, activation=activation, xp=xp))


def _forward(hidden: Callable[..., tuple[Array, Array]], params: dict[str, Array], x: Array) -> Forward:
    a1, z1 = hidden(x @ params["W1"], params["b1"])
    return Forward(a1, z1, z1 @ params["W2"] + params["b2"])


def forward(params: dict[str, Array], x: Array, /, *, activation: Activation, xp: Namespace,
            fuse: Fuse | None = None) -> Forward:
    """Input → affine → activation → affine: the scores and the hidden layer.

    `fuse` (:func:`xgrad._net.fused.fused_ops`) runs the bias add and activation
    as one kernel where the activation can be traced.
    """
    return _forward(_hidden(activation, xp, fuse), params, x)


def mean_loss(scores: Array, target: Array, /, *, xp: Namespace) -> Array:
    """Mean cross-entropy of target rows against scores (stable log-softmax)."""
    return -xp.sum(target * log_softmax(scores, xp=xp)) / scores.shape[0]


def _backward(g: _Groups, xp: Namespace, params: dict[str, Array], x: Array, target: Array, fwd: Forward,
              scale: float, rows_sum_to_one: bool, ones: Array | None) -> tuple[Array, dict[str, Array]]:
    # softmax and log-softmax from one exponential of the shifted scores
    shifted, e = g.shift(fwd.scores, xp.max(fwd.scores, axis=1, keepdims=True))
    total = xp.sum(e, axis=1, keepdims=True)
    n = x.shape[0]
    loss = g.cross_entropy(shifted, total, target) / n
    mass = None if rows_sum_to_one else xp.sum(target, axis=1, keepdims=True)
    dy = g.error(e, total, target, scale / n, mass)
    # .T: the standard's transpose of a 2-D array, a view (matrix_transpose costs a call more)
    da1 = g.activation_back(fwd.a1, fwd.z1, dy @ params["W2"].T)
    # bias gradients sum over the batch; a product with a row of ones does it
    # in one BLAS call, about three times faster than a reduction on small arrays
    ones = xp.ones_like(x[:, 0]) if ones is None else ones
    return loss, {"W1": x.T @ da1, "b1": ones @ da1, "W2": fwd.z1.T @ dy, "b2": ones @ dy}


def backward(params: dict[str, Array], x: Array, target: Array, fwd: Forward, /, *, activation: Activation,
             xp: Namespace, scale: float = 1.0, rows_sum_to_one: bool = False,
             fuse: Fuse | None = None) -> tuple[Array, dict[str, Array]]:
    """The mean cross-entropy and its gradient (times `scale`) from a forward pass.

    SGD passes ``scale=lr``, so the learning rate multiplies the small
    ``(batch, output)`` error instead of every gradient; ``rows_sum_to_one``
    (one-hot targets) saves a reduction. `fuse` runs each elementwise group
    as one kernel; the reductions and products run as they are.
    """
    return _backward(_groups(activation, xp, fuse), xp, params, x, target, fwd, scale, rows_sum_to_one, None)


def loss_and_gradient(params: dict[str, Array], x: Array, target: Array, /, *, activation: Activation,
                      xp: Namespace, scale: float = 1.0, rows_sum_to_one: bool = False,
                      fuse: Fuse | None = None) -> tuple[Array, dict[str, Array]]:
    """:func:`forward` then :func:`backward`: a training iteration's one call.

    `fuse` (from :func:`xgrad._net.fused.fused_ops`; None, the default, for
    none) compiles the elementwise groups into one kernel each. It
    changes how they run, not what they compute: with the identity fuse the
    results are the same bits as without.
    """
    g = _groups(activation, xp, fuse)
    return _backward(g, xp, params, x, target, _forward(g.hidden, params, x), scale, rows_sum_to_one, None)


def sgd_update(params: dict[str, Array], updates: dict[str, Array], /, *,
               lr: float | None = None) -> dict[str, Array]:
    """New parameters ``params - updates``: the SGD update, written once.

    `updates` are gradients already scaled by the learning rate (what
    :func:`sgd_step` gets from the backward pass), or, with `lr`, gradients
    to scale here (``params - lr * updates``). The arrays given are left as
    they are.
    """
    if lr is None:
        return {k: params[k] - updates[k] for k in params}
    return {k: params[k] - lr * updates[k] for k in params}


Step = Callable[[dict[str, Array], Array, Array], tuple[Array, dict[str, Array]]]


def sgd_stepper(*, lr: float, activation: Activation, xp: Namespace, rows_sum_to_one: bool = False,
                fuse: Fuse | None = None, keep_ones: bool = False, lr_on_update: bool = False) -> Step:
    """:func:`sgd_step` with its settings bound once: ``step(params, x, target)
    -> (loss, new params)``, the same bits with less work per call (a training
    loop calls it thousands of times, each call a few hundred microseconds on
    NumPy).

    `keep_ones` keeps the row of ones that sums the bias gradients from one
    call to the next (made again when the batch size or dtype changes): for
    steps called eagerly, never for one traced into a program, which must not
    hold an array made while tracing.

    `lr_on_update` multiplies the gradients by the learning rate in the
    update, ``W - lr * g``, rather than the small output error: the same
    numbers to rounding. Run eagerly that is one more pass over every
    parameter; a compiled step (XLA) fuses it into the update, and there it
    is the faster form (about 10% a step: ``docs/benchmarks.rst``).

    Examples
    --------
    >>> import numpy as np
    >>> from xgrad import TwoLayerNet
    >>> net = TwoLayerNet(4, 3, 2, seed=0)
    >>> x, target = np.linspace(-1, 1, 8).reshape(2, 4), np.eye(2)
    >>> kw = {"lr": 0.5, "activation": ACTIVATIONS["sigmoid"], "xp": np}
    >>> step = sgd_stepper(**kw, keep_ones=True)
    >>> (loss, new), (want_loss, want) = step(net.params, x, target), sgd_step(net.params, x, target, **kw)
    >>> bool(loss == want_loss) and all(np.array_equal(new[k], want[k]) for k in want)
    True
    """
    g = _groups(activation, xp, fuse)
    kept: list[Array] = []
    scale, late = (1.0, lr) if lr_on_update else (lr, None)

    def step(params: dict[str, Array], x: Array, target: Array) -> tuple[Array, dict[str, Array]]:
        ones = None
        if keep_ones:
            if not kept or kept[0].shape[0] != x.shape[0] or kept[0].dtype != x.dtype:
                kept[:] = [xp.ones_like(x[:, 0])]
            ones = kept[0]
        loss, updates = _backward(g, xp, params, x, target, _forward(g.hidden, params, x), scale, rows_sum_to_one,
                                  ones)
        return loss, sgd_update(params, updates, lr=late)

    return step


def sgd_step(params: dict[str, Array], x: Array, target: Array, /, *, lr: float, activation: Activation,
             xp: Namespace, rows_sum_to_one: bool = False, fuse: Fuse | None = None,
             lr_on_update: bool = False) -> tuple[Array, dict[str, Array]]:
    """One SGD step on the minibatch `x`, `target`: its mean loss and the new parameters.

    The learning rate scales the backward pass's small output error
    (:func:`loss_and_gradient` with ``scale=lr``), and :func:`sgd_update`
    subtracts the scaled gradients; `rows_sum_to_one` (one-hot targets) and `fuse` are
    :func:`loss_and_gradient`'s, `lr_on_update` :func:`sgd_stepper`'s. The training loop runs this function,
    eagerly (bound once, :func:`sgd_stepper`), traced by ``jax.jit`` or
    captured in a CUDA graph.

    Examples
    --------
    >>> import numpy as np
    >>> from xgrad import TwoLayerNet
    >>> net = TwoLayerNet(4, 3, 2, seed=0)
    >>> x, target = np.linspace(-1, 1, 8).reshape(2, 4), np.eye(2)
    >>> loss, new = sgd_step(net.params, x, target, lr=0.5, activation=ACTIVATIONS["sigmoid"], xp=np)
    >>> loss, updates = loss_and_gradient(net.params, x, target, activation=ACTIVATIONS["sigmoid"], xp=np,
    ...                                   scale=0.5)
    >>> all(np.array_equal(new[k], net.params[k] - updates[k]) for k in new)
    True
    """
    return sgd_stepper(lr=lr, activation=activation, xp=xp, rows_sum_to_one=rows_sum_to_one, fuse=fuse,
                       lr_on_update=lr_on_update)(params, x, target)


def count_correct(params: dict[str, Array], x: Array, labels: Array, /, *, activation: Activation,
                  xp: Namespace, chunk_size: int = 10_000) -> int:
    """How many samples' highest score is their class in `labels` (indices);
    `chunk_size` samples at a time, each chunk cast to the parameters' dtype."""
    device = array_api_compat.device(x)
    dtype, counts = params["W1"].dtype, index_dtype(xp, device)
    correct = xp.asarray(0, dtype=counts, device=device)
    for s in range(0, x.shape[0], chunk_size):
        e = min(s + chunk_size, x.shape[0])
        scores = forward(params, xp.astype(x[s:e, ...], dtype, copy=False), activation=activation, xp=xp).scores
        correct = correct + xp.sum(xp.astype(xp.argmax(scores, axis=1) == labels[s:e], counts))
    return int(correct)
