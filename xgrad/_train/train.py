"""Training the two-layer network with minibatch SGD on any backend."""

from __future__ import annotations

import logging
import os
from typing import Any

from xgrad._infra.backend import Backend, quiet_overflow, resolve_backend
from xgrad._infra.files import check_output_file
from xgrad._infra.threads import thread_limits
from xgrad._infra.validate import check_count, check_flag
from xgrad._net.net import TwoLayerNet
from xgrad._train.config import TrainConfig, auto_threads, check_data_dir, prepare_data, renamed_gradient
from xgrad._train.network import check_net, net_backend
from xgrad._train.record import TrainResult
from xgrad._train.run import Run
from xgrad._train.settings import DEFAULTS
from xgrad._train.stepper import will_compile

__all__ = ["TrainResult", "train"]

logger = logging.getLogger("xgrad")

def train(
    backend: str | Backend = "auto",
    *,
    dataset: str = DEFAULTS["dataset"],
    activation: str | None = None,
    hidden_size: int | None = None,
    iters: int = DEFAULTS["iters"],
    batch_size: int = DEFAULTS["batch_size"],
    lr: float = DEFAULTS["lr"],
    gradient: str = DEFAULTS["gradient"],
    h: float | None = DEFAULTS["h"],
    eval_every: int | None = DEFAULTS["eval_every"],
    seed: int = DEFAULTS["seed"],
    dtype: str | None = None,
    weight_init_std: float | None = None,
    threads: int | str | None = DEFAULTS["threads"],
    progress: bool = True,
    data: Any = None,
    data_dir: str | os.PathLike[str] | None = None,
    net: TwoLayerNet | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    checkpoint_every: int | None = None,
    resume: bool = False,
    device: Any = None,
    compile_step: bool | None = DEFAULTS["compile_step"],
    grad: str | None = None,
) -> TrainResult:
    """Train the chapter's two-layer network with minibatch SGD.

    Every setting's default is read from one record (``xgrad train --help``
    lists them); `activation`, `hidden_size`, `dtype` and `weight_init_std`
    default to None, meaning the record's default for a new network and the
    network's own with `net`.

    Parameters
    ----------
    backend : str or Backend
        ``"auto"`` (CuPy where a CUDA device works, else NumPy), ``"numpy"``,
        ``"cupy"``, ``"torch"``, ``"jax"`` or ``"array_api_strict"``.
    dataset : {"mnist", "fashion-mnist"}
        Read by :func:`load_mnist`; ignored when `data` is given.
    activation : {"sigmoid", "relu"}, optional
        The hidden layer's activation (see :class:`TwoLayerNet`); the book's
        ``"sigmoid"`` by default. With `net`, the net's own; giving another
        is an error.
    hidden_size : int, optional
        Units in the hidden layer; the book's 50 by default. With `net`, the
        net's own; giving another is an error.
    iters : int
        SGD iterations (minibatch steps); 10,000 by default, as in the book.
    batch_size : int
        Samples per minibatch, drawn with replacement as in the book; 100 by
        default. It may not exceed the training set.
    lr : float
        The learning rate, positive and finite; 0.1 by default.
    gradient : {"backprop", "numerical"}
        How gradients are computed: backpropagation, or central differences
        (:meth:`TwoLayerNet.numerical_gradient`, exact and fast), with step `h`.
    h : float, optional
        Step of the numerical gradient when ``gradient="numerical"``; by default
        chosen from each parameter's dtype and size.
    eval_every : int, optional
        Iterations between accuracy evaluations (and one at the end); one
        epoch by default, 0 for none.
    seed : int
        Seeds the initial weights and the minibatch order; the same seed gives
        the same run on every backend.
    dtype : {"float32", "float64"}
        float32 (the default) is about twice as fast and as accurate for
        training. With `net`, the net's dtype.
    weight_init_std : float, optional
        Standard deviation of the initial weights; the book's 0.01 by
        default. With `net` (whose weights are already drawn), giving it is
        an error.
    threads : int, "auto" or None
        Threads of every CPU pool the backend computes with, restored after
        the run (see :func:`thread_limits`: BLAS and OpenMP, PyTorch's
        intra-op pool; not XLA's pools under JAX, nothing under CuPy).
        ``"auto"`` uses one thread for small matrices (the book's network),
        much steadier on a busy machine, and the library's default for large
        ones; ``None`` leaves the libraries' defaults.
    progress : bool
        Show a progress bar (on stderr) with the loss, accuracy and ETA.
    data : tuple, optional
        ``((x_train, t_train), (x_test, t_test))`` host arrays, instead of
        loading `dataset`; labels are integer class indices.
    data_dir : path, optional
        Where to look for the dataset files first; refused with `data`,
        which it would not affect.
    net : TwoLayerNet, optional
        Continue training this network instead of a new one. Its activation,
        dtype, sizes, backend and device are those of the run; settings
        given explicitly must agree with them.
    checkpoint : path, optional
        Save the state every `checkpoint_every` iterations (and at the end,
        and when stopped) to this ``.npz`` file, atomically. Its folder must
        be writable; this is checked before training starts.
    checkpoint_every : int, optional
        Iterations between checkpoints; 100 by default. Only with
        `checkpoint`: without it nothing would be saved, so giving it is an
        error.
    resume : bool
        Start from `checkpoint` if it exists; its settings must match.
        Needs `checkpoint`. Without it, an existing `checkpoint` is refused
        rather than overwritten.
    device : optional
        A device of the backend (with `net`: the net's device by default).
    compile_step : bool or None
        Run the training step compiled: on JAX, blocks of up to a hundred
        steps as one ``jax.jit`` program (several times faster than one
        dispatch per operation; the first block waits for the compilation,
        under a second); on CuPy, with fused elementwise kernels, replayed
        from a CUDA graph where CuPy can capture one (see the backends
        page; off by default until measured on a GPU). The maths is the same
        code; the compiler may reorder floating-point operations, so losses
        agree with an eager run's to rounding, not bit for bit. None (the
        default) compiles where it is known to help, JAX, with
        ``gradient="backprop"``; True asks for it and is refused on other
        backends and with the numerical gradient; False never compiles.
    grad : {"backprop", "numerical"}, optional
        Deprecated: the old name of `gradient` (it warns). In
        :func:`gradient_descent`, ``grad`` is a function, not a choice.

    Returns
    -------
    TrainResult

    Raises
    ------
    ValueError, TypeError
        On bad settings or data: a non-positive `lr`, a `batch_size` larger
        than the training set, NaN in the data, labels out of range, features
        that do not match `net`, ``compile_step=True`` where the step cannot be
        compiled.
    xgrad.FileFormatError
        If `resume` finds a damaged or inconsistent checkpoint.
    TrainingDivergedError
        If the loss becomes non-finite (a :class:`DivergenceError`). The error
        names the iteration (``.iteration``) and keeps the partial result, with
        the last parameters that gave a finite loss, in ``.result``.
    CheckpointError
        If a checkpoint cannot be written; the partial result is in
        ``.result``.

    Notes
    -----
    Ctrl-C (SIGINT) and SIGTERM stop the run after the current step (a
    compiled step: after the current block, at most a hundred steps): the
    partial result is returned with ``interrupted=True``, and a last
    checkpoint is written. A second signal stops at once.

    Examples
    --------
    >>> import xgrad
    >>> result = xgrad.train("numpy", iters=200, eval_every=100, progress=False)
    >>> len(result.loss), result.eval_iters
    (200, [1, 101, 200])
    >>> result.test_acc[-1] > 0.2
    True
    """
    gradient = renamed_gradient(gradient, grad)
    settings = {"dataset": dataset, "activation": activation, "hidden_size": hidden_size, "iters": iters,
                "batch_size": batch_size, "lr": lr, "gradient": gradient, "h": h, "eval_every": eval_every,
                "seed": seed, "dtype": dtype, "weight_init_std": weight_init_std, "threads": threads,
                "progress": progress, "compile_step": compile_step}
    cfg = TrainConfig.build(settings, net)
    every = check_count(DEFAULTS["checkpoint_every"] if checkpoint_every is None else checkpoint_every,
                        "checkpoint_every", minimum=1)
    if checkpoint_every is not None and checkpoint is None:  # it would be ignored without a word
        raise ValueError(f"`checkpoint_every` ({checkpoint_every!r}) has no effect without `checkpoint`: nothing "
                         "would be saved. Give `checkpoint`, the file to save to, or leave `checkpoint_every` out")
    resume = check_flag(resume, "resume")  # a truthy "no" must not continue a run
    check_data_dir(data, data_dir)
    if resume and checkpoint is None:
        raise ValueError("`resume=True` needs `checkpoint`, the file to resume from")
    if checkpoint is not None:
        check_output_file(checkpoint, "`checkpoint`")
        if not resume and os.path.exists(checkpoint):
            raise ValueError(f"`checkpoint` {os.fspath(checkpoint)!r} already holds a run; pass `resume=True` to "
                             "continue it, or remove it or give another path to start anew")
    b = resolve_backend(backend, device=device) if net is None else net_backend(net, backend, device)
    will_compile(b.name, cfg.compile_step)  # refused before the data are read
    (x_train, t_train), (x_test, t_test) = prepare_data(cfg, data, data_dir)
    if net is None:
        assert cfg.weight_init_std is not None  # set for a new network
        net = TwoLayerNet(x_train.shape[1], cfg.hidden_size, cfg.output_size, activation=cfg.activation,
                          weight_init_std=cfg.weight_init_std, dtype=cfg.dtype, xp=b.xp, device=b.device,
                          seed=cfg.seed)
    else:
        check_net(net, x_train.shape[1])
    n_threads = auto_threads(cfg, b, net.sizes) if threads == "auto" else threads
    assert not isinstance(n_threads, str)  # validated by TrainConfig
    run = Run(cfg, b, net, x_train, t_train, x_test, t_test)
    if resume and checkpoint is not None and os.path.exists(checkpoint):
        run.restore(checkpoint)
    elif resume:
        logger.info("no checkpoint at %s yet: starting a new run", os.fspath(checkpoint or ""))
    with thread_limits(n_threads, backend=b), quiet_overflow(b):  # divergence is detected and reported
        return run.loop(checkpoint, every)
