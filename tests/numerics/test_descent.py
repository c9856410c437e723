"""Gradient descent: the book's three runs, convergence on every backend,
divergence reporting, an analytic `grad`, and argument errors; an `f` and `grad`
that change their argument in place, and the dtype of the start kept; a
property test: any start, learning rate and step count gives the right path or a
clear error."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from _helpers import (
    NUMERICS_SETTINGS,
    X0,
    any_points,
    assert_close,
    caller_array,
    check_call,
    doubling_sum,
    result_dtype,
)
from hypothesis import given
from hypothesis import strategies as st

import xgrad
from xgrad import DivergenceError, gradient_descent, numerical_gradient
from xgrad._infra.host import to_numpy


def np_f2(x):
    return np.sum(x**2)


# --- the book's values (h = 1e-4) -------------------------------------------

@pytest.mark.parametrize(("lr", "expected"), [
    (0.1, [-6.11110793e-10, 8.14814391e-10]),
    (1e-10, [-2.99999994, 3.99999992]),  # barely moves
], ids=["lr=0.1", "lr=1e-10"])
def test_reproduces_the_book(lr, expected):
    x = gradient_descent(np_f2, np.array([-3.0, 4.0]), lr=lr, step_num=100, h=1e-4)
    assert_close(x, expected, rtol=1e-7, dtype=np.float64)


def test_the_books_stalled_run_is_refused():
    # The book prints [-2.58983747e13, -1.29524862e12] for lr=10: x[1] stopped at step 10
    # only because x + 1e-4 == x there, which made its numerical gradient 0. The point runs
    # away long before: it is stopped at step 6 whatever computes the gradient.
    message = (r"^gradient descent diverged at step 6 of 100: the point grew from \|x\| = 4 to 9\.9e\+06; it "
               r"would reach \|x\| = 1\.88e\+08, and its size and its step have grown at each of the last 5 "
               r"steps: it is running away from any minimum\. Try a smaller `lr` \(got 10\.0\)")
    found = []
    for how in ({"h": 1e-4}, {}, {"grad": lambda p: 2 * p}):
        with pytest.raises(DivergenceError, match=message) as info:
            gradient_descent(np_f2, np.array([-3.0, 4.0]), lr=10.0, step_num=100, **how)
        assert info.value.step == 6 and info.value.running_away
        found.append(info.value.last_finite)
    assert_close(found[0], [7428296.63595611, -9904396.53983905], rtol=1e-6, dtype=np.float64)
    for other in found[1:]:
        assert_close(other, found[0], rtol=1e-6, dtype=np.float64)


@pytest.mark.parametrize("lr", [1.05, 1.2, 10.0])
def test_the_same_divergence_gets_the_same_answer_whatever_the_step(lr):
    # each step multiplies x by 1 - 2 lr: -1.1, -1.4, -19; formerly the default step let the
    # point grow to 1e128 (lr=10, 100 steps) without a word while h=1e-4 raised
    steps = set()
    for h in (None, 1e-4):
        with pytest.raises(DivergenceError, match="running away from any minimum") as info:
            gradient_descent(np_f2, np.array([-3.0, 4.0]), lr=lr, step_num=1000, h=h)
        steps.add(info.value.step)
    assert len(steps) == 1


@pytest.mark.parametrize(("target", "start"), [(1e7, 0.0), (-1e9, 1.0)])
def test_a_far_minimum_is_reached_not_taken_for_a_runaway(target, start):
    # the point grows a million-fold, but its steps shrink: it converges
    x = gradient_descent(lambda p: ((p - target) ** 2).sum(), np.array([start]), lr=0.1, step_num=300)
    assert_close(x, [target], rtol=1e-9, dtype=np.float64)


@pytest.fixture
def no_runaway(monkeypatch):
    """The runaway rule switched off, to reach what stops a point that still grows: overflow."""
    monkeypatch.setattr("xgrad._numerics.descent.RUNAWAY", math.inf)


# --- default step, every backend ---------------------------------------------

def test_converges_on_every_backend(backend):
    xp = backend.xp
    init = backend.asarray(np.array([-3.0, 4.0]))
    x, path = gradient_descent(lambda p: xp.sum(p**2), init, lr=0.1, step_num=100, return_path=True)
    assert_close(x, [0.0, 0.0], backend=backend, atol=1e-8)
    assert_close(path, to_numpy(path), backend=backend)  # the path stays on the backend too
    host_path = to_numpy(path)
    assert host_path.shape == (101, 2)
    np.testing.assert_array_equal(host_path[0], [-3.0, 4.0])
    np.testing.assert_array_equal(host_path[-1], to_numpy(x))
    values = np.sum(host_path**2, axis=1)
    assert np.all(np.diff(values) < 0), "f must decrease at every step with lr = 0.1"
    # each step multiplies x by 1 - 2 * lr = 0.8 (the central difference of a quadratic is exact)
    np.testing.assert_allclose(host_path[1:], 0.8 * host_path[:-1], rtol=1e-8, atol=1e-20)
    np.testing.assert_array_equal(to_numpy(init), [-3.0, 4.0])


def test_accepts_a_list_and_integers():
    x = gradient_descent(np_f2, [-3, 4], lr=0.1, step_num=1)
    assert_close(x, [-2.4, 3.2], rtol=1e-9, dtype=np.float64)


def test_zero_steps_return_the_start():
    init = np.array([-3.0, 4.0])
    x, path = gradient_descent(np_f2, init, step_num=0, return_path=True)
    assert_close(x, [-3.0, 4.0], rtol=0)
    assert_close(path, [[-3.0, 4.0]], rtol=0)


def test_init_is_not_mutated_and_may_be_read_only():
    init = np.array([-3.0, 4.0])
    init.flags.writeable = False
    x = gradient_descent(np_f2, init, lr=0.1, step_num=5)
    np.testing.assert_array_equal(init, [-3.0, 4.0])
    assert_close(x, 0.8**5 * np.array([-3.0, 4.0]), rtol=1e-9)


def test_jax_arrays_work():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy
    init = jnp.asarray([-3.0, 4.0])
    x = gradient_descent(lambda p: jnp.sum(p**2), init, lr=0.1, step_num=5)
    assert isinstance(x, jax.Array)
    np.testing.assert_allclose(np.asarray(x), 0.8**5 * np.array([-3.0, 4.0]), rtol=1e-9)
    np.testing.assert_array_equal(np.asarray(init), [-3.0, 4.0])


# --- divergence ----------------------------------------------------------------

def _manual_run(gradient, x, lr, max_steps):
    """The loop written out: the first step whose point (or gradient) is not finite, and the
    point before it."""
    for step in range(1, max_steps + 1):
        try:
            new_x = x - lr * gradient(x)
        except ValueError:  # numerical_gradient refuses a non-finite gradient
            return step, x
        if not np.all(np.isfinite(new_x)):
            return step, x
        x = new_x
    raise AssertionError("the manual run did not diverge")


def test_divergence_with_the_numerical_gradient(no_runaway):
    # lr = 10 multiplies x by -19 per step; with the default (relative) step x**2 overflows
    # near |x| = 1e154, the difference becomes inf - inf = nan, and the point nan.
    init = np.array([-3.0, 4.0])
    with np.errstate(all="ignore"):
        step, last = _manual_run(lambda p: numerical_gradient(np_f2, p), init, 10.0, 300)
        message = rf"diverged at step {step} of 300.*smaller `lr` \(got 10.0\)"
        with pytest.raises(DivergenceError, match=message) as info:
            gradient_descent(np_f2, init, lr=10.0, step_num=300)
        # one step fewer is still finite
        x = gradient_descent(np_f2, init, lr=10.0, step_num=step - 1)
    assert step == 121
    assert isinstance(info.value, FloatingPointError)
    assert info.value.step == step
    assert np.all(np.isfinite(info.value.last_finite))
    np.testing.assert_array_equal(info.value.last_finite, last)
    np.testing.assert_array_equal(x, last)


def test_divergence_with_an_analytic_gradient(backend, no_runaway):
    xp = backend.xp
    init = np.array([-3.0, 4.0])
    with np.errstate(all="ignore"):
        step, last = _manual_run(lambda p: 2 * p, init, 10.0, 1000)
        with pytest.raises(DivergenceError, match=f"diverged at step {step} of 1000") as info:
            gradient_descent(lambda p: xp.sum(p**2), backend.asarray(init), lr=10.0, step_num=1000,
                             grad=lambda p: 2 * p)
    assert step == 241  # |x| = 4 * 19**k passes the float64 maximum
    assert info.value.step == step
    assert_close(info.value.last_finite, last, backend=backend, rtol=1e-12)


def test_descent_divergence_carries_the_path_to_the_last_finite_point(no_runaway):
    init = np.array([-3.0, 4.0])
    with np.errstate(all="ignore"):
        step, last = _manual_run(lambda p: 2 * p, init, 10.0, 1000)
        with pytest.raises(xgrad.DescentDivergedError) as info:
            gradient_descent(np_f2, init, lr=10.0, step_num=1000, grad=lambda p: 2 * p, return_path=True)
        with pytest.raises(xgrad.DescentDivergedError) as without:
            gradient_descent(np_f2, init, lr=10.0, step_num=1000, grad=lambda p: 2 * p)
    err = info.value
    assert isinstance(err, DivergenceError) and not isinstance(err, xgrad.TrainingDivergedError)
    assert err.path.shape == (step, 2)  # the start and step - 1 finite points
    np.testing.assert_array_equal(err.path[0], init)
    np.testing.assert_array_equal(err.path[-1], last)
    assert without.value.path is None


# --- an analytic gradient --------------------------------------------------------

def test_grad_replaces_the_numerical_gradient():
    calls = {"f": 0, "grad": 0}

    def f(p):
        calls["f"] += 1
        return np_f2(p)

    def grad(p):
        calls["grad"] += 1
        return 2 * p

    x = gradient_descent(f, np.array([-3.0, 4.0]), lr=0.1, step_num=7, grad=grad)
    assert calls == {"f": 0, "grad": 7}
    assert_close(x, 0.8**7 * np.array([-3.0, 4.0]), rtol=1e-12)


def test_minimises_a_positive_definite_quadratic(backend):
    a = np.array([[3.0, 1.0], [1.0, 2.0]])
    b = np.array([1.0, -1.0])
    A, B = backend.asarray(a), backend.asarray(b)

    def f(p):
        return 0.5 * (p @ A @ p) - B @ p

    x = gradient_descent(f, backend.asarray(np.array([5.0, -7.0])), lr=0.3, step_num=200,
                         grad=lambda p: A @ p - B)
    assert_close(x, np.linalg.solve(a, b), backend=backend, rtol=1e-10)
    # the numerical gradient gets there too
    x = gradient_descent(f, backend.asarray(np.array([5.0, -7.0])), lr=0.3, step_num=60)
    assert_close(x, np.linalg.solve(a, b), backend=backend, rtol=1e-7)
    assert float(to_numpy(f(x))) == pytest.approx(-0.5 * float(b @ np.linalg.solve(a, b)), rel=1e-12)


def test_minimises_the_rosenbrock_function():
    def f(p):
        return (1 - p[0]) ** 2 + 100 * (p[1] - p[0] ** 2) ** 2

    def grad(p):
        return np.array([-2 * (1 - p[0]) - 400 * p[0] * (p[1] - p[0] ** 2), 200 * (p[1] - p[0] ** 2)])

    # lr below 2 / (largest Hessian eigenvalue at the minimum, about 1002)
    x = gradient_descent(f, np.array([-1.2, 1.0]), lr=1.5e-3, step_num=30_000, grad=grad)
    assert_close(x, [1.0, 1.0], rtol=1e-7)
    assert f(x) < 1e-14


# --- argument errors -----------------------------------------------------------------

@pytest.mark.parametrize("lr", [0, 0.0, -0.1, float("nan"), float("inf")])
def test_lr_must_be_positive(lr):
    with pytest.raises(ValueError, match="`lr` must be positive"):
        gradient_descent(np_f2, np.array([1.0]), lr=lr)


def test_lr_must_be_a_number():
    with pytest.raises(TypeError, match="`lr` must be a real number; got NoneType"):
        gradient_descent(np_f2, np.array([1.0]), lr=None)


def test_lr_given_as_a_string_is_refused():
    with pytest.raises(TypeError, match="`lr` must be a real number; got str"):
        gradient_descent(np_f2, np.array([1.0]), lr="0.1")


def test_step_num_must_be_a_non_negative_integer():
    with pytest.raises(ValueError, match="`step_num` must be >= 0; got -1"):
        gradient_descent(np_f2, np.array([1.0]), step_num=-1)
    with pytest.raises(TypeError, match="`step_num` must be an integer; got float"):
        gradient_descent(np_f2, np.array([1.0]), step_num=1.5)
    with pytest.raises(TypeError, match="`step_num` must be an integer; got str"):
        gradient_descent(np_f2, np.array([1.0]), step_num="10")


def test_step_num_refuses_bools():
    with pytest.raises(TypeError, match="`step_num` must be an integer; got bool"):
        gradient_descent(np_f2, np.array([1.0]), step_num=True)


def test_f_and_grad_must_be_callable():
    with pytest.raises(TypeError, match="`f` must be callable; got str"):
        gradient_descent("f2", np.array([1.0]))
    with pytest.raises(TypeError, match="`grad` must be callable; got ndarray"):
        gradient_descent(np_f2, np.array([1.0]), grad=np.array([2.0]))


def test_h_is_checked():
    with pytest.raises(ValueError, match="`h` must be positive and finite; got 0"):
        gradient_descent(np_f2, np.array([1.0]), h=0)


def test_complex_start_is_refused():
    with pytest.raises(TypeError, match="`init_x` must be real"):
        gradient_descent(np_f2, np.array([1.0 + 1.0j]))


# --- silent wrong answers and misleading errors, now clear -------------------------

def function_2(x):
    return x[0] ** 2 + x[1] ** 2


def test_the_books_call_with_keywords():
    # the reference code: "got some positional-only arguments passed as keyword arguments: 'init_x'"
    init_x = np.array([-3.0, 4.0])
    x = gradient_descent(function_2, init_x=init_x, lr=0.1, step_num=100, h=1e-4)
    assert_close(x, [-6.11110793e-10, 8.14814391e-10], rtol=1e-7)
    assert_close(gradient_descent(function_2, init_x, lr=0.1, step_num=100, h=1e-4), x, rtol=0)
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'init_x'"):
        gradient_descent(function_2, lr=0.1)


@pytest.mark.parametrize("shape", [(2, 1), (1,), ()])
def test_grad_of_the_wrong_shape_is_refused(backend, shape):
    # the reference code broadcasts x to (2, 2, 2) after two steps
    xp = backend.xp
    message = rf"`grad` must return an array of the shape of `init_x` \(2,\); got shape {re.escape(str(shape))}"
    with pytest.raises(ValueError, match=message):
        gradient_descent(lambda p: xp.sum(p**2), backend.asarray(np.array([3.0, 4.0])), lr=0.1, step_num=2,
                         grad=lambda p: xp.reshape(xp.stack([xp.sum(p)] * math.prod(shape)), shape))


def test_grad_returning_a_number_is_refused():
    with pytest.raises(ValueError, match=r"`grad` must return an array of the shape of `init_x` \(2,\); got float"):
        gradient_descent(np_f2, np.array([3.0, 4.0]), grad=lambda p: 1.0)


@pytest.mark.parametrize("bad", [math.nan, math.inf])
@pytest.mark.parametrize("with_grad", [False, True])
def test_a_start_that_is_not_finite_is_refused(bad, with_grad):
    # the reference code blames the learning rate
    with pytest.raises(ValueError, match=rf"`init_x` must be finite; got {bad} at index \(0,\)"):
        gradient_descent(np_f2, np.array([bad, 4.0]), lr=0.1, grad=(lambda p: 2 * p) if with_grad else None)


@pytest.mark.parametrize("with_grad", [False, True], ids=["numerical", "grad"])
def test_f_returning_nan_at_a_finite_point_is_not_blamed_on_lr(with_grad):
    def f(p):  # nan once x[0] < 1: at step 3 from x[0] = 3 with lr = 0.1 (3 -> 2.4 -> 1.92 -> 1.536 -> ...)
        return math.nan if p[0] < 2 else float(np_f2(p))

    def grad(p):
        return 2 * p if p[0] >= 2 else np.array([math.nan, 0.0])

    message = (r"stopped at step 3 of 10: the gradient is not finite at the finite point of step 2 "
               r"\(largest \|x\| = 2\.56\); `f` \(or `grad`\) returned inf or nan near it\. "
               r"The learning rate is not the cause")
    with pytest.raises(DivergenceError, match=message) as info:
        gradient_descent(f, np.array([3.0, 4.0]), lr=0.1, step_num=10, grad=grad if with_grad else None)
    assert "smaller `lr`" not in str(info.value)
    assert info.value.step == 3
    assert_close(info.value.last_finite, [1.92, 2.56], rtol=1e-9)


def test_an_overflowing_point_still_suggests_a_smaller_lr(no_runaway):
    with np.errstate(over="ignore"), pytest.raises(DivergenceError, match=r"the point overflowed\. Try a smaller `lr`"):
        gradient_descent(np_f2, np.array([-3.0, 4.0]), lr=10.0, step_num=1000, grad=lambda p: 2 * p)


def test_a_start_too_large_for_the_step_is_refused():
    # the reference code returns the start unchanged: x + 1e-4 == x at 1e13
    with pytest.raises(ValueError, match=r"`h` = 0\.0001 is too small for `init_x` in float64"):
        gradient_descent(np_f2, np.array([1e13, 1.0]), lr=0.1, h=1e-4)


@pytest.mark.parametrize(("name", "value"), [("init_x", np.float64(3.0)), ("lr", np.float64(0.1)),
                                             ("h", np.float64(1e-4)), ("step_num", np.int64(5))])
def test_numpy_scalars_are_numbers(name, value):
    # the reference code refuses np.float64 as init_x: "got only Python scalars"
    args = {"init_x": 3.0, "lr": 0.1, "h": 1e-4, "step_num": 5} | {name: value}
    x = gradient_descent(lambda p: p**2, args.pop("init_x"), **args)
    assert float(x) == pytest.approx(3.0 * 0.8**5, rel=1e-6)


@pytest.mark.parametrize(("init_x", "message"), [
    (["a", "b"], "`init_x` must be an array of real numbers; got dtype <U1"),
    (np.array([1, None]), "`init_x` must be an array of real numbers; got dtype object"),
    (np.array([1j]), "`init_x` must be real; got dtype complex128"),
])
def test_bad_dtypes_name_init_x(init_x, message):
    with pytest.raises(TypeError, match=re.escape(message)):
        gradient_descent(np_f2, init_x)


def test_return_path_must_be_a_bool():
    with pytest.raises(TypeError, match="`return_path` must be True or False; got str"):
        gradient_descent(np_f2, np.array([1.0]), return_path="no")


def test_grad_of_another_library_or_complex_is_refused():
    # the reference code turns x complex without a word
    with pytest.raises(TypeError, match="`grad` must return real numbers; got dtype complex128"):
        gradient_descent(np_f2, np.array([3.0, 4.0]), grad=lambda p: 2 * p + 0j)
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match="`grad` must return an array of the library of `init_x`; got Tensor"):
        gradient_descent(np_f2, np.array([3.0, 4.0]), grad=lambda p: torch.asarray(2 * p))


@pytest.mark.parametrize("name", ["lr", "h"])
def test_numpy_bools_are_not_numbers(name):
    # the reference code took np.True_ as 1.0
    with pytest.raises(TypeError, match=f"`{name}` must be a real number; got bool"):
        gradient_descent(np_f2, np.array([1.0]), **{name: np.True_})


def test_h_with_grad_is_refused_as_it_would_have_no_effect():
    # `grad` replaces the numerical gradient whose step `h` is: a run with both
    # silently ignored `h`, so a user comparing steps saw no difference
    with pytest.raises(ValueError, match="`h` is the numerical gradient's step and `grad` replaces"):
        gradient_descent(lambda p: (p**2).sum(), np.array([1.0, 2.0]), lr=0.1, step_num=2, h=1e-3,
                         grad=lambda p: 2 * p)


# --- an f and grad that change their argument in place; the dtype of the start --------------

def test_gradient_descent_hands_f_and_grad_copies(backend):
    xp = backend.xp
    x, before = caller_array(backend)

    def grad(v):  # the gradient of sum(v**2), scaling its argument in place on the way
        v *= 3
        return 2 * v / 3

    out, path = gradient_descent(lambda v: xp.sum(v**2), x, lr=0.25, step_num=2, grad=grad, return_path=True)
    np.testing.assert_array_equal(to_numpy(x), before)
    assert_close(path, [X0, X0 / 2, X0 / 4], backend=backend, rtol=1e-12)
    out = gradient_descent(doubling_sum, x, lr=0.0625, step_num=1)  # gradient 8 x
    np.testing.assert_array_equal(to_numpy(x), before)
    assert_close(out, X0 / 2, backend=backend, rtol=1e-8)


def test_gradient_descent_never_returns_the_callers_array():
    x = np.array([1.0, 2.0])
    out = gradient_descent(lambda v: (v**2).sum(), x, step_num=0)
    out += 1  # the caller works on the result
    np.testing.assert_array_equal(x, [1.0, 2.0])


def test_gradient_descent_keeps_float32_when_grad_returns_float64(backend):
    # the point silently became float64 after the first step
    xp = backend.xp
    x = backend.asarray(np.array([1.0, -2.0], dtype=np.float32))
    out, path = gradient_descent(lambda v: xp.sum(v**2), x, lr=0.25, step_num=2,
                                 grad=lambda v: 2 * xp.astype(v, xp.float64), return_path=True)
    assert_close(out, [0.25, -0.5], backend=backend, dtype=xp.float32)
    assert_close(path, [[1.0, -2.0], [0.5, -1.0], [0.25, -0.5]], backend=backend, dtype=xp.float32)


# --- property tests: bad and unusual input gives the right answer or a clear error ---------

def _sum_of_squares(v):
    import array_api_compat

    return array_api_compat.array_namespace(v).sum(v**2)


@NUMERICS_SETTINGS
@given(point=any_points(shapes=[(), (1,), (3,), (2, 2)]),
       lr=st.sampled_from([0.1, 0.25, 0, -0.1, math.nan, math.inf, np.float64(0.1)]),
       step_num=st.integers(0, 4), analytic=st.booleans())
def test_gradient_descent(point, lr, step_num, analytic):
    host, lib, x = point

    def grad(p):
        return 2 * p

    def call():
        return gradient_descent(_sum_of_squares, init_x=x, lr=lr,
                                step_num=step_num, grad=grad if analytic else None)

    out = check_call(call, host, lib, None, ("init_x", "lr", "x", "f", "grad"), x)
    finite = host.dtype.kind != "f" or bool(np.all(np.isfinite(host)))
    lr_ok = math.isfinite(lr) and lr > 0
    if not (finite and lr_ok):
        assert out is None, "a bad start or learning rate gave a result"
        return
    dtype = result_dtype(host, lib, x)
    if out is None:
        assert dtype == np.float16, "gradient descent refused a good start"
        return
    xd = host.astype(dtype).astype(np.float64)
    expected = xd * (1 - 2 * lr) ** step_num
    eps = float(np.finfo(dtype).eps)
    np.testing.assert_allclose(out, expected, rtol=200 * eps ** (2 / 3), atol=200 * eps ** (2 / 3))
