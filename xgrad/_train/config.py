"""Settings and data checks for :func:`xgrad.train`, done once, up front."""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from typing import Any

from xgrad._infra.backend import Backend, library, refuse_numpy_subclass
from xgrad._infra.threads import free_cores
from xgrad._infra.validate import beyond_range
from xgrad._train.checks import listed
from xgrad._train.settings import RENAMED, by_name, record

# threads pay off only when the products are large (flops per step)
_THREADED_FLOPS = 50_000_000


def current_keywords(given: Mapping[str, Any], caller: str = "train", stacklevel: int = 2) -> dict[str, Any]:
    """`given` with each old name of a setting (``grad``) under its current one, with a
    DeprecationWarning (at `stacklevel` above the caller); the two must not disagree."""
    out = dict(given)
    for old, new in RENAMED.items():
        value = out.pop(old, None)
        if value is None:
            continue
        s = by_name()[new]
        same = f" (the same choices, {listed(s.choices)})" if s.choices is not None else ""
        warnings.warn(f"`{old}` is deprecated in `{caller}`; use `{new}=`{same}", DeprecationWarning,
                      stacklevel=stacklevel + 1)
        if out.get(new, s.default) not in (s.default, value):
            raise ValueError(f"`{old}` (the deprecated name of `{new}`) is {value!r} but `{new}` is {out[new]!r}; "
                             f"give `{new}` only")
        out[new] = value
    return out


def check_settings(given: Mapping[str, Any]) -> dict[str, Any]:
    """Every setting of the record, checked once: `given` (keywords of ``train``, current names)
    with the record's defaults for the others, each normalised by its check in the record's order.

    The net's own settings (activation, hidden size, dtype, ...) are the record's default for a new
    network; with `net`, the net's own, and a setting given explicitly must agree with it.
    """
    entries = by_name()
    unknown = [k for k in given if k not in entries]
    if unknown:
        raise TypeError(f"train() got an unexpected keyword argument {unknown[0]!r}")
    values = {name: given.get(name, s.keyword_default) for name, s in entries.items()}
    net = entries["net"].checked(values["net"], values)  # the truth of the net's own settings
    out: dict[str, Any] = {"net": net}
    for name, s in entries.items():
        value = values[name]
        if name == "net":
            continue
        if s.net_own and net is not None:
            out[name] = _net_own(s, value, net)
        elif s.net_own and value is None:
            out[name] = s.checked(s.default, values)
        else:
            out[name] = s.checked(value, values)
    return out


def _net_own(s: Any, value: Any, net: Any) -> Any:
    """The net's own value of setting `s`; one given that contradicts it is refused."""
    if s.own is None:
        if value is not None:
            raise ValueError(f"`{s.name}` only sets up a new network; leave it out when `net` is given")
        return None
    truth = s.own(net)
    if value is not None and value != truth:
        raise ValueError(f"`{s.name}` is {value!r} but the `net` given has {s.name} {truth!r}; "
                         f"leave `{s.name}` out to train the net as it is")
    return truth


class TrainConfig:
    """The checked settings of a training run that its records hold (what a
    checkpoint must match): the record's recorded settings, by name
    (``cfg.iters``), and ``output_size``, the network's outputs."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.__dict__["_values"] = dict(values)

    @classmethod
    def of(cls, settings: Mapping[str, Any]) -> TrainConfig:
        """The config of a run whose every setting was checked (:func:`check_settings`)."""
        values = {s.name: s.stored(settings[s.name]) if s.stored else settings[s.name] for s in record()
                  if s.recorded}
        net = settings.get("net")
        return cls({**values, "output_size": 10 if net is None else net.sizes[2]})

    @classmethod
    def build(cls, args: Mapping[str, Any], net: Any = None) -> TrainConfig:
        """Check the settings in `args` (keywords of ``train``; the record's defaults for the
        others) and keep the recorded ones."""
        return cls.of(check_settings({**current_keywords(args), "net": net}))

    def __getattr__(self, name: str) -> Any:
        values = self.__dict__.get("_values", {})
        if name in values:
            return values[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TrainConfig) and self.as_dict() == other.as_dict()

    def __hash__(self) -> int:
        return hash(tuple(self.as_dict().items()))

    def __repr__(self) -> str:
        return f"TrainConfig({', '.join(f'{k}={v!r}' for k, v in self.as_dict().items())})"

    def as_dict(self) -> dict[str, Any]:
        return dict(self._values)


def prepare_data(cfg: TrainConfig, data: Any, data_dir: str | os.PathLike[str] | None) -> tuple[Any, Any]:
    """Host arrays ``((x_train, t_train), (x_test, t_test))``, checked; images
    loaded from `cfg.dataset` come as :class:`~xgrad._train.data.Levels`."""
    import numpy as np  # the host edge: data are checked before they move

    from xgrad._train.data import Levels

    levels = data is None  # the files' 8-bit levels, normalised where they are used
    if data is None:
        from xgrad._datasets.mnist import load_mnist

        data = load_mnist(dataset=cfg.dataset, data_dir=data_dir, normalize=False)
    try:
        (x_train, t_train), (x_test, t_test) = data
    except (TypeError, ValueError):
        raise TypeError("`data` must be ((x_train, t_train), (x_test, t_test))") from None
    out = []
    for part, x, t in (("train", x_train, t_train), ("test", x_test, t_test)):
        refuse_numpy_subclass(x, f"x_{part}")
        refuse_numpy_subclass(t, f"t_{part}")
        x, t = np.asarray(x), np.asarray(t)
        _check_part(part, x, t, cfg.output_size)
        _check_scale(part, x, cfg.dtype)
        out.append((Levels(x) if levels else x, t.astype(np.int64)))
    if out[0][0].shape[1] != out[1][0].shape[1]:
        raise ValueError(f"train and test features differ: {out[0][0].shape[1]} and {out[1][0].shape[1]}")
    if cfg.batch_size > out[0][0].shape[0]:
        raise ValueError(
            f"`batch_size` ({cfg.batch_size}) is larger than the training set "
            f"({out[0][0].shape[0]} samples); use at most {out[0][0].shape[0]}"
        )
    return out[0], out[1]


VALIDATION_STREAM = 2
"""The seed stream of the rows held out for validation: ``[seed, VALIDATION_STREAM]`` (the
minibatch plan's is 1, the weights' the seed alone)."""


def validation_rows(seed: int, n: int, fraction: float) -> tuple[Any, Any]:
    """The rows of a training set of `n` samples kept for training and those held out (a
    `fraction` of them, rounded), both sorted; drawn with `seed` on a stream of their own.

    Examples
    --------
    >>> kept, held = validation_rows(0, 10, 0.2)
    >>> len(kept), len(held), sorted([*kept, *held]) == list(range(10))
    (8, 2, True)
    """
    import numpy as np  # the host edge

    held = np.sort(np.random.default_rng([seed, VALIDATION_STREAM]).permutation(n)[:round(fraction * n)])
    kept = np.setdiff1d(np.arange(n), held, assume_unique=True)
    return kept, held


def check_held_out(fraction: float, n: int, batch_size: int) -> None:
    """Refuse a validation `fraction` of `n` training samples that holds out none, or leaves
    fewer than `batch_size` to train on (as :func:`validation_rows` rounds it)."""
    held = round(fraction * n)
    if held == 0:
        raise ValueError(f"`validation` ({fraction!r}) holds out no sample of the {n} training samples; give a "
                         f"larger fraction (at least {1 / n:.3g}) or None")
    if n - held < batch_size:
        raise ValueError(f"`validation` ({fraction!r}) leaves {n - held} of the {n} training samples, fewer "
                         f"than `batch_size` ({batch_size}); give a smaller fraction or a smaller batch_size")


def hold_out(cfg: TrainConfig, validation: Any, train: tuple[Any, Any]) -> tuple[tuple[Any, Any], Any]:
    """The training set of a run and its validation data, checked: ``(x_train, t_train)`` less the
    rows held out when `validation` is a fraction, and ``(x_val, t_val)`` as numbers and labels
    (None without validation). `train` comes from :func:`prepare_data`."""
    import numpy as np  # the host edge

    from xgrad._train.data import Levels, host_floats

    x_train, t_train = train
    n = x_train.shape[0]
    if validation is None:
        return train, None
    if isinstance(validation, tuple):
        x_val, t_val = validation
        refuse_numpy_subclass(x_val, "x_val")
        refuse_numpy_subclass(t_val, "t_val")
        x_val, t_val = np.asarray(x_val), np.asarray(t_val)
        try:
            _check_part("val", x_val, t_val, cfg.output_size)
            _check_scale("val", x_val, cfg.dtype)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"`validation`: {exc}") from None
        if x_val.shape[1] != x_train.shape[1]:
            raise ValueError(f"`validation`: x_val has {x_val.shape[1]} features, the training data "
                             f"{x_train.shape[1]}; give validation samples of the same features")
        return train, (x_val, t_val.astype(np.int64))
    check_held_out(validation, n, cfg.batch_size)
    kept, held = validation_rows(cfg.seed, n, validation)
    levels = isinstance(x_train, Levels)
    raw = x_train.raw if levels else x_train
    val = (host_floats(Levels(raw[held])) if levels else raw[held], t_train[held])
    return (Levels(raw[kept]) if levels else raw[kept], t_train[kept]), val


def _check_part(part: str, x: Any, t: Any, n_classes: int) -> None:
    import numpy as np

    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"x_{part} must be 2-d (samples, features) and non-empty; got shape {x.shape}")
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise TypeError(f"x_{part} must hold real numbers (integer or floating); got dtype {x.dtype}")
    if t.shape != (x.shape[0],) or not np.issubdtype(t.dtype, np.integer):
        raise ValueError(
            f"t_{part} must hold one integer class label per sample, shape ({x.shape[0]},); "
            f"got shape {t.shape} and dtype {t.dtype}"
        )
    bad: Any = np.flatnonzero(~np.isfinite(x).all(axis=1)) if np.issubdtype(x.dtype, np.floating) else []
    if len(bad):
        raise ValueError(f"x_{part} has NaN or infinite values, first in sample {bad[0]}; clean the data first")
    out_of_range = np.flatnonzero((t < 0) | (t >= n_classes))
    if len(out_of_range):
        k = out_of_range[0]
        raise ValueError(
            f"t_{part} has a label out of range 0..{n_classes - 1}: {t[k]} at sample {k}"
            + ("" if n_classes == 10 else f" (the network has {n_classes} outputs)")
        )


def _check_scale(part: str, x: Any, dtype: str) -> None:
    """Refuse data that become infinite in the run's dtype (float64 -> float32)."""
    import array_api_compat

    largest = beyond_range(array_api_compat.array_namespace(x), x, dtype)
    if largest is not None:
        raise ValueError(f"x_{part} has values up to {largest:.3g}, beyond the range of {dtype}; "
                         "scale the data (or use dtype='float64')")


def auto_threads(cfg: TrainConfig, b: Backend, sizes: tuple[int, int, int]) -> int | None:
    """CPU threads for a run (see :func:`xgrad.thread_limits`): for the small
    products of the book's network one, or two where a core beside this
    process's own is free when the run starts
    (:func:`~xgrad._infra.threads.free_cores`) and the run's first product
    gives the same bits on two threads as on one (:func:`two_threads_keep_bits`);
    the library's default (None) for large products.

    A second thread helps only when its core is idle: pool threads wait for
    each other at every product, so on a busy core they wait for the other
    processes too. Measured on 2 cores (book network, float32): idle, NumPy
    ran 3,260 it/s on one thread and 3,910 on two (PyTorch 1,880 and 2,180);
    with 2 busy processes beside, 1,570 against 74 (PyTorch 1,260 against
    60). OpenBLAS splits ``x @ W1`` along its sum over two threads, so NumPy
    with it stays on one thread: its losses would otherwise change in the
    last bits with the load at the start (``threads=2`` asks for the speed).
    Two at most: no more were measured at this size. The choice is made
    once, at the start: a machine that gets busy later keeps it. JAX (XLA's
    pools are fixed when it starts) and CuPy (a GPU) get None.
    """
    if library(b.name).pools != "cpu":
        return None
    n_in, n_hidden, n_out = sizes
    if 2 * cfg.batch_size * n_hidden * (n_in + n_out) >= _THREADED_FLOPS:
        return None
    if free_cores() < 2:
        return 1
    return 2 if two_threads_keep_bits(b, cfg.batch_size, n_in, n_hidden, dtype=str(cfg.dtype)) else 1


def two_threads_keep_bits(b: Backend, rows: int, inner: int, cols: int, *, dtype: str = "float32") -> bool:
    """Whether a ``(rows, inner) @ (inner, cols)`` product in `dtype` on `b`
    gives the same bits on two threads as on one, tried once per process and
    shape on fixed random numbers (a few products).

    Examples
    --------
    >>> from xgrad import resolve_backend
    >>> isinstance(two_threads_keep_bits(resolve_backend("numpy"), 4, 8, 3), bool)
    True
    """
    key = (b.name, str(b.device), rows, inner, cols, dtype)
    if key not in _SAME_BITS:
        import numpy as np  # the host edge: the numbers, and the results compared

        from xgrad._infra.host import to_numpy
        from xgrad._infra.threads import thread_limits

        rng = np.random.default_rng(0)
        x, w = (b.asarray(rng.random(shape).astype(dtype)) for shape in ((rows, inner), (inner, cols)))
        results = []
        for n in (1, 2):
            with thread_limits(n, backend=b):
                results.append(to_numpy(x @ w))
        _SAME_BITS[key] = bool(np.array_equal(results[0], results[1]))
    return _SAME_BITS[key]


_SAME_BITS: dict[tuple[Any, ...], bool] = {}
