"""xgrad.check_hessian on every backend: correct Hessians (a quadratic,
log-sum-exp, a tanh layer, Rosenbrock) pass and ones with a median-sized entry
off by 1% fail, from a given gradient or from f alone, entry by entry and along
random projections, as a matrix or a Hessian-vector product; float32 answers
"inconclusive" where it cannot tell, never the wrong verdict."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from xgrad import check_hessian

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("_check_problems", ROOT / "scripts" / "_check_problems.py")
assert spec is not None and spec.loader is not None
PROBLEMS = importlib.util.module_from_spec(spec)
spec.loader.exec_module(PROBLEMS)

NAMES = ["quadratic", "log-sum-exp", "tanh layer", "rosenbrock"]
# (n, max_entries, detection): from f every probe is a derivative of derivatives, so smaller
SETTINGS = {("grad", "entries"): (5, 25, 0.999), ("grad", "projections"): (12, 25, 0.999),
            ("f", "entries"): (3, 9, 0.999), ("f", "projections"): (4, 4, 0.9)}


# every problem from the gradient; two from f alone (a derivative of derivatives: 20 times the cost)
CASES = [(name, source) for name in NAMES for source in ("grad", "f")
         if source == "grad" or name in ("log-sum-exp", "rosenbrock")]


@pytest.mark.parametrize("mode", ["entries", "projections"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(("name", "source"), CASES)
def test_one_percent_in_one_entry_fails_and_correct_passes(backend, name, dtype, mode, source):
    n, max_entries, detection = SETTINGS[(source, mode)]
    f, grad, hess, x = PROBLEMS.hessian_problems(backend, n, dtype, seed=1)[name]
    kwargs = {"grad": grad if source == "grad" else None, "max_entries": max_entries, "detection": detection}
    correct = check_hessian(f, hess, x, **kwargs)
    wrong = check_hessian(f, PROBLEMS.one_percent_off(backend, hess), x, **kwargs)
    assert correct.mode == wrong.mode == mode and correct.what == "Hessian"
    assert correct.verdict != "fail", str(correct)
    assert wrong.verdict != "pass", str(wrong)
    if dtype == "float64" or source == "grad":
        assert correct.verdict == "pass", str(correct)
        assert wrong.verdict == "fail", str(wrong)


def test_hessian_vector_products_in_fast_mode(backend):
    xp = backend.xp
    f, grad, hess, x = PROBLEMS.hessian_problems(backend, 12, "float64", seed=2)["tanh layer"]
    wrong = PROBLEMS.one_percent_off(backend, hess)
    assert check_hessian(f, None, x, hvp=lambda v, u: xp.matmul(hess(v), u), grad=grad).verdict == "pass"
    report = check_hessian(f, None, x, hvp=lambda v, u: xp.matmul(wrong(v), u), grad=grad)
    assert (report.mode, report.verdict) == ("projections", "fail")


def test_an_antisymmetric_error_is_caught():
    # u^T E u is 0 for every u when E is antisymmetric: the projections pair two different vectors
    a = np.array([[2.0, 0.5, 0.0], [0.5, 1.0, 0.3], [0.0, 0.3, 3.0]])
    wrong = a + 0.05 * np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    x = np.array([0.2, -0.4, 1.0])
    report = check_hessian(lambda v: v @ a @ v / 2, wrong, x, grad=lambda v: a @ v, max_entries=1)
    assert report.mode == "projections" and report.verdict == "fail"


def test_float32_from_f_alone_is_inconclusive_and_says_so():
    f, grad, hess, x = PROBLEMS.hessian_problems(__import__("xgrad").resolve_backend("numpy"), 3, "float32",
                                                 seed=1)["log-sum-exp"]
    report = check_hessian(f, hess, x)
    assert report.verdict == "inconclusive", str(report)
    assert "float64" in str(report)
    assert check_hessian(f, hess, x, grad=grad).verdict == "pass"


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({}, TypeError, r"give exactly one of `hess` or `hvp=`; got none"),
    ({"hess": np.eye(3)}, ValueError, r"`hess` must have shape \(2, 2\)"),
    ({"hess": np.eye(2), "grad": 1.0}, TypeError, "`grad` must be callable"),
])
def test_argument_errors(kwargs, error, match):
    hess = kwargs.pop("hess", None)
    with pytest.raises(error, match=match):
        check_hessian(lambda v: float(np.sum(v**2)), hess, np.ones(2), **kwargs)
