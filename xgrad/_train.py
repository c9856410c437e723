"""Training the two-layer network with minibatch SGD on any backend."""

from __future__ import annotations

import collections
import logging
import math
import os
import time
from dataclasses import replace
from typing import Any

from xgrad._backend import Backend, index_dtype, quiet_overflow, resolve_backend
from xgrad._checkpoint import Checkpoint, CheckpointError, data_id, load_checkpoint, save_checkpoint
from xgrad._core import activation_named, count_correct, loss_and_gradient
from xgrad._descent import TrainingDivergedError
from xgrad._files import check_output_file
from xgrad._history import History
from xgrad._host import to_numpy
from xgrad._net import TwoLayerNet
from xgrad._settings import DEFAULTS
from xgrad._signals import StopRequest, Terminated, stop_signals
from xgrad._threads import thread_limits
from xgrad._trainargs import TrainConfig, auto_threads, prepare_data, renamed_gradient
from xgrad._traindata import host_floats, train_data
from xgrad._trainnet import check_net, net_backend
from xgrad._trainresult import TrainResult
from xgrad._validate import check_count

__all__ = ["TrainResult", "train"]

logger = logging.getLogger("xgrad")

PLAN_BLOCK = 1000  # iterations whose minibatch indices are drawn together
# the seed stream layout: block b of minibatch indices comes from the NumPy
# generator seeded [seed, MINIBATCH_STREAM, b], apart from the initial weights
# (seeded by `seed` alone), so resuming at any block redraws the same indices
MINIBATCH_STREAM = 1
CHECK_EVERY = 10  # iterations between looks at the loss (each one a host sync)


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
    checkpoint_every: int = DEFAULTS["checkpoint_every"],
    resume: bool = False,
    device: Any = None,
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
        Where to look for the dataset files first.
    net : TwoLayerNet, optional
        Continue training this network instead of a new one. Its activation,
        dtype, sizes, backend and device are those of the run; settings
        given explicitly must agree with them.
    checkpoint : path, optional
        Save the state every `checkpoint_every` iterations (and at the end,
        and when stopped) to this ``.npz`` file, atomically. Its folder must
        be writable; this is checked before training starts.
    checkpoint_every : int
        Iterations between checkpoints; 100 by default. Used only with
        `checkpoint`.
    resume : bool
        Start from `checkpoint` if it exists; its settings must match.
        Needs `checkpoint`. Without it, an existing `checkpoint` is refused
        rather than overwritten.
    device : optional
        A device of the backend (with `net`: the net's device by default).
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
        that do not match `net`.
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
    Ctrl-C (SIGINT) and SIGTERM stop the run after the current step: the
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
                "progress": progress}
    cfg = TrainConfig.build(settings, net)
    check_count(checkpoint_every, "checkpoint_every", minimum=1)
    if resume and checkpoint is None:
        raise ValueError("`resume=True` needs `checkpoint`, the file to resume from")
    if checkpoint is not None:
        check_output_file(checkpoint, "`checkpoint`")
        if not resume and os.path.exists(checkpoint):
            raise ValueError(f"`checkpoint` {os.fspath(checkpoint)!r} already holds a run; pass `resume=True` to "
                             "continue it, or remove it or give another path to start anew")
    b = resolve_backend(backend, device=device) if net is None else net_backend(net, backend, device)
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
    run = _Run(cfg, b, net, x_train, t_train, x_test, t_test)
    if resume and checkpoint is not None and os.path.exists(checkpoint):
        run.restore(load_checkpoint(checkpoint, cfg, b, net, run.data_id))
    elif resume:
        logger.info("no checkpoint at %s yet: starting a new run", os.fspath(checkpoint or ""))
    with thread_limits(n_threads, backend=b), quiet_overflow(b):  # divergence is detected and reported
        return run.loop(checkpoint, checkpoint_every)


class _Run:
    """The state of one training run: data on the device, history, timers."""

    def __init__(self, cfg: TrainConfig, b: Backend, net: TwoLayerNet, x_train: Any, t_train: Any,
                 x_test: Any, t_test: Any) -> None:
        self.cfg, self.b, self.net = cfg, b, net
        self.activation = activation_named(net.activation)
        to = lambda a, dt: b.asarray(a, dtype=dt)  # noqa: E731  (host -> device, once)
        source, x_train, x_test = x_train, host_floats(x_train), host_floats(x_test)  # evaluations read numbers
        self.x_train, self.x_test = to(x_train, net.dtype), to(x_test, net.dtype)
        self.t_train, self.t_test = to(t_train, index_dtype(b.xp, b.device)), to(t_test, index_dtype(b.xp, b.device))
        self.data = train_data(b, source, self.x_train, self.t_train, n_classes=cfg.output_size)
        self.n_train = x_train.shape[0]
        self.data_id = data_id(x_train, t_train, x_test, t_test)
        self.iters_per_epoch = max(self.n_train // cfg.batch_size, 1)
        self.eval_every = self.iters_per_epoch if cfg.eval_every is None else cfg.eval_every
        self.start = 0
        self.history = History(iters_per_epoch=self.iters_per_epoch, backend=b.name, device=b.device_name,
                               dtype=str(cfg.dtype))
        self.timings = {"train_s": 0.0, "eval_s": 0.0, "total_s": 0.0}
        self.t_start = time.perf_counter()

    def restore(self, state: Checkpoint) -> None:
        self.net.params = state.params
        self.start = state.iteration
        self.history = replace(state.history, iters_per_epoch=self.iters_per_epoch, backend=self.history.backend,
                               device=self.history.device, dtype=self.history.dtype)
        logger.info("resumed from iteration %d", self.start)

    def _plan(self, block: int) -> Any:
        import numpy as np  # minibatch indices are drawn on the host, moved once per block

        rng = np.random.default_rng([self.cfg.seed, MINIBATCH_STREAM, block])
        idx = rng.integers(0, self.n_train, size=(PLAN_BLOCK, self.cfg.batch_size))
        return self.b.asarray(idx, dtype=index_dtype(self.b.xp, self.b.device))

    def _step(self, params: dict[str, Any], idx: Any) -> tuple[Any, dict[str, Any]]:
        xp = self.b.xp
        xb, tb = self.data.batch(idx)
        if self.cfg.gradient == "backprop":
            # data were checked once, up front; the step comes out scaled by lr
            loss, steps = loss_and_gradient(params, xb, tb, activation=self.activation, xp=xp,
                                            scale=self.cfg.lr, rows_sum_to_one=True)
        else:
            net = self.net.with_params(params)
            grads = net.numerical_gradient(xb, tb, h=self.cfg.h)
            loss = net.loss(xb, tb)
            steps = {k: self.cfg.lr * g for k, g in grads.items()}
        return loss, {k: params[k] - steps[k] for k in params}

    def _evaluate(self, done: int, bar: Any) -> None:
        t0 = time.perf_counter()
        # the data were checked once, on the host: count without checking them again
        act, xp, params = activation_named(self.net.activation), self.b.xp, self.net.params
        train_acc = count_correct(params, self.x_train, self.t_train, activation=act, xp=xp) / self.n_train
        test_acc = count_correct(params, self.x_test, self.t_test, activation=act, xp=xp) / self.x_test.shape[0]
        # recorded together, once both exist: an interrupted evaluation leaves no trace
        self.history = self.history.with_evaluation(done, train_acc, test_acc)
        self.timings["eval_s"] += time.perf_counter() - t0
        bar.set_postfix(loss=f"{self.history.loss[-1]:.3f}", train=f"{train_acc:.4f}", test=f"{test_acc:.4f}",
                        refresh=False)

    def _check(self, pending: list[Any], history: collections.deque[dict[str, Any]], done: int) -> None:
        """Move pending losses to the host; stop on the first non-finite one."""
        if not pending:
            return
        values = [float(v) for v in to_numpy(self.b.xp.stack(pending))]
        first = done - len(values)
        pending.clear()
        for j, v in enumerate(values):
            if not math.isfinite(v):
                self.history.loss.extend(values[:j])
                self._diverged(first + j, v, history, done)
        self.history.loss.extend(values)

    def _diverged(self, it: int, value: float, history: collections.deque[dict[str, Any]], done: int) -> None:
        # history[-1] holds the parameters after `done` iterations; iteration `it`
        # (0-based) ran on history[-1 - (done - it)], the one before gave a finite loss
        self.net.params = history[max(-len(history), -2 - (done - it))]
        self._finish_timings()
        if self.history.loss:
            cause = (f"(the previous loss was {self.history.loss[-1]:.4g}). The likely cause is a learning rate too "
                     f"large for this network (lr={self.cfg.lr}); try lr={self.cfg.lr / 10:g}.")
        else:
            cause = ("on the first iteration, before any step was taken, so the learning rate is not the "
                     "cause: the data or the starting weights overflow in "
                     f"{self.cfg.dtype} (rescale the data, or use float64).")
        raise TrainingDivergedError(
            f"training diverged at iteration {it + 1}: the loss became {value} {cause} The parameters of the "
            "last finite loss are kept in the error's `.result.net`.",
            iteration=it + 1, result=self._result(interrupted=True),
        )

    def loop(self, checkpoint: Any, checkpoint_every: int) -> TrainResult:
        with stop_signals() as stop:
            try:
                self._iterate(checkpoint, checkpoint_every, stop)
                if stop and checkpoint is not None:
                    self._save(checkpoint, len(self.history.loss))  # the last state, whenever it stopped
            except CheckpointError as exc:
                self._finish_timings()
                exc.result = self._result(interrupted=True, stop_signal=stop.signal)
                raise
        self._finish_timings()
        return self._result(interrupted=bool(stop), stop_signal=stop.signal)

    def _iterate(self, checkpoint: Any, checkpoint_every: int, stop: StopRequest) -> None:
        from tqdm.auto import tqdm

        cfg = self.cfg
        self.t_start = time.perf_counter()
        params = self.net.params
        history: collections.deque[dict[str, Any]] = collections.deque([params], maxlen=CHECK_EVERY + 1)
        pending: list[Any] = []
        plan, block = self._plan(self.start // PLAN_BLOCK), self.start // PLAN_BLOCK
        bar = tqdm(total=cfg.iters, initial=self.start, disable=not cfg.progress, unit="it",
                   desc=f"train ({self.b.name})", dynamic_ncols=True)
        try:
            for i in range(self.start, cfg.iters):
                if stop:
                    break
                if i // PLAN_BLOCK != block:
                    block = i // PLAN_BLOCK
                    plan = self._plan(block)
                loss, params = self._step(params, plan[i % PLAN_BLOCK, ...])
                pending.append(loss)
                history.append(params)
                self.net.params = params
                bar.update(1)
                last = i == cfg.iters - 1
                evaluate = self.eval_every > 0 and (i % self.eval_every == 0 or last)
                save = checkpoint is not None and ((i + 1) % checkpoint_every == 0 or last)
                if len(pending) >= CHECK_EVERY or evaluate or save or last:
                    self._check(pending, history, i + 1)
                if evaluate:
                    self._evaluate(i + 1, bar)
                if save:
                    self._save(checkpoint, i + 1)
        except KeyboardInterrupt as exc:  # raised, not requested: a second signal, or Ctrl-C in a thread
            stop.signal = stop.signal or ("SIGTERM" if isinstance(exc, Terminated) else "SIGINT")
        finally:
            bar.close()
        if stop:
            logger.warning("%s: interrupted after %d iterations; returning the partial result", stop.signal,
                           len(self.history.loss) + len(pending))
            self._check(pending, history, len(self.history.loss) + len(pending))

    def _finish_timings(self) -> None:
        # wall time, not summed step times: a GPU runs the steps asynchronously
        # and finishes them at the next synchronisation (a loss check)
        self.timings["total_s"] = time.perf_counter() - self.t_start
        self.timings["train_s"] = self.timings["total_s"] - self.timings["eval_s"]

    def _save(self, path: Any, done: int) -> None:
        state = Checkpoint(self.net.params, done, replace(self.history, loss=list(self.history.loss)), self.data_id)
        save_checkpoint(path, state, self.cfg)

    def _result(self, *, interrupted: bool, stop_signal: str | None = None) -> TrainResult:

        done = len(self.history.loss) - self.start if self.history.loss else 0
        train_s = self.timings["train_s"]
        timings = {**self.timings, "iters_per_s": done / train_s if train_s > 0 else 0.0}
        return TrainResult(
            net=self.net, history=replace(self.history, loss=list(self.history.loss)), timings=timings,
            config=self.cfg.as_dict(), interrupted=interrupted, stop_signal=stop_signal,
        )
