"""Sphinx extension: a dataclass field's default made by a factory, shown as a value.

``inspect.signature`` writes a field declared with ``field(default_factory=list)``
as ``loss=<factory>``, which tells a reader nothing. This extension rewrites
such defaults in the class signatures autodoc shows: ``loss=[]``,
``config={}``, or ``name=make()`` for a factory that is not a builtin
container.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

_EMPTY = (list, dict, set, tuple, frozenset)


def default_text(factory: Any) -> str:
    """How a field's `factory` reads as a default."""
    if factory in _EMPTY:
        return repr(factory())
    return f"{getattr(factory, '__qualname__', repr(factory))}()"


def readable_signature(cls: Any, signature: str | None) -> str | None:
    """`signature` with each ``name=<factory>`` of `cls`'s fields replaced."""
    if not signature or not dataclasses.is_dataclass(cls) or "<factory>" not in signature:
        return signature
    for f in dataclasses.fields(cls):
        if f.default_factory is not dataclasses.MISSING:
            text = default_text(f.default_factory)
            # "name=<factory>", or "name: 'list[float]' = <factory>" with annotations
            signature = re.sub(rf"(\b{re.escape(f.name)}(?::\s*(?:'[^']*'|[^,=()]*))?\s*=\s*)<factory>",
                               lambda m, text=text: m.group(1) + text, signature)
    return signature


def _process_signature(app: Any, what: str, name: str, obj: Any, options: Any, signature: str | None,
                       return_annotation: str | None) -> tuple[str | None, str | None] | None:
    if what not in ("class", "exception"):
        return None
    return readable_signature(obj, signature), return_annotation


def setup(app: Any) -> dict[str, Any]:
    app.connect("autodoc-process-signature", _process_signature)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
