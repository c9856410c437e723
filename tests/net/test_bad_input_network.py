"""Property-based tests: the network layer on bad input.

Every function of the network layer is fed the classes of bad input (NaN and
infinities, empty and 0-d arrays, other dtypes, lists, NumPy scalars, arrays of
other libraries, wrong shapes, out-of-range labels, bad steps). Each call must
either give the right answer (checked against a NumPy reference) or raise a
TypeError or ValueError whose message names the argument: never a wrong
number, never another exception.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import xgrad
from xgrad import (
    TwoLayerNet,
    cross_entropy_error,
    directional_check,
    gradient_check,
    log_softmax,
    relu,
    sigmoid,
    softmax,
)
from xgrad._infra.host import to_numpy

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
N_IN, N_HIDDEN, N_OUT = 4, 3, 3
VALUES = st.sampled_from([0.0, 1.0, -2.5, 0.3, 1e3, -1e3, math.nan, math.inf, -math.inf])
MODEST = st.sampled_from([0.0, 1.0, -2.5, 0.3, math.nan, math.inf, -math.inf])  # for the network


def _outcome(call, *names):
    """The result, or None after a TypeError/ValueError that names one of `names`."""
    try:
        return call()
    except (TypeError, ValueError) as exc:
        named = any(f"`{n}" in str(exc) for n in names)
        if not named:
            pytest.fail(f"{type(exc).__name__} does not name {names}: {exc}")
        return None


def _foreign(a):
    """`a` as an array of another library (torch or jax), when installed."""
    torch = pytest.importorskip("torch")
    return torch.asarray(np.array(a, copy=True))


@st.composite
def raw_arrays(draw, shape=None, dtypes=("float64", "float32", "int64", "bool", "complex128"), values=VALUES):
    """Arrays of any shape and dtype, with NaN/inf sprinkled in."""
    shape = draw(st.sampled_from([(), (0,), (3,), (2, 3), (0, 3), (2, 0), (1, 1, 3)])) if shape is None else shape
    values = draw(st.lists(values, min_size=math.prod(shape), max_size=math.prod(shape)))
    dtype = draw(st.sampled_from(dtypes))
    with np.errstate(invalid="ignore", over="ignore"):
        a = np.array(values, dtype=np.float64).reshape(shape)
        if dtype in ("int64", "bool"):
            a = np.nan_to_num(a, nan=0, posinf=7, neginf=-7)
        return a.astype(dtype)


@st.composite
def inputs(draw, shape=None, values=VALUES):
    """An array, or the same data as a list, a NumPy scalar or a torch tensor."""
    a = draw(raw_arrays(shape, values=values))
    form = draw(st.sampled_from(["array", "array", "list", "scalar", "torch"]))
    if form == "list":
        return np.asarray(a.tolist()), a.tolist()
    if form == "scalar":
        scalar = a.reshape(-1)[0] if a.size else a.dtype.type(0)
        return np.asarray(scalar), scalar
    if form == "torch":
        return a, _foreign(a)
    return a, a


def _host(a):
    return np.asarray(to_numpy(a), dtype=np.float64)


# --- activations and softmax -----------------------------------------------------------

@SETTINGS
@given(inputs())
def test_activations(data):
    host, x = data
    for f, ref in ((sigmoid, lambda v: 0.5 * np.tanh(0.5 * v) + 0.5), (relu, lambda v: np.maximum(v, 0.0))):
        got = _outcome(lambda: f(x), "x")  # noqa: B023
        if got is None:
            assert np.iscomplexobj(np.asarray(host))
            continue
        with np.errstate(invalid="ignore"):
            expected = ref(np.asarray(host, dtype=np.float64))
        np.testing.assert_allclose(_host(got), expected, rtol=1e-6, atol=1e-300)


@SETTINGS
@given(inputs(), st.integers(-3, 2))
def test_softmax_and_log_softmax(data, axis):
    host, x = data
    for f in (softmax, log_softmax):
        got = _outcome(lambda: f(x, axis=axis), "x", "axis")  # noqa: B023
        a = np.asarray(host)
        if got is None:
            continue
        assert not np.iscomplexobj(a) and a.ndim > 0
        a = a.astype(np.float64)
        p = np.exp(_host(got)) if f is log_softmax else _host(got)
        assert p.shape == a.shape and np.all(np.isfinite(p)) and not np.any(np.isnan(a))
        np.testing.assert_allclose(np.sum(p, axis=axis), 1.0, rtol=1e-5)


@SETTINGS
@given(st.integers(0, 3), st.integers(1, 3), st.data())
def test_cross_entropy_error(n, n_classes, data):
    y = data.draw(raw_arrays(shape=(n, n_classes), dtypes=("float64",)))
    shape = data.draw(st.sampled_from([(n,), (n, n_classes), (n + 1,), (n, n_classes + 1), ()]))
    t = data.draw(st.one_of(
        st.lists(st.integers(-2, n_classes + 1), min_size=math.prod(shape), max_size=math.prod(shape)).map(
            lambda v: np.array(v, dtype=np.int64).reshape(shape)),
        raw_arrays(shape=shape, dtypes=("float64", "bool", "int64")),
    ))
    form = data.draw(st.sampled_from(["array", "list", "torch"]))
    t_in = t.tolist() if form == "list" else _foreign(t) if form == "torch" else t
    got = _outcome(lambda: cross_entropy_error(y, t_in, logits=True), "t", "y")
    scores_ok = n > 0 and np.all(np.isfinite(y) | (y == -np.inf)) and not np.all(y == -np.inf, axis=1).any()
    rows = _rows(t, n, n_classes) if form == "array" and scores_ok else None
    if rows is None:
        assert got is None
        return
    with np.errstate(invalid="ignore", divide="ignore"):
        shifted = y - y.max(axis=1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        expected = -np.sum(rows * np.where(rows != 0, log_p, 0.0)) / n
    assert got is not None and float(got) == pytest.approx(expected, rel=1e-10, abs=1e-12)


def _rows(t, n, n_classes):
    """The target rows that labels `t` stand for, or None where they must be refused."""
    if t.dtype == bool:
        return None
    if t.shape == (n,):
        ok = t.dtype.kind in "iu" and np.all((t >= 0) & (t < n_classes))
        return np.eye(n_classes)[t] if ok else None
    if t.shape == (n, n_classes):
        rows = t.astype(np.float64)
        if not (np.all(np.isfinite(rows)) and np.all(rows >= 0)):
            return None
        total = rows.sum(axis=1)
        ok = np.all(total == 1) if t.dtype.kind in "iu" else np.all(np.abs(total - 1) <= 1.5e-8)
        return rows if ok else None
    return None


# --- the network -----------------------------------------------------------------------------

ARGS = st.one_of(st.integers(-2, 5), st.floats(allow_nan=True), st.booleans(), st.text(max_size=2), st.none(),
                 st.just(np.int64(3)), st.just([3]))


def _count(v, minimum):
    return not isinstance(v, bool | float | str | list) and v is not None and int(v) >= minimum


@SETTINGS
@given(ARGS, ARGS, ARGS, st.sampled_from(["float32", "float64", "float16", "int8", None, 3]))
def test_construction(hidden, output, seed, dtype):
    net = _outcome(lambda: TwoLayerNet(N_IN, hidden, output, seed=seed, dtype=dtype),
                   "hidden_size", "output_size", "seed", "dtype")
    valid = (_count(hidden, 1) and _count(output, 1) and (seed is None or _count(seed, 0))
             and dtype in ("float32", "float64", None))
    assert (net is not None) == valid
    if net is not None:
        assert net.sizes == (N_IN, int(hidden), int(output))
        assert str(net.params["W1"].dtype) == (dtype or "float64")


@pytest.fixture(scope="module")
def net():
    return TwoLayerNet(N_IN, N_HIDDEN, N_OUT, seed=0, weight_init_std=1.0)


def _reference_loss(net, x, rows):
    p = {k: np.asarray(v, dtype=np.float64) for k, v in net.params.items()}
    z1 = 1 / (1 + np.exp(-(x @ p["W1"] + p["b1"])))
    a2 = z1 @ p["W2"] + p["b2"]
    log_p = a2 - a2.max(axis=1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(axis=1, keepdims=True))
    return -np.sum(rows * log_p) / x.shape[0]


@st.composite
def batches(draw):
    """(host x, x as passed, host t, t as passed)."""
    n = draw(st.integers(0, 3))
    x_shape = draw(st.sampled_from([(n, N_IN), (n, N_IN), (N_IN,), (n, N_IN + 1), ()]))
    host_x, x = draw(inputs(shape=x_shape, values=MODEST))
    t_shape = draw(st.sampled_from([(n,), (n,), (n, N_OUT), (n + 1,)]))
    host_t = draw(st.one_of(
        st.lists(st.integers(-1, N_OUT), min_size=math.prod(t_shape), max_size=math.prod(t_shape)).map(
            lambda v: np.array(v, dtype=np.int64).reshape(t_shape)),
        raw_arrays(shape=t_shape, dtypes=("float64", "int64", "bool")),
    ))
    t = draw(st.sampled_from(["array", "array", "list", "torch"]))
    t_in = host_t.tolist() if t == "list" else _foreign(host_t) if t == "torch" else host_t
    return host_x, x, host_t, t_in


def _valid(host_x, x, host_t, t):
    """Whether (x, t) is a batch the network must accept, and its target rows."""
    if not (isinstance(x, np.ndarray) and isinstance(t, np.ndarray)):
        return False, None
    if host_x.ndim != 2 or host_x.shape[1] != N_IN or host_x.shape[0] == 0 or host_x.dtype.kind not in "iuf":
        return False, None
    if not np.all(np.isfinite(host_x)):
        return False, None
    rows = _rows(host_t, host_x.shape[0], N_OUT)
    return rows is not None, rows


@SETTINGS
@given(batches())
def test_loss_gradient_accuracy(net, batch):
    host_x, x, host_t, t = batch
    valid, rows = _valid(host_x, x, host_t, t)
    loss = _outcome(lambda: net.loss(x, t), "x", "t")
    grads = _outcome(lambda: net.gradient(x, t), "x", "t")
    numeric = _outcome(lambda: net.numerical_gradient(x, t), "x", "t")
    acc = _outcome(lambda: net.accuracy(x, t), "x", "t")
    if not valid:
        assert loss is None and grads is None and numeric is None and acc is None
        return
    xf = host_x.astype(np.float64)
    assert float(loss) == pytest.approx(_reference_loss(net, xf, rows), rel=1e-12)
    for k in grads:
        np.testing.assert_allclose(numeric[k], grads[k], rtol=1e-6, atol=1e-9)
    if np.any((rows == rows.max(axis=1, keepdims=True)).sum(axis=1) > 1):
        assert acc is None  # a row whose largest value is in several classes names no true class
        return
    labels = rows.argmax(axis=1)
    assert acc == pytest.approx(np.mean(np.argmax(np.asarray(net.scores(x)), axis=1) == labels))


@SETTINGS
@given(batches())
def test_predict(net, batch):
    host_x, x, _, _ = batch
    p = _outcome(lambda: net.predict(x), "x")
    if p is None:
        return
    assert isinstance(x, np.ndarray) and host_x.ndim == 2 and host_x.shape[1] == N_IN
    assert host_x.dtype.kind in "iuf" and np.all(np.isfinite(host_x))
    assert p.shape == (host_x.shape[0], N_OUT)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-12)


STEPS = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True), st.integers(-1, 1), st.text(max_size=2),
                  st.just(np.float32(1e-4)), st.just([1e-4]))


@SETTINGS
@given(batches(), STEPS)
def test_gradient_checks(net, batch, h):
    host_x, x, host_t, t = batch
    valid, _ = _valid(host_x, x, host_t, t)
    bad_h = h is not None and (isinstance(h, bool | str | list) or not math.isfinite(float(h)) or float(h) <= 0)
    if h is not None and not bad_h:
        assume(1e-7 < float(h) < 1e-3)  # larger steps are inexact, smaller ones the numerics refuse
    good_h = not bad_h
    check = _outcome(lambda: gradient_check(net, x, t, h=h), "x", "t", "h")
    slope = _outcome(lambda: directional_check(net, x, t, h=h), "x", "t", "h")
    if not valid or not good_h:
        assert check is None and slope is None
        return
    assert check.passed, str(check)
    assert slope.passed and slope["rel_error"] < slope.tolerance


def test_other_libraries_arrays_are_refused_by_a_numpy_network(net):
    jnp = pytest.importorskip("jax.numpy")
    x, t = np.ones((2, N_IN)), np.array([0, 1])
    with pytest.raises(TypeError, match="`x` must be an array of the network's library"):
        net.loss(jnp.asarray(x), t)
    with pytest.raises(TypeError, match="`t` must be an array of the network's library"):
        net.loss(x, jnp.asarray(t))
    with pytest.raises(TypeError, match=r"`params\['W1'\]` must be an array of the network's library"):
        net.with_params({**net.params, "W1": jnp.asarray(net.params["W1"])})
    assert xgrad.gradient_check(net, x, t).passed
