"""Module constants re-exported by ``xgrad`` keep their own docstrings.

``xgrad.BACKENDS`` is defined, with a docstring under it, in a private module
and imported into the package. autodoc finds attribute docstrings only in the
module that it documents, so it would show the docstring of the value's type
(``tuple``) instead. This extension looks the attribute's docstring up in the
xgrad module that defines it and puts that in its place.
"""

from __future__ import annotations

import sys
from typing import Any

from sphinx.application import Sphinx
from sphinx.pycode import ModuleAnalyzer


def defining_docstring(name: str, obj: Any, package: str = "xgrad") -> list[str] | None:
    """The docstring written under `name` in the `package` module that holds `obj`."""
    attr = name.rpartition(".")[2]
    for modname, module in sorted(sys.modules.items()):
        if not (modname == package or modname.startswith(package + ".")) or getattr(module, attr, None) is not obj:
            continue
        try:
            docs = ModuleAnalyzer.for_module(modname).find_attr_docs()
        except Exception:  # a module without source: nothing to read there
            continue
        if ("", attr) in docs:
            return list(docs["", attr])
    return None


def _replace(app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]) -> None:
    if what != "data" or not name.startswith("xgrad."):
        return
    found = defining_docstring(name, obj)
    if found is not None:
        lines[:] = found


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("autodoc-process-docstring", _replace)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
