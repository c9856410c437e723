"""Training the two-layer network with minibatch SGD on any backend."""

from __future__ import annotations

import logging
import os
from typing import Any

from xgrad._infra.backend import Backend, quiet_overflow, resolve_backend
from xgrad._infra.threads import thread_limits
from xgrad._net.net import TwoLayerNet
from xgrad._train.config import TrainConfig, auto_threads, check_settings, current_keywords, hold_out, prepare_data
from xgrad._train.network import check_net, net_backend
from xgrad._train.record import TrainResult
from xgrad._train.run import Run
from xgrad._train.settings import describe
from xgrad._train.stepper import will_compile

__all__ = ["TrainResult", "train"]

logger = logging.getLogger("xgrad")

@describe
def train(backend: str | Backend = "auto", **settings: Any) -> TrainResult:
    """Train the chapter's two-layer network with minibatch SGD.

    Every setting is declared once, in a record (``xgrad train --help`` lists
    them with their defaults); `activation`, `hidden_size`, `dtype` and
    `weight_init_std` default to None, meaning the record's default for a new
    network and the network's own with `net`.

    Parameters
    ----------
    (each setting of the record, with its default)

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
    compiled step: after the current block, at most a thousand steps): the
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
    s = check_settings(current_keywords({"backend": backend, **settings}))
    cfg = TrainConfig.of(s)
    net, checkpoint, device = s["net"], s["checkpoint"], s["device"]
    b = resolve_backend(backend, device=device) if net is None else net_backend(net, backend, device)
    will_compile(b.name, cfg.compile_step)  # refused before the data are read
    train_set, (x_test, t_test) = prepare_data(cfg, s["data"], s["data_dir"])
    (x_train, t_train), val = hold_out(cfg, s["validation"], train_set)
    if net is None:
        assert cfg.weight_init_std is not None  # set for a new network
        net = TwoLayerNet(x_train.shape[1], cfg.hidden_size, cfg.output_size, activation=cfg.activation,
                          weight_init_std=cfg.weight_init_std, dtype=cfg.dtype, xp=b.xp, device=b.device,
                          seed=cfg.seed)
    else:
        check_net(net, x_train.shape[1])
    n_threads = auto_threads(cfg, b, net.sizes) if s["threads"] == "auto" else s["threads"]
    run = Run(cfg, b, net, x_train, t_train, x_test, t_test, validation=val)
    if s["resume"] and checkpoint is not None and os.path.exists(checkpoint):
        run.restore(checkpoint)
    elif s["resume"]:
        logger.info("no checkpoint at %s yet: starting a new run", os.fspath(checkpoint or ""))
    with thread_limits(n_threads, backend=b), quiet_overflow(b):  # divergence is detected and reported
        return run.loop(checkpoint, s["checkpoint_every"])
