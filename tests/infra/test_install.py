"""Install hints say how to install from a checkout, and are built in one place:
xgrad is not on the Python Package Index, so ``pip install "xgrad[plot]"`` finds
nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from xgrad._infra.install import install_hint

ROOT = Path(__file__).resolve().parents[2]


def test_the_hint_installs_the_extra_from_the_checkout():
    assert install_hint("dask") == 'pip install ".[dask]" in the xgrad checkout'
    assert install_hint("cuda12", "cuda13") == 'pip install ".[cuda12]" in the xgrad checkout (or ".[cuda13]")'


def _texts():
    for folder, patterns in (("xgrad", ("*.py",)), ("docs", ("*.rst", "*.py")), ("scripts", ("*.py", "*.sh"))):
        for pattern in patterns:
            yield from (ROOT / folder).rglob(pattern)
    yield ROOT / "README.md"


def test_no_hint_installs_xgrad_from_an_index():
    found = [f"{p.relative_to(ROOT)}" for p in _texts() if "_build" not in p.parts
             and re.search(r"""pip install ["']?xgrad\[""", p.read_text())]
    assert not found, found


def test_only_install_hint_spells_an_extra_in_the_package_and_scripts():
    extra = re.compile(r"""pip install ["']\.\[""")
    found = [f"{p.relative_to(ROOT)}" for folder in ("xgrad", "scripts") for p in (ROOT / folder).rglob("*.py")
             if p.name != "install.py" and extra.search(p.read_text())
             and not all(line.lstrip().startswith(("#", '"""')) or "``" in line
                         for line in p.read_text().splitlines() if extra.search(line))]
    assert not found, found


@pytest.mark.parametrize(("module", "attribute"), [("xgrad._sweep.executor", "_INSTALL")])
def test_the_hints_read_the_one_text(module, attribute):
    import importlib

    assert install_hint("dask") in getattr(importlib.import_module(module), attribute)
