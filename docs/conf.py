"""Sphinx configuration for xgrad's documentation.

Build it (warnings are errors) from the repository root with::

    sphinx-build -W --keep-going -b html docs docs/_build/html

Figures are drawn by the build, from xgrad itself, through matplotlib's
``plot`` directive; the backend table is measured by ``_ext/backend_matrix.py``.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))
if importlib.util.find_spec("xgrad") is None:  # not installed: use the checkout
    sys.path.insert(0, str(DOCS.parent))

import xgrad  # noqa: E402


def _quiet_root_logger() -> None:
    """Keep the build's output to Sphinx's own messages and real warnings.

    accessible-pygments (furo's code colours, loaded through Pygments' plugin
    entry points) calls ``logging.basicConfig(level=INFO)`` when it is
    imported, so every library's INFO records (xgrad's "loading mnist from
    ...", JAX's platform probe) would be printed by the build. Import it first
    and put the root logger back as it was: Python's default handler still
    prints warnings and errors.
    """
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    if importlib.util.find_spec("a11y_pygments") is not None:
        import a11y_pygments  # noqa: F401

    for handler in root.handlers[len(handlers):]:
        root.removeHandler(handler)
    root.setLevel(level)


_quiet_root_logger()

# -- project ------------------------------------------------------------------
project = "xgrad"
author = "xgrad developers"
copyright = "xgrad developers"
release = getattr(xgrad, "__version__", "0.1.0")
version = release

# -- general ------------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "sphinx.ext.intersphinx",
    "sphinx.ext.doctest",
    "matplotlib.sphinxext.plot_directive",
    "backend_matrix",
    "page_doctests",
    "bench_pages",
    "attr_docs",
    "deprecated_parameters",
    "cli_reference",
    "dataclass_defaults",
    "phone_figures",
    "sphinx_copybutton",
]

# -- maths without the network --------------------------------------------------
# The sphinx-mathjax-offline package ships MathJax 3 and copies it into the built
# site's _static/mathjax, so the pages typeset their formulas from file:// with no
# network. ``nox -s docs`` installs it; a build without it falls back to Sphinx's
# default MathJax from a CDN and says so, and its pages show raw TeX offline.
if importlib.util.find_spec("sphinx-mathjax-offline") is not None:
    extensions.append("sphinx-mathjax-offline")
    mathjax_path = "mathjax/tex-chtml.js"
else:
    print("conf.py: sphinx-mathjax-offline is not installed; maths will need the network")
exclude_patterns = ["_build", "_generated", "Thumbs.db", ".DS_Store"]
templates_path: list[str] = []
default_role = "code"

# -- autodoc, autosummary, napoleon -------------------------------------------
autosummary_generate = False  # the pages under api/ document every name themselves
# The docstrings' numpydoc types say what a parameter is ("array", "callable,
# optional"); the annotations (mostly ``Any`` for arrays) would add nothing.
autodoc_typehints = "none"
autodoc_member_order = "bysource"
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
# "path" in a parameter's type means a file-system path, not the `.path` attribute of
# the file errors, which Sphinx would otherwise guess at
napoleon_preprocess_types = True
napoleon_type_aliases = {
    "path": ":class:`str` or :class:`os.PathLike`",
    "number": ":class:`number <numbers.Number>`",
    "Backend": ":class:`~xgrad.Backend`",
    "TrainResult": ":class:`~xgrad.TrainResult`",
    # the types the docstrings write in words, linked to where they are defined
    "array": ":ref:`array <array_api:array-object>`",
    "arrays": ":ref:`arrays <array_api:array-object>`",
    "array-like": ":term:`array-like <numpy:array_like>`",
    "callable": ":term:`callable <python:callable>`",
    "sequence": ":term:`sequence <python:sequence>`",
}

# -- intersphinx: the build must not need the network ----------------------------
# Links go to the real sites; the inventories are small files kept here, with
# just the names these pages use (``_inventories/make_inventories.py`` writes them).
sys.path.insert(0, str(DOCS / "_inventories"))
from make_inventories import INVENTORIES  # noqa: E402

intersphinx_mapping: dict[str, tuple[str, str | None]] = {
    name: (url, str(DOCS / "_inventories" / f"{name}.inv")) for name, (_, _, url, _) in INVENTORIES.items()
}

# -- doctest (``sphinx-build -b doctest docs docs/_build/doctest``) ---------------
doctest_global_setup = "import numpy as np\nimport xgrad"
# pages whose ``>>>`` examples every build runs (``_ext/page_doctests.py``)
page_doctests = ["book_code.rst", "derivative.rst", "gradient_check.rst", "index.rst", "tutorial.rst"]

# -- matplotlib plot directive -------------------------------------------------
# xgrad.plot returns Figures made without pyplot; the directive collects
# pyplot's figures, so each snippet hands its Figure over with ``show``.
# Figures are drawn at most about 7.6 inches (730 px at 96 dpi) wide, the width
# of furo's text column, so that their labels are shown at their real size.
# They are saved at 192 dpi and shown at half scale (sharp on high-density
# screens); a scaled image links to its file, so a click opens the full size.
# ``show`` also registers each figure's phone twin (panels stacked, 4.5 inches
# wide): the template puts it in the figure's legend and ``_ext/phone_figures.py``
# writes the pair as one <picture>, the twin for screens under 42em. Every
# snippet hands its figures over with ``show`` (``tests/test_site.py``).
# The code that draws each figure sits above it, folded in a <details> element
# (``plot_template``).
plot_pre_code = "from plot_helpers import cli_figure, run_command, show"
plot_include_source = True
plot_html_show_source_link = False
plot_html_show_formats = False
plot_formats = [("png", 192)]
plot_template = """
{% if source_code %}
.. raw:: html

   <details class="plot-code"><summary>The code that draws this figure</summary>

{{ source_code }}

.. raw:: html

   </details>

{% endif %}
{% for img in images[::2] %}
.. figure:: {{ build_dir }}/{{ img.basename }}.{{ default_fmt }}
   :scale: 50
   :figclass: xgrad-figure
   {% for option in options -%}
   {{ option }}
   {% endfor %}

   {{ caption | trim or ".." }}

   .. image:: {{ build_dir }}/{{ images[2 * loop.index0 + 1].basename }}.{{ default_fmt }}
      :scale: 50
      :class: xgrad-phone
{% endfor %}
"""

# -- HTML -------------------------------------------------------------------------
html_theme = "furo"
html_title = f"xgrad {release}"
html_static_path = ["_static"]
# figures at the text column's width, wide tables that show they scroll
html_css_files = ["xgrad.css"]

# -- copy buttons: the command or code only, without prompts and output ------------
# Copies the lines after ">>> ", "... " or "$ " (and only those, when a block has
# prompts), so a doctest or a console session pastes as code.
copybutton_prompt_text = r">>> |\.\.\. |\$ "
copybutton_prompt_is_regexp = True
copybutton_only_copy_prompt_lines = True
copybutton_remove_prompts = True
