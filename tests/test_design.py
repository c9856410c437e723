"""The developer page, docs/design.rst, against the code it describes."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import xgrad
from xgrad._cli.main import _parser
from xgrad._net import core as _core

PACKAGE = Path(xgrad.__file__).parent
PAGE = PACKAGE.parent / "docs" / "design.rst"


def _listed_modules() -> set[str]:
    """The modules with a line of their own on the map: ``- ``_pkg/name.py``: responsibility``."""
    return set(re.findall(r"^- ``([\w/]+\.py)``: \S", PAGE.read_text(), flags=re.MULTILINE))


def _modules() -> set[str]:
    """Every module of the package, as the map names it (a package's ``__init__`` has none)."""
    return {p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py")
            if p.name != "__init__.py" or p.parent == PACKAGE}


def test_every_module_has_a_line_on_the_design_page():
    missing = sorted(_modules() - _listed_modules())
    assert not missing, f"docs/design.rst has no line for: {', '.join(missing)}"


def test_every_line_of_the_map_names_a_module_that_exists():
    stale = sorted(_listed_modules() - _modules())
    assert not stale, f"docs/design.rst has lines for modules that do not exist: {', '.join(stale)}"


def test_the_map_lists_each_package_under_its_own_heading_in_the_layer_order():
    """The packages appear on the map in the order of the layers, each module under its package."""
    text = PAGE.read_text()
    the_map = text[text.index("\nThe map\n"):text.index("\nHow to add a setting\n")]
    headings = re.findall(r"^``(_\w+)``, ", the_map, flags=re.MULTILINE)
    assert headings == ["_infra", "_datasets", "_numerics", "_net", "_train", "_plot", "_sweep", "_cli"]
    for section in re.split(r"^``_\w+``, .*$", the_map, flags=re.MULTILINE)[1:]:
        packages = {m.split("/")[0] for m in re.findall(r"^- ``([\w/]+\.py)``", section, flags=re.MULTILINE)}
        assert len(packages) == 1, packages


def test_the_design_page_is_in_the_table_of_contents():
    index = (PAGE.parent / "index.rst").read_text()
    toctree = index[index.index(".. toctree::"):]
    assert re.search(r"^   design$", toctree, flags=re.MULTILINE)


@pytest.fixture
def tanh(monkeypatch):
    """A third activation, added as the page says: one entry in the core's table."""
    entry = _core.Activation("tanh", lambda a, *, xp: xp.tanh(a), lambda a, z, dz, *, xp: dz * (1 - z * z),
                             lambda a, d, *, xp: xp.tanh(a + d) - xp.tanh(a))
    monkeypatch.setitem(_core.ACTIVATIONS, "tanh", entry)
    return entry


def test_an_activation_added_to_the_table_saves_and_loads(tanh, tmp_path):
    net = xgrad.TwoLayerNet(6, 4, 3, activation="tanh", seed=1)
    net.save(tmp_path / "net.npz")
    back = xgrad.TwoLayerNet.load(tmp_path / "net.npz")
    assert back.activation == "tanh"
    x = np.linspace(-1, 1, 12).reshape(2, 6)
    np.testing.assert_array_equal(back.predict(x), net.predict(x))


def test_an_activation_added_to_the_table_is_a_choice_of_the_sweep_command(tanh):
    assert _parser().parse_args(["sweep", "--activation", "tanh"]).activation == ["tanh"]
