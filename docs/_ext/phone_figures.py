"""Sphinx extension: each figure in two drawings, one for wide screens and one for phones.

``plot_helpers.show`` registers a figure and its phone twin (panels stacked, 4.5
inches wide), and ``conf.py``'s plot template writes them as one ``figure``
whose legend holds the twin. This extension moves the twin into the figure's
image, and writes that image as ``<picture>``: a ``<source>`` for narrow screens
(:data:`NARROW`) and the wide ``<img>`` for the rest, so a phone downloads and
shows the drawing made for its width, with one caption and one alt text.
"""

from __future__ import annotations

import posixpath
import urllib.parse
from pathlib import Path
from typing import Any

from docutils import nodes

FIGCLASS = "xgrad-figure"  # the template's figures with a phone twin in their legend
NARROW = "(max-width: 42em)"  # below it the text column is under 640 px: the wide drawing's labels shrink below 9 px


def _move_twins(app: Any, doctree: nodes.document) -> None:
    for figure in doctree.findall(nodes.figure):
        if FIGCLASS not in figure["classes"]:
            continue
        wide = next(iter(figure.findall(nodes.image)))
        for legend in list(figure.findall(nodes.legend)):
            twins = [n for n in legend.findall(nodes.image) if "xgrad-phone" in n["classes"]]
            for twin in twins:
                twin.parent.remove(twin)
                wide += twin  # found by Sphinx's image collection and copying, written by visit_image
            if not legend.astext().strip():
                legend.parent.remove(legend)


def _uri(translator: Any, node: nodes.image) -> str:
    uri = node["uri"]
    if uri in translator.builder.images:
        return posixpath.join(translator.builder.imgpath, urllib.parse.quote(translator.builder.images[uri]))
    return uri


def _size(translator: Any, node: nodes.image) -> tuple[int, int] | None:
    import imagesize

    width, height = imagesize.get(str(Path(translator.builder.srcdir, node["uri"])))
    if width <= 0:
        return None
    scale = node.get("scale", 100) / 100
    return round(width * scale), round(height * scale)


def _twins(node: nodes.image) -> list[nodes.image]:
    """The phone twin held by `node` (Sphinx may have wrapped it in a link since)."""
    return list(node.findall(nodes.image, include_self=False))


def visit_image(self: Any, node: nodes.image) -> None:
    from sphinx.writers.html5 import HTML5Translator

    twins = _twins(node)
    if twins:
        size = _size(self, twins[0])
        dims = f' width="{size[0]}" height="{size[1]}"' if size else ""
        self.body.append(f'<picture><source media="{NARROW}" srcset="{_uri(self, twins[0])}"{dims} />')
    HTML5Translator.visit_image(self, node)
    if twins:
        raise nodes.SkipChildren


def depart_image(self: Any, node: nodes.image) -> None:
    from sphinx.writers.html5 import HTML5Translator

    HTML5Translator.depart_image(self, node)
    if _twins(node):
        self.body.append("</picture>")


def setup(app: Any) -> dict[str, Any]:
    app.connect("doctree-read", _move_twins)
    app.add_node(nodes.image, override=True, html=(visit_image, depart_image))
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
