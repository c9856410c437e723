"""One training run: the loop over blocks of steps, and the pieces it composes.

:func:`xgrad.train` checks the settings and data, then hands them to a
:class:`Run`. Its loop takes each block's indices from the minibatch plan
(:mod:`xgrad._train.plan`), steps through the block
(:class:`~xgrad._train.stepping.Stepping`), records the losses, evaluates
(:func:`evaluate`) and saves (:class:`Checkpoints`) when due, times the run
(:class:`Timer`), and stops on a non-finite loss or a stop signal with the
result so far. The data are moved to the device once (:func:`device_data`).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import array_api_compat

from xgrad._infra.backend import Backend, index_dtype
from xgrad._infra.signals import StopRequest, Terminated, stop_signals
from xgrad._infra.typing import Array
from xgrad._net.core import activation_named, count_correct, forward, mean_loss
from xgrad._net.net import TwoLayerNet
from xgrad._train.checkpoint import Checkpoint, CheckpointError, data_id, load_checkpoint, save_checkpoint
from xgrad._train.config import TrainConfig
from xgrad._train.data import TrainData, host_floats, train_data
from xgrad._train.errors import TrainingDivergedError
from xgrad._train.plan import MinibatchPlan, block_end
from xgrad._train.record import History, TrainResult
from xgrad._train.stepping import Stepping

__all__ = ["Checkpoints", "DeviceData", "Run", "Timer", "device_data", "evaluate", "evaluate_validation"]

logger = logging.getLogger("xgrad")


@dataclass(frozen=True, eq=False)
class DeviceData:
    """A run's data on its device, moved there once: the training set as the
    steps read it, the sets as numbers for the evaluations (the validation
    set None without one), and the data's fingerprint
    (:func:`~xgrad._train.checkpoint.data_id`)."""

    train: TrainData
    x_train: Array
    t_train: Array
    x_test: Array
    t_test: Array
    fingerprint: dict[str, Any]
    x_val: Array | None = None
    t_val: Array | None = None

    @property
    def n_train(self) -> int:
        return int(self.x_train.shape[0])


def device_data(cfg: TrainConfig, b: Backend, net: TwoLayerNet, x_train: Any, t_train: Any, x_test: Any,
                t_test: Any, validation: tuple[Any, Any] | None = None) -> DeviceData:
    """The checked host data of a run, on `b`'s device: images in the
    network's dtype, labels as class indices; `validation` is ``(x_val,
    t_val)`` or None."""
    to = lambda a, dt: b.asarray(a, dtype=dt)  # noqa: E731  (host -> device, once)
    labels = index_dtype(b.xp, b.device)
    source, x_train, x_test = x_train, host_floats(x_train), host_floats(x_test)  # evaluations read numbers
    x_dev, t_dev = to(x_train, net.dtype), to(t_train, labels)
    fingerprint = data_id(x_train, t_train, x_test, t_test)
    x_val = t_val = None
    if validation is not None:
        x_val, t_val = to(validation[0], net.dtype), to(validation[1], labels)
        x_val_host, t_val_host = validation  # fingerprinted as a training set beside an empty test set
        fingerprint["validation"] = data_id(x_val_host, t_val_host, x_val_host[:0], t_val_host[:0])
    return DeviceData(train_data(b, source, x_dev, t_dev, n_classes=cfg.output_size), x_dev, t_dev,
                      to(x_test, net.dtype), to(t_test, labels), fingerprint, x_val, t_val)


def evaluate(net: TwoLayerNet, data: DeviceData) -> tuple[float, float]:
    """The network's accuracy on the training set and on the test set."""
    # the data were checked once, on the host: count without checking them again
    act, xp, params = activation_named(net.activation), data.train.xp, net.params
    train_acc = count_correct(params, data.x_train, data.t_train, activation=act, xp=xp) / data.n_train
    test_acc = count_correct(params, data.x_test, data.t_test, activation=act, xp=xp) / data.x_test.shape[0]
    return train_acc, test_acc


def evaluate_validation(net: TwoLayerNet, data: DeviceData, chunk_size: int = 10_000) -> tuple[float, float] | None:
    """The network's accuracy and mean cross-entropy on the validation set (None without one)."""
    x, t = data.x_val, data.t_val
    if x is None or t is None:
        return None
    act, xp, params = activation_named(net.activation), data.train.xp, net.params
    correct = xp.zeros((), dtype=t.dtype, device=array_api_compat.device(x))
    total = 0.0
    for s in range(0, x.shape[0], chunk_size):  # one forward pass per chunk gives both numbers
        e = min(s + chunk_size, x.shape[0])
        scores = forward(params, x[s:e, ...], activation=act, xp=xp).scores
        correct = correct + xp.sum(xp.astype(xp.argmax(scores, axis=1) == t[s:e], t.dtype))
        total += float(mean_loss(scores, xp.take(data.train.eye, t[s:e], axis=0), xp=xp)) * (e - s)  # size-weighted
    return int(correct) / x.shape[0], total / x.shape[0]


class Checkpoints:
    """Saving a run's state and reading it back: each file holds the settings
    `cfg`, the data's `fingerprint` and `where` the run computed."""

    def __init__(self, cfg: TrainConfig, fingerprint: dict[str, Any], where: str) -> None:
        self.cfg, self.fingerprint, self.where = cfg, fingerprint, where

    def save(self, path: str | os.PathLike[str], params: dict[str, Any], history: History) -> None:
        """Write the parameters after ``len(history.loss)`` iterations, and the history."""
        state = Checkpoint(params, len(history.loss), _snapshot(history), self.fingerprint, self.where)
        save_checkpoint(path, state, self.cfg)

    def load(self, path: str | os.PathLike[str], b: Backend, net: TwoLayerNet, history: History) -> Checkpoint:
        """The state saved at `path`, checked against this run, its losses and
        evaluations in the run's `history`."""
        state = load_checkpoint(path, self.cfg, b, net, self.fingerprint, history=history)
        if state.made_on is not None and state.made_on != self.where:  # the same maths, other rounding
            logger.warning("resuming %s: its first %d iterations ran on %s, the rest on %s; losses may differ "
                           "from a run on one backend in the last bits", self.cfg.dataset, state.iteration,
                           state.made_on, self.where)
        return state


class Timer:
    """A run's wall time: in total, evaluating, and training (the rest).

    Wall time, not summed step times: a GPU runs the steps asynchronously and
    finishes them at the next synchronisation (a loss check).
    """

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.total_s = self.eval_s = 0.0

    def restart(self) -> None:
        self.t0 = time.perf_counter()

    @contextmanager
    def evaluating(self) -> Iterator[None]:
        """Time an evaluation (one interrupted counts for nothing)."""
        t0 = time.perf_counter()
        yield
        self.eval_s += time.perf_counter() - t0

    def finish(self) -> None:
        self.total_s = time.perf_counter() - self.t0

    def timings(self, steps: int, compile_s: float = 0.0) -> dict[str, float]:
        """Seconds training, evaluating and in total at the last :meth:`finish`,
        training `steps` per second, and `compile_s`, the part of the training
        seconds spent compiling the step."""
        train_s = self.total_s - self.eval_s
        return {"train_s": train_s, "eval_s": self.eval_s, "total_s": self.total_s,
                "iters_per_s": steps / train_s if train_s > 0 else 0.0, "compile_s": compile_s}


def _snapshot(history: History) -> History:
    """`history` as it is now (the loop goes on adding losses to its list)."""
    return replace(history, loss=list(history.loss))


class Run:
    """One training run: its pieces, its record so far, and the loop."""

    def __init__(self, cfg: TrainConfig, b: Backend, net: TwoLayerNet, x_train: Any, t_train: Any,
                 x_test: Any, t_test: Any, *, validation: tuple[Any, Any] | None = None) -> None:
        self.cfg, self.b, self.net = cfg, b, net
        self.data = device_data(cfg, b, net, x_train, t_train, x_test, t_test, validation)
        self.plan = MinibatchPlan(seed=cfg.seed, n_train=self.data.n_train, batch_size=cfg.batch_size, backend=b)
        self.stepping = Stepping(cfg, b, net, self.data.train)
        self.checkpoints = Checkpoints(cfg, self.data.fingerprint, f"{b.name} ({b.device_name})")
        self.timer = Timer()
        iters_per_epoch = max(self.data.n_train // cfg.batch_size, 1)
        self.eval_every = iters_per_epoch if cfg.eval_every is None else cfg.eval_every
        self.start = 0
        self.history = History(iters_per_epoch=iters_per_epoch, backend=b.name, device=b.device_name,
                               dtype=str(cfg.dtype))

    def restore(self, path: str | os.PathLike[str]) -> None:
        """Continue the run saved at `path`: its parameters, iterations and record."""
        state = self.checkpoints.load(path, self.b, self.net, self.history)
        self.net.params, self.start, self.history = state.params, state.iteration, state.history
        logger.info("resumed from iteration %d", self.start)

    def loop(self, checkpoint: Any, checkpoint_every: int) -> TrainResult:
        """Train from iteration `start` to ``cfg.iters``, saving to `checkpoint`
        every `checkpoint_every` iterations, at the end and when stopped."""
        with stop_signals() as stop:
            try:
                self._iterate(checkpoint, checkpoint_every if checkpoint is not None else 0, stop)
                if stop and checkpoint is not None:  # the last state, whenever it stopped
                    self.checkpoints.save(checkpoint, self.net.params, self.history)
            except CheckpointError as exc:
                self.timer.finish()
                exc.result = self._result(interrupted=True, stop_signal=stop.signal)
                raise
        self.timer.finish()
        return self._result(interrupted=bool(stop), stop_signal=stop.signal)

    def _iterate(self, checkpoint: Any, every: int, stop: StopRequest) -> None:
        from tqdm.auto import tqdm

        cfg = self.cfg
        iters = cfg.iters  # read once: the config looks its settings up by name
        self.timer.restart()
        i = self.start
        bar = tqdm(total=iters, initial=self.start, disable=not cfg.progress, unit="it",
                   desc=f"train ({self.b.name})", dynamic_ncols=True)
        try:
            self.stepping.start(self.net.params, self.plan.rows(i)[0], stop)
            while i < iters and not stop:
                plan, row = self.plan.rows(i)
                end = self._block_end(i, every)
                self.net.params, done = self.stepping.advance(self.net.params, plan, row, i, end)
                bar.update(done)
                if i + done < end:  # the stepper stopped on a request
                    break
                i = end
                evaluate_now = self.eval_every > 0 and ((i - 1) % self.eval_every == 0 or i == iters)
                save = every > 0 and (i % every == 0 or i == iters)
                # a compiled block's losses are looked at while the next block runs
                # (the device computes on meanwhile); all of them before an
                # evaluation, a checkpoint or the end
                last = evaluate_now or save or i == iters or not self.stepping.compiled
                self._look(keep=0 if last else 1)
                if evaluate_now:
                    self._evaluate(i, bar)
                if save:
                    self.checkpoints.save(checkpoint, self.net.params, self.history)
        except KeyboardInterrupt as exc:  # raised, not requested: a second signal, or Ctrl-C in a thread
            stop.signal = stop.signal or ("SIGTERM" if isinstance(exc, Terminated) else "SIGINT")
        finally:
            bar.close()
        if stop:
            logger.warning("%s: interrupted after %d iterations; returning the partial result", stop.signal,
                           len(self.history.loss) + self.stepping.pending())
            self._look()

    def _block_end(self, i: int, checkpoint_every: int) -> int:
        """Where the block from iteration `i` (0-based) ends: before the next look
        at the losses (``stepping.check_every``), evaluation, checkpoint, block
        of the plan, or the end."""
        end = min(i + self.stepping.check_every, self.cfg.iters, block_end(i))
        if self.eval_every > 0:  # evaluations after iterations 0, e, 2e, ... (0-based)
            end = min(end, -(-i // self.eval_every) * self.eval_every + 1)
        if checkpoint_every:
            end = min(end, (i // checkpoint_every + 1) * checkpoint_every)
        return end

    def _look(self, *, keep: int = 0) -> None:
        """Record the losses of the blocks stepped but the last `keep`; stop on
        the first that is not finite."""
        values, bad = self.stepping.look(keep=keep)
        self.history.loss.extend(values)
        if bad is not None:
            self._diverged(*bad)

    def _evaluate(self, done: int, bar: Any) -> None:
        with self.timer.evaluating():
            train_acc, test_acc = evaluate(self.net, self.data)
            val = evaluate_validation(self.net, self.data)
            # recorded together, once all exist: an interrupted evaluation leaves no trace
            self.history = self.history.with_evaluation(done, train_acc, test_acc, *(val or ()))
        shown = {} if val is None else {"val": f"{val[0]:.4f}"}
        bar.set_postfix(loss=f"{self.history.loss[-1]:.3f}", train=f"{train_acc:.4f}", **shown,
                        test=f"{test_acc:.4f}", refresh=False)

    def _diverged(self, it: int, value: float) -> None:
        # iteration `it` (0-based) gave a non-finite loss; the one before gave a finite loss
        self.net.params = self.stepping.replay(it - 1)
        self.timer.finish()
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

    def _result(self, *, interrupted: bool, stop_signal: str | None = None) -> TrainResult:
        history = _snapshot(self.history)
        timings = self.timer.timings(len(history.loss) - self.start, self.stepping.compile_s)
        return TrainResult(net=self.net, history=history, timings=timings,
                           config=self.cfg.as_dict(), interrupted=interrupted, stop_signal=stop_signal)
