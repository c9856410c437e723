"""Settings and data checks for :func:`xgrad.train`, done once, up front."""

from __future__ import annotations

import os
import warnings
from dataclasses import asdict, dataclass
from typing import Any

from xgrad._datasets.mnist import dataset_spelling
from xgrad._infra.backend import Backend, library, refuse_numpy_subclass
from xgrad._infra.threads import check_threads
from xgrad._infra.validate import beyond_range, check_count, check_flag, check_optional_positive, check_positive
from xgrad._train.settings import DEFAULTS, check_choice

# threads pay off only when the products are large (flops per step)
_THREADED_FLOPS = 50_000_000


@dataclass(frozen=True)
class TrainConfig:
    """The validated settings of a training run (what a checkpoint must match)."""

    dataset: str
    activation: str
    hidden_size: int
    iters: int
    batch_size: int
    lr: float
    gradient: str
    h: float | None
    eval_every: int | None
    seed: int
    dtype: str
    weight_init_std: float | None
    progress: bool
    output_size: int = 10
    compile_step: bool | None = None  # None: where it helps (see xgrad._train.stepper)

    @classmethod
    def build(cls, args: dict[str, Any], net: Any = None) -> TrainConfig:
        """Check the settings in `args` (``train``'s arguments); with a `net`,
        its activation, dtype and sizes are the truth and an explicit setting
        that contradicts them is refused."""
        check_choice("gradient", args["gradient"])
        model = _model_settings(args, net)
        check_threads(args["threads"], auto=True)
        eval_every = args["eval_every"]
        return cls(
            dataset=_dataset_name(args["dataset"]),
            activation=model["activation"],
            hidden_size=model["hidden_size"],
            iters=check_count(args["iters"], "iters", minimum=0),
            batch_size=check_count(args["batch_size"], "batch_size", minimum=1),
            lr=check_positive(args["lr"], "lr"),
            gradient=args["gradient"],
            h=_check_h(args["h"], args["gradient"]),
            eval_every=None if eval_every is None else check_count(eval_every, "eval_every", minimum=0),
            seed=check_count(args["seed"], "seed", minimum=0),
            dtype=model["dtype"],
            weight_init_std=model["weight_init_std"],
            progress=check_flag(args["progress"], "progress"),
            output_size=model["output_size"],
            compile_step=_check_compile_step(args.get("compile_step"), args["gradient"]),
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def renamed_gradient(gradient: Any, grad: Any) -> Any:
    """``train``'s `gradient`, or the value given under its old name `grad`
    (with a DeprecationWarning); the two must not disagree."""
    if grad is None:
        return gradient
    warnings.warn("`grad` is deprecated in `train`; use `gradient=` (the same choices, 'backprop' or "
                  "'numerical')", DeprecationWarning, stacklevel=3)
    if gradient != DEFAULTS["gradient"] and gradient != grad:
        raise ValueError(f"`grad` (the deprecated name of `gradient`) is {grad!r} but `gradient` is "
                         f"{gradient!r}; give `gradient` only")
    return grad


# settings of the network: the record's default for a new one, the net's own otherwise
_DEFAULTS = {k: DEFAULTS[k] for k in ("activation", "hidden_size", "dtype", "weight_init_std")}
MAX_H = 1.0  # a larger step of the numerical gradient measures no derivative of the loss


def _check_h(h: Any, gradient: str) -> float | None:
    h = check_optional_positive(h, "h")
    if h is not None and h > MAX_H:
        raise ValueError(f"`h` must be at most {MAX_H:g} (a step of the numerical gradient); got {h!r}")
    if h is not None and gradient != "numerical":
        # a step that changes nothing would be ignored without a word
        raise ValueError(f"`h` ({h!r}) is the step of the numerical gradient and has no effect when "
                         f"`gradient` is {gradient!r}; leave `h` out, or set `gradient` to 'numerical'")
    return h


def _dataset_name(value: Any) -> str:
    """The data set's name in one spelling ('fashion_mnist' is 'fashion-mnist'), checked even when
    `data` replaces it: it is recorded in the run's config and compared on resuming."""
    return str(check_choice("dataset", dataset_spelling(value)))


def _check_compile_step(value: Any, gradient: str) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise TypeError(f"`compile_step` must be True, False or None (compile where it helps); got {value!r}")
    if value and gradient != "backprop":
        raise ValueError(f"`compile_step` is True, but only the backpropagation step compiles, not `gradient` "
                         f"{gradient!r} (it checks its inputs on the host); set `gradient` to 'backprop', or leave "
                         "`compile_step` at None")
    return value


def net_dtype_name(net: Any) -> str:
    """'float32' or 'float64': the dtype of a network's parameters."""
    return "float32" if net.dtype == net.xp.float32 else "float64"


def _model_settings(args: dict[str, Any], net: Any) -> dict[str, Any]:
    """activation, hidden_size, dtype, weight_init_std and output_size of the run."""
    given = {k: args.get(k) for k in _DEFAULTS}
    if net is None:
        out = {k: _DEFAULTS[k] if v is None else v for k, v in given.items()}
        check_choice("activation", out["activation"])
        check_choice("dtype", out["dtype"])
        out["hidden_size"] = check_count(out["hidden_size"], "hidden_size", minimum=1)
        out["weight_init_std"] = check_positive(out["weight_init_std"], "weight_init_std")
        return {**out, "output_size": 10}
    truth = {"activation": net.activation, "hidden_size": net.sizes[1], "dtype": net_dtype_name(net)}
    for k, v in truth.items():
        if given[k] is not None and given[k] != v:
            raise ValueError(f"`{k}` is {given[k]!r} but the `net` given has {k} {v!r}; "
                             f"leave `{k}` out to train the net as it is")
    if given["weight_init_std"] is not None:
        raise ValueError("`weight_init_std` only sets up a new network; leave it out when `net` is given")
    return {**truth, "weight_init_std": None, "output_size": net.sizes[2]}


def check_data_dir(data: Any, data_dir: Any) -> None:
    """Refuse `data_dir` beside `data`: the folder would be ignored without a word."""
    if data is not None and data_dir is not None:
        raise ValueError(f"`data_dir` has no effect when `data` is given (the run trains on `data`); got "
                         f"{os.fspath(data_dir)!r}. Leave out one of them")


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
    """CPU threads for a run (see :func:`xgrad.thread_limits`): one for the small
    products of the book's network, the library's default (None) for large ones.

    One thread is a little slower on an idle machine and many times faster and
    steadier on a busy one, where pool threads wait for each other: on 2 cores
    with 2 busy processes beside, the book's network ran 1,260 it/s on one
    thread against 60 on PyTorch's default 2 (NumPy: 1,570 against 74); idle,
    1,880 against 2,180 (NumPy: 3,260 against 3,910). JAX (XLA's pools are
    fixed when it starts) and CuPy (a GPU) get None.
    """
    if library(b.name).pools != "cpu":
        return None
    n_in, n_hidden, n_out = sizes
    flops = 2 * cfg.batch_size * n_hidden * (n_in + n_out)
    return 1 if flops < _THREADED_FLOPS else None
