"""xgrad.check_jacobian on every backend: correct Jacobians (a linear map,
softmax, a tanh layer, Rosenbrock's residuals) pass and ones with a median-sized
entry off by 1% fail, entry by entry and along random projections (the fast
mode), given as a matrix, a vjp or a jvp; in float32 the check may answer
"inconclusive" but never the wrong verdict. The fast mode's detection
probability holds over seeds."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from xgrad import GradientReport, check_jacobian
from xgrad._numerics.jaccheck import pairs_for

ROOT = Path(__file__).resolve().parents[2]


def _problems_module():
    spec = importlib.util.spec_from_file_location("_check_problems", ROOT / "scripts" / "_check_problems.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PROBLEMS = _problems_module()
NAMES = ["linear map", "softmax", "tanh layer", "rosenbrock residuals"]
SIZES = {"entries": (5, 4), "projections": (40, 30)}


def _verdicts_ok(dtype, correct, wrong):
    assert correct.verdict != "fail", str(correct)
    assert wrong.verdict != "pass", str(wrong)
    if dtype == "float64":
        assert correct.verdict == "pass", str(correct)
        assert wrong.verdict == "fail", str(wrong)


@pytest.mark.parametrize("mode", ["entries", "projections"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", NAMES)
def test_one_percent_in_one_entry_fails_and_correct_passes(backend, name, dtype, mode):
    n, m = SIZES[mode]
    f, jac, x = PROBLEMS.jacobian_problems(backend, n, m, dtype, seed=1)[name]
    correct = check_jacobian(f, jac, x, max_entries=64)
    wrong = check_jacobian(f, PROBLEMS.one_percent_off(backend, jac), x, max_entries=64)
    assert isinstance(correct, GradientReport) and correct.what == "Jacobian"
    assert correct.mode == wrong.mode == mode
    _verdicts_ok(dtype, correct, wrong)


@pytest.mark.parametrize("product", ["vjp", "jvp"])
def test_products_instead_of_the_matrix(backend, product):
    xp = backend.xp
    for mode, (n, m) in SIZES.items():
        f, jac, x = PROBLEMS.jacobian_problems(backend, n, m, "float64", seed=2)["tanh layer"]
        wrong = PROBLEMS.one_percent_off(backend, jac)
        for given, verdict in [(jac, "pass"), (wrong, "fail")]:
            if product == "vjp":
                kwargs = {"vjp": lambda v, w, given=given: xp.matmul(w, given(v))}
            else:
                kwargs = {"jvp": lambda v, u, given=given: xp.matmul(given(v), u)}
            report = check_jacobian(f, None, x, max_entries=64, **kwargs)
            assert (report.mode, report.verdict) == (mode, verdict), str(report)


def test_the_worst_entry_is_the_wrong_one():
    a = np.array([[1.0, 2.0, 0.5], [3.0, -1.0, 2.0]])
    wrong = a.copy()
    wrong[1, 2] *= 1.01
    report = check_jacobian(lambda v: a @ v, wrong, np.array([0.3, -0.2, 1.0]))
    assert report.verdict == "fail" and report.worst[0][0] == 5
    assert report.worst[0][1] == pytest.approx(2.0, rel=1e-9) and report.worst[0][2] == pytest.approx(2.02)


def test_fast_mode_detection_probability_holds_over_seeds():
    # two errors that cancel in a projection v^T E u half the time; `detection`
    # promises at least that probability of seeing them (the bound is 3/4 per pair)
    rng = np.random.default_rng(0)
    a = rng.normal(size=(20, 20))
    wrong = a.copy()
    wrong[3, 4] += 0.1
    wrong[7, 9] -= 0.1
    single = a.copy()
    single[5, 5] *= 1.01
    x = rng.normal(size=20)
    assert pairs_for(0.5) == 3 and pairs_for(0.999) == 25
    caught = [check_jacobian(lambda v: a @ v, wrong, x, max_entries=1, detection=0.5, seed=s).verdict == "fail"
              for s in range(40)]
    assert np.mean(caught) >= 0.5  # 1 - 0.5**3 = 0.875 expected for this pair of errors
    assert not all(caught)  # the projections are random: some seeds miss with only 3 pairs
    assert all(check_jacobian(lambda v: a @ v, single, x, max_entries=1, detection=0.5, seed=s).verdict == "fail"
               for s in range(10))  # one wrong entry is seen by every projection


def test_float32_large_projections_are_inconclusive_not_passed():
    # 1% of a median entry of a 300 x 300 tanh layer is below float32's rounding of v . f(x + t u)
    rng = np.random.default_rng(0)
    a = rng.normal(size=(300, 300))
    wrong = a.copy()
    wrong.flat[np.argsort(np.abs(a).ravel())[a.size // 2]] *= 1.01
    x = rng.normal(size=300)

    def f(v):
        return 30 * np.tanh(a.astype(v.dtype) @ v / 30)

    def jac(m):
        return lambda v: ((1 - np.tanh(a.astype(v.dtype) @ v / 30) ** 2)[:, None] * m).astype(v.dtype)

    for given in (jac(a), jac(wrong)):
        report = check_jacobian(f, given, x.astype(np.float32))
        assert report.verdict == "inconclusive" and not report.passed and not report.conclusive, str(report)
        assert "INCONCLUSIVE" in str(report) and "float64" in str(report) and report.resolution > 0.01
    assert check_jacobian(f, jac(a), x).verdict == "pass"
    assert check_jacobian(f, jac(wrong), x).verdict == "fail"


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({}, TypeError, r"give exactly one of `jac` or `vjp=` or `jvp=`; got none"),
    ({"jac": np.eye(2), "vjp": lambda x, v: v}, TypeError, r"give exactly one of .*; got `jac`, `vjp`"),
    ({"jac": np.eye(3)}, ValueError, r"`jac` must have shape \(2, 2\)"),
    ({"vjp": lambda x, v: v[:1]}, ValueError, r"`vjp\(x, v\)` must return an array of the shape of `x`"),
    ({"jac": np.eye(2), "detection": 1.0}, ValueError, "`detection` must be between 0 and 1"),
    ({"jac": np.eye(2), "max_entries": 0}, ValueError, "`max_entries` must be >= 1"),
    ({"jac": np.eye(2), "seed": -1}, ValueError, "`seed` must be >= 0"),
    ({"jvp": 3}, TypeError, "`jvp` must be callable"),
])
def test_argument_errors(kwargs, error, match):
    jac = kwargs.pop("jac", None)
    kwargs.setdefault("max_entries", 1 if "vjp" in kwargs else 4)
    with pytest.raises(error, match=match):
        check_jacobian(lambda v: v * 2.0, jac, np.ones(2), **kwargs)


def test_f_of_another_library_or_narrower_dtype_is_refused(backend):
    xp = backend.xp
    x = backend.asarray(np.array([0.5, 1.0]), dtype=xp.float64)
    with pytest.raises(TypeError, match=r"`f` returned a .*float32 value for an `x` of dtype .*float64"):
        check_jacobian(lambda v: xp.astype(v, xp.float32), lambda v: xp.eye(2, dtype=xp.float64), x)
    if backend.name != "numpy":
        with pytest.raises(TypeError, match="`f` must return an array of the library of `x`"):
            check_jacobian(lambda v: np.asarray([1.0, 2.0]), lambda v: xp.eye(2, dtype=xp.float64), x)


def test_float16_is_refused():
    with pytest.raises(TypeError, match=r"`x` of dtype float16 is too coarse"):
        check_jacobian(lambda v: v, np.eye(2, dtype=np.float16), np.ones(2, dtype=np.float16))
