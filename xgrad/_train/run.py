"""One training run: the data on the device, the loop over blocks of steps,
the history, checkpoints and the handling of divergence and stop signals.

:func:`xgrad.train` checks the settings and data, then hands them to a
:class:`Run`.
"""

from __future__ import annotations

import collections
import logging
import math
import os
import time
from dataclasses import replace
from typing import Any, NamedTuple

from xgrad._infra.backend import Backend, index_dtype
from xgrad._infra.host import to_numpy
from xgrad._infra.signals import StopRequest, Terminated, stop_signals
from xgrad._net.core import activation_named, count_correct, sgd_step, sgd_update
from xgrad._net.fused import Fuse, fused_ops
from xgrad._net.net import TwoLayerNet
from xgrad._numerics.descent import TrainingDivergedError
from xgrad._train.checkpoint import Checkpoint, CheckpointError, data_id, load_checkpoint, save_checkpoint
from xgrad._train.config import TrainConfig
from xgrad._train.data import host_floats, minibatch, train_data
from xgrad._train.record import History, TrainResult
from xgrad._train.stepper import stepper_for, will_compile

__all__ = ["CHECK_EVERY", "COMPILED_CHECK_EVERY", "MINIBATCH_STREAM", "PLAN_BLOCK", "Run"]

logger = logging.getLogger("xgrad")

PLAN_BLOCK = 1000  # iterations whose minibatch indices are drawn together
# the seed stream layout: block b of minibatch indices comes from the NumPy
# generator seeded [seed, MINIBATCH_STREAM, b], apart from the initial weights
# (seeded by `seed` alone), so resuming at any block redraws the same indices
MINIBATCH_STREAM = 1
CHECK_EVERY = 10  # iterations between looks at the loss (each one a host sync)
# the same for a compiled step, whose blocks are one program call each: the
# look costs about as much as a step, and a longer block amortises the call
COMPILED_CHECK_EVERY = 100


class _Block(NamedTuple):
    """A block of steps as it started: enough to step through it again."""

    first: int  # its first iteration (0-based)
    params: dict[str, Any]  # the parameters it started from
    plan: Any  # the plan block holding its minibatch indices, (PLAN_BLOCK, batch_size)
    row: int  # the plan's row of its first iteration


class Run:
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
        # blocks stepped but not looked at: (losses, first iteration); and the last
        # blocks as they started, enough to step again to the last finite loss
        self._pending: list[tuple[Any, int]] = []
        self._blocks: collections.deque[_Block] = collections.deque(maxlen=3)
        self._check_every = CHECK_EVERY
        self._fuse: Fuse | None = None  # fused elementwise kernels: a compiled step on CuPy

    def restore(self, path: str | os.PathLike[str]) -> None:
        """Continue the run saved at `path`: its parameters, iterations and record."""
        state = load_checkpoint(path, self.cfg, self.b, self.net, self.data_id, history=self.history)
        self.net.params, self.start, self.history = state.params, state.iteration, state.history
        if state.made_on is not None and state.made_on != self._where():  # the same maths, other rounding
            logger.warning("resuming %s: its first %d iterations ran on %s, the rest on %s; losses may differ "
                           "from a run on one backend in the last bits", self.cfg.dataset, self.start,
                           state.made_on, self._where())
        logger.info("resumed from iteration %d", self.start)

    def _where(self) -> str:
        return f"{self.b.name} ({self.b.device_name})"

    def _plan(self, block: int) -> Any:
        import numpy as np  # minibatch indices are drawn on the host, moved once per block

        rng = np.random.default_rng([self.cfg.seed, MINIBATCH_STREAM, block])
        idx = rng.integers(0, self.n_train, size=(PLAN_BLOCK, self.cfg.batch_size))
        return self.b.asarray(idx, dtype=index_dtype(self.b.xp, self.b.device))

    def _step(self, params: dict[str, Any], idx: Any, *data: Any) -> tuple[Any, dict[str, Any]]:
        """One SGD step on the training rows `idx`. `data` are the training
        set's images, labels and one-hot table when a compiled step passes
        them as arguments; by default the run's own."""
        xp = self.b.xp
        images, labels, eye = data or (self.data.images, self.data.labels, self.data.eye)
        xb, tb = minibatch(images, labels, eye, idx, levels=self.data.levels, dtype=self.data.dtype, xp=xp)
        if self.cfg.gradient == "backprop":  # data were checked once, up front
            return sgd_step(params, xb, tb, lr=self.cfg.lr, activation=self.activation, xp=xp,
                            rows_sum_to_one=True, fuse=self._fuse)
        net = self.net.with_params(params)
        grads = net.numerical_gradient(xb, tb, h=self.cfg.h)
        loss = net.loss(xb, tb)
        return loss, sgd_update(params, grads, lr=self.cfg.lr)

    def _stepper(self, stop: StopRequest, plan: Any) -> tuple[Any, bool]:
        """The block stepper of the run, and whether it compiles (the numerical
        gradient checks its inputs on the host, so never does)."""
        compile_step = self.cfg.compile_step if self.cfg.gradient == "backprop" else False
        compiled = will_compile(self.b.name, compile_step)
        self._check_every = COMPILED_CHECK_EVERY if compiled else CHECK_EVERY
        self._fuse = fused_ops(self.b.xp) if compiled else None  # None but on CuPy
        # a CUDA graph is captured on a block's indices; a slice on JAX would compile a program
        example = plan[:self._check_every, ...] if compiled and self.b.name != "jax" else None
        stepper = stepper_for(self.b, self._step, compile_step=compile_step, length=self._check_every,
                              params=self.net.params, idx_example=example, stop=stop,
                              data=(self.data.images, self.data.labels, self.data.eye))
        return stepper, compiled

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

    def _check(self, *, keep: int = 0) -> None:
        """Move the losses of the pending blocks but the last `keep` to the host;
        stop on the first non-finite one."""
        if len(self._pending) <= keep:
            return
        due = self._pending[:len(self._pending) - keep]
        # joined on the host: a join on the device (JAX) compiles a program per pair of lengths
        values = [float(v) for losses, _ in due for v in to_numpy(losses)]
        first = due[0][1]
        del self._pending[:len(due)]
        for j, v in enumerate(values):
            if not math.isfinite(v):
                self.history.loss.extend(values[:j])
                self._diverged(first + j, v)
        self.history.loss.extend(values)

    def _replay(self, it: int) -> dict[str, Any]:
        """The parameters iteration `it` (0-based) ran on, stepped again from the
        start of its block (the steps are deterministic); before the first block
        held, that block's start."""
        for first, params, plan, row in reversed(self._blocks):
            if first <= it:
                for r in range(row, row + it - first):
                    _, params = self._step(params, plan[r, ...])
                return params
        return self._blocks[0].params

    def _diverged(self, it: int, value: float) -> None:
        # iteration `it` (0-based) gave a non-finite loss; the one before gave a finite loss
        self.net.params = self._replay(it - 1)
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
        every = checkpoint_every if checkpoint is not None else 0
        i, block = self.start, self.start // PLAN_BLOCK
        plan = self._plan(block)
        bar = tqdm(total=cfg.iters, initial=self.start, disable=not cfg.progress, unit="it",
                   desc=f"train ({self.b.name})", dynamic_ncols=True)
        try:
            stepper, compiled = self._stepper(stop, plan)
            while i < cfg.iters and not stop:
                if i // PLAN_BLOCK != block:
                    block = i // PLAN_BLOCK
                    plan = self._plan(block)
                end = self._block_end(i, every)
                row = i % PLAN_BLOCK
                self._blocks.append(_Block(i, self.net.params, plan, row))
                losses, self.net.params = stepper(self.net.params, plan, row, row + end - i)
                self._pending.append((losses, i))
                bar.update(losses.shape[0])
                if i + losses.shape[0] < end:  # the stepper stopped on a request
                    break
                i = end
                evaluate = self.eval_every > 0 and ((i - 1) % self.eval_every == 0 or i == cfg.iters)
                save = every > 0 and (i % every == 0 or i == cfg.iters)
                # a compiled block's losses are looked at while the next block runs
                # (the device computes on meanwhile); all of them before an
                # evaluation, a checkpoint or the end
                self._check(keep=0 if evaluate or save or i == cfg.iters or not compiled else 1)
                if evaluate:
                    self._evaluate(i, bar)
                if save:
                    self._save(checkpoint, i)
        except KeyboardInterrupt as exc:  # raised, not requested: a second signal, or Ctrl-C in a thread
            stop.signal = stop.signal or ("SIGTERM" if isinstance(exc, Terminated) else "SIGINT")
        finally:
            bar.close()
        if stop:
            logger.warning("%s: interrupted after %d iterations; returning the partial result", stop.signal,
                           len(self.history.loss) + sum(losses.shape[0] for losses, _ in self._pending))
            self._check()

    def _block_end(self, i: int, checkpoint_every: int) -> int:
        """Where the block from iteration `i` (0-based) ends: before the next look
        at the losses (every CHECK_EVERY iterations, COMPILED_CHECK_EVERY when
        compiled), evaluation, checkpoint, block of the plan, or the end."""
        end = min(i + self._check_every, self.cfg.iters, (i // PLAN_BLOCK + 1) * PLAN_BLOCK)
        if self.eval_every > 0:  # evaluations after iterations 0, e, 2e, ... (0-based)
            end = min(end, -(-i // self.eval_every) * self.eval_every + 1)
        if checkpoint_every:
            end = min(end, (i // checkpoint_every + 1) * checkpoint_every)
        return end

    def _finish_timings(self) -> None:
        # wall time, not summed step times: a GPU runs the steps asynchronously
        # and finishes them at the next synchronisation (a loss check)
        self.timings["total_s"] = time.perf_counter() - self.t_start
        self.timings["train_s"] = self.timings["total_s"] - self.timings["eval_s"]

    def _save(self, path: Any, done: int) -> None:
        state = Checkpoint(self.net.params, done, replace(self.history, loss=list(self.history.loss)), self.data_id,
                           self._where())
        save_checkpoint(path, state, self.cfg)

    def _result(self, *, interrupted: bool, stop_signal: str | None = None) -> TrainResult:

        done = len(self.history.loss) - self.start if self.history.loss else 0
        train_s = self.timings["train_s"]
        timings = {**self.timings, "iters_per_s": done / train_s if train_s > 0 else 0.0}
        return TrainResult(
            net=self.net, history=replace(self.history, loss=list(self.history.loss)), timings=timings,
            config=self.cfg.as_dict(), interrupted=interrupted, stop_signal=stop_signal,
        )
