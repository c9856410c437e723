"""The training step replayed from a CUDA graph (CuPy; off by default).

On a GPU the book's small network spends its time launching about thirty
kernels a step, not computing them. A CUDA graph records those launches once
and replays them with one: :func:`graph_stepper` captures one SGD step that
reads fixed input buffers (the parameters and the minibatch indices) and
writes its results back into fixed output buffers, then runs a block of steps
by copying each row of indices in, launching the graph and copying the loss
out. The kernels are the eager step's, in the same order, on the same
numbers: only the launch overhead goes.

The capture mechanism is an argument, so the buffer and replay logic runs on
any backend whose arrays can be written in place (the tests replay it on
NumPy by calling the step again); :func:`cuda_graph_capture` is CuPy's.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeAlias

import array_api_compat

from xgrad._infra.backend import library
from xgrad._infra.typing import Array, Namespace

__all__ = ["cuda_graph_capture", "graph_stepper"]

Params: TypeAlias = dict[str, Array]
Step: TypeAlias = Callable[[Params, Array], tuple[Array, Params]]
BlockStepper: TypeAlias = Callable[[Params, Array], tuple[Array, Params]]
Capture: TypeAlias = Callable[[Callable[[], None]], Callable[[], None]]


@dataclass(frozen=True)
class _Buffers:
    """The arrays the recorded step reads and writes: never reallocated."""

    params: Params
    idx: Array
    loss: Array


def graph_stepper(step: Step, params: Params, idx_example: Array, /, *, xp: Namespace,
                  capture: Capture | None = None) -> BlockStepper:
    """A block stepper that replays one captured step of `step` per iteration.

    Parameters
    ----------
    step : callable ``(params, idx) -> (loss, new_params)``
        One SGD step: a pure function of device arrays that neither reads
        the host nor synchronises with it (a CUDA capture forbids both).
    params : dict of arrays
        Parameters of the shapes and dtypes every block will pass; copied,
        never written.
    idx_example : array
        One row of minibatch indices (1-D, integer), or a block of them (2-D,
        whose first row is used): the shape and dtype of every row the
        stepper will get.
    xp : namespace
        The arrays' namespace.
    capture : callable ``(body) -> launch``, optional
        Runs ``body()`` once eagerly, records one more call and returns
        ``launch``, which replays the record. The default,
        :func:`cuda_graph_capture`, records a CUDA graph with CuPy.

    Returns
    -------
    callable ``(params, idx_block) -> (losses, params)``
        Runs ``idx_block.shape[0]`` steps from `params`, one per row of
        `idx_block`: the losses (1-D) and the parameters after the last one,
        new arrays every call (the caller may keep them; later blocks do not
        write into them, and the `params` passed in are not written either).

    Raises
    ------
    TypeError
        A parameter or the indices of the wrong kind or dtype; the step's
        results of a dtype other than its inputs'.
    ValueError
        A shape that differs from the example's.
    RuntimeError
        The step could not be captured (see :func:`cuda_graph_capture`).

    Notes
    -----
    The step runs twice while the stepper is built: once to check its results
    and once as the capture's warm-up. Each step afterwards costs three
    launches on the current stream: copy the indices in, the graph, copy the
    loss out; each block adds one copy per parameter in and one out.

    Examples
    --------
    On NumPy, with a "capture" that replays by calling the body again:

    >>> import numpy as np
    >>> def step(params, idx):
    ...     w = params["w"]
    ...     return np.sum(w * idx), {"w": w - 0.5 * idx}
    >>> replay = lambda body: (body(), body)[1]
    >>> run = graph_stepper(step, {"w": np.zeros(2)}, np.zeros(2, dtype=np.int64), xp=np, capture=replay)
    >>> losses, params = run({"w": np.ones(2)}, np.array([[1, 0], [0, 2]]))
    >>> losses, params["w"]
    (array([1., 2.]), array([0.5, 0. ]))
    """
    buffers = _buffers(step, params, idx_example, xp=xp)
    launch = (capture or cuda_graph_capture)(_body(step, buffers))
    dtype, device = buffers.loss.dtype, array_api_compat.device(buffers.loss)

    def run(params: Params, idx_block: Array, /) -> tuple[Array, Params]:
        _check_like("params", params, buffers.params)
        _check_block(idx_block, buffers.idx)
        for name, buf in buffers.params.items():
            buf[...] = params[name]  # from the caller's arrays: each block is a pure function of its inputs
        k = idx_block.shape[0]
        losses = xp.empty((k,), dtype=dtype, device=device)
        for j in range(k):
            buffers.idx[...] = idx_block[j, ...]
            launch()
            losses[j] = buffers.loss
        # copies: the buffers change with the next block, the returned parameters must not
        return losses, {name: xp.asarray(buf, copy=True) for name, buf in buffers.params.items()}

    return run


def _buffers(step: Step, params: Params, idx_example: Array, /, *, xp: Namespace) -> _Buffers:
    """Copies of the inputs, and a loss buffer shaped by one checked eager step."""
    if not isinstance(params, dict) or not params:
        raise TypeError(f"`params` must be a non-empty dict of arrays; got {type(params).__name__}")
    ndim = getattr(idx_example, "ndim", None)
    if ndim not in (1, 2) or (ndim == 2 and idx_example.shape[0] == 0):
        raise ValueError("`idx_example` must be a row of indices (1-D) or a non-empty block of rows (2-D); "
                         f"got shape {getattr(idx_example, 'shape', None)}")
    copies = {name: xp.asarray(p, copy=True) for name, p in params.items()}
    idx = xp.asarray(idx_example if ndim == 1 else idx_example[0, ...], copy=True)
    loss, new = step(copies, idx)
    if getattr(loss, "shape", None) != ():
        raise ValueError(f"the step's loss must be a 0-D array; got shape {getattr(loss, 'shape', None)}")
    _check_like("the step's new parameters", new, copies)
    return _Buffers(copies, idx, xp.zeros((), dtype=loss.dtype, device=array_api_compat.device(loss)))


def _body(step: Step, buffers: _Buffers) -> Callable[[], None]:
    """One step from the buffers back into them: everything it touches is bound here."""

    def body() -> None:
        loss, new = step(buffers.params, buffers.idx)
        # written after the whole step has run: no input changes while it is read
        for name, buf in buffers.params.items():
            buf[...] = new[name]
        buffers.loss[...] = loss

    return body


def _check_like(what: str, got: Any, want: Params) -> None:
    """`got` holds arrays of `want`'s names, shapes and dtypes: an in-place
    write would otherwise broadcast or cast without a word."""
    if not isinstance(got, dict) or set(got) != set(want):
        names = sorted(got) if isinstance(got, dict) else type(got).__name__
        raise TypeError(f"{what} must be a dict with the arrays {sorted(want)}; got {names}")
    for name, ref in want.items():
        a = got[name]
        if getattr(a, "dtype", None) != ref.dtype:
            raise TypeError(f"{what}[{name!r}] must have dtype {ref.dtype}; got {getattr(a, 'dtype', type(a))}")
        if tuple(a.shape) != tuple(ref.shape):
            raise ValueError(f"{what}[{name!r}] must have shape {tuple(ref.shape)}; got {tuple(a.shape)}")


def _check_block(idx_block: Array, row: Array) -> None:
    if getattr(idx_block, "dtype", None) != row.dtype:
        raise TypeError(f"`idx_block` must have the example's dtype {row.dtype}; got "
                        f"{getattr(idx_block, 'dtype', type(idx_block).__name__)}")
    if idx_block.ndim != 2 or idx_block.shape[1] != row.shape[0]:
        raise ValueError(f"`idx_block` must have shape (k, {row.shape[0]}), one row of indices per step; "
                         f"got {tuple(idx_block.shape)}")


def cuda_graph_capture(body: Callable[[], None], /) -> Callable[[], None]:
    """Record `body`'s kernels in a CUDA graph with CuPy; return its launcher.

    `body` runs once eagerly first (its kernels compile and load, and the
    memory it needs is allocated), then once under capture. Both runs
    allocate from a memory pool of their own, on a stream of their own: the
    blocks the recorded kernels use stay with the graph, out of reach of
    every later allocation, for as long as the launcher lives. The launcher
    replays the graph on the stream current when it is called.

    Raises
    ------
    RuntimeError
        CuPy could not capture `body`: on HIP, or when `body` needs
        something a capture forbids (a host synchronisation, a transfer, or
        a library call CuPy refuses under capture, such as cuBLAS's matrix
        products in the CuPy versions released so far). The original
        exception is chained.
    """
    cupy = library("cupy").load()

    if cupy.cuda.runtime.is_hip:
        raise RuntimeError("CUDA graphs need CUDA: CuPy cannot capture a graph on HIP (ROCm); "
                           "train with compile_step=False")
    stream, pool = cupy.cuda.Stream(non_blocking=True), cupy.cuda.MemoryPool()
    stream.wait_event(cupy.cuda.get_current_stream().record())  # the buffers were written on the caller's stream
    with cupy.cuda.using_allocator(pool.malloc), stream:
        body()  # the warm-up: compiled kernels, and the pool's blocks on this stream
        graph = _capture_on(stream, body)
    stream.synchronize()  # the warm-up's writes land before any launch
    return _Launcher(graph, pool, stream, cupy.cuda.get_current_stream)


@dataclass(frozen=True)
class _Launcher:
    """Replays a graph on the current stream; holds the pool that owns the
    graph's memory (and its stream) for as long as it lives."""

    graph: Any
    pool: Any
    stream: Any
    current_stream: Callable[[], Any]

    def __call__(self) -> None:
        self.graph.launch(stream=self.current_stream())


def _capture_on(stream: Any, body: Callable[[], None]) -> Any:
    """`body` recorded on `stream`; the warm-up has run it eagerly, so what
    fails here is what a capture forbids."""
    stream.begin_capture()
    try:
        body()
    except Exception as exc:
        with contextlib.suppress(Exception):  # leave capture mode; the first error is the one to report
            stream.end_capture()
        raise _not_captured(exc) from exc
    try:
        return stream.end_capture()
    except Exception as exc:  # the capture was invalidated by something it forbids
        raise _not_captured(exc) from exc


def _not_captured(exc: Exception) -> RuntimeError:
    hint = ("CuPy refuses some CUDA libraries during a capture, cuBLAS (its matrix products) among them"
            if isinstance(exc, NotImplementedError) else "a capture forbids host synchronisation and transfers")
    return RuntimeError(f"could not capture the training step in a CUDA graph: {exc} ({hint}); "
                        "train with compile_step=False")
