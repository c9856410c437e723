"""Run the ``>>>`` examples of some pages during every documentation build.

An HTML build does not run the examples of ``sphinx.ext.doctest``; this
extension does, for the pages named in ``page_doctests`` (conf.py), with
doctest's ELLIPSIS and NORMALIZE_WHITESPACE. A failing example is a build
warning, so ``sphinx-build -W`` fails on a page whose printed numbers are no
longer what xgrad prints.
"""

from __future__ import annotations

import doctest
import io
from pathlib import Path
from typing import Any

from sphinx.util import logging

logger = logging.getLogger(__name__)
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def run_page(path: Path) -> tuple[int, int, str]:
    """(attempted, failed, report) for the examples of one page."""
    parser = doctest.DocTestParser()
    test = parser.get_doctest(path.read_text(), {}, path.name, str(path), 0)
    out = io.StringIO()
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    runner.run(test, out=out.write)
    return runner.tries, runner.failures, out.getvalue()


def _run_all(app: Any) -> None:
    for name in app.config.page_doctests:
        tried, failed, report = run_page(Path(app.srcdir) / name)
        if failed or not tried:
            logger.warning("%s: %d of %d examples fail\n%s", name, failed, tried, report,
                           location=name)
        else:
            logger.info("%s: %d examples pass", name, tried)


def setup(app: Any) -> dict[str, Any]:
    app.add_config_value("page_doctests", [], "env")
    app.connect("builder-inited", _run_all)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
