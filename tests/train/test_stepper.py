"""The compiled training step (``compile_step``) and the block steppers.

A compiled JAX run is the same array-API step, traced once and run by XLA,
which may fuse and reorder floating-point operations: its losses and
parameters agree with an eager run's to rounding, not bit for bit. The
tolerances below allow that drift: about a hundred units in the last place
of the run's dtype after tens of steps (float32: 1.2e-7 each, float64:
2.2e-16); the differences seen are a few units.
"""

from __future__ import annotations

import numpy as np
import pytest

import xgrad
from xgrad import train
from xgrad._net.core import activation_named, loss_and_gradient
from xgrad._train.plan import MINIBATCH_STREAM, PLAN_BLOCK
from xgrad._train.stepper import eager_stepper, jax_stepper, will_compile

RTOL = {"float32": 1e-5, "float64": 1e-12}


@pytest.fixture(scope="module")
def small():
    """2,000 training and 500 test digits of the real MNIST."""
    (x, t), (xt, tt) = xgrad.load_mnist()
    return (x[:2000], t[:2000]), (xt[:500], tt[:500])


@pytest.fixture
def jax_backend(backend):
    if backend.name != "jax":
        pytest.skip("a test of the compiled JAX step")
    return backend


def _plan(seed, n_train, batch_size=100):
    """The run's minibatch indices of its first plan block (its seed stream)."""
    return np.random.default_rng([seed, MINIBATCH_STREAM, 0]).integers(0, n_train, size=(PLAN_BLOCK, batch_size))


def assert_same_run(a, b, *, dtype, exact=False):
    """Two results of one run: losses, evaluations and parameters agree."""
    rtol = 0.0 if exact else RTOL[dtype]
    assert len(a.loss) == len(b.loss) and a.eval_iters == b.eval_iters
    np.testing.assert_allclose(a.loss, b.loss, rtol=rtol)
    np.testing.assert_allclose(a.test_acc, b.test_acc, atol=0.003)  # a sample may cross a tie
    for k, v in b.net.params.items():
        scale = float(np.max(np.abs(xgrad.to_numpy(v))))
        np.testing.assert_allclose(xgrad.to_numpy(a.net.params[k]), xgrad.to_numpy(v), rtol=0,
                                   atol=rtol * scale)


# -- compiled JAX against eager JAX -------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_compiled_jax_follows_the_eager_run(jax_backend, small, dtype):
    kw = {"data": small, "iters": 60, "eval_every": 20, "dtype": dtype, "progress": False}
    compiled = train(jax_backend, compile_step=True, **kw)
    eager = train(jax_backend, compile_step=False, **kw)
    assert_same_run(compiled, eager, dtype=dtype)
    assert np.max(np.abs(xgrad.to_numpy(compiled.net.params["b2"]))) > 1e-3  # it trained (b2 starts at 0)
    auto = train(jax_backend, **kw)  # None: JAX compiles
    assert_same_run(auto, compiled, dtype=dtype, exact=True)


def _count_traces(monkeypatch):
    """A list that grows each time the compiled step is traced (its maths is
    called from Python only then, not per step)."""
    import xgrad._train.stepping as stepping

    real, calls = stepping.sgd_step, []

    def sgd_step(*args, **kw):
        calls.append(1)
        return real(*args, **kw)

    monkeypatch.setattr(stepping, "sgd_step", sgd_step)
    return calls


def test_ragged_blocks_follow_the_eager_run_and_compile_once(jax_backend, small, tmp_path, monkeypatch):
    """53 iterations, evaluations every 7 and checkpoints every 13: blocks of
    1, 7, 5, 2, ... iterations; the program compiled by an earlier run with
    the same settings serves them all."""
    calls = _count_traces(monkeypatch)
    kw = {"data": small, "iters": 10, "eval_every": 0, "progress": False, "compile_step": True,
          "lr": 0.125}  # a learning rate no other test compiles for
    first = train(jax_backend, **kw)
    assert calls and first.timings["compile_s"] > 0
    calls.clear()
    kw |= {"iters": 53, "eval_every": 7, "checkpoint_every": 13}
    ragged = train(jax_backend, checkpoint=tmp_path / "c.npz", **kw)
    assert not calls, "a block of another length was compiled again"
    assert ragged.timings["compile_s"] == 0
    eager = train(jax_backend, checkpoint=tmp_path / "e.npz", **{**kw, "compile_step": False})
    assert ragged.eval_iters == [1, 8, 15, 22, 29, 36, 43, 50, 53]
    assert_same_run(ragged, eager, dtype="float32")


def test_a_second_run_with_the_same_shapes_reuses_the_compiled_program(jax_backend, small, monkeypatch):
    """Compiled once per process for a setting and shapes: a second run traces
    nothing and gives the same losses, bit for bit; other shapes or another
    learning rate compile their own program."""
    calls = _count_traces(monkeypatch)
    kw = {"data": small, "iters": 25, "eval_every": 0, "progress": False, "lr": 0.0625, "hidden_size": 13}
    first = train(jax_backend, **kw)
    traced = len(calls)
    assert traced > 0 and first.timings["compile_s"] > 0
    second = train(jax_backend, **kw)
    assert len(calls) == traced and second.timings["compile_s"] == 0
    assert_same_run(second, first, dtype="float32", exact=True)
    train(jax_backend, **{**kw, "batch_size": 50})  # other shapes
    assert len(calls) == 2 * traced
    train(jax_backend, **{**kw, "lr": 0.03125})  # another setting
    assert len(calls) == 3 * traced


def test_resume_mid_run_matches_the_run_never_stopped(jax_backend, small, tmp_path):
    ckpt = tmp_path / "run.npz"
    kw = {"data": small, "eval_every": 0, "progress": False, "compile_step": True}
    first = train(jax_backend, iters=33, checkpoint=ckpt, checkpoint_every=10, **kw)
    assert len(first.loss) == 33
    resumed = train(jax_backend, iters=60, checkpoint=ckpt, resume=True, **kw)
    whole = train(jax_backend, iters=60, **kw)
    # the same steps on the same numbers, by the same compiled program
    assert_same_run(resumed, whole, dtype="float32", exact=True)


def _poisoned(small, *, row):
    """The small set with one sample, first drawn at iteration `row` (0-based),
    made huge: a ReLU network's loss overflows two iterations later."""
    (x, t), test = small
    plan = _plan(0, x.shape[0])
    k = next(int(i) for i in plan[row] if i not in plan[:row])
    x = x.astype(np.float32)
    x[k] *= 1e30
    return (x, t), test


def test_divergence_under_compile_keeps_the_eager_last_finite_parameters(jax_backend, small):
    """The loss of iteration 11, the first of its block (evaluations after
    iterations 1, 10, 19 end blocks there), is the first non-finite one: the
    last finite parameters are those iteration 10 ran on, in the block before,
    found by stepping again from that block's start."""
    data = _poisoned(small, row=9)
    kw = {"data": data, "iters": 50, "activation": "relu", "weight_init_std": 1.0, "eval_every": 9,
          "progress": False}
    errors = []
    for compile_step in (True, False):
        with pytest.raises(xgrad.TrainingDivergedError, match="diverged at iteration 11") as info:
            train(jax_backend, compile_step=compile_step, **kw)
        errors.append(info.value)
    compiled, eager = errors
    assert compiled.iteration == eager.iteration == 11
    assert_same_run(compiled.result, eager.result, dtype="float32")
    expected = _direct_losses(data, steps=9, activation="relu", weight_init_std=1.0)[1]  # on NumPy
    for k, v in expected.items():
        np.testing.assert_allclose(xgrad.to_numpy(compiled.result.net.params[k]), v, rtol=0,
                                   atol=RTOL["float32"] * float(np.max(np.abs(v))))


def test_divergence_under_compile_replays_through_the_program(jax_backend, small, monkeypatch):
    """The replay to the last finite loss runs the compiled block program again,
    no step eagerly: the parameters kept are those a compiled run stopped at
    that iteration holds, bit for bit, and the losses those it recorded."""
    import xgrad._train.stepping as stepping

    data = _poisoned(small, row=9)
    kw = {"data": data, "activation": "relu", "weight_init_std": 1.0, "eval_every": 9, "progress": False,
          "compile_step": True}
    eager, real = [], stepping.Stepping.step
    monkeypatch.setattr(stepping.Stepping, "step", lambda self, *args: eager.append(1) or real(self, *args))
    with pytest.raises(xgrad.TrainingDivergedError, match="diverged at iteration 11") as info:
        train(jax_backend, iters=50, **kw)
    kept = info.value.result
    # iteration 11 (1-based) diverged in the block of iterations 11 to 19: the replay
    # stepped again through the 8 steps of the block before from its start
    assert not eager, f"{len(eager)} steps ran eagerly"
    stopped = train(jax_backend, iters=9, **kw)  # the parameters iteration 10 ran on
    for k, v in stopped.net.params.items():
        np.testing.assert_array_equal(xgrad.to_numpy(kept.net.params[k]), xgrad.to_numpy(v))
    assert kept.loss.tolist() == train(jax_backend, iters=10, **kw).loss.tolist()
    assert not eager


def test_padded_jax_stepper_leaves_the_cut_to_the_caller():
    """With `padded`, a shorter block's losses come as the program's whole room
    (its first entries the block's), and the same program serves every length."""
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    run = jax_stepper(_count_step, length=5, padded=True)
    plan = jnp.arange(24, dtype=jnp.int32).reshape(8, 3)  # a shape no other test compiles for
    sums = np.cumsum(np.arange(24).reshape(8, 3).sum(axis=1)[2:5])
    losses, params = run({"s": jnp.asarray(0)}, plan, 2, 5)
    assert losses.shape == (5,) and np.asarray(losses)[:3].tolist() == [0, *sums[:-1].tolist()]
    assert int(params["s"]) == int(sums[-1])
    unpadded = jax_stepper(_count_step, length=5)(dict(s=jnp.asarray(0)), plan, 2, 5)[0]
    assert np.asarray(unpadded).tolist() == np.asarray(losses)[:3].tolist()


def test_divergence_on_numpy_keeps_the_parameters_of_the_last_finite_loss(small):
    """The same, against a direct loop of the step: exactly the parameters after 9 steps."""
    data = _poisoned(small, row=9)
    with pytest.raises(xgrad.TrainingDivergedError, match="diverged at iteration 11") as info:
        train("numpy", data=data, iters=50, activation="relu", weight_init_std=1.0, eval_every=9, progress=False)
    expected = _direct_losses(data, steps=9, activation="relu", weight_init_std=1.0)[1]
    assert len(info.value.result.loss) == 10
    for k, v in expected.items():
        np.testing.assert_array_equal(info.value.result.net.params[k], v)


# -- NumPy stays eager, and exact -----------------------------------------------------
def _direct_losses(data, *, steps, activation="sigmoid", weight_init_std=0.01, lr=0.1):
    """The losses and parameters of `steps` SGD steps written out directly, on
    one BLAS thread as train() has it (other threads sum in another order)."""
    with xgrad.thread_limits(1, backend="numpy"):
        return _direct_loop(data, steps=steps, activation=activation, weight_init_std=weight_init_std, lr=lr)


def _direct_loop(data, *, steps, activation, weight_init_std, lr):
    (x, t), _ = data
    x = x.astype(np.float32)
    targets = np.eye(10, dtype=np.float32)[t]
    params = xgrad.TwoLayerNet(x.shape[1], 50, 10, activation=activation, weight_init_std=weight_init_std,
                               dtype="float32", seed=0).params
    plan, losses = _plan(0, x.shape[0]), []
    for i in range(steps):
        loss, step = loss_and_gradient(params, x[plan[i]], targets[plan[i]], activation=activation_named(activation),
                                       xp=np, scale=lr, rows_sum_to_one=True)
        losses.append(float(loss))
        params = {k: params[k] - step[k] for k in params}
    return losses, params


def test_numpy_trajectory_is_the_direct_loop_bit_for_bit(small):
    r = train("numpy", data=small, iters=37, eval_every=7, progress=False, compile_step=None)
    losses, params = _direct_losses(small, steps=37)
    assert r.loss.tolist() == losses
    for k, v in params.items():
        np.testing.assert_array_equal(r.net.params[k], v)


# -- settings -------------------------------------------------------------------------
@pytest.mark.parametrize(("backend_name", "kwargs", "error", "match"), [
    ("numpy", {"compile_step": True}, ValueError, r"only 'cupy' and 'jax' compile the training step, not 'numpy'"),
    ("numpy", {"compile_step": "yes"}, TypeError, r"`compile_step` must be True, False or None"),
    ("numpy", {"compile_step": True, "gradient": "numerical"}, ValueError,
     r"only the backpropagation step compiles, not `gradient` 'numerical'"),
])
def test_compile_step_refused_where_it_cannot_compile(small, monkeypatch, backend_name, kwargs, error, match):
    import xgrad._train.train

    def no_data(*args, **kw):
        raise AssertionError("the data were read before the settings were checked")

    monkeypatch.setattr(xgrad._train.train, "prepare_data", no_data)
    with pytest.raises(error, match=match):
        train(backend_name, iters=5, progress=False, **kwargs)


def test_will_compile_decides_auto_per_backend():
    assert [will_compile(b, None) for b in ("numpy", "torch", "array_api_strict", "cupy", "jax")] == [
        False, False, False, False, True]
    assert not will_compile("jax", False) and will_compile("cupy", True)
    with pytest.raises(ValueError, match="not 'torch'; leave `compile_step` at None"):
        will_compile("torch", True)


def test_command_line_switch(capsys):
    from xgrad._cli.main import main
    from xgrad._train.settings import on_off_auto

    assert [on_off_auto(s) for s in ("auto", "on", "off", " ON ")] == [None, True, False, True]
    with pytest.raises(SystemExit):
        main(["train", "--compile-step", "maybe"])
    assert "--compile-step: choose auto, on or off; got 'maybe'" in capsys.readouterr().err


# -- the steppers on their own ------------------------------------------------------------
def _count_step(params, idx):
    """A toy step: the loss is the parameter, which grows by the indices' sum."""
    return params["s"] * 1.0, {"s": params["s"] + idx.sum()}


def test_eager_stepper_runs_each_row_and_stops_on_request():
    from xgrad._infra.signals import StopRequest

    stop = StopRequest()
    run = eager_stepper(_count_step, xp=np, stop=stop)
    plan = np.arange(18).reshape(6, 3)
    losses, params = run({"s": np.asarray(0)}, plan, 0, 4)
    assert losses.tolist() == [0, 3, 15, 36] and int(params["s"]) == 66
    losses, params = run({"s": np.asarray(0)}, plan, 2, 5)  # rows 2, 3 and 4 of the plan
    assert losses.tolist() == [0, 21, 51] and int(params["s"]) == 90

    def stop_after_two(params, idx):
        if int(params["s"]) == 15:
            stop.signal = "SIGTERM"
        return _count_step(params, idx)

    losses, params = eager_stepper(stop_after_two, xp=np, stop=stop)({"s": np.asarray(0)}, plan, 0, 4)
    assert losses.tolist() == [0, 3, 15] and int(params["s"]) == 36


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_eager_steppers_join_gives_what_stack_gives(backend, dtype, monkeypatch):
    """The backend table's ``join`` (NumPy: ``np.array``, not ``xp.stack``)
    makes a block's losses the same 1-D array; the eager stepper of
    :func:`stepper_for` joins with it where the table has one."""
    import dataclasses

    from xgrad._infra import backend as table
    from xgrad._train.stepper import stepper_for

    xp = backend.xp
    values = [1.5, 2.0**-30, float("nan"), -3.25]
    step = lambda params, idx: (xp.asarray(values[params], dtype=getattr(xp, dtype)), params + 1)  # noqa: E731
    plan = xp.asarray(np.zeros((4, 2), dtype=np.int32))
    stacked, _ = eager_stepper(step, xp=xp)(0, plan, 0, 4)
    lib = table.library(backend.name)
    joined = []
    if lib.join is not None:
        join = lib.join(lib.load())
        monkeypatch.setitem(table.LIBRARIES, lib.name, dataclasses.replace(
            lib, join=lambda module: lambda losses: joined.append(len(losses)) or join(losses)))
    losses, params = stepper_for(backend, step, compile_step=False)(0, plan, 0, 4)
    assert params == 4 and losses.dtype == stacked.dtype == getattr(xp, dtype) and tuple(losses.shape) == (4,)
    np.testing.assert_array_equal(xgrad.to_numpy(losses), xgrad.to_numpy(stacked))
    np.testing.assert_array_equal(xgrad.to_numpy(losses), np.array(values, dtype=dtype))
    assert joined == ([4] if lib.join is not None else [])
    if backend.name == "numpy":
        assert lib.join is not None


def test_jax_stepper_reads_its_rows_from_the_plan_and_compiles_once():
    """Blocks at any offset, shorter than `length` or as long: one program,
    and nothing else compiled around it (no slice, padding or cut on the
    device); a longer block compiles once more."""
    jax = pytest.importorskip("jax")
    import logging

    jnp = jax.numpy
    run = jax_stepper(_count_step, length=4)
    plan = jnp.arange(21, dtype=jnp.int32).reshape(7, 3)  # a shape no other test compiles for
    expected_rows = np.arange(21).reshape(7, 3).sum(axis=1)
    compiled = []

    class Record(logging.Handler):
        def emit(self, record):
            if record.getMessage().startswith("Finished XLA compilation"):
                compiled.append(record.getMessage())

    handler, log = Record(), logging.getLogger("jax")
    log.addHandler(handler)
    try:
        zero = {"s": jnp.asarray(0)}
        with jax.log_compiles():
            for start, end in ((0, 1), (1, 4), (3, 7), (5, 7), (2, 3), (0, 7)):
                losses, params = run(zero, plan, start, end)
                sums = np.cumsum(expected_rows[start:end])
                assert np.asarray(losses).tolist() == [0, *sums[:-1].tolist()]
                assert int(params["s"]) == int(sums[-1])
    finally:
        log.removeHandler(handler)
    assert len(compiled) == 2, compiled  # length 4, then the block of 7
