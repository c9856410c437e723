"""xgrad.check_gradient on every backend: correct gradients pass, injected
bugs (1% in one median-sized entry, a sign flip, a zeroed entry) fail, in
float32 and float64, entry by entry and along random directions; kinks are
reported; NaN always fails."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xgrad import GradientReport, check_gradient
from xgrad._infra.host import to_numpy
from xgrad._numerics.gradcheck import directions_for

BUGS = ["one percent", "sign flip", "zeroed"]


def _problem(backend, n, dtype_name, seed=0):
    """f(x) = x.A.x / 2 + sum(w sin x), gradient A x + w cos x (known exactly)."""
    xp = backend.xp
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, n))
    a = (a + a.T) / math.sqrt(n)
    w = rng.uniform(0.5, 2.0, size=n)
    dtype = getattr(xp, dtype_name)
    a_, w_ = backend.asarray(a, dtype=dtype), backend.asarray(w, dtype=dtype)
    x = backend.asarray(rng.normal(size=n), dtype=dtype)

    def f(v):
        return xp.sum(v * xp.matmul(a_, v)) / 2 + xp.sum(w_ * xp.sin(v))

    def grad(v):
        return xp.matmul(a_, v) + w_ * xp.cos(v)

    return f, grad, x


def _inject(grad, bug, backend):
    """The gradient with one bug in the entry of median magnitude."""
    xp = backend.xp

    def wrong(v):
        g = to_numpy(grad(v)).astype(np.float64)
        i = int(np.argsort(np.abs(g))[g.size // 2])
        g[i] = {"one percent": 1.01 * g[i], "sign flip": -g[i], "zeroed": 0.0}[bug]
        return backend.asarray(g, dtype=v.dtype)

    del xp
    return wrong


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("n", [6, 300], ids=["entries", "directions"])
def test_correct_gradients_pass(backend, dtype, n):
    f, grad, x = _problem(backend, n, dtype)
    report = check_gradient(f, grad, x)
    assert isinstance(report, GradientReport)
    assert report.passed, str(report)
    assert report.mode == ("entries" if n == 6 else "directions")


@pytest.mark.parametrize("bug", BUGS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("n", [6, 300], ids=["entries", "directions"])
def test_injected_bugs_fail(backend, bug, dtype, n):
    f, grad, x = _problem(backend, n, dtype, seed=1)
    report = check_gradient(f, _inject(grad, bug, backend), x)
    assert not report.passed, str(report)


def test_worst_entry_is_named_with_both_values(backend):
    f, grad, x = _problem(backend, 5, "float64", seed=2)
    wrong = _inject(grad, "one percent", backend)
    report = check_gradient(f, wrong, x)
    index, numerical, given, allowed = report.worst[0]
    exact = to_numpy(grad(x))[index]
    assert numerical == pytest.approx(exact, rel=1e-10)
    assert given == pytest.approx(1.01 * exact, rel=1e-12)
    assert abs(numerical - given) > allowed
    assert "FAIL" in str(report) and "ulps" in report.tolerance


def test_nan_anywhere_fails(backend):
    f, grad, x = _problem(backend, 4, "float64")
    xp = backend.xp
    assert not check_gradient(f, lambda v: grad(v) * xp.nan, x).passed
    assert not check_gradient(lambda v: f(v) * xp.nan, grad, x).passed


def test_relu_kink_is_reported_not_failed(backend):
    xp = backend.xp
    weights = backend.asarray([1.0, 2.0, 3.0], dtype=xp.float64)
    x = backend.asarray([0.0, 1.0, -1.0], dtype=xp.float64)

    def f(v):
        return xp.sum(weights * xp.maximum(v, xp.zeros_like(v)))

    def subgradient(v):
        return xp.where(v > 0, weights, xp.zeros_like(v))

    report = check_gradient(f, subgradient, x)
    assert report.passed and report.kinks == [0]
    # a gradient outside [left, right] at the kink still fails
    assert not check_gradient(f, lambda v: subgradient(v) - 1, x).passed


def test_array_gradient_and_matrix_shapes():
    x = np.arange(1.0, 7.0).reshape(2, 3)
    assert check_gradient(lambda v: np.sum(v**2), 2 * x, x).passed


def test_directions_follow_the_detection_probability():
    assert directions_for(0.999) == 10
    assert directions_for(0.5) == 2


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"detection": 1.0}, ValueError, "`detection` must be between 0 and 1"),
    ({"max_entries": 0}, ValueError, "`max_entries` must be >= 1"),
])
def test_argument_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        check_gradient(lambda v: np.sum(v), np.ones(2), np.ones(2), **kwargs)


def test_gradient_of_the_wrong_shape():
    with pytest.raises(ValueError, match="`grad` must have the shape of `x`"):
        check_gradient(lambda v: np.sum(v), np.ones(3), np.ones(2))


def test_kinks_along_directions_send_the_check_to_entries():
    rng = np.random.default_rng(3)
    x = rng.normal(size=100)
    shift = np.where(np.arange(100) % 2 == 0, x, x - 1)  # even entries sit on the kink
    w = rng.uniform(0.5, 2.0, size=100)

    def f(v):
        return np.sum(w * np.maximum(v - shift, 0.0) + v * v / 2)

    def grad(v):
        return w * (v - shift > 0) + v

    report = check_gradient(f, grad, x)
    assert report.passed and report.mode == "entries"
    assert report.kinks == list(range(0, 100, 2))
    wrong = grad(x)
    wrong[1] *= 1.01  # an odd entry, away from its kink
    assert not check_gradient(f, lambda v: wrong, x).passed
