"""Finite differences: the book's printed values, accuracy of the dtype-derived
step on every backend, the vectorised and batched paths, argument errors, an `f`
that changes its argument in place, and error estimates where f cancels;
property tests: any point, dtype, library and step gives the right answer or a
clear error."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _helpers import (
    BAD_STEPS,
    NUMERICS_SETTINGS,
    ODD_STEPS,
    X0,
    any_points,
    assert_close,
    caller_array,
    check_call,
    doubling,
    dquad,
    quad,
    result_dtype,
    rounding_bound,
    steps_taken,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from xgrad import directional_derivative, numerical_diff, numerical_gradient, resolve_backend, tangent_line
from xgrad._infra.host import to_numpy


def f1(x):
    return 0.01 * x**2 + 0.1 * x


def np_f2(x):
    return np.sum(x**2)


def sum_of_squares(xp):
    return lambda x: xp.sum(x**2)


def default_float(backend):
    """The dtype a Python float gets on this backend (float32 for torch)."""
    return backend.xp.asarray(1.0, device=backend.device).dtype


# --- the book's values (h = 1e-4) -------------------------------------------

def test_numerical_diff_reproduces_the_book():
    assert float(numerical_diff(f1, 5, h=1e-4)) == pytest.approx(0.1999999999990898, rel=1e-15, abs=0)
    assert float(numerical_diff(f1, 10, h=1e-4)) == pytest.approx(0.2999999999986347, rel=1e-15, abs=0)


@pytest.mark.parametrize(("point", "expected"), [
    ([3.0, 4.0], [6.0, 8.0]),
    ([0.0, 2.0], [0.0, 4.0]),
    ([3.0, 0.0], [6.0, 0.0]),
])
def test_numerical_gradient_reproduces_the_book(point, expected):
    g = numerical_gradient(np_f2, np.array(point), h=1e-4)
    assert_close(g, expected, rtol=1e-11, atol=1e-11, dtype=np.float64)


# --- accuracy of the default step --------------------------------------------

def _cubic(xp):
    return lambda x: x**3 - 2 * x**2 + 3 * x - 1


# (function on the namespace, exact derivative in float64, points for float64, points for float32).
# exp and sin are tried only at moderate |x|: the step grows like |x|, which suits log and
# polynomials (whose curvature scale grows with |x|) but not exp or sin (see the report).
CASES = {
    "exp": (lambda xp: xp.exp, np.exp, [-3.0, 0.3, 1.0, 2.0, 5.0], [-3.0, 0.3, 1.0, 2.0]),
    "sin": (lambda xp: xp.sin, np.cos, [-3.0, 0.3, 1.0, 2.0, 5.0], [-3.0, 0.3, 1.0, 2.0]),
    "log": (lambda xp: xp.log, lambda x: 1 / x, [0.3, 1.0, 2.0, 100.0, 1e4], [0.5, 1.0, 2.0, 100.0, 1e4]),
    "cubic": (_cubic, lambda x: 3 * x**2 - 4 * x + 3, [-100.0, -2.0, 0.3, 1.0, 100.0],
              [-100.0, -2.0, 0.3, 1.0, 100.0]),
}


@pytest.mark.parametrize("precision", ["float64", "float32"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_default_step_is_accurate(backend, case, precision):
    make_f, df, points64, points32 = CASES[case]
    host = np.array(points64 if precision == "float64" else points32, dtype=precision)
    dtype = getattr(backend.xp, precision)
    x = backend.asarray(host, dtype=dtype)
    d = numerical_diff(make_f(backend.xp), x)
    exact = df(host.astype(np.float64))  # at the points as rounded to `precision`
    assert_close(d, exact, backend=backend, dtype=dtype, rtol=1e-9 if precision == "float64" else 1e-4)


def test_the_books_fixed_step_is_poor_in_float32(backend):
    x = backend.asarray(np.array(1.0), dtype=backend.xp.float32)
    book = float(to_numpy(numerical_diff(backend.xp.exp, x, h=1e-4)))
    ours = float(to_numpy(numerical_diff(backend.xp.exp, x)))
    book_error, our_error = abs(book / math.e - 1), abs(ours / math.e - 1)
    assert book_error >= 1e-4
    assert our_error <= 5e-5
    assert book_error >= 5 * our_error


def test_integer_input_is_promoted_to_the_default_float(backend):
    x = backend.asarray(np.array([1, 2]))
    g = numerical_gradient(sum_of_squares(backend.xp), x)
    # the reference code keeps the integer dtype and gets [5000, 15000]
    assert_close(g, [2.0, 4.0], backend=backend, dtype=default_float(backend), rtol=1e-5)


def test_python_numbers_become_numpy():
    d = numerical_diff(f1, 5)
    assert isinstance(d, np.ndarray | np.generic)
    assert d.dtype == np.float64
    assert d.shape == ()
    assert float(d) == pytest.approx(0.2, rel=1e-10)


# --- the caller's arrays are never modified ----------------------------------

def test_read_only_numpy_input_works_and_is_unchanged():
    a = np.array([3.0, 4.0])
    a.flags.writeable = False
    assert_close(numerical_gradient(np_f2, a), [6.0, 8.0], rtol=1e-9)
    assert_close(numerical_gradient(lambda p: np.sum(p**2, axis=-1), a, vectorized=True), [6.0, 8.0],
                 rtol=1e-9)
    assert_close(numerical_diff(np.exp, a), np.exp([3.0, 4.0]), rtol=1e-9)
    u = np.array([1.0, 0.0])
    u.flags.writeable = False
    assert float(directional_derivative(np_f2, a, u)) == pytest.approx(6.0, rel=1e-9)
    np.testing.assert_array_equal(a, [3.0, 4.0])


def test_the_callers_array_is_never_modified(backend):
    host = np.array([[3.0, -4.0], [0.5, 2.0]])
    x = backend.asarray(host)
    xp = backend.xp
    changed = []

    def f(p):  # checks the caller's array while the gradient is being taken
        if not np.array_equal(to_numpy(x), host):
            changed.append(to_numpy(x))
        return xp.sum(p**2)

    g = numerical_gradient(f, x)
    gb = numerical_gradient(f, x, per_row=True)
    gf = numerical_gradient(f, x, method="forward")
    assert changed == []
    np.testing.assert_array_equal(to_numpy(x), host)
    assert_close(g, 2 * host, backend=backend, rtol=1e-9)
    assert_close(gb, 2 * host, backend=backend, rtol=1e-9)
    assert_close(gf, 2 * host, backend=backend, rtol=1e-6)


# --- one-sided differences and the error estimate ----------------------------

@pytest.mark.parametrize("method", ["forward", "backward"])
def test_one_sided_differences(backend, method):
    host = np.array([0.3, 1.0, 2.0])
    d = numerical_diff(backend.xp.exp, backend.asarray(host), method=method)
    assert_close(d, np.exp(host), backend=backend, rtol=1e-6)
    # O(h): clearly less accurate than the central difference, which is within 1e-9
    central = numerical_diff(backend.xp.exp, backend.asarray(host))
    one_sided_error = np.max(np.abs(to_numpy(d) / np.exp(host) - 1))
    assert one_sided_error > 10 * np.max(np.abs(to_numpy(central) / np.exp(host) - 1))
    g = numerical_gradient(sum_of_squares(backend.xp), backend.asarray(np.array([3.0, 4.0])), method=method)
    assert_close(g, [6.0, 8.0], backend=backend, rtol=1e-6)


ESTIMATE_POINTS = np.array([-1.5, 0.3, 1.0, 2.0, 4.0])


@pytest.mark.parametrize("method", ["central", "forward", "backward"])
@pytest.mark.parametrize(("f", "df"), [(np.exp, np.exp), (np.sin, np.cos)], ids=["exp", "sin"])
def test_error_estimate_has_the_size_of_the_actual_error(f, df, method):
    d, err = numerical_diff(f, ESTIMATE_POINTS, method=method, return_error=True)
    actual = np.abs(d - df(ESTIMATE_POINTS))
    assert err.shape == d.shape
    assert np.all(err > 0)
    # not absurdly pessimistic (the bound itself is checked below)
    assert np.all(err <= 1000 * actual)


def _estimates_below_the_actual_error(points):
    below = []
    for name, f, df in [("exp", np.exp, np.exp), ("sin", np.sin, np.cos)]:
        for method in ("central", "forward", "backward"):
            d, err = numerical_diff(f, points, method=method, return_error=True)
            actual = np.abs(d - df(points))
            below += [(name, method, round(float(x), 3), round(float(e / a), 2))
                      for x, e, a in zip(points, err, actual, strict=True) if e < a]
    return below


def test_error_estimate_bounds_the_actual_error():
    below = _estimates_below_the_actual_error(ESTIMATE_POINTS)
    assert below == [], f"(f, method, x, estimate / actual) where the estimate is too small: {below}"


def test_error_estimate_bounds_the_actual_error_on_a_fine_grid():
    below = _estimates_below_the_actual_error(np.linspace(-4, 4, 41) + 0.013)
    assert below == [], f"(f, method, x, estimate / actual) where the estimate is too small: {below}"


# --- batch and vectorized ----------------------------------------------------

def test_batch_gives_the_gradient_of_each_row(backend):
    xp = backend.xp
    host = np.array([[1.0, -2.0, 0.5], [3.0, 0.0, -1.0]])
    x = backend.asarray(host)

    def f(p):
        return xp.sum(p**3) / 3

    g = numerical_gradient(f, x, per_row=True)
    rows = np.stack([to_numpy(numerical_gradient(f, backend.asarray(row))) for row in host])
    assert_close(g, rows, backend=backend, rtol=1e-14, atol=1e-15)
    assert_close(g, host**2, backend=backend, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("shape", [(3,), (2, 2, 2)])
def test_batch_needs_a_2d_array(shape):
    with pytest.raises(ValueError, match="with per_row=True, `x` must be 2-d"):
        numerical_gradient(np_f2, np.ones(shape), per_row=True)


@pytest.mark.parametrize("chunk_size", [None, 1, 3, 100])
def test_vectorized_equals_the_loop(backend, chunk_size):
    xp = backend.xp
    host = np.array([[0.3, -1.2, 2.0], [1.0, 0.0, -0.7]])
    x = backend.asarray(host)

    def f(p):  # one point (2, 3) -> 0-d, or a stack (k, 2, 3) -> (k,)
        return xp.sum(xp.sin(p) * p, axis=(-2, -1))

    loop = numerical_gradient(f, x)
    vec = numerical_gradient(f, x, vectorized=True, chunk_size=chunk_size)
    assert_close(vec, to_numpy(loop), backend=backend, rtol=1e-12, atol=1e-14)
    assert_close(vec, np.sin(host) + host * np.cos(host), backend=backend, rtol=1e-8, atol=1e-10)

@pytest.mark.parametrize("method", ["forward", "backward"])
def test_vectorized_one_sided_equals_the_loop(backend, method):
    xp = backend.xp
    x = backend.asarray(np.array([[0.3, -1.2, 2.0], [1.0, 0.0, -0.7]]))

    def f(p):
        return xp.sum(xp.sin(p) * p, axis=(-2, -1))

    assert_close(numerical_gradient(f, x, vectorized=True, chunk_size=4, method=method),
                 to_numpy(numerical_gradient(f, x, method=method)), backend=backend, rtol=1e-12, atol=1e-14)


def test_vectorized_with_batch_equals_the_loop(backend):
    xp = backend.xp
    x = backend.asarray(np.array([[1.0, 2.0, -1.0], [0.5, -3.0, 2.5]]))

    def f(p):
        return xp.sum(xp.exp(p), axis=-1)

    assert_close(numerical_gradient(f, x, per_row=True, vectorized=True, chunk_size=2),
                 to_numpy(numerical_gradient(f, x, per_row=True)), backend=backend, rtol=1e-12)


def test_empty_input_gives_an_empty_gradient():
    for vectorized in (False, True):
        g = numerical_gradient(lambda p: np.sum(p, axis=-1), np.zeros((0,)), vectorized=vectorized)
        assert_close(g, np.zeros((0,)), dtype=np.float64)


@pytest.mark.parametrize("bad", [
    lambda p: np.sum(p, axis=-1, keepdims=True),  # (k, 1)
    lambda p: np.sum(p),  # one number for the whole stack
    lambda p: 1.0,
])
def test_vectorized_f_with_the_wrong_output_shape(bad):
    with pytest.raises(ValueError, match=r"with vectorized=True, `f` must map a stack of points"):
        numerical_gradient(bad, np.array([1.0, 2.0, 3.0]), vectorized=True, chunk_size=2)


# --- property: the gradient of a quadratic form --------------------------------

@st.composite
def quadratic_forms(draw, dtype):
    n = draw(st.integers(1, 6))
    width = 64 if dtype == np.float64 else 32
    elements = st.floats(-10, 10, width=width, allow_subnormal=False)
    a = draw(hnp.arrays(dtype, (n, n), elements=elements))
    x = draw(hnp.arrays(dtype, (n,), elements=elements))
    return a, x


def _check_quadratic_form(backend, a, x, rel):
    dtype = getattr(backend.xp, str(a.dtype))
    A, X = backend.asarray(a, dtype=dtype), backend.asarray(x, dtype=dtype)
    if np.all(a + a.T == 0):  # v @ A @ v is 0 for every v: warned of as a constant f
        with pytest.warns(RuntimeWarning, match="same value at every perturbed point"):
            g = numerical_gradient(lambda v: v @ A @ v, X)
    else:
        g = numerical_gradient(lambda v: v @ A @ v, X)
    exact = (a.astype(np.float64) + a.T.astype(np.float64)) @ x.astype(np.float64)
    scale = a.shape[0] * np.max(np.abs(a)) * max(1.0, float(np.max(np.abs(x))))
    assert_close(g, exact, backend=backend, dtype=dtype, rtol=rel, atol=rel * scale / 10 + 1e-30)


# Random shapes on NumPy only: every new shape costs JAX a compilation, and the
# fixed-size check below already runs the same code on every backend.
HYPOTHESIS = settings(max_examples=25, deadline=None, database=None)


@HYPOTHESIS
@given(data=quadratic_forms(np.float64))
def test_gradient_of_a_quadratic_form_float64(data):
    _check_quadratic_form(resolve_backend("numpy"), *data, rel=1e-6)


@HYPOTHESIS
@given(data=quadratic_forms(np.float32))
def test_gradient_of_a_quadratic_form_float32(data):
    _check_quadratic_form(resolve_backend("numpy"), *data, rel=2e-3)


@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_gradient_of_a_quadratic_form_on_every_backend(backend, precision):
    rng = np.random.default_rng(3)
    a = rng.uniform(-10, 10, size=(3, 3)).astype(precision)
    x = rng.uniform(-10, 10, size=3).astype(precision)
    _check_quadratic_form(backend, a, x, rel=1e-6 if precision == "float64" else 2e-3)


# --- directional derivative and tangent line -----------------------------------

@pytest.mark.parametrize("norm", [1e-3, 1.0, 250.0])
def test_directional_derivative_is_the_gradient_along_u(backend, norm):
    xp = backend.xp
    rng = np.random.default_rng(7)
    x = rng.normal(size=(3, 4))
    u = rng.normal(size=(3, 4))
    u *= norm / np.linalg.norm(u)

    def f(v):
        return xp.sum(xp.sin(v)) + 0.5 * xp.sum(v * v)

    d = directional_derivative(f, backend.asarray(x), backend.asarray(u))
    exact = np.sum((np.cos(x) + x) * u)
    assert_close(d, exact, backend=backend, rtol=1e-8, dtype=backend.xp.float64)


def test_directional_derivative_with_a_fixed_step():
    x, u = np.array([3.0, 4.0]), np.array([2.0, -1.0])
    assert float(directional_derivative(np_f2, x, u, h=1e-4)) == pytest.approx(2 * (6 - 4), rel=1e-9)


def test_directional_derivative_errors():
    x = np.array([3.0, 4.0])
    with pytest.raises(ValueError, match="`u` must be a non-zero direction"):
        directional_derivative(np_f2, x, np.zeros(2))
    with pytest.raises(ValueError, match=r"`u` must have the shape of `x` \(2,\); got \(3,\)"):
        directional_derivative(np_f2, x, np.ones(3))
    with pytest.raises(TypeError, match="`f` must return a number"):
        directional_derivative(lambda v: "x", x, np.ones(2))


def test_tangent_line_of_f1_at_5(backend):
    x = backend.asarray(np.array(5.0))
    line = tangent_line(f1, x)
    at5, at6 = line(backend.asarray(np.array(5.0))), line(backend.asarray(np.array(6.0)))
    assert_close(at5, f1(5.0), backend=backend, rtol=1e-10)  # through (5, f1(5)) = (5, 0.75)
    assert float(to_numpy(at6) - to_numpy(at5)) == pytest.approx(0.2, rel=1e-9)  # slope 0.2


def test_tangent_line_needs_one_point():
    with pytest.raises(ValueError, match=r"`x` must be a single point; got shape \(2,\)"):
        tangent_line(f1, np.array([5.0, 6.0]))
    with pytest.raises(TypeError, match="`f` must be callable"):
        tangent_line(3.0, 5.0)


# --- argument errors ------------------------------------------------------------

@pytest.mark.parametrize("func", [numerical_diff, numerical_gradient])
def test_f_must_be_callable(func):
    with pytest.raises(TypeError, match="`f` must be callable; got float"):
        func(1.0, np.array([1.0]))


def test_f_returning_an_array_in_numerical_gradient():
    message = r"`f` must return a scalar \(one number\); got an array of shape \(2,\)\. Reduce it"
    with pytest.raises(ValueError, match=message):
        numerical_gradient(lambda x: x**2, np.array([1.0, 2.0]))


def test_f_returning_a_string():
    with pytest.raises(TypeError, match="`f` must return a number or a 0-d array; got str"):
        numerical_gradient(lambda x: "loss", np.array([1.0, 2.0]))


@pytest.mark.parametrize("h", [0, -1, 0.0, math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("func", [numerical_diff, numerical_gradient])
def test_h_must_be_positive_and_finite(func, h):
    with pytest.raises(ValueError, match="`h` must be positive and finite"):
        func(np_f2, np.array([1.0]), h=h)


def test_h_must_be_a_number():
    with pytest.raises(TypeError, match="`h` must be a real number; got list"):
        numerical_gradient(np_f2, np.array([1.0]), h=[1e-4, 1e-3])


@pytest.mark.parametrize(("h", "kind"), [("1e-4", "str"), (True, "bool"), (None, None)])
def test_h_given_as_a_string_or_bool_is_refused(h, kind):
    if kind is None:  # None means the default step
        assert_close(numerical_gradient(np_f2, np.array([3.0]), h=h), [6.0], rtol=1e-9)
        return
    with pytest.raises(TypeError, match=f"`h` must be a real number; got {kind}"):
        numerical_gradient(np_f2, np.array([1.0]), h=h)


@pytest.mark.parametrize("func", [numerical_diff, numerical_gradient])
def test_unknown_method(func):
    message = "`method` must be one of 'central', 'forward', 'backward'; got 'centre'"
    with pytest.raises(ValueError, match=message):
        func(np_f2, np.array([1.0]), method="centre")


@pytest.mark.parametrize("func", [numerical_diff, numerical_gradient])
def test_complex_input(func):
    with pytest.raises(TypeError, match="`x` must be real; got dtype complex128"):
        func(np_f2, np.array([1.0 + 2.0j]))


def test_not_an_array():
    with pytest.raises(TypeError, match="`x` must be an array or a number; got list"):
        numerical_gradient(np_f2, [[1.0, 2.0], [3.0]])


@pytest.mark.parametrize(("x", "dtype"), [(["1.5", "2"], "<U3"), (object(), "object")], ids=["strings", "object"])
def test_x_that_is_not_numeric_is_refused(x, dtype):
    with pytest.raises(TypeError, match=f"`x` must be an array of real numbers; got dtype {dtype}"):
        numerical_gradient(np_f2, x)


def test_boolean_input_is_promoted():
    assert_close(numerical_gradient(np_f2, np.array([True, False])), [2.0, 0.0], rtol=1e-9, dtype=np.float64)


def test_chunk_size_must_be_a_positive_integer():
    with pytest.raises(ValueError, match="`chunk_size` must be >= 1; got 0"):
        numerical_gradient(np_f2, np.array([1.0]), vectorized=True, chunk_size=0)
    with pytest.raises(TypeError, match="`chunk_size` must be an integer; got float"):
        numerical_gradient(np_f2, np.array([1.0]), vectorized=True, chunk_size=1.5)
    with pytest.raises(TypeError, match="`chunk_size` must be an integer; got bool"):
        numerical_gradient(np_f2, np.array([1.0]), vectorized=True, chunk_size=True)


# --- arrays from different libraries or devices ----------------------------------

def test_mixing_numpy_and_torch_is_refused():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match=r"different libraries cannot be mixed.*numpy.*torch"):
        directional_derivative(np_f2, np.array([1.0, 2.0]), torch.tensor([1.0, 0.0], dtype=torch.float64))


def test_mixing_strict_devices_is_refused():
    strict = pytest.importorskip("array_api_strict")
    x = strict.asarray([1.0, 2.0])
    u = strict.asarray([1.0, 0.0], device=strict.Device("device1"))
    with pytest.raises(ValueError, match="arrays are on different devices"):
        directional_derivative(lambda v: strict.sum(v**2), x, u)


def test_chunk_size_needs_vectorized():
    with pytest.raises(ValueError, match="`chunk_size` applies only with vectorized=True"):
        numerical_gradient(np_f2, np.array([1.0, 2.0]), chunk_size=4)


# --- silent wrong answers that are now refused or fixed --------------------------

def function_2(x):
    return x[0] ** 2 + x[1] ** 2


def test_numerical_diff_refuses_a_scalar_function_of_several_variables():
    # the reference code returns [16.67, 12.5] here
    message = r"`f` must be elementwise: f\(x\) must have the shape of `x` \(2,\); got shape \(\).*numerical_gradient"
    with pytest.raises(ValueError, match=message):
        numerical_diff(function_2, np.array([3.0, 4.0]))


def test_numerical_diff_refuses_an_f_that_changes_the_shape():
    # the reference code broadcasts (3, 1) against (3,) into a (3, 3) "derivative"
    with pytest.raises(ValueError, match=r"must have the shape of `x` \(3,\); got shape \(3, 1\)"):
        numerical_diff(lambda x: x[:, None] ** 2, np.array([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match=r"must have the shape of `x` \(2,\); got float"):
        numerical_diff(lambda x: 1.0, np.array([1.0, 2.0]))


def test_numerical_diff_accepts_a_number_for_a_0d_point():
    assert float(numerical_diff(lambda x: float(x) ** 2, 3.0)) == pytest.approx(6.0, rel=1e-9)


@pytest.mark.parametrize(("x", "h", "where"), [
    (5.0, 1e-20, r"\(\) \(x = 5\.0\)"),                                  # the reference code gives 0.0
    (np.array([1.0, 1e8]), 1e-9, r"\(1,\) \(x = 100000000\.0\)"),      # only the large element is lost
    (np.array([5.0], dtype=np.float16), 1e-8, r"\(0,\) \(x = 5\.0\)"),  # rounds to 0 in float16: NaN
], ids=["float64", "one-element", "float16"])
@pytest.mark.parametrize("func", [numerical_diff, numerical_gradient])
def test_a_step_the_dtype_cannot_resolve_is_refused(func, x, h, where):
    message = rf"`h` = {h} is too small for `x` in float\d+: x ± h == x at index {where}.*Use h >= .*h=None"
    f = (lambda v: v**2) if func is numerical_diff else (lambda v: (v**2).sum())
    with pytest.raises(ValueError, match=message):
        func(f, x, h=h)


def test_a_step_unresolved_below_x_only_is_refused_for_central_differences():
    # float32 1 + 4e-8 == 1, but 1 - 4e-8 != 1: the central difference would be half a guess
    x = np.array([1.0], dtype=np.float32)
    with pytest.raises(ValueError, match="x ± h == x"):
        numerical_diff(np.exp, x, h=4e-8)
    assert float(numerical_diff(np.exp, x, h=4e-8, method="backward")[0]) > 0


def test_too_small_a_step_is_refused_on_every_backend(backend):
    x = backend.asarray(np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="is too small for `x`"):
        numerical_gradient(sum_of_squares(backend.xp), x, h=1e-300)


@pytest.mark.parametrize(("x", "h", "message"), [
    (np.array([1.0], dtype=np.float32), 1e40, r"`h` = 1e\+40 does not fit in float32"),
    (np.array([3e38], dtype=np.float32), 1e38, r"leaves the range of float32: x ± h overflows at index \(0,\)"),
    (np.array([np.finfo(np.float64).max / 1.000001]), None, "the step leaves the range of float64"),
])
def test_a_step_out_of_the_floating_range_is_refused(x, h, message):
    with pytest.raises(ValueError, match=message):
        numerical_diff(lambda v: v, x, h=h)


def test_a_huge_step_that_overflows_f_says_so():
    # the reference code returns nan (NumPy) or raises from inside torch
    with np.errstate(over="ignore", invalid="ignore"), \
            pytest.raises(ValueError, match=r"derivative is not finite at index \(0,\).*smaller `h`"):
        numerical_diff(lambda v: v**2, np.array([1.0], dtype=np.float32), h=1e30)


def test_torch_float32_huge_step_is_a_clear_error():
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError, match=r"`h` = 1e\+40 does not fit in torch.float32"):
        numerical_diff(lambda v: v, torch.ones(1, dtype=torch.float32), h=1e40)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("func", [numerical_diff, numerical_gradient])
def test_a_point_that_is_not_finite_is_refused(func, bad):
    # the reference code returns nan as the "gradient"
    with pytest.raises(ValueError, match=rf"`x` must be finite; got {bad} at index \(1,\)"):
        func(np.exp if func is numerical_diff else np_f2, np.array([1.0, bad]))


@pytest.mark.parametrize("func", [numerical_diff, numerical_gradient])
def test_f_returning_nan_at_a_finite_point_is_an_error(func):
    # the reference code returns [nan, nan]
    message = r"is not finite at index \(0,\) \(got nan\): `f` returned inf or nan"
    with pytest.raises(ValueError, match=message):
        func(lambda v: v * math.nan if func is numerical_diff else math.nan, np.array([1.0, 2.0]))


# --- what f returns --------------------------------------------------------------

def test_f_returning_a_torch_float64_scalar_keeps_float64():
    torch = pytest.importorskip("torch")
    x = np.array([3.0, 1e-3])
    expected = numerical_gradient(np_f2, x)
    g = numerical_gradient(lambda p: torch.tensor(np_f2(p), dtype=torch.float64), x)
    # the reference code returns a torch tensor here
    assert isinstance(g, np.ndarray)
    assert g.dtype == np.float64
    np.testing.assert_array_equal(g, expected)


def test_f_returning_a_narrower_float_is_refused():
    torch = pytest.importorskip("torch")
    # torch.tensor(a Python float) is float32: the reference code returns [5.98, 8.03]
    message = r"`f` returned a torch.float32 value for an `x` of dtype float64: its differences would keep only"
    with pytest.raises(TypeError, match=message):
        numerical_gradient(lambda p: torch.tensor(float(np_f2(p))), np.array([3.0, 4.0]))
    with pytest.raises(TypeError, match="returned a float32 value for an `x` of dtype float64"):
        numerical_gradient(lambda p: np.float32(np_f2(p)), np.array([3.0, 4.0]))
    with pytest.raises(TypeError, match="returned a float32 value for an `x` of dtype float64"):
        numerical_diff(lambda p: (p**2).astype(np.float32), np.array([3.0, 4.0]))


@pytest.mark.parametrize("bad", [lambda p: complex(np_f2(p)), lambda p: np_f2(p) + 0j],
                         ids=["python", "numpy"])
def test_f_returning_a_complex_number_is_refused(bad):
    # the reference code returns a complex "gradient" for the NumPy complex scalar
    with pytest.raises(TypeError, match="`f` must return a real number; got the complex number"):
        numerical_gradient(bad, np.array([3.0, 4.0]))


def test_f_returning_a_complex_array_is_refused():
    with pytest.raises(TypeError, match="`f` must return a real number; got dtype complex128"):
        numerical_gradient(lambda p: np.sum(p**2, keepdims=True) + 0j, np.array([3.0, 4.0]))
    with pytest.raises(TypeError, match="`f` must return a real number; got dtype complex128"):
        numerical_diff(lambda p: p + 0j, np.array([3.0, 4.0]))


def test_elementwise_f_returning_another_library_is_refused():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match="`f` must return an array of the library of `x`; got Tensor"):
        numerical_diff(lambda p: torch.asarray(p**2), np.array([3.0, 4.0]))


# --- the book's closure idiom -------------------------------------------------

def _closure_net():
    from xgrad import TwoLayerNet

    net = TwoLayerNet(4, 3, 2, seed=0)
    return net, np.ones((2, 4)), np.array([1, 0])


CLOSURE_WARNING = r"`f` returned the same value at every perturbed point.*with_params\(\{\*\*net.params, 'W1': W\}\)"


@pytest.mark.parametrize("options", [{}, {"method": "forward"}, {"vectorized": True}, {"per_row": True},
                                     {"per_row": True, "vectorized": True}], ids=str)
def test_a_closure_that_ignores_its_argument_is_warned_of(options):
    net, x, t = _closure_net()
    loss = float(net.loss(x, t))
    f = (lambda W: np.full(W.shape[0], loss)) if options.get("vectorized") and not options.get("per_row") else \
        (lambda W: np.full(W.shape[0], loss)) if options.get("vectorized") else (lambda W: net.loss(x, t))
    with pytest.warns(RuntimeWarning, match=CLOSURE_WARNING):
        g = numerical_gradient(f, net.params["W1"], **options)
    np.testing.assert_array_equal(g, 0.0)


def test_the_documented_fix_gives_the_gradient():
    net, x, t = _closure_net()
    g = numerical_gradient(lambda W: net.with_params({**net.params, "W1": W}).loss(x, t), net.params["W1"])
    assert_close(g, net.gradient(x, t)["W1"], rtol=1e-4, atol=1e-10)


@pytest.mark.parametrize(("f", "x"), [
    (np_f2, np.zeros(3)),  # f(±h e_k) = h**2 everywhere, but f(0) = 0
    (lambda v: np.sum(np.maximum(v, 0.0)), np.array([-1.0, -2.0])),  # flat here, not everywhere
    (lambda v: v[0] ** 2 - v[1] ** 2, np.zeros(2)),  # a saddle
])
def test_a_true_zero_gradient_is_not_warned_of(f, x):
    np.testing.assert_array_equal(numerical_gradient(f, x), 0.0)


# --- NumPy scalars, keywords, flags, empty batches ----------------------------------

def test_numpy_scalars_work_where_numbers_do():
    # the reference code says "expected at least one array argument; got only Python scalars"
    assert float(numerical_diff(f1, np.float64(5.0))) == pytest.approx(0.2, rel=1e-9)
    assert float(numerical_gradient(lambda v: v**2, np.float64(3.0))) == pytest.approx(6.0, rel=1e-9)
    assert float(numerical_diff(f1, np.float32(5.0), h=np.float64(1e-2))) == pytest.approx(0.2, rel=1e-4)
    assert float(tangent_line(f1, np.float64(5.0))(np.float64(6.0))) == pytest.approx(0.95, rel=1e-9)
    assert float(directional_derivative(lambda v: v**2, np.float64(3.0), np.float64(1.0))) == \
        pytest.approx(6.0, rel=1e-9)


def test_x_by_keyword():
    # the reference code: "got some positional-only arguments passed as keyword arguments: 'x'"
    assert_close(numerical_gradient(np_f2, x=np.array([3.0, 4.0])), [6.0, 8.0], rtol=1e-9)
    assert float(numerical_diff(f1, x=5.0)) == pytest.approx(0.2, rel=1e-9)
    with pytest.raises(TypeError, match="positional-only"):
        numerical_gradient(f=np_f2, x=np.array([3.0]))


@pytest.mark.parametrize("flag", ["per_row", "vectorized"])
def test_flags_must_be_bools(flag):
    # the reference code takes batch="no" as true
    with pytest.raises(TypeError, match=f"`{flag}` must be True or False; got str"):
        numerical_gradient(np_f2, np.array([[1.0, 2.0]]), **{flag: "no"})
    with pytest.raises(TypeError, match="`return_error` must be True or False; got int"):
        numerical_diff(np.exp, np.array([1.0]), return_error=2)


def test_a_batch_of_no_rows_vectorized():
    # the reference code raises IndexError
    g = numerical_gradient(lambda p: np.sum(p**2, axis=-1), np.zeros((0, 3)), per_row=True, vectorized=True)
    assert g.shape == (0, 3)


def test_directional_derivative_with_a_zero_direction_and_a_step():
    # the reference code returns 0.0 with an explicit h, and refuses without one
    with pytest.raises(ValueError, match="`u` must be a non-zero direction"):
        directional_derivative(np_f2, np.array([1.0, 2.0]), np.zeros(2), h=1e-4)


def test_directional_derivative_with_a_step_too_small():
    # the reference code returns 0.0
    with pytest.raises(ValueError, match=r"`h` = 1e-20 is too small for `x` in float64: x \+ h\*u == x"):
        directional_derivative(np_f2, np.array([1.0, 2.0]), np.array([1.0, 0.0]), h=1e-20)
    with pytest.raises(ValueError, match="takes x ± h\\*u out of the range of float64"):
        directional_derivative(np_f2, np.array([1e308, 2.0]), np.array([1.0, 0.0]), h=1.7e308)


@pytest.mark.parametrize("name", ["x", "u"])
def test_directional_derivative_refuses_points_that_are_not_finite(name):
    args = {"x": np.array([1.0, 2.0]), "u": np.array([1.0, 0.0])}
    args[name] = np.array([1.0, math.nan])
    with pytest.raises(ValueError, match=f"`{name}` must be finite; got nan"):
        directional_derivative(np_f2, args["x"], args["u"])


@pytest.mark.parametrize("h", [0, -1.0, math.nan, math.inf])
@pytest.mark.parametrize("func", ["tangent_line", "directional_derivative", "gradient_descent"])
def test_h_is_checked_by_every_function(func, h):
    from xgrad import gradient_descent

    calls = {
        "tangent_line": lambda: tangent_line(f1, 5.0, h=h),
        "directional_derivative": lambda: directional_derivative(np_f2, np.ones(2), np.ones(2), h=h),
        # no step is taken: the reference code never looks at h
        "gradient_descent": lambda: gradient_descent(np_f2, np.ones(2), step_num=0, h=h),
    }
    with pytest.raises(ValueError, match="`h` must be positive and finite"):
        calls[func]()


def test_the_error_estimate_checks_its_half_step():
    # the reference code returns 2.96 with an estimate of nan: 1 + 7.5e-17 == 1
    with pytest.raises(ValueError, match=r"the step h/2 is used too: `h` = 7\.5e-17 is too small"):
        numerical_diff(np.exp, np.array([1.0]), h=1.5e-16, return_error=True)


def test_a_numpy_scalar_direction_for_a_torch_point():
    torch = pytest.importorskip("torch")
    s = directional_derivative(lambda v: (v**2).sum(), torch.tensor(3.0, dtype=torch.float64), np.float64(1.0))
    assert isinstance(s, torch.Tensor)
    assert float(s) == pytest.approx(6.0, rel=1e-9)


def test_f_returning_integers_or_bools():
    # the reference code fails inside NumPy: "numpy boolean subtract ... is not supported"
    g = numerical_gradient(lambda p: np.sum(p) > 0.5, np.array([0.25, 0.25]), h=1e-2)
    np.testing.assert_array_equal(g, [50.0, 50.0])  # a step function: (1 - 0) / (2h)
    assert g.dtype == np.float64
    d = numerical_diff(lambda p: (p > 0).astype(np.int64), np.array([-1.0, 1e-6]), h=1e-4)
    np.testing.assert_array_equal(d, [0.0, 5000.0])


def test_directional_derivative_at_extreme_scales():
    # the reference code squares x and u: |x| = 1e200 overflowed, |u| = 1e-200 became "zero"
    x, u = np.array([1e200, -1e200]), np.array([1e-200, 0.0])
    with pytest.raises(ValueError, match="`u` is too short for the scale of `x`: the step along it overflows"):
        directional_derivative(lambda v: np.sum(v), x, u)
    s = directional_derivative(lambda v: np.sum(v), np.array([1.0, 2.0]), u)
    assert float(s) == pytest.approx(1e-200, rel=1e-9)
    s = directional_derivative(lambda v: np.sum(v), np.array([1e200, 2.0]), np.array([1.0, 1.0]))
    assert float(s) == pytest.approx(2.0, rel=1e-9)


def test_batch_is_the_deprecated_name_of_per_row():
    x = np.array([[1.0, 2.0], [3.0, 0.0]])
    with pytest.warns(DeprecationWarning, match="`batch` is deprecated; pass `per_row`"):
        g = numerical_gradient(np_f2, x, batch=True)
    assert_close(g, [[2.0, 4.0], [6.0, 0.0]], rtol=1e-8)
    with (
        pytest.warns(DeprecationWarning, match="`batch` is deprecated"),
        pytest.raises(TypeError, match="give `per_row` only"),
    ):
        numerical_gradient(np_f2, x, per_row=True, batch=True)


# --- an f that changes its argument in place; the error estimate where f cancels ---------------

@pytest.mark.parametrize("method", ["central", "forward", "backward"])
def test_numerical_diff_hands_f_copies(backend, method):
    x, before = caller_array(backend)
    d = numerical_diff(doubling, x, method=method)
    np.testing.assert_array_equal(to_numpy(x), before)
    assert_close(d, 8 * X0, backend=backend, rtol=1e-6)
    d, _ = numerical_diff(doubling, x, method=method, return_error=True)
    np.testing.assert_array_equal(to_numpy(x), before)
    assert_close(d, 8 * X0, backend=backend, rtol=1e-6)


def test_tangent_line_hands_f_a_copy(backend):
    # y = f(x) - d * x read x after f had doubled it: the tangent missed the curve
    x = backend.asarray(np.array([1.5]))
    line = tangent_line(doubling, x)
    np.testing.assert_array_equal(to_numpy(x), [1.5])
    assert_close(line(backend.asarray(np.array([1.5]))), [9.0], backend=backend, rtol=1e-9)
    assert_close(line(backend.asarray(np.array([2.5]))), [9.0 + 12.0], backend=backend, rtol=1e-9)


@pytest.mark.parametrize("method", ["central", "forward", "backward"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_error_estimate_bounds_the_error_where_f_cancels(backend, method, dtype):
    # f's rounding is eps (|f| + |x f'|), not eps |f|: near sqrt(2), x*x - 2 is tiny but
    # carries the rounding of x*x; the estimate was 36 times too small there
    xp = backend.xp
    host = np.linspace(1.3, 1.5, 201).astype(dtype)
    cases = [(lambda v: v * v - 2, lambda v: 2 * v), (lambda v: xp.sin(10 * v), lambda v: 10 * np.cos(10 * v))]
    for f, df in cases:
        d, err = numerical_diff(f, backend.asarray(host), method=method, return_error=True)
        actual = np.abs(to_numpy(d).astype(np.float64) - df(host.astype(np.float64)))
        below = np.flatnonzero(to_numpy(err) < actual)
        assert below.size == 0, f"estimate below the error at x = {host[below][:5]}"
        assert np.median(to_numpy(err) / np.maximum(actual, 1e-300)) < 1e4  # and not absurdly loose


# --- property tests: bad and unusual input gives the right answer or a clear error ---------

@NUMERICS_SETTINGS
@given(point=any_points(), h=st.sampled_from(BAD_STEPS + ODD_STEPS))
def test_numerical_diff(point, h):
    host, lib, x = point
    d = check_call(lambda: numerical_diff(quad, x, h=h), host, lib, h, ("x", "h", "f"), x)
    finite = host.dtype.kind != "f" or bool(np.all(np.isfinite(host)))
    valid_h = h is None or (math.isfinite(h) and h > 0)
    if not (finite and valid_h):
        assert d is None, "a NaN/inf point or a bad step gave a result"
        return
    dtype = result_dtype(host, lib, x)
    if d is None:
        assert h is not None or dtype == np.float16, "the default step was refused"
        return
    xd = host.astype(dtype).astype(np.float64)
    eps = float(np.finfo(dtype).eps)
    steps = steps_taken(xd, h, eps)
    assert d.shape == host.shape
    assert d.dtype == dtype
    np.testing.assert_array_less(np.abs(d - dquad(xd)), rounding_bound(xd, steps, eps) + 1e-300)


@NUMERICS_SETTINGS
@given(point=any_points(), h=st.sampled_from([*BAD_STEPS, None, 1e-3]))
def test_tangent_line(point, h):
    host, lib, x = point
    line = check_call(lambda: tangent_line(quad, x, h=h), host, lib, h, ("x", "h", "f"), x)
    finite = host.dtype.kind != "f" or bool(np.all(np.isfinite(host)))
    if host.size != 1 or not finite or not (h is None or (math.isfinite(h) and h > 0)):
        assert line is None, "a bad point or step gave a tangent"
        return
    if line is None:
        assert h is not None or result_dtype(host, lib, x) == np.float16
        return
