"""The layers of the package, read from its imports.

From the bottom up: ``_infra`` < ``_datasets`` < ``_numerics`` < ``_net`` <
``_train`` < ``_plot`` < ``_sweep`` < ``plot`` (``xgrad/plot.py``) < ``_cli`` <
the top (``xgrad/__init__.py``, ``__main__.py``). A module imports only from
its own package and the packages below it, and no two modules import each
other, even through a chain. Every import counts: at module level, inside a
function, under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import xgrad

PACKAGE = Path(xgrad.__file__).parent

LAYERS = ("_infra", "_datasets", "_numerics", "_net", "_train", "_plot", "_sweep", "plot", "_cli", "")
"""The layers from the bottom up; ``""`` is the top: ``__init__.py`` and ``__main__.py``."""

TOP_LEVEL = {"__init__.py", "__main__.py", "plot.py", "py.typed", "_data"}
"""What ``xgrad/`` holds besides the packages of :data:`LAYERS`."""


@dataclass(frozen=True)
class Import:
    importer: str  # dotted module names
    target: str
    where: str  # path:line of the import statement


def _module_name(path: Path, root: Path) -> str:
    parts = [root.name, *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules(root: Path) -> dict[str, Path]:
    """Every module of the package at `root`, by dotted name."""
    return {_module_name(p, root): p for p in sorted(root.rglob("*.py")) if "__pycache__" not in p.parts}


def _imports(root: Path) -> list[Import]:
    """Every import of a module of the package at `root`, by any module of it.

    ``from pkg.mod import name`` goes to ``pkg.mod.name`` when that is a
    module, else to ``pkg.mod``; relative imports are resolved first.
    """
    modules = _modules(root)
    found = []
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        where = path.relative_to(root.parent).as_posix()
        nodes = [n for n in ast.walk(ast.parse(path.read_text(), str(path)))
                 if isinstance(n, (ast.Import, ast.ImportFrom))]
        for node in sorted(nodes, key=lambda n: n.lineno):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join([*anchor, *([base] if base else [])])
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            found += [Import(name, t, f"{where}:{node.lineno}") for t in dict.fromkeys(targets) if t in modules]
    return found


def _layer(module: str) -> str:
    """The layer of a dotted module name: its first package below the root."""
    parts = module.split(".")
    if len(parts) == 1 or parts[1] == "__main__":
        return ""
    return parts[1]


def _upward(imports: list[Import]) -> list[str]:
    """The imports of a higher layer, or of a module in no layer, one line each."""
    bad = []
    for imp in imports:
        low, high = _layer(imp.importer), _layer(imp.target)
        if low not in LAYERS or high not in LAYERS:
            unknown = low if low not in LAYERS else high
            bad.append(f"{imp.where}: {imp.importer} -> {imp.target}: {unknown!r} is in no layer")
        elif LAYERS.index(high) > LAYERS.index(low):
            bad.append(f"{imp.where}: {imp.importer} (layer {low or 'top'}) imports {imp.target} "
                       f"(layer {high or 'top'}, above it)")
    return bad


def _cycles(imports: list[Import]) -> list[list[str]]:
    """The groups of modules that import each other, directly or through a chain
    (strongly connected components of more than one module), each sorted."""
    graph: dict[str, set[str]] = {}
    for imp in imports:
        if imp.importer != imp.target:
            graph.setdefault(imp.importer, set()).add(imp.target)
            graph.setdefault(imp.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(groups)


def _show(imports: list[Import], group: list[str]) -> str:
    """A group of :func:`_cycles` and every import between its modules, one line each."""
    inside = [f"  {i.importer} -> {i.target} ({i.where})" for i in imports
              if i.importer in group and i.target in group and i.importer != i.target]
    return "\n".join([" <-> ".join(group) + ":", *inside])


def _strays(root: Path) -> list[str]:
    """What lies at the top of the package besides its layers and :data:`TOP_LEVEL`."""
    allowed = TOP_LEVEL | {layer for layer in LAYERS if layer and layer != "plot"}
    return sorted(p.name for p in root.iterdir() if p.name != "__pycache__" and p.name not in allowed)


def _package_inits_that_import(root: Path) -> list[str]:
    """The ``__init__.py`` of subpackages that import something: `where` of each import."""
    bad = []
    for path in sorted(root.rglob("__init__.py")):
        if path.parent == root or "__pycache__" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                bad.append(f"{path.relative_to(root.parent).as_posix()}:{node.lineno}")
    return bad


# -- the package -----------------------------------------------------------------


def test_every_module_is_in_a_layer():
    unplaced = sorted(m for m in _modules(PACKAGE) if _layer(m) not in LAYERS)
    assert not unplaced, f"modules in no layer (add the package to LAYERS, in its place): {unplaced}"


def test_modules_import_only_their_own_package_and_the_layers_below():
    bad = _upward(_imports(PACKAGE))
    assert not bad, "imports of a higher layer (move the shared code down, or pass it in as an argument):\n" + (
        "\n".join(bad))


def test_no_import_cycles():
    imports = _imports(PACKAGE)
    cycles = _cycles(imports)
    assert not cycles, "modules that import each other, and the imports that tie them:\n" + "\n".join(
        _show(imports, group) for group in cycles)


def test_the_package_holds_only_its_layers_at_the_top():
    strays = _strays(PACKAGE)
    assert not strays, f"xgrad/ holds {strays} besides its layers; put each module in the package of its layer"


def test_subpackages_import_nothing_when_imported():
    bad = _package_inits_that_import(PACKAGE)
    assert not bad, f"a subpackage's __init__.py imports (so its siblings load with any of its modules): {bad}"


# -- the checks themselves, on a made-up package -----------------------------------


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "xgrad" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "xgrad"


MAX_LINES = 400


def test_no_module_is_longer_than_a_reader_can_hold():
    """A module holds one idea: past 400 lines it holds two, and is split."""
    long = sorted(f"{p.relative_to(PACKAGE)} ({n} lines)" for p in PACKAGE.rglob("*.py")
                  if (n := len(p.read_text().splitlines())) > MAX_LINES)
    assert not long, f"modules over {MAX_LINES} lines: {', '.join(long)}"


def test_the_checks_see_every_kind_of_import(tmp_path):
    pkg = _write(tmp_path, {
        "__init__.py": "from xgrad._net.net import Net\n",
        "_infra/__init__.py": "",
        "_infra/a.py": "def f():\n    from xgrad._net import net\n",
        "_net/__init__.py": "import xgrad._infra.a\n",
        "_net/net.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .core import Core\n"
                       "from . import core\nimport xgrad._infra.a as a\n",
        "_net/core.py": "from xgrad._net.net import Net\n",
        "extra.py": "",
    })
    imports = _imports(pkg)
    assert {(i.importer, i.target) for i in imports} == {
        ("xgrad", "xgrad._net.net"), ("xgrad._infra.a", "xgrad._net.net"), ("xgrad._net", "xgrad._infra.a"),
        ("xgrad._net.net", "xgrad._net.core"), ("xgrad._net.net", "xgrad._infra.a"),
        ("xgrad._net.core", "xgrad._net.net")}
    assert _upward(imports) == ["xgrad/_infra/a.py:2: xgrad._infra.a (layer _infra) imports xgrad._net.net "
                                "(layer _net, above it)"]
    group = ["xgrad._infra.a", "xgrad._net.core", "xgrad._net.net"]
    assert _cycles(imports) == [group]
    assert _show(imports, group).splitlines() == [
        "xgrad._infra.a <-> xgrad._net.core <-> xgrad._net.net:",
        "  xgrad._infra.a -> xgrad._net.net (xgrad/_infra/a.py:2)",
        "  xgrad._net.core -> xgrad._net.net (xgrad/_net/core.py:1)",
        "  xgrad._net.net -> xgrad._net.core (xgrad/_net/net.py:3)",
        "  xgrad._net.net -> xgrad._net.core (xgrad/_net/net.py:4)",
        "  xgrad._net.net -> xgrad._infra.a (xgrad/_net/net.py:5)"]
    assert _cycles([i for i in imports if i.target != "xgrad._infra.a"]) == [group[1:]]
    assert _strays(pkg) == ["extra.py"]
    assert _package_inits_that_import(pkg) == ["xgrad/_net/__init__.py:1"]


def test_a_module_of_an_unknown_package_is_reported(tmp_path):
    pkg = _write(tmp_path, {"_misc/__init__.py": "", "_misc/m.py": "", "_infra/__init__.py": "",
                            "_infra/b.py": "import xgrad._misc.m\n"})
    assert _upward(_imports(pkg)) == ["xgrad/_infra/b.py:1: xgrad._infra.b -> xgrad._misc.m: '_misc' is in no layer"]
    assert _strays(pkg) == ["_misc"]
