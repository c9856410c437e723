"""A user's `f` at many points in one compiled call, where the array library
can trace and compile it (JAX: ``jit(vmap(f))``, through the backend table's
``batching``), and one call per point elsewhere.

Eager JAX pays tens of microseconds of dispatch per operation, in `f` and
around it: a numerical derivative, which evaluates `f` at dozens of points,
spends nearly all its time there. Traced once, `f` runs on a whole stack of
points at the cost of one call. The compiled function is kept per `f` for as
long as `f` lives (a weak reference: the cache never keeps `f` alive), and
compiled again per shape and dtype of the stack (its length padded to a
power of two, so that stacks of many lengths share a few compilations).

An `f` that cannot be traced (it turns an element into a Python number or
bool, calls NumPy on its argument, makes a shape that depends on the data)
raises an error while it is traced: it is then evaluated one point per call,
with the same results as without a compiler, and never traced again. An `f`
that fails for its own reason fails again in that first eager call, which
raises its error to the caller unchanged.
A traced `f` may round differently from an eager one (the compiler fuses
its operations), and runs its Python code once per compilation, not once per
point: an `f` that counts its calls or prints sees fewer calls.
"""

from __future__ import annotations

import inspect
import math
import weakref
from collections.abc import Callable
from typing import Any

from xgrad._infra.backend import library_of
from xgrad._infra.devices import Batching
from xgrad._infra.typing import Array, Namespace

__all__ = ["batching_of", "compiled_around", "compiled_batch", "compiled_call", "compiled_own", "compiled_whole",
           "stacked_values"]

_COMPILED: weakref.WeakKeyDictionary[Any, dict[tuple[Any, str], Any]] = weakref.WeakKeyDictionary()
_BATCHING: dict[str, Batching | None] = {}
BATCH = 16  # points per vectorized call of f, where the numbers must not depend on the chunks
BLOCK_ELEMENTS = 2**18  # elements of the points built in one array (2 MB of float64): memory stays small


def batching_of(xp: Namespace) -> Batching | None:
    """The batching compiler of the library of `xp`, or None (NumPy, PyTorch: eager is fast enough)."""
    lib = library_of(xp)
    if lib is None or lib.batching is None:
        return None
    if lib.name not in _BATCHING:
        _BATCHING[lib.name] = lib.batching(lib.load())
    return _BATCHING[lib.name]


def _compiled(f: Callable[..., Any], kind: str, batching: Batching,
              build: Callable[[Callable[..., Any]], Callable[..., Any]] | None = None) -> Any:
    """The compiled `f` (`kind`: "batch" over a stack, "whole" on whole arrays), made once per `f`;
    None where `f` cannot be traced or weakly referenced. The compiled function reaches `f`
    through a weak reference, so that the cache, keyed weakly by `f`, never keeps it alive."""
    owner, func = (f.__self__, f.__func__) if inspect.ismethod(f) else (f, None)
    if str(getattr(f, "__module__", "")).startswith("xgrad."):
        return None  # xgrad's own functions of steps (a check's phi), made per call, batch the user's f inside
    try:
        slot = _COMPILED.setdefault(owner, {})
    except TypeError:  # not hashable, or no weak references to it (some builtins)
        return None
    key = (func, kind)
    if (func, "any") in slot:  # it failed once while traced
        return None
    if key not in slot:
        ref = weakref.ref(owner)

        def call(*args: Any) -> Any:
            target: Any = ref()
            return target(*args) if func is None else func(target, *args)

        if build is not None:
            slot[key] = batching.whole(build(call))
        else:
            slot[key] = {"batch": batching.batch, "vectorize": batching.vectorize, "whole": batching.whole}[kind](call)
    return slot[key]


def _untraceable(f: Callable[..., Any], kind: str) -> None:
    """Remember that `f` failed while it was traced, and is evaluated eagerly from now on. A
    trace error (a tracer made a Python number or bool, a NumPy call on a tracer, a shape that
    depends on the data) or a check that cannot see a tracer's device: the eager calls that
    follow succeed. An error of `f` itself: they raise it, the very error `f` raises eagerly."""
    owner, func = (f.__self__, f.__func__) if inspect.ismethod(f) else (f, None)
    _COMPILED[owner][(func, kind)] = _COMPILED[owner][(func, "any")] = None  # not traced again, in any way


def compiled_whole(f: Callable[[Array], Any], points: Array, xp: Namespace) -> Any:
    """``f(points)``, through the compiled `f` where the library has a compiler and `f` traces."""
    batching = batching_of(xp)
    compiled = None if batching is None else _compiled(f, "whole", batching)
    if compiled is not None:
        assert batching is not None
        try:
            return compiled(points)
        except Exception:  # f cannot be traced, or fails: see _untraceable
            _untraceable(f, "whole")
    return f(points)


_OWN_COMPILED: dict[tuple[str, Callable[..., Any]], Callable[..., Any]] = {}


def compiled_own(fn: Callable[..., Array], xp: Namespace) -> Callable[..., Array]:
    """xgrad's own module-level array function `fn` (arrays in, arrays out, its namespace found
    from its arguments), compiled once per process where the library has a compiler: many small
    operations become one call. `fn` itself elsewhere."""
    key = (getattr(xp, "__name__", str(xp)), fn)
    if key not in _OWN_COMPILED:
        batching = batching_of(xp)
        _OWN_COMPILED[key] = fn if batching is None else batching.whole(fn)
    return _OWN_COMPILED[key]


def compiled_call(f: Callable[..., Any], kind: str, build: Callable[[Callable[..., Any]], Callable[..., Any]],
                  args: tuple[Any, ...], xp: Namespace) -> Any:
    """``build(f)(*args)`` compiled, once per `f` and `kind`, where the library has a compiler and `f`
    traces (`build` makes a function of arrays around `f`, such as a difference quotient); None else."""
    batching = batching_of(xp)
    compiled = None if batching is None else _compiled(f, kind, batching, build)
    if compiled is None:
        return None
    assert batching is not None
    try:
        return compiled(*args)
    except Exception:  # f cannot be traced, or fails: see _untraceable
        _untraceable(f, kind)
        return None


def compiled_around(f: Callable[[Array], Any], kind: str, one: Callable[[Any], Array],
                    around: Callable[[Callable[[Array], Array]], Callable[..., Any]], args: tuple[Any, ...],
                    xp: Namespace) -> Any:
    """``around(fs)(*args)`` in one compiled call, where ``fs`` evaluates `f` at a stack of
    points (axis 0), each value checked by `one`: the points built, `f` evaluated and the
    values arranged by one program. Once per `f` and `kind` (which must name everything that
    `one` and `around` capture: shapes, dtype, device); None where the library has no compiler
    or `f` cannot be traced."""
    batching = batching_of(xp)
    if batching is None:
        return None
    vectorize = batching.vectorize
    return compiled_call(f, kind, lambda g: around(vectorize(lambda p: one(g(p)))), args, xp)


def compiled_batch(f: Callable[[Array], Any], block: Array, xp: Namespace, exact: bool = False) -> Any:
    """`f` at every point of the stack `block` (axis 0) in one compiled call, its values
    stacked on axis 0; None where the library has no compiler or `f` cannot be traced.
    `exact`: vectorized but not compiled, with the rounding of eager calls of `f`."""
    batching = batching_of(xp)
    kind = "vectorize" if exact else "batch"
    compiled = None if batching is None else _compiled(f, kind, batching)
    if compiled is None:
        return None
    assert batching is not None
    k = block.shape[0]
    if exact:
        # every point goes through the same program, a stack of `size` points, whatever the number of
        # points and wherever it sits among them: its value is then the same bit for bit in a chunk of an
        # executor's task as in the whole gradient
        size = max(1, min(BATCH, BLOCK_ELEMENTS // max(1, math.prod(block.shape[1:]))))
    else:  # one call, on a stack padded to a power of two: stacks of many lengths share a few compilations
        size = 1 << max(0, (k - 1).bit_length())
    if k % size:
        last = xp.broadcast_to(block[k - 1:, ...], (size - k % size, *block.shape[1:]))
        block = xp.concat([block, last], axis=0)
    try:
        parts = [compiled(block if block.shape[0] == size else block[lo:lo + size, ...])
                 for lo in range(0, block.shape[0], size)]
    except Exception:  # f cannot be traced, or fails: see _untraceable
        _untraceable(f, kind)
        return None
    values = parts[0] if len(parts) == 1 else xp.concat(parts, axis=0)
    return values[:k, ...] if values.shape[0] > k else values


def stacked_values(f: Callable[[Array], Any], count: int, points: Callable[[int, int], Array],
                   one: Callable[[Any], Array], xp: Namespace, point_size: int, exact: bool = False) -> Array:
    """``one(f(p))`` for the `count` points, stacked on axis 0. ``points(lo, hi)`` builds
    points ``lo..hi-1`` as one array, axis 0 the points, in chunks of at most about
    BLOCK_ELEMENTS elements; `one` checks a value of `f` and returns it as an array.

    Through the compiled `f` where it traces (`one` then checks the first value, the
    others have its shape and dtype), else one call of `f` per point, in order. `exact`:
    vectorized, not compiled: the values of eager calls, bit for bit (XLA's fused
    reductions round in another order), with a dispatch per operation of `f`."""
    chunk = max(1, BLOCK_ELEMENTS // max(1, point_size))
    out = []
    for lo in range(0, count, chunk):
        hi = min(lo + chunk, count)
        block = points(lo, hi)
        values = compiled_batch(f, block, xp, exact)
        if values is not None and hasattr(values, "shape") and values.shape[:1] == (hi - lo,):
            first = one(values[0, ...])
            values = xp.reshape(values, (hi - lo, *first.shape))
            out.append(values if values.dtype == first.dtype else xp.astype(values, first.dtype))
        else:
            out.append(xp.stack([one(f(block[i, ...])) for i in range(hi - lo)]))
    return out[0] if len(out) == 1 else xp.concat(out, axis=0)

