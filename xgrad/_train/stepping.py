"""Stepping a training run: its SGD step, the block stepper that runs it, the
losses of the blocks not yet looked at, and the replay to the last finite loss.

The step is the core's (:func:`xgrad._net.core.sgd_step`, or the numerical
gradient then :func:`~xgrad._net.core.sgd_update`) on a minibatch of the
training data on the device; a block stepper (:mod:`xgrad._train.stepper`)
runs it eagerly, as one ``jax.jit`` program or from a CUDA graph. The losses
of a block stay on the device until the loop looks at them, a few blocks at a
time; when one is not finite, the parameters of the last finite loss are
found again by stepping through its block once more (the steps are
deterministic), with the stepper that ran it: a compiled run replays a
thousand steps in the time of its program's block (a quarter of a second for
the book's network), not a second or more of steps run one by one, and gets
the parameters it held, not those of the eager step, which rounds otherwise.
"""

from __future__ import annotations

import collections
import functools
import math
from typing import Any, NamedTuple

from xgrad._infra.backend import Backend, library
from xgrad._infra.host import to_numpy
from xgrad._infra.signals import StopRequest
from xgrad._infra.typing import Array
from xgrad._net.core import activation_named, sgd_step, sgd_stepper, sgd_update
from xgrad._net.fused import fused_ops
from xgrad._net.net import TwoLayerNet
from xgrad._train.config import TrainConfig
from xgrad._train.data import TrainData, batcher, minibatch
from xgrad._train.plan import PLAN_BLOCK
from xgrad._train.stepper import BlockStepper, stepper_for, will_compile

__all__ = ["CHECK_EVERY", "COMPILED_CHECK_EVERY", "Stepping"]

CHECK_EVERY = 10
"""Iterations between looks at the loss (each one a host sync)."""
COMPILED_CHECK_EVERY = PLAN_BLOCK
"""The same for a compiled step, whose blocks are one program call each: a
block of the plan at a time. Each call and look stops the program and wakes
the host (and XLA's threads); on a busy machine, 100-step blocks trained
about a quarter slower than 1,000-step ones."""


class _Block(NamedTuple):
    """A block of steps as it started: enough to step through it again."""

    first: int  # its first iteration (0-based)
    params: dict[str, Any]  # the parameters it started from
    plan: Any  # the plan block holding its minibatch indices, (PLAN_BLOCK, batch_size)
    row: int  # the plan's row of its first iteration


class Stepping:
    """The steps of a run with settings `cfg` on `b`, training `net` on `data`.

    Attributes
    ----------
    compiled : bool
        Whether the step runs compiled (never with the numerical gradient,
        which checks its inputs on the host).
    check_every : int
        The longest block: :data:`CHECK_EVERY`, :data:`COMPILED_CHECK_EVERY`
        when compiled.
    """

    def __init__(self, cfg: TrainConfig, b: Backend, net: TwoLayerNet, data: TrainData) -> None:
        self.cfg, self.b, self.net, self.data = cfg, b, net, data
        self.activation = activation_named(net.activation)
        self._compile_step = cfg.compile_step if cfg.gradient == "backprop" else False
        self.compiled = will_compile(b.name, self._compile_step)
        self.check_every = COMPILED_CHECK_EVERY if self.compiled else CHECK_EVERY
        self._fuse = fused_ops(b.xp) if self.compiled else None  # fused elementwise kernels: None but on CuPy
        self._take = library(b.name).gather  # a minibatch's rows, where xp.take costs more
        # the step's settings and arrays bound once: an eager step is a few hundred microseconds on NumPy
        self._batch = functools.partial(minibatch, levels=data.levels, dtype=data.dtype, xp=b.xp, take=self._take)
        self._own_batch = batcher(data, library(b.name))
        self._sgd = sgd_stepper(lr=cfg.lr, activation=self.activation, xp=b.xp, rows_sum_to_one=True,
                                fuse=self._fuse, keep_ones=not self.compiled) if cfg.gradient == "backprop" else None
        self._stepper: BlockStepper | None = None
        # blocks stepped but not looked at: (losses, first iteration, steps: the
        # losses' first entries); and the last blocks as they started, enough
        # to step again to the last finite loss
        self._pending: list[tuple[Array, int, int]] = []
        self._blocks: collections.deque[_Block] = collections.deque(maxlen=3)
        self.compile_s = 0.0  # seconds spent compiling the step (none when compiled before)

    def step(self, params: dict[str, Any], idx: Array, *data: Array) -> tuple[Array, dict[str, Any]]:
        """One SGD step on the training rows `idx`: its loss and the new parameters.

        `data` are the training set's images, labels and one-hot table when a
        compiled step passes them as arguments; by default the run's own.
        """
        if data:
            images, labels, eye = data
            xb, tb = self._batch(images, labels, eye, idx)
        else:
            xb, tb = self._own_batch(idx)
        if self._sgd is not None:  # backprop: data were checked once, up front
            return self._sgd(params, xb, tb)
        net = self.net.with_params(params)
        grads = net.numerical_gradient(xb, tb, h=self.cfg.h)
        loss = net.loss(xb, tb)
        return loss, sgd_update(params, grads, lr=self.cfg.lr)

    def start(self, params: dict[str, Any], plan: Array, stop: StopRequest) -> None:
        """Choose the block stepper, before the first block: a CUDA graph is
        captured from `params` and the indices of `plan`, a block of the plan."""
        # a slice on JAX would compile a program
        jit = self.compiled and library(self.b.name).compiler == "jit"
        example = plan[:self.check_every, ...] if self.compiled and not jit else None
        # jitted: the same function for the same settings, so that a later run reuses the program
        step = _jit_step(self.cfg.lr, self.activation.name, self.data.levels, self.data.dtype, self.b.xp,
                         self._take) if jit else self.step
        self._stepper = stepper_for(self.b, step, compile_step=self._compile_step, length=self.check_every,
                                    params=params, idx_example=example, stop=stop,
                                    data=(self.data.images, self.data.labels, self.data.eye),
                                    on_compile=self._compiled, padded=True)

    def _compiled(self, seconds: float) -> None:
        self.compile_s += seconds

    def advance(self, params: dict[str, Any], plan: Array, row: int, first: int, end: int
                ) -> tuple[dict[str, Any], int]:
        """Step iterations `first` to `end` (0-based, `end` excluded) on the rows of
        `plan` from `row`: the new parameters, and the steps done (fewer than
        asked when a stop request ended the block). Their losses wait to be
        looked at (:meth:`look`)."""
        assert self._stepper is not None, "start() chooses the stepper first"
        self._blocks.append(_Block(first, params, plan, row))
        losses, params = self._stepper(params, plan, row, row + end - first)
        # a compiled block's losses come padded to the program's room: cut when looked at
        done = min(int(losses.shape[0]), end - first)
        self._pending.append((losses, first, done))
        return params, done

    def pending(self) -> int:
        """Steps done whose losses were not looked at yet."""
        return sum(done for _, _, done in self._pending)

    def look(self, *, keep: int = 0) -> tuple[list[float], tuple[int, float] | None]:
        """The losses of the pending blocks but the last `keep`, moved to the
        host, up to the first one that is not finite; and that one, as
        ``(iteration, value)`` (0-based), or None when all are finite."""
        if len(self._pending) <= keep:
            return [], None
        due = self._pending[:len(self._pending) - keep]
        # joined on the host: a join on the device (JAX) compiles a program per pair of lengths
        values = [v for losses, _, done in due for v in to_numpy(losses)[:done].tolist()]  # Python floats
        first = due[0][1]
        del self._pending[:len(due)]
        for j, v in enumerate(values):
            if not math.isfinite(v):
                return values[:j], (first + j, v)
        return values, None

    def replay(self, it: int) -> dict[str, Any]:
        """The parameters iteration `it` (0-based) ran on, stepped again from the
        start of its block; before the first block held, that block's start.

        A compiled run steps again through its own program (the parameters it
        held, bit for bit, and no step run eagerly); the others step by step.
        """
        for first, params, plan, row in reversed(self._blocks):
            if first <= it:
                if self.compiled and it > first:
                    assert self._stepper is not None
                    losses, stepped = self._stepper(params, plan, row, row + it - first)
                    if int(losses.shape[0]) >= it - first:  # not an eager stepper stopped on a request
                        return stepped
                for r in range(row, row + it - first):
                    _, params = self.step(params, plan[r, ...])
                return params
        return self._blocks[0].params


@functools.lru_cache(maxsize=8)
def _jit_step(lr: float, activation: str, levels: bool, dtype: Any, xp: Any, take: Any) -> Any:
    """:meth:`Stepping.step` for a compiled program, the training set as
    arguments: one function object per setting, holding no data, so that a
    program compiled for it serves every run with these settings."""
    act = activation_named(activation)

    def step(params: dict[str, Any], idx: Array, images: Array, labels: Array, eye: Array
             ) -> tuple[Array, dict[str, Any]]:
        xb, tb = minibatch(images, labels, eye, idx, levels=levels, dtype=dtype, xp=xp, take=take, traced=True)
        # XLA fuses W - lr * g into the update: the faster form there (10% a step)
        return sgd_step(params, xb, tb, lr=lr, activation=act, xp=xp, rows_sum_to_one=True, lr_on_update=True)

    return step
