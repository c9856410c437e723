"""The differentiation functions evaluate a traceable `f` at many points in one
compiled call on JAX (``_numerics/batched.py``; numerical_gradient vectorizes `f`
without compiling it, to keep the numbers of its other paths), fall back to one
call per point for an `f` that cannot be traced, and let every other error of `f`
through.

Each function is run twice on the same maths: `f` traceable, and the same `f`
with a branch on ``float(x[0])`` (a tracer cannot become a Python number), which
takes the per-point path. Their answers agree within a stated tolerance (a
compiled `f` may round differently); the traceable one runs its Python body a
few times (once per compilation) instead of once per point.
"""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

from xgrad import check_gradient, derivative, hessian, jacobian, numerical_gradient
from xgrad._infra.host import to_numpy
from xgrad._numerics import batched

TOL = 1e-9  # float64: a compiled f rounds its few operations differently, nothing more


class Counted:
    """`fn(xp, v)`, counting the calls of its Python body; `branch`: untraceable."""

    def __init__(self, xp, fn, branch=False):
        self.xp, self.fn, self.branch, self.calls = xp, fn, branch, 0

    def __call__(self, v):
        self.calls += 1
        if self.branch and float(self.xp.reshape(v, (-1,))[0]) > 1e9:  # never taken, but needs a number
            return self.fn(self.xp, 2 * v)
        return self.fn(self.xp, v)


def _scalar(xp, v):
    return xp.sum(xp.sin(v) * v) + xp.log(xp.sum(xp.exp(v)))


def _elementwise(xp, v):
    return xp.exp(-v * v / 2) * xp.sin(3 * v)


def _vector(xp, v):
    return xp.stack([xp.sin(v[0]) * v[1], v[0] ** 2 + xp.cos(v[2]), xp.tanh(v[1] * v[2])])


def _rosen(xp, v):
    return xp.sum(100 * (v[1:] - v[:-1] ** 2) ** 2 + (1 - v[:-1]) ** 2)


POINT = np.array([0.3, -1.2, 0.8, 1.5])


def _cases(backend):
    """Per function: (f's maths, the call on a given f, the answer as an array to compare)."""
    xp = backend.xp
    x = backend.asarray(POINT)

    def grad(v):
        e = xp.exp(v)
        return xp.sin(v) + v * xp.cos(v) + e / xp.sum(e)

    return {
        "check_gradient": (_scalar, lambda f: check_gradient(f, grad, x),
                           lambda r: np.array(sorted((i, n, g) for i, n, g, _ in r.worst))),
        "derivative": (_elementwise, lambda f: derivative(f, x), lambda r: to_numpy(r.df)),
        "numerical_gradient": (_scalar, lambda f: numerical_gradient(f, x), to_numpy),
        "jacobian": (_vector, lambda f: jacobian(f, x[:3]), lambda r: to_numpy(r.df)),
        "hessian": (_rosen, lambda f: hessian(f, x), lambda r: to_numpy(r.df)),
    }


FUNCTIONS = ("check_gradient", "derivative", "numerical_gradient", "jacobian", "hessian")


@pytest.mark.parametrize("name", FUNCTIONS)
def test_a_traceable_f_and_its_per_point_twin_agree(backend, name):
    maths, run, answer = _cases(backend)[name]
    traced, eager = Counted(backend.xp, maths), Counted(backend.xp, maths, branch=True)
    got, expected = run(traced), run(eager)
    if name == "check_gradient":
        assert got.passed and expected.passed and got.checked == expected.checked
    np.testing.assert_allclose(answer(got), answer(expected), rtol=TOL, atol=TOL)
    if backend.name == "jax":
        # traced once per shape of the stack (a few), not called once per point (dozens)
        assert traced.calls <= 6 < eager.calls, (traced.calls, eager.calls)
        assert traced in batched._COMPILED
    else:  # nothing is compiled
        assert traced.calls == eager.calls
        if backend.name != "jax":
            np.testing.assert_array_equal(answer(got), answer(expected))


@pytest.mark.parametrize("name", FUNCTIONS)
def test_an_untraceable_f_gives_the_answer_of_the_per_point_path(backend, name):
    maths, run, answer = _cases(backend)[name]
    first, again = Counted(backend.xp, maths, branch=True), Counted(backend.xp, maths, branch=True)
    a, b = run(first), run(again)
    np.testing.assert_array_equal(answer(a), answer(b))  # the same path both times, bit for bit
    assert first.calls == again.calls


class Boom(RuntimeError):
    pass


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("when", ["always", "on a value"])
def test_an_error_of_f_reaches_the_caller_unchanged(backend, name, when):
    maths, run, _ = _cases(backend)[name]
    xp = backend.xp
    seen = []

    def f(v):
        if when == "always" or float(xp.reshape(v, (-1,))[0]) != float(POINT[0]):  # the first point moved
            error = Boom("f failed for its own reason")
            seen.append(error)
            raise error
        return maths(xp, v)

    with pytest.raises(Boom, match="f failed for its own reason") as info:
        run(f)
    assert info.value is seen[-1]  # the very exception f raised, not a wrapper
    if when == "always":  # raised at f's first eager call (on JAX after one trace, which raised it too;
        # jacobian and hessian call f at x eagerly first)
        assert len(seen) == (2 if backend.name == "jax" and name not in ("jacobian", "hessian") else 1)


def test_the_cache_does_not_keep_f_alive(backend):
    if backend.name != "jax":
        pytest.skip("only JAX compiles f")
    f = Counted(backend.xp, _scalar)
    numerical_gradient(f, backend.asarray(POINT))
    assert f in batched._COMPILED
    ref = weakref.ref(f)
    del f
    gc.collect()
    assert ref() is None


def test_a_compiled_f_is_reused_by_the_next_call(backend):
    if backend.name != "jax":
        pytest.skip("only JAX compiles f")
    f = Counted(backend.xp, _scalar)
    x = backend.asarray(POINT)
    grad = backend.xp.cos  # wrong, and it does not matter: the check's evaluations of f are counted
    check_gradient(f, grad, x)
    traced = f.calls
    check_gradient(f, grad, x)
    assert f.calls == traced  # the same shape and dtype: no new trace, and no call per point


def test_a_bound_method_is_compiled_once_for_its_object(backend):
    if backend.name != "jax":
        pytest.skip("only JAX compiles f")

    class Model:
        calls = 0

        def loss(self, v):
            self.calls += 1
            return _scalar(backend.xp, v)

    model = Model()
    x = backend.asarray(POINT)
    check_gradient(model.loss, backend.xp.cos, x)
    traced = model.calls
    check_gradient(model.loss, backend.xp.cos, x)  # a new bound method object, the same object and function
    assert model.calls == traced
