"""Sphinx extension: deprecated keywords left out of the signatures autodoc shows.

A function that still takes a keyword under an old name (``train(grad=...)``,
which warns) lists those names in ``__deprecated_parameters__``. Its signature
keeps them, so that code binding it by inspection still works, but the API
pages show only the current keywords; the docstring says what each old name
was.
"""

from __future__ import annotations

import re
from typing import Any


def without_deprecated(obj: Any, signature: str | None) -> str | None:
    """`signature` without the parameters that `obj` marks as deprecated."""
    names = getattr(obj, "__deprecated_parameters__", ())
    if not signature or not names:
        return signature
    for name in names:
        # ", grad: 'str | None' = None" or ", grad=None", before the next parameter or the closing bracket
        signature = re.sub(rf",\s*{re.escape(name)}\b(?:\s*:\s*(?:'[^']*'|[^,=()]*))?(?:\s*=\s*[^,()]*)?(?=\s*[,)])",
                           "", signature)
    return signature


def _process_signature(app: Any, what: str, name: str, obj: Any, options: Any, signature: str | None,
                       return_annotation: str | None) -> tuple[str | None, str | None] | None:
    if what not in ("function", "method"):
        return None
    return without_deprecated(obj, signature), return_annotation


def setup(app: Any) -> dict[str, Any]:
    app.connect("autodoc-process-signature", _process_signature)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
