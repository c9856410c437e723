"""Block steppers: several SGD steps per call, run eagerly or compiled.

A *step* is ``step(params, idx) -> (loss, params)``: one SGD step on the
minibatch of training rows `idx`. A *block stepper* is
``run(params, plan, start, stop) -> (losses, params)``: the steps of the rows
``plan[start:stop]`` of a plan of minibatch indices (``(rows, batch_size)``
on the device), one after another, with their losses as a 1-D array. The
training loop advances one block at a time and looks at the losses between
blocks, so a stepper is free to run a block as one compiled program; it
reads its rows from the plan itself, so that a compiled block needs no
other program (a slice, a padding) run before or after it.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import array_api_compat

from xgrad._infra.backend import LIBRARIES, library
from xgrad._infra.host import to_numpy
from xgrad._infra.signals import StopRequest, Terminated
from xgrad._infra.typing import Array

logger = logging.getLogger("xgrad")

__all__ = ["COMPILING_BACKENDS", "BlockStepper", "Step", "eager_stepper", "jax_stepper", "stepper_for",
           "will_compile"]

Step = Callable[[Any, Array], tuple[Array, Any]]
BlockStepper = Callable[[Any, Array, int, int], tuple[Array, Any]]

COMPILING_BACKENDS = tuple(name for name, lib in LIBRARIES.items() if lib.compiler)
"""Backends whose training step can be compiled (``compile_step=True``)."""


def will_compile(backend: str, compile_step: bool | None) -> bool:
    """Whether a run on `backend` compiles its step; a ValueError where it cannot.

    Examples
    --------
    >>> will_compile("jax", None), will_compile("numpy", None), will_compile("jax", False)
    (True, False, False)
    """
    lib = library(backend)
    if compile_step is None:
        return lib.compiles_by_default
    if compile_step and not lib.compiler:
        raise ValueError(f"`compile_step` is True, but only {' and '.join(map(repr, COMPILING_BACKENDS))} "
                         f"compile the training step, not {backend!r}; leave `compile_step` at None "
                         "(compile where it helps) or pass False")
    return bool(compile_step)


def eager_stepper(step: Step, *, xp: Any, stop: StopRequest | None = None,
                  join: Callable[[list[Array]], Array] | None = None) -> BlockStepper:
    """Call `step` once per row, from Python (every backend can).

    With `stop`, a stop request ends the block after the current step, and a
    KeyboardInterrupt raised inside a step ends it before that step, noted in
    `stop`: the losses returned are then fewer than the rows. `join` makes
    the block's losses (0-d arrays) one 1-D array, the same as ``xp.stack``
    in less time (the backend table's ``join``); None: ``xp.stack``.

    Examples
    --------
    >>> import numpy as np
    >>> step = lambda params, idx: (np.float32(params) * 2, params + 1)
    >>> eager_stepper(step, xp=np, join=np.array)(1, np.zeros((4, 2)), 1, 4)
    (array([2., 4., 6.], dtype=float32), 4)
    """
    join = join or xp.stack

    def run(params: Any, plan: Array, start: int, end: int) -> tuple[Array, Any]:
        losses = []
        for r in range(start, end):
            if r > start and stop:
                break
            try:
                loss, params = step(params, plan[r, ...])
            except KeyboardInterrupt as exc:  # raised, not requested: a second signal
                if stop is None:
                    raise
                stop.signal = stop.signal or ("SIGTERM" if isinstance(exc, Terminated) else "SIGINT")
                break
            losses.append(loss)
        if not losses:
            return xp.zeros((0,), device=array_api_compat.device(plan)), params
        return join(losses), params

    return run


def jax_stepper(step: Callable[..., tuple[Array, Any]], *, length: int, data: tuple[Array, ...] = (),
                on_compile: Callable[[float], None] | None = None, padded: bool = False) -> BlockStepper:
    """One ``jax.jit``-compiled loop over the rows of a block.

    The program reads the block's rows from the plan (their start and number
    are arguments) and has room for the losses of `length` steps, so a run
    compiles it once whatever the offsets and lengths of its blocks (a block
    longer than `length` compiles once more for its own length). The losses
    of a shorter block are cut to its rows on the host: cutting them on the
    device would compile a program for each length. With `padded`, they are
    not cut: the losses come as the program's array of room, the block's in
    its first ``stop - start`` entries, and the cut is the caller's, when it
    moves them to the host anyway; the call then returns at once, without
    waiting for the block to finish.

    `data` (the training set) is given to the compiled program as arguments,
    and to `step` as ``step(params, idx, *data)``, rather than built into the
    program as constants, which would take seconds to compile for MNIST.

    The programs are kept for the process (the last :data:`KEPT_PROGRAMS`),
    keyed by `step`, the room for losses and the shapes and dtypes of the
    arguments: a later stepper of the same `step` (the same function object)
    on arrays of the same shapes runs the program already compiled, without
    tracing `step` again. `on_compile` is called with the seconds each
    compilation took.
    """
    jax = library("jax").load()

    def run(params: Any, plan: Array, start: int, end: int) -> tuple[Array, Any]:
        k = end - start
        size = max(k, length)
        args = (params, plan, start, k, data)
        program = _program(jax, step, size, args, on_compile)
        losses, params = program(*args)
        return (losses if k == size or padded else to_numpy(losses)[:k]), params

    return run


KEPT_PROGRAMS = 8
"""How many compiled block programs :func:`jax_stepper` keeps for later runs."""
_programs: collections.OrderedDict[Any, Any] = collections.OrderedDict()
_programs_lock = threading.Lock()  # runs in threads (a sweep's) share the programs


def _program(jax: Any, step: Callable[..., Any], size: int, args: tuple[Any, ...],
             on_compile: Callable[[float], None] | None) -> Any:
    """The compiled block program of `step` for `args`, compiled on first use."""
    leaves, tree = jax.tree.flatten(args)
    # the offsets are Python ints, whose width follows jax_enable_x64
    key = (step, size, tree, bool(jax.config.read("jax_enable_x64")),
           tuple((getattr(a, "shape", ()), getattr(a, "dtype", type(a)), getattr(a, "sharding", None))
                 for a in leaves))
    with _programs_lock:
        program = _programs.get(key)
        if program is not None:
            _programs.move_to_end(key)
            return program
    t0 = time.perf_counter()
    program = jax.jit(_block_program(jax, step), static_argnames="size").lower(*args, size=size).compile()
    if on_compile is not None:
        on_compile(time.perf_counter() - t0)
    with _programs_lock:
        _programs[key] = program
        while len(_programs) > KEPT_PROGRAMS:
            _programs.popitem(last=False)
    return program


def _block_program(jax: Any, step: Callable[..., tuple[Array, Any]]) -> Callable[..., tuple[Array, Any]]:
    """``steps(params, plan, start, n, data, size)``: `n` steps of `step` on the
    rows of `plan` from `start`, their losses in an array of `size`."""

    def steps(params: Any, plan: Array, start: Array, n: Array, data: tuple[Array, ...], size: int
              ) -> tuple[Array, Any]:
        loss_shape = jax.eval_shape(step, params, plan[0], *data)[0]

        def body(i: Array, carry: tuple[Any, Array]) -> tuple[Any, Array]:
            params, losses = carry
            loss, params = step(params, jax.lax.dynamic_index_in_dim(plan, start + i, keepdims=False), *data)
            return params, losses.at[i].set(loss)

        losses = jax.numpy.zeros((size,), dtype=loss_shape.dtype)
        params, losses = jax.lax.fori_loop(0, n, body, (params, losses))
        return losses, params

    return steps


def stepper_for(backend: Any, step: Step, *, compile_step: bool | None, length: int = 10, params: Any = None,
                idx_example: Array = None, stop: StopRequest | None = None,
                data: tuple[Array, ...] = (), on_compile: Callable[[float], None] | None = None,
                padded: bool = False) -> BlockStepper:
    """The block stepper of `step` on `backend` (a :class:`xgrad.Backend`).

    `idx_example` is a block's indices, ``(length, batch_size)``. `data`
    are the arrays `step` reads: a compiled step on JAX is called as
    ``step(params, idx, *data)`` with them as the program's arguments; the
    others call ``step(params, idx)``. `compile_step` True compiles (JAX:
    :func:`jax_stepper`; CuPy: a CUDA
    graph captured from `params` and `idx_example`, a block of `length`
    rows, or the eager stepper, with a warning, where CuPy refuses to
    capture the step), False runs eagerly (:func:`eager_stepper`, with `stop`), None
    compiles where it is known to help (JAX). Other backends refuse True.
    `on_compile` and `padded` are :func:`jax_stepper`'s.
    """
    lib = library(backend.name)
    join = lib.join(lib.load()) if lib.join else None
    if not will_compile(backend.name, compile_step):
        return eager_stepper(step, xp=backend.xp, stop=stop, join=join)
    if lib.compiler == "jit":
        return jax_stepper(step, length=length, data=data, on_compile=on_compile, padded=padded)
    from xgrad._train.cudagraph import graph_stepper

    try:
        graph = graph_stepper(step, params, idx_example, xp=backend.xp)
    except RuntimeError as exc:  # CuPy refuses to capture (cuBLAS so far): the same step, launched eagerly
        logger.warning("the training step runs with fused kernels but without a CUDA graph: %s", exc)
        return eager_stepper(step, xp=backend.xp, stop=stop, join=join)
    return lambda params, plan, start, end: graph(params, plan[start:end, ...])
