"""Activations, softmax and cross-entropy: the book's simpleNet on every
backend, numerical stability for extreme scores, and label checking; property
tests: any input (NaN and infinities, empty and 0-d arrays, other dtypes, lists,
NumPy scalars, torch tensors, wrong shapes, out-of-range labels) gives the right
answer or a clear error that names the argument."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _helpers import NETWORK_SETTINGS, as_torch, assert_close, expected_rows, inputs, outcome, raw_arrays
from hypothesis import given
from hypothesis import strategies as st

from xgrad import cross_entropy_error, log_softmax, numerical_gradient, relu, sigmoid, softmax
from xgrad._infra.host import to_numpy

# the book's simpleNet, section 4.4.2
W = np.array([[0.47355232, 0.9977393, 0.84668094], [0.85557411, 0.03563661, 0.69422093]])
X = np.array([0.6, 0.9])
T = np.array([0.0, 0.0, 1.0])
PREDICT = np.array([1.05414809, 0.63071653, 1.1328074])
LOSS = 0.92806853663411326
DW = np.array([[0.21924763, 0.14356247, -0.36281009], [0.32887144, 0.2153437, -0.54421514]])


def test_simple_net_reproduces_the_book(backend):
    w, x, t = backend.asarray(W), backend.asarray(X), backend.asarray(T)
    scores = x @ w
    assert_close(scores, PREDICT, backend=backend, rtol=1e-8)
    assert_close(cross_entropy_error(softmax(scores), t), LOSS, backend=backend, rtol=1e-8)
    assert_close(cross_entropy_error(scores, t, logits=True), LOSS, backend=backend, rtol=1e-8)
    dw = numerical_gradient(lambda v: cross_entropy_error(x @ v, t, logits=True), w, h=1e-4)
    assert_close(dw, DW, backend=backend, rtol=0, atol=1e-8)


def test_integer_label_equals_one_hot(backend):
    scores = backend.asarray(X @ W)
    label = backend.asarray(np.array(2))
    one_hot = cross_entropy_error(scores, backend.asarray(T), logits=True)
    assert_close(cross_entropy_error(scores, label, logits=True), to_numpy(one_hot), backend=backend,
                 rtol=1e-14)
    assert_close(cross_entropy_error(softmax(scores), label), LOSS, backend=backend, rtol=1e-8)


# --- softmax and log_softmax ----------------------------------------------------

def _softmax_reference(a):
    e = np.exp(a - np.max(a, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


def test_softmax_of_a_batch(backend):
    scores = np.array([[0.3, 2.9, 4.0], [-1.0, 0.0, 1.0], [5.0, 5.0, 5.0]])
    p = softmax(backend.asarray(scores))
    assert_close(p, _softmax_reference(scores), backend=backend, rtol=1e-14)
    np.testing.assert_allclose(np.sum(to_numpy(p), axis=1), 1.0, rtol=1e-15)
    assert_close(p[2, ...], [1 / 3, 1 / 3, 1 / 3], backend=backend, rtol=1e-15)
    # along the first axis: the columns sum to 1
    np.testing.assert_allclose(np.sum(to_numpy(softmax(backend.asarray(scores), axis=0)), axis=0), 1.0,
                               rtol=1e-15)


def test_softmax_is_invariant_to_a_shift(backend):
    scores = np.array([0.3, 2.9, 4.0])
    p = to_numpy(softmax(backend.asarray(scores)))
    for shift in (-50.0, 7.0, 1000.0):
        assert_close(softmax(backend.asarray(scores + shift)), p, backend=backend, rtol=1e-12)


def test_softmax_of_huge_scores_does_not_overflow(backend):
    # the book's naive exp(1010) overflows; warnings are errors in this suite
    p = softmax(backend.asarray(np.array([[1010.0, 1000.0, 990.0], [-1000.0, -1000.0, -1000.0]])))
    expected = _softmax_reference(np.array([[20.0, 10.0, 0.0], [0.0, 0.0, 0.0]]))
    assert_close(p, expected, backend=backend, rtol=1e-14)
    assert np.all(np.isfinite(to_numpy(p)))


def test_log_softmax_equals_the_log_of_softmax(backend):
    scores = np.array([[0.3, 2.9, 4.0], [-1.0, 0.0, 1.0]])
    expected = np.log(_softmax_reference(scores))
    assert_close(log_softmax(backend.asarray(scores)), expected, backend=backend, rtol=1e-14)
    assert_close(log_softmax(backend.asarray(scores), axis=0), np.log(_softmax_reference(scores.T)).T,
                 backend=backend, rtol=1e-14)


def test_log_softmax_stays_finite_for_extreme_scores(backend):
    # log(softmax) would give log(0) = -inf for the last two
    got = log_softmax(backend.asarray(np.array([1000.0, 0.0, -1000.0])))
    assert_close(got, [0.0, -1000.0, -2000.0], backend=backend, rtol=1e-15)


# --- activations ---------------------------------------------------------------------

def test_sigmoid_saturates_exactly_without_warnings(backend):
    s = sigmoid(backend.asarray(np.array([-1000.0, 0.0, 1000.0])))
    np.testing.assert_array_equal(to_numpy(s), [0.0, 0.5, 1.0])
    assert_close(s, [0.0, 0.5, 1.0], backend=backend, rtol=0)


def test_sigmoid_values(backend):
    x = np.array([-30.0, -2.0, -0.5, 0.5, 2.0, 30.0])
    expected = 1 / (1 + np.exp(-x))
    assert_close(sigmoid(backend.asarray(x)), expected, backend=backend, rtol=1e-14)
    # symmetry: sigmoid(-x) = 1 - sigmoid(x)
    np.testing.assert_allclose(to_numpy(sigmoid(backend.asarray(-x))), 1 - expected, rtol=1e-12, atol=1e-16)


def test_relu(backend):
    x = np.array([[-2.0, -0.0, 0.0], [1e-300, 3.5, -1e300]])
    assert_close(relu(backend.asarray(x)), [[0.0, 0.0, 0.0], [1e-300, 3.5, 0.0]], backend=backend, rtol=0,
                 dtype=backend.asarray(x).dtype)


# --- cross-entropy ----------------------------------------------------------------------

def test_zero_probability_for_the_true_class_is_large_but_finite(backend):
    y = backend.asarray(np.array([[0.0, 1.0], [0.5, 0.5]]))
    t = backend.asarray(np.array([0, 0]))
    loss = cross_entropy_error(y, t)
    worst = -math.log(np.finfo(np.float64).smallest_normal)  # about 708.4, not inf
    assert_close(loss, (worst + math.log(2)) / 2, backend=backend, rtol=1e-14)


def test_logits_are_exact_for_extreme_scores(backend):
    scores = backend.asarray(np.array([1000.0, 0.0, -1000.0]))
    assert_close(cross_entropy_error(scores, backend.asarray(np.array(2)), logits=True), 2000.0,
                 backend=backend, rtol=1e-15)


def test_batch_loss_is_the_mean_of_the_sample_losses(backend):
    rng = np.random.default_rng(11)
    scores = rng.normal(size=(4, 5)) * 3
    labels = np.array([0, 4, 2, 2])
    one_hot = np.eye(5)[labels]
    s, t, t1 = backend.asarray(scores), backend.asarray(labels), backend.asarray(one_hot)
    singles = [float(to_numpy(cross_entropy_error(s[i, ...], t[i], logits=True))) for i in range(4)]
    expected = -np.mean(np.log(_softmax_reference(scores))[np.arange(4), labels])
    np.testing.assert_allclose(singles, -np.log(_softmax_reference(scores))[np.arange(4), labels], rtol=1e-12)
    assert_close(cross_entropy_error(s, t, logits=True), np.mean(singles), backend=backend, rtol=1e-12)
    assert_close(cross_entropy_error(s, t1, logits=True), expected, backend=backend, rtol=1e-12)
    assert_close(cross_entropy_error(softmax(s), t), expected, backend=backend, rtol=1e-12)


def test_labels_of_the_wrong_shape_name_both_shapes(backend):
    y = backend.asarray(np.full((2, 3), 1 / 3))
    for labels in (np.array([0, 1, 2]), np.array([[0], [1]]), np.zeros((2, 4)), np.array([0.0, 2.0, 1.0])):
        with pytest.raises(ValueError, match=r"`t` \(the labels\) must have shape \(2,\) \(one class index "
                                             r"per sample\) or \(2, 3\) \(one-hot rows.*got "):
            cross_entropy_error(y, backend.asarray(labels))


def test_floating_class_indices_are_refused_not_read_as_rows(backend):
    # shape (2,) against scores (2, 3): class indices, which must be integers
    y = backend.asarray(np.full((2, 3), 1 / 3))
    with pytest.raises(TypeError, match=r"`t` has shape \(2,\), so it holds class indices, which must be "
                                        r"integers; got dtype .*float64.*astype\(int64\)"):
        cross_entropy_error(y, backend.asarray(np.array([0.0, 2.0])))


@pytest.mark.parametrize(("labels", "match"), [
    (np.array([True, False]), r"`t` \(the labels\) must hold class indices .* got booleans"),
    (np.array([[True, False], [False, True]]), r"`t` \(the labels\) must hold class indices .* got booleans"),
    (np.array([1 + 0j, 0j]), r"`t` \(the labels\) must hold integers or real numbers; got dtype .*complex"),
], ids=["bool", "bool-rows", "complex"])
def test_labels_of_the_wrong_kind(backend, labels, match):
    y = backend.asarray(np.full((2, 2), 0.5))
    with pytest.raises(TypeError, match=match):
        cross_entropy_error(y, backend.asarray(labels))


def test_labels_from_another_library_are_refused():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match=r"`t` \(the labels\) must be an array of the library of `y`"):
        cross_entropy_error(np.array([0.5, 0.5]), torch.tensor(1))


# --- labels and scores that used to give silent wrong answers ---------------------------

@pytest.mark.parametrize(("labels", "match"), [
    (np.array([5, 6, 7]), r"`t` holds class index 5 at position 0, outside 0\.\.2 for 3 classes"),
    (np.array([0, 2, -1]), r"`t` holds class index -1 at position 2"),
])
def test_out_of_range_class_indices(backend, labels, match):
    # the loss was -0.0 for these
    y = backend.asarray(np.full((3, 3), 1 / 3))
    with pytest.raises(ValueError, match=match):
        cross_entropy_error(y, backend.asarray(labels))
    with pytest.raises(ValueError, match=r"`t` holds class index 3, outside 0\.\.2"):
        cross_entropy_error(y[0, ...], backend.asarray(np.array(3)))


def test_the_books_integer_one_hot_label(backend):
    scores = backend.asarray(X @ W)
    t = backend.asarray(np.array([0, 0, 1]))  # integer dtype, shape of the scores: one-hot
    assert_close(cross_entropy_error(scores, t, logits=True), LOSS, backend=backend, rtol=1e-8)


@pytest.mark.parametrize(("rows", "match"), [
    (np.array([[0.5, 0.6, 0.0]]), r"must sum to 1 \(within 1\.5e-08\); row 0 sums to 1\.1"),
    (np.array([[1.5, -0.5, 0.0]]), r"finite and >= 0; got -0\.5 at position \(0, 1\)"),
    (np.array([[np.inf, 0.0, 0.0]]), r"finite and >= 0; got inf"),
])
def test_rows_that_are_not_probabilities(backend, rows, match):
    with pytest.raises(ValueError, match=match):
        cross_entropy_error(backend.asarray(np.array([[1.0, 2.0, 3.0]])), backend.asarray(rows), logits=True)


def test_soft_labels_within_the_documented_tolerance():
    y = np.array([[1.0, 2.0, 3.0]])
    soft32 = np.array([[0.1, 0.2, 0.7]], dtype=np.float32)  # sums to 1 only to float32 rounding
    expected = -np.sum(soft32.astype(np.float64) * np.log(_softmax_reference(y)))
    assert float(cross_entropy_error(y, soft32, logits=True)) == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match=r"within 3\.5e-04"):
        cross_entropy_error(y, np.array([[0.1, 0.2, 0.701]], dtype=np.float32), logits=True)


def test_scores_of_the_wrong_shape_or_range():
    with pytest.raises(ValueError, match=r"`y` holds no samples \(shape \(0, 3\)\)"):
        cross_entropy_error(np.zeros((0, 3)), np.zeros(0, dtype=np.int64))
    with pytest.raises(ValueError, match=r"`y` must have shape \(C,\) for one sample or \(N, C\)"):
        cross_entropy_error(np.zeros((2, 2, 3)), np.zeros((2, 2), dtype=np.int64))
    with pytest.raises(ValueError, match=r"`y` must have shape"):
        cross_entropy_error(np.array(0.5), np.array(0))
    with pytest.raises(ValueError, match=r"`y` must hold probabilities in \[0, 1\].*logits=True"):
        cross_entropy_error(np.array([[2.0, -1.0]]), np.array([0]))
    with pytest.raises(ValueError, match=r"`y` must hold probabilities in \[0, 1\].*or NaN"):
        cross_entropy_error(np.array([[np.nan, 0.5]]), np.array([1]))
    for bad in ([[np.nan, 0.5]], [[np.inf, 0.5]], [[-np.inf, -np.inf]]):
        with pytest.raises(ValueError, match=r"`y` holds NaN, \+inf, or a row of -inf only"):
            cross_entropy_error(np.array(bad), np.array([1]), logits=True)
    assert float(cross_entropy_error(np.array([[-np.inf, 0.5]]), np.array([1]), logits=True)) == 0.0


@pytest.mark.parametrize("f", [softmax, log_softmax])
def test_softmax_of_nothing_is_refused(backend, f):
    with pytest.raises(ValueError, match="`x` must have at least one dimension"):
        f(backend.asarray(np.array(1.0)))
    with pytest.raises(ValueError, match=r"`x` has no entries along axis -1 \(shape \(2, 0\)\)"):
        f(backend.asarray(np.zeros((2, 0))))
    with pytest.raises(ValueError, match=r"`axis` must be in -2\.\.1 .*got 2"):
        f(backend.asarray(np.zeros((2, 3))), axis=2)
    with pytest.raises(TypeError, match="`axis` must be an integer; got float"):
        f(backend.asarray(np.zeros((2, 3))), axis=1.0)
    assert f(backend.asarray(np.zeros((0, 3)))).shape == (0, 3)  # no rows: nothing to normalise
    for bad in ([np.nan, 0.0], [np.inf, 0.0], [-np.inf, -np.inf]):
        with pytest.raises(ValueError, match=r"`x` holds NaN, \+inf, or a row of -inf only"):
            f(backend.asarray(np.array(bad)))


def test_relu_keeps_nan(backend):
    # where(x > 0, x, 0) turned NaN into 0
    got = to_numpy(relu(backend.asarray(np.array([np.nan, -1.0, 2.0]))))
    assert np.isnan(got[0]) and got[1] == 0.0 and got[2] == 2.0


def test_lists_and_integers_are_promoted():
    np.testing.assert_allclose(sigmoid([0.0, 0.0]), [0.5, 0.5])
    np.testing.assert_allclose(relu(np.array([-2, 3])), [0.0, 3.0])
    np.testing.assert_allclose(softmax([0, 0]), [0.5, 0.5])
    with pytest.raises(TypeError, match="`x` must be real"):
        sigmoid(np.array([1j]))


# --- one function per concept: a known namespace skips the conversions ------------------------

def test_functions_take_the_namespace_by_keyword(backend):
    x = backend.asarray(np.array([[-30.0, 0.5, 2.0], [1.0, -1.0, 0.0]]))
    for f in (sigmoid, relu, softmax, log_softmax):
        assert_close(f(x, xp=backend.xp), to_numpy(f(x)), backend=backend, rtol=0)


def test_to_numpy_is_a_host_copy(backend):
    import xgrad

    a = backend.asarray(np.array([1.0, 2.0]))
    host = xgrad.to_numpy(a)
    assert isinstance(host, np.ndarray)
    host[0] = 7.0
    np.testing.assert_array_equal(to_numpy(a), [1.0, 2.0])


# --- property tests: bad input gives the right answer or a clear error naming the argument --

def _host(a):
    return np.asarray(to_numpy(a), dtype=np.float64)


@NETWORK_SETTINGS
@given(inputs())
def test_activations(data):
    host, x = data
    for f, ref in ((sigmoid, lambda v: 0.5 * np.tanh(0.5 * v) + 0.5), (relu, lambda v: np.maximum(v, 0.0))):
        got = outcome(lambda: f(x), "x")  # noqa: B023
        if got is None:
            assert np.iscomplexobj(np.asarray(host))
            continue
        with np.errstate(invalid="ignore"):
            expected = ref(np.asarray(host, dtype=np.float64))
        np.testing.assert_allclose(_host(got), expected, rtol=1e-6, atol=1e-300)


@NETWORK_SETTINGS
@given(inputs(), st.integers(-3, 2))
def test_softmax_and_log_softmax(data, axis):
    host, x = data
    for f in (softmax, log_softmax):
        got = outcome(lambda: f(x, axis=axis), "x", "axis")  # noqa: B023
        a = np.asarray(host)
        if got is None:
            continue
        assert not np.iscomplexobj(a) and a.ndim > 0
        a = a.astype(np.float64)
        p = np.exp(_host(got)) if f is log_softmax else _host(got)
        assert p.shape == a.shape and np.all(np.isfinite(p)) and not np.any(np.isnan(a))
        np.testing.assert_allclose(np.sum(p, axis=axis), 1.0, rtol=1e-5)


@NETWORK_SETTINGS
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
    t_in = t.tolist() if form == "list" else as_torch(t) if form == "torch" else t
    got = outcome(lambda: cross_entropy_error(y, t_in, logits=True), "t", "y")
    scores_ok = n > 0 and np.all(np.isfinite(y) | (y == -np.inf)) and not np.all(y == -np.inf, axis=1).any()
    rows = expected_rows(t, n, n_classes) if form == "array" and scores_ok else None
    if rows is None:
        assert got is None
        return
    with np.errstate(invalid="ignore", divide="ignore"):
        shifted = y - y.max(axis=1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        expected = -np.sum(rows * np.where(rows != 0, log_p, 0.0)) / n
    assert got is not None and float(got) == pytest.approx(expected, rel=1e-10, abs=1e-12)
