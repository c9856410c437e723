"""The package's shape: what it exports, and where NumPy may appear."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import xgrad

PACKAGE = Path(xgrad.__file__).parent
# numerical differentiation, optimisation and the network's maths: array API only
ARRAY_API_ONLY = ("_net/core.py", "_numerics/diff.py", "_numerics/gradient.py", "_numerics/partials.py",
                  "_numerics/descent.py", "_net/functions.py", "_net/numgrad.py")
# may use NumPy inside functions at the host edge (drawing weights, files), never at import
HOST_EDGE = ("_net/net.py", "_net/check.py", "_train/train.py", "_train/run.py", "_train/record.py", "_train/plan.py",
             "_infra/backend.py", "_infra/validate.py")


def _numpy_imports(tree: ast.AST) -> list[ast.stmt]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "numpy" for a in node.names):
            found.append(node)
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "numpy":
            found.append(node)
    return found


def test_maths_modules_never_import_numpy():
    for name in ARRAY_API_ONLY:
        tree = ast.parse((PACKAGE / name).read_text())
        assert not _numpy_imports(tree), f"{name} imports NumPy"


def test_host_edge_modules_import_numpy_only_inside_functions():
    for name in HOST_EDGE:
        tree = ast.parse((PACKAGE / name).read_text())
        top_level = [n for n in tree.body if n in _numpy_imports(tree)]
        assert not top_level, f"{name} imports NumPy at module level"


def test_all_is_sorted_and_complete():
    assert list(xgrad.__all__) == sorted(xgrad.__all__)
    for name in xgrad.__all__:
        assert hasattr(xgrad, name), name
    book = {"numerical_diff", "numerical_gradient", "gradient_descent", "TwoLayerNet", "load_mnist", "train"}
    assert book <= set(xgrad.__all__)


def test_public_callables_have_docstrings_with_examples():
    missing = [n for n in xgrad.__all__ if callable(getattr(xgrad, n)) and inspect.isfunction(getattr(xgrad, n))
               and ">>>" not in (getattr(xgrad, n).__doc__ or "")]
    assert not missing, f"public functions without an example: {missing}"


def test_typed_package():
    assert (PACKAGE / "py.typed").exists()


def test_modules_import_no_private_names_of_each_other():
    """A helper one module needs from another is named without an underscore there."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("xgrad"):
                folder = PACKAGE.parent.joinpath(*(node.module or "").split("."))
                found += [f"{path.name}:{node.lineno} {a.name}" for a in node.names
                          if a.name.startswith("_") and not (a.name[1:2].isalpha() and (
                              (folder / f"{a.name}.py").exists() or (folder / a.name).is_dir()))]
    assert not found, f"private names imported across modules: {found}"


def test_to_numpy_is_the_one_name_of_the_host_copy():
    import xgrad._infra.host

    assert xgrad._infra.host.__all__ == ["to_numpy"]
    assert not hasattr(xgrad._infra.host, "to_host")
    users = [p.name for p in PACKAGE.rglob("*.py") if "to_host" in p.read_text()]
    assert not users, f"modules still using the old name: {users}"
