"""The chapter's two-layer network, on any array-API backend."""

from __future__ import annotations

import os
import warnings
from typing import Any

import array_api_compat

from xgrad._infra.backend import Backend, asarray_on, library_of, quiet_overflow, resolve_backend
from xgrad._infra.typing import Array, Device, DType, Namespace
from xgrad._infra.validate import check_count, check_optional_positive, check_positive
from xgrad._net.args import check_memory, check_seed, known_dtype, network_dtype
from xgrad._net.boundary import (
    check_fits,
    check_own_array,
    checked_labels,
    checked_params,
    checked_x,
    network_targets,
    true_classes,
)
from xgrad._net.core import PARAM_NAMES, activation_named, count_correct, forward, loss_and_gradient, mean_loss
from xgrad._net.functions import softmax
from xgrad._net.numgrad import exact_differences

__all__ = ["PARAM_NAMES", "TwoLayerNet", "check_network", "network_numerical_gradient"]


class TwoLayerNet:
    """Input → affine → sigmoid (or ReLU) → affine → softmax.

    Parameters
    ----------
    input_size, hidden_size, output_size : int
        Layer widths; the book's MNIST network is 784-50-10.
    activation : {"sigmoid", "relu"}
        The hidden layer's activation: sigmoid as in chapter 4, ReLU as in
        chapter 5.
    weight_init_std : float
        Standard deviation of the initial weights; biases start at zero.
    dtype : {"float64", "float32"}
        Floating type of the parameters (float64 by default, as in the book).
    backend : str or Backend
        Where the parameters live (see :func:`resolve_backend`); ignored when
        `xp` is given.
    xp, device : optional
        An array namespace (a library such as ``numpy`` or ``torch``, or its
        array-API namespace) and device to use directly; by default the
        library's default device.
    seed : int or None
        Seeds the NumPy `Generator` that draws the initial weights on the host;
        the same seed gives the same start on every backend.

    Attributes
    ----------
    params : dict of str to array
        ``W1`` (input × hidden), ``b1``, ``W2`` (hidden × output), ``b2``.

    Raises
    ------
    TypeError, ValueError
        For a bad argument, named in the message; a network too large for this
        machine's memory is refused before anything is allocated.

    Notes
    -----
    Labels `t` are class indices of shape ``(batch,)`` (integers in
    ``0..output_size-1``) or one-hot rows of shape ``(batch, output_size)``
    of any real dtype; the shape decides which. Every method that takes
    labels checks them, and the inputs `x` (a 2-d array of the network's
    library with finite values and at least one sample), at one boundary:
    :meth:`checked_inputs`.

    Examples
    --------
    >>> import numpy as np
    >>> from xgrad import TwoLayerNet
    >>> net = TwoLayerNet(784, 50, 10, seed=0)
    >>> {k: v.shape for k, v in net.params.items()}
    {'W1': (784, 50), 'b1': (50,), 'W2': (50, 10), 'b2': (10,)}
    >>> x = np.zeros((3, 784)); t = np.array([0, 1, 2])
    >>> round(float(net.loss(x, t)), 2)   # small weights: about log(10)
    2.3
    """

    def __init__(
        self,
        input_size: int = 784,
        hidden_size: int = 50,
        output_size: int = 10,
        *,
        activation: str = "sigmoid",
        weight_init_std: float = 0.01,
        dtype: Any = None,
        backend: str | Backend = "numpy",
        xp: Namespace | None = None,
        device: Device | None = None,
        seed: int | None = 0,
    ) -> None:
        sizes = [check_count(v, n, minimum=1) for v, n in
                 ((input_size, "input_size"), (hidden_size, "hidden_size"), (output_size, "output_size"))]
        activation_named(activation)
        check_positive(weight_init_std, "weight_init_std")
        seed = check_seed(seed)
        check_memory(sizes)
        self.activation = activation
        if xp is None:
            b = resolve_backend(backend, device=device)
            xp, device = b.xp, b.device
        else:  # a bare module (numpy, torch) as its array-API namespace; its default device unless given
            probe = xp.asarray(0.0)
            xp = array_api_compat.array_namespace(probe)
            device = array_api_compat.device(probe) if device is None else device
        self.xp: Namespace = xp
        self.device: Device = device
        self.dtype: DType = network_dtype(xp, device, dtype)
        self.params: dict[str, Array] = self._initial_params(sizes, weight_init_std, seed)

    def __repr__(self) -> str:
        """Its sizes, activation, dtype, library and device (never its weights).

        Examples
        --------
        >>> from xgrad import TwoLayerNet
        >>> TwoLayerNet(784, 50, 10)
        TwoLayerNet(784, 50, 10, activation='sigmoid', dtype='float64', backend='numpy', device='cpu')
        """
        lib = library_of(self.xp)
        backend = lib.name if lib is not None else getattr(self.xp, "__name__", type(self.xp).__name__)
        device = lib.device_name(self.device) if lib is not None else str(self.device)
        dtype = "float32" if self.dtype == self.xp.float32 else "float64"
        sizes = ", ".join(map(str, self.sizes))
        return (f"TwoLayerNet({sizes}, activation={self.activation!r}, dtype={dtype!r}, backend={backend!r}, "
                f"device={device!r})")

    @property
    def sizes(self) -> tuple[int, int, int]:
        """``(input_size, hidden_size, output_size)``."""
        n_in, n_hidden = self.params["W1"].shape
        return n_in, n_hidden, self.params["W2"].shape[1]

    def _initial_params(self, sizes: list[int], std: float, seed: int | None) -> dict[str, Array]:
        import numpy as np  # weights are drawn on the host, then moved once

        rng = np.random.default_rng(seed)
        n_in, n_hidden, n_out = sizes
        with np.errstate(over="ignore"):  # checked below
            host = {
                "W1": std * rng.standard_normal((n_in, n_hidden)),
                "b1": np.zeros(n_hidden),
                "W2": std * rng.standard_normal((n_hidden, n_out)),
                "b2": np.zeros(n_out),
            }
        name = "float32" if self.dtype == self.xp.float32 else "float64"
        if max(float(np.max(np.abs(host[k]))) for k in ("W1", "W2")) > float(np.finfo(name).max):
            raise ValueError(f"`weight_init_std` ({std:g}) draws initial weights beyond the range of {name}; "
                             "they would be infinite. Choose a far smaller `weight_init_std` (the book's is 0.01)")
        return {k: self.to_device(v) for k, v in host.items()}

    def to_device(self, a: Any, /) -> Array:
        """`a` (a host array or a number) as an array in the network's library,
        device and dtype."""
        return asarray_on(self.xp, self.device, a, dtype=self.dtype)

    # -- the input boundary -----------------------------------------------------
    def _check_x(self, x: Any, *, samples: bool = False, cast: bool = True) -> Array:
        """`x` checked as :func:`~xgrad._net.boundary.checked_x` does, for this network."""
        return checked_x(self.xp, self.device, self.dtype, self.sizes[0], x, samples=samples, cast=cast)

    def checked_inputs(self, x: Array, t: Array, /) -> tuple[Array, Array]:
        """The boundary every loss, gradient and check passes: `x` in the
        network's dtype and the labels as target rows ``(batch, output)``.

        Raises
        ------
        TypeError
            If `x` or `t` is not an array of the network's library, or `t` holds
            booleans or floating class indices.
        ValueError
            If `x` is not ``(batch, input_size)``, is empty or not finite, or the
            labels have neither accepted shape, an index outside
            ``0..output_size-1``, negative or non-finite rows, or integer rows
            that do not sum to 1 (see :func:`xgrad.cross_entropy_error`).
            Floating rows that do not sum to 1 (the book's dummy labels) pass
            with a :class:`~xgrad.LabelsNotProbabilitiesWarning`.

        Examples
        --------
        >>> import numpy as np
        >>> from xgrad import TwoLayerNet
        >>> net = TwoLayerNet(4, 3, 2)
        >>> x, target = net.checked_inputs(np.ones((2, 4)), np.array([1, 0]))
        >>> target
        array([[0., 1.],
               [1., 0.]])
        >>> net.checked_inputs(np.ones((2, 4)), np.array([1, 2]))
        Traceback (most recent call last):
        ...
        ValueError: `t` holds class index 2 at position 1, outside 0..1 for 2 classes
        """
        x = self._check_x(x, samples=True)
        check_own_array(self.xp, self.device, t, "t")
        return x, network_targets(self.xp, (x.shape[0], self.sizes[2]), t, self.dtype, self.device)

    # -- forward --------------------------------------------------------------
    # the sigmoid's exp(-a) may overflow to inf for a very negative a: its value, 0,
    # is right, so NumPy's overflow warning is silenced around the network's maths
    def _scores(self, x: Array) -> Array:
        with quiet_overflow(self.xp):
            return forward(self.params, x, activation=activation_named(self.activation), xp=self.xp).scores

    def scores(self, x: Array, /) -> Array:
        """The output layer's raw scores (logits), shape ``(batch, output)``.

        `x` must be a ``(batch, input_size)`` array of the network's library
        holding finite values (NaN or infinities raise a ValueError).
        """
        return self._scores(self._check_x(x))

    def predict(self, x: Array, /) -> Array:
        """Class probabilities (softmax of the scores), one row per sample."""
        return softmax(self.scores(x), xp=self.xp)

    def loss(self, x: Array, t: Array, /) -> Array:
        """Mean cross-entropy on `(x, t)` as a 0-d array (stable log-softmax).

        `t` holds class indices ``(batch,)`` or one-hot rows ``(batch, output)``;
        its shape decides which (see :meth:`checked_inputs`).
        """
        x, target = self.checked_inputs(x, t)
        return mean_loss(self._scores(x), target, xp=self.xp)

    def accuracy(self, x: Array, t: Array, /, *, batch_size: int = 10_000) -> float:
        """Fraction of samples whose highest score is the true class.

        `t` holds class indices or one-hot rows (the true class is the row's
        largest entry, which must be in one class only: a row such as
        ``[0.5, 0.5]`` raises a ValueError). Evaluated `batch_size` samples at
        a time to bound memory.
        """
        xp = self.xp
        batch_size = check_count(batch_size, "batch_size", minimum=1)
        x = self._check_x(x, samples=True, cast=False)  # cast chunk by chunk below
        check_own_array(self.xp, self.device, t, "t")
        n = x.shape[0]
        labels = t if checked_labels(xp, (n, self.sizes[2]), t) else true_classes(xp, t)
        with quiet_overflow(xp):
            correct = count_correct(self.params, x, labels, activation=activation_named(self.activation), xp=xp,
                                    chunk_size=batch_size)
        return correct / n

    # -- gradients ------------------------------------------------------------
    def loss_and_gradient(self, x: Array, t: Array, /) -> tuple[Array, dict[str, Array]]:
        """The loss and its gradient by backpropagation, from one forward pass."""
        x, target = self.checked_inputs(x, t)
        with quiet_overflow(self.xp):
            return loss_and_gradient(self.params, x, target, activation=activation_named(self.activation),
                                     xp=self.xp)

    def gradient(self, x: Array, t: Array, /) -> dict[str, Array]:
        """The gradient of :meth:`loss` by backpropagation (book chapter 5)."""
        return self.loss_and_gradient(x, t)[1]

    def numerical_gradient(self, x: Array, t: Array, /, *, h: float | None = None) -> dict[str, Array]:
        """The gradient of :meth:`loss` by central differences.

        Every entry is the exact central difference
        ``(L(θ + h e_k) - L(θ - h e_k)) / 2h`` of the loss, but evaluated the
        fast way: batched over parameters and reusing the unperturbed forward
        pass. `h` must be positive and finite (by default it follows each
        parameter's dtype and size). Float32 networks are differenced in
        float64 where the backend has it; the result has the parameters' dtype.
        A parameter holding NaN or infinity raises a ValueError naming it: a
        difference there has no meaning.

        Examples
        --------
        >>> import numpy as np
        >>> from xgrad import TwoLayerNet
        >>> net = TwoLayerNet(4, 3, 2, seed=0, weight_init_std=0.5)
        >>> x = np.array([[0.0, 1.0, 0.5, 0.0]]); t = np.array([1])
        >>> num, exact = net.numerical_gradient(x, t), net.gradient(x, t)
        >>> all(np.allclose(num[k], exact[k], atol=1e-9) for k in num)
        True
        """
        h = check_optional_positive(h, "h")
        x, target = self.checked_inputs(x, t)
        return exact_differences(self.params, x, target, activation=activation_named(self.activation),
                                 h=h, xp=self.xp, device=self.device)

    # -- state ----------------------------------------------------------------
    def with_params(self, params: dict[str, Array]) -> TwoLayerNet:
        """A shallow copy of this network with other parameters.

        `params` must hold exactly ``W1, b1, W2, b2``, arrays of the network's
        library and device, of one floating dtype (float32 or float64, which
        becomes the copy's dtype), with shapes that fit together (the sizes
        may differ from this network's). Checks read only shapes and dtypes:
        no data move to the host.

        Examples
        --------
        >>> import numpy as np
        >>> from xgrad import TwoLayerNet
        >>> net = TwoLayerNet(4, 3, 2)
        >>> narrow = net.with_params({k: v.astype(np.float32) for k, v in net.params.items()})
        >>> narrow.dtype == np.float32, net.dtype == np.float64
        (True, True)
        """
        checked = checked_params(self.xp, self.device, params, own=type(self.params["W1"]))
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new.params = checked
        # arrays that exist have a dtype their device has: only its kind is checked, no inspection per call
        new.dtype = getattr(self.xp, known_dtype(self.xp, checked["W1"].dtype))
        return new

    def astype(self, dtype: Any) -> TwoLayerNet:
        """A copy of this network with its parameters cast to `dtype`
        ('float32' or 'float64', or that dtype of the network's library)."""
        target = network_dtype(self.xp, self.device, dtype)
        check_fits(self.xp, self.params, target)
        return self.with_params({k: self.xp.astype(v, target) for k, v in self.params.items()})

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the parameters and the activation to an ``.npz`` file (no pickle).

        The write is atomic: a crash or a full disk leaves the previous file.
        Parameters holding NaN or infinities raise a ValueError and write
        nothing (:meth:`load` would refuse the file).
        """
        from xgrad._infra.host import to_numpy
        from xgrad._net.file import save_net_file

        save_net_file(path, {k: to_numpy(v) for k, v in self.params.items()}, self.activation)

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, dtype: Any = None, backend: str | Backend = "numpy",
             xp: Namespace | None = None, device: Device | None = None) -> TwoLayerNet:
        """Read a network written by :meth:`save` onto any backend.

        A damaged or inconsistent file (shapes that do not fit together,
        non-finite weights, an unknown activation) raises
        :class:`xgrad.FileFormatError` naming the file.
        """
        from xgrad._net.file import read_net_file

        host, activation = read_net_file(path)
        n_in, n_hidden = host["W1"].shape
        net = cls(n_in, n_hidden, host["W2"].shape[1], activation=activation,
                  dtype=dtype or str(host["W1"].dtype), backend=backend, xp=xp, device=device)
        hxp = array_api_compat.array_namespace(host["W1"])  # the file's arrays, before the cast
        check_fits(hxp, host, hxp.float32 if net.dtype == net.xp.float32 else hxp.float64)
        net.params = {k: net.to_device(v) for k, v in host.items()}
        return net


def check_network(net: Any, name: str = "net") -> TwoLayerNet:
    """`net` if it is a :class:`TwoLayerNet`; a TypeError naming `name` otherwise.

    Examples
    --------
    >>> check_network("net")
    Traceback (most recent call last):
    TypeError: `net` must be a TwoLayerNet, e.g. TwoLayerNet(784, 50, 10) or TwoLayerNet.load(path); got str 'net'
    """
    if not isinstance(net, TwoLayerNet):
        shown = f" {net!r}" if isinstance(net, str | int | float) else ""
        raise TypeError(f"`{name}` must be a TwoLayerNet, e.g. TwoLayerNet(784, 50, 10) or TwoLayerNet.load(path); "
                        f"got {type(net).__name__}{shown}")
    return net


def network_numerical_gradient(net: TwoLayerNet, x: Array, t: Array, /, *, h: float | None = None) -> dict[str, Array]:
    """Deprecated: use ``net.numerical_gradient(x, t, h=h)``
    (:meth:`TwoLayerNet.numerical_gradient`), which this calls.

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> from xgrad import TwoLayerNet, network_numerical_gradient
    >>> net = TwoLayerNet(4, 3, 2, seed=0)
    >>> x = np.ones((1, 4)); t = np.array([1])
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     grads = network_numerical_gradient(net, x, t)
    >>> print(caught[0].message)
    network_numerical_gradient is deprecated; use net.numerical_gradient(x, t, h=h)
    """
    warnings.warn("network_numerical_gradient is deprecated; use net.numerical_gradient(x, t, h=h)",
                  DeprecationWarning, stacklevel=2)
    return check_network(net).numerical_gradient(x, t, h=h)
