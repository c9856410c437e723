"""The documentation's executable parts: its doctests and the backend table."""

from __future__ import annotations

import argparse
import ast
import doctest
import importlib.util
import re
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"


def _load_backend_matrix():
    spec = importlib.util.spec_from_file_location("backend_matrix", DOCS / "_ext" / "backend_matrix.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def matrix():
    return _load_backend_matrix()


def _pages_with_examples():
    """Every page of the documentation that has ``>>>`` examples, relative to docs/."""
    pages = [*DOCS.glob("*.rst"), *(DOCS / "api").glob("*.rst")]
    return sorted(str(p.relative_to(DOCS)) for p in pages if "\n>>> " in p.read_text())


PAGES_WITH_EXAMPLES = _pages_with_examples()


@pytest.mark.parametrize("page", PAGES_WITH_EXAMPLES)
def test_page_examples_run(page):
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    result = doctest.testfile(str(DOCS / page), module_relative=False, optionflags=flags)
    assert result.attempted > 0
    assert result.failed == 0


def test_every_page_with_examples_is_run_by_the_build():
    assert {"index.rst", "tutorial.rst", "book_code.rst", "derivative.rst"} <= set(PAGES_WITH_EXAMPLES)
    conf = (DOCS / "conf.py").read_text()
    listed = re.search(r"^page_doctests = (\[.*?\])", conf, flags=re.M | re.S).group(1)
    assert sorted(ast.literal_eval(listed)) == PAGES_WITH_EXAMPLES


def test_numpy_passes_every_check(matrix):
    row = matrix.measure("numpy")
    assert row.device == "cpu"
    assert row.checks == dict.fromkeys(matrix.CHECKS, matrix.PASSES)


def test_cupy_without_a_gpu_is_reported_not_failed(matrix):
    row = matrix.measure("cupy")
    statuses = set(row.checks.values())
    assert len(statuses) == 1
    assert statuses <= {matrix.NOT_INSTALLED, matrix.NO_CUDA, matrix.PASSES}


def test_failures_warnings_and_missing_parts_are_named(matrix):
    def broken(_):
        raise ValueError("shapes differ")

    def warns(_):
        warnings.warn("float64 is not available", UserWarning, stacklevel=1)

    def missing(_):
        raise ModuleNotFoundError("no module", name="xgrad._later")

    assert matrix._run(broken, None) == "fails: ValueError: shapes differ"
    assert matrix._run(warns, None) == "fails: UserWarning: float64 is not available"
    assert matrix._run(missing, None) == "not available in this build (xgrad._later)"
    assert matrix._run(lambda _: "off by 2", None) == "fails: off by 2"


def test_table_has_a_row_per_backend(matrix):
    rows = [
        matrix.Row("numpy", "2.0", "cpu", dict.fromkeys(matrix.CHECKS, "passes")),
        matrix.Row("cupy", "—", "—", dict.fromkeys(matrix.CHECKS, "no CUDA device")),
    ]
    text = matrix.render(rows)
    assert text.startswith(".. list-table::")
    assert text.count("   * - ") == 3  # header and two backends
    assert "     - no CUDA device" in text


def test_table_is_written_once(matrix, tmp_path, monkeypatch):
    monkeypatch.setattr(matrix, "measure_all", lambda: [])
    out = matrix.write(tmp_path)
    assert out == tmp_path / "_generated" / "backend_matrix.inc"
    stamp = out.stat().st_mtime_ns
    matrix.write(tmp_path)
    assert out.stat().st_mtime_ns == stamp  # unchanged text: no rebuild


def test_show_hands_xgrad_figures_to_pyplot(monkeypatch):
    plt = pytest.importorskip("matplotlib.pyplot")
    monkeypatch.syspath_prepend(str(DOCS / "_ext"))
    from plot_helpers import _adopt_as_image, show

    from xgrad.plot import tangent

    before = set(plt.get_fignums())
    try:
        show(tangent())  # the figure and its phone twin
        image = _adopt_as_image(tangent())  # the route for older matplotlib
        assert len(set(plt.get_fignums()) - before) == 3
        assert len(image.images) == 1
    finally:
        for num in set(plt.get_fignums()) - before:
            plt.close(num)


def test_suite_column_reads_the_junit_report(matrix, tmp_path):
    (tmp_path / "tests-torch.xml").write_text(
        '<testsuites><testsuite name="pytest" tests="10" failures="1" errors="1" skipped="3"/></testsuites>')
    assert matrix.suite_result("torch", tmp_path) == "5 passed, 2 failed, 3 skipped"
    assert matrix.suite_result("jax", tmp_path) == "not run with this build"


def _auto_directives():
    """(directive target, page) for every ``.. auto*::`` line of the API pages."""
    found = []
    for page in sorted((DOCS / "api").glob("*.rst")):
        for line in page.read_text().splitlines():
            if line.startswith(".. auto") and "::" in line and not line.startswith(".. autosummary"):
                found.append((line.split("::", 1)[1].strip(), page.name))
    return found


def test_api_pages_document_every_public_name_once():
    import xgrad
    import xgrad.plot

    documented = [name for name, _ in _auto_directives()]
    public = [n for n in xgrad.__all__ if n != "__version__"] + list(xgrad.plot.__all__)
    assert sorted(n for n in documented if n != "xgrad.plot") == sorted(public)


def test_api_reference_is_one_page_per_topic():
    index = (DOCS / "api" / "index.rst").read_text()
    pages = {p.stem for p in (DOCS / "api").glob("*.rst")} - {"index"}
    assert len(pages) >= 8
    assert all(f"   {page}\n" in index for page in pages)
    assert "api/index" in (DOCS / "index.rst").read_text()
    assert not (DOCS / "api.rst").exists()


def test_reexported_constants_keep_their_own_docstring(monkeypatch):
    pytest.importorskip("sphinx")
    monkeypatch.syspath_prepend(str(DOCS / "_ext"))
    from attr_docs import defining_docstring

    import xgrad

    assert defining_docstring("xgrad.BACKENDS", xgrad.BACKENDS) == [
        "Names accepted by :func:`resolve_backend` (besides ``\"auto\"``).", ""]
    assert defining_docstring("xgrad.nothing", object()) is None


def _load_inventory_script():
    spec = importlib.util.spec_from_file_location("make_inventories", DOCS / "_inventories" / "make_inventories.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_inventories_are_what_the_script_writes(tmp_path):
    pytest.importorskip("sphinx")
    script = _load_inventory_script()
    for name in script.INVENTORIES:
        written = script.write(name, tmp_path)
        assert written.read_bytes() == (DOCS / "_inventories" / f"{name}.inv").read_bytes(), name


def test_inventories_link_to_the_real_pages():
    pytest.importorskip("sphinx")
    from sphinx.util.inventory import InventoryFile

    script = _load_inventory_script()

    def load(name):
        with open(DOCS / "_inventories" / f"{name}.inv", "rb") as f:
            return InventoryFile.load(f, script.INVENTORIES[name][2], lambda base, page: base + page)

    def uri(item):  # an item with .uri since Sphinx 8.2, a tuple before
        return item.uri if hasattr(item, "uri") else item[2]

    numpy, mpl, array_api = load("numpy"), load("matplotlib"), load("array_api")
    assert uri(numpy["py:class"]["numpy.ndarray"]) == (
        "https://numpy.org/doc/stable/reference/generated/numpy.ndarray.html#numpy.ndarray")
    assert uri(mpl["py:class"]["matplotlib.figure.Figure"]).startswith("https://matplotlib.org/stable/api/")
    assert uri(array_api["std:label"]["array-object"]) == (
        "https://data-apis.org/array-api/latest/API_specification/array_object.html#array-object")
    assert "os.PathLike" in load("python")["py:class"]


def test_intersphinx_reads_only_local_inventories():
    conf = (DOCS / "conf.py").read_text()
    assert "intersphinx_mapping" in conf and 'DOCS / "_inventories"' in conf


def _load_ext(monkeypatch, name):
    pytest.importorskip("sphinx")
    monkeypatch.syspath_prepend(str(DOCS / "_ext"))
    return importlib.import_module(name)


def test_cli_reference_covers_every_option_with_its_default(monkeypatch):
    ext = _load_ext(monkeypatch, "cli_reference")
    from xgrad._cli.main import _parser

    parser = ext.load_parser("xgrad._cli.main:_parser")
    text = "\n".join(ext.reference_lines(parser))
    commands = ext.subcommands(_parser())
    assert list(commands) == ["train", "plot", "backends", "sweep", "lr-find"]
    for name, (_, sub) in commands.items():
        assert f"``xgrad {name}``\n" in text
        for action in sub._actions:
            for option in action.option_strings:
                assert option in text or option in ("-h", "--help"), (name, option)
    assert "``--lr LR [LR ...]``\n   learning rates (default: 0.001 0.003" in text  # sweep's, in its help
    assert "around the best (by validation accuracy) (default: 0)." in text  # sweep --refine: a 0 is still shown
    plain = argparse.ArgumentParser(prog="x")
    zero = plain.add_argument("--refine", type=int, default=0, help="rounds")
    assert ext.option_lines(plain, zero)[1] == "   rounds. Default: ``0``."  # a help without its default
    assert "``--out OUT``\n   the image file (.png, .svg, .pdf). Required." in text
    assert "runs/\\*/history.json" in text  # reST markup in a help is escaped
    assert "continue from ``--checkpoint`` if it exists." in text  # options as code, not dashes


def test_cli_reference_refuses_what_is_not_a_parser(monkeypatch):
    ext = _load_ext(monkeypatch, "cli_reference")
    with pytest.raises(TypeError, match=r"returned dict, not an argparse\.ArgumentParser"):
        ext.load_parser("builtins:dict")


def test_gallery_draws_every_figure_from_the_command_it_shows():
    from xgrad.plot import FIGURES

    page = (DOCS / "gallery.rst").read_text()
    commands = re.findall(r'cli_figure\("(xgrad plot ([a-z-]+)[^"]*)"\)', page)
    assert {name for _, name in commands} == set(FIGURES)
    for command, _ in commands:
        assert f"   $ {command}\n" in page, command
    plots = page.split(".. plot::")[1:]
    assert len(plots) == len(commands)
    assert all(":alt: " in p and ":caption: " in p for p in plots)


def test_gallery_figures_are_those_of_the_command(monkeypatch, tmp_path):
    pytest.importorskip("matplotlib")
    helpers = _load_ext(monkeypatch, "plot_helpers")
    monkeypatch.setattr(helpers, "_WORKDIR", tmp_path)
    fig = helpers.cli_figure("xgrad plot descent --lr 0.1 10 1e-10 --out descent.png")
    # scaled to the column, a title near the figure's edge is broken into lines where it would cross it
    assert [" ".join(ax.get_title().split()) for ax in fig.axes] == [
        "lr = 0.1: converges", "lr = 10: diverges", "lr = 1e-10: barely moves"]
    assert fig.get_size_inches()[0] == pytest.approx(helpers.TEXT_WIDTH)
    assert not (tmp_path / "descent.png").exists()
    helpers.run_command("xgrad train --backend numpy --iters 30 --eval-every 10 --no-progress --out run")
    fig = helpers.cli_figure("xgrad plot training --history run/history.json --out t.png")
    assert len(fig.axes[0].lines[0].get_ydata()) == 30
    with pytest.raises(RuntimeError, match="exited with status 2"):
        helpers.run_command("xgrad plot descent --lr 0 --out x.png")


def test_class_signatures_show_factory_defaults_as_values(monkeypatch):
    ext = _load_ext(monkeypatch, "dataclass_defaults")
    from xgrad import History, SweepRun, TrainResult

    assert ext.readable_signature(TrainResult, "(net, history, timings, config=<factory>, interrupted=False)") == (
        "(net, history, timings, config={}, interrupted=False)")
    assert "loss=[], eval_iters=[]" in ext.readable_signature(History, "(loss=<factory>, eval_iters=<factory>)")
    import dataclasses

    @dataclasses.dataclass
    class Run:  # a field made by dict, as SweepRun's history once was
        key: str
        history: dict = dataclasses.field(default_factory=dict)

    assert ext.readable_signature(Run, "(key, history=<factory>)") == "(key, history={})"
    assert ext.readable_signature(SweepRun, "(key, history=None)") == "(key, history=None)"  # no factory now
    assert ext.default_text(History) == "History()"
    assert ext.readable_signature(dict, "(x=<factory>)") == "(x=<factory>)"  # not a dataclass: left alone


def test_no_public_class_signature_keeps_a_factory(monkeypatch):
    pytest.importorskip("sphinx")
    import inspect

    from xgrad import History, SweepResult, SweepRun, TrainResult

    _process_signature = _load_ext(monkeypatch, "dataclass_defaults")._process_signature
    for cls in (History, SweepResult, TrainResult):
        raw = str(inspect.signature(cls)).split(" -> ")[0]
        assert "<factory>" in raw
        signature, _ = _process_signature(None, "class", cls.__name__, cls, None, raw, None)
        assert "<factory>" not in signature, cls
    raw = str(inspect.signature(SweepRun))  # its history defaults to None: no factory to show
    assert "<factory>" not in raw and "history: 'History | None' = None" in raw


def test_plot_namespace_keeps_its_helpers_private():
    pytest.importorskip("matplotlib")
    import xgrad.plot

    assert not {"to_numpy", "new_figure"} & set(vars(xgrad.plot))
    assert "to_numpy" not in xgrad.plot.__all__


def test_gallery_commands_leave_the_log_as_it_was(monkeypatch, capsys):
    import logging

    pytest.importorskip("matplotlib")
    helpers = _load_ext(monkeypatch, "plot_helpers")
    logger = logging.getLogger("xgrad")
    before = (list(logger.handlers), logger.level)
    helpers.run_command("xgrad train --backend numpy --iters 2 --eval-every 0 --no-progress --out quiet")
    assert (list(logger.handlers), logger.level) == before
    assert capsys.readouterr() == ("", "")


def test_docs_build_prints_no_info_records():
    """conf.py undoes accessible-pygments' ``logging.basicConfig(level=INFO)``."""
    import subprocess

    pytest.importorskip("a11y_pygments")
    code = ("import logging, runpy; runpy.run_path('conf.py'); import a11y_pygments; "
            "logging.getLogger('xgrad').info('noise'); logging.getLogger('xgrad').warning('real')")
    run = subprocess.run([sys.executable, "-c", code], cwd=DOCS, capture_output=True, text=True, timeout=120,
                         env={"PYTHONPATH": str(DOCS.parent), "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stderr
    assert "noise" not in run.stdout + run.stderr
    assert "real" in run.stderr


def test_the_api_pages_show_trains_signature_without_its_deprecated_keyword(monkeypatch):
    monkeypatch.syspath_prepend(str(DOCS / "_ext"))  # the extension needs no Sphinx to be tested
    ext = importlib.import_module("deprecated_parameters")
    import inspect

    import xgrad

    full = str(inspect.signature(xgrad.train)).split(" -> ")[0]
    assert "grad: 'str | None' = None" in full  # still taken: a deprecated keyword warns, it does not fail
    shown = ext.without_deprecated(xgrad.train, full)
    assert "grad" not in shown.replace("gradient", "") and shown.endswith("compile_step: 'bool | None' = None)")
    assert "gradient: 'str' = 'backprop'" in shown
    assert ext.without_deprecated(xgrad.train, "(backend='auto', *, gradient='backprop', grad=None)") == (
        "(backend='auto', *, gradient='backprop')")
    assert ext.without_deprecated(xgrad.numerical_diff, "(f, x, /, *, grad=None)") == "(f, x, /, *, grad=None)"
    with pytest.warns(DeprecationWarning, match="grad"):
        xgrad.train("numpy", grad="backprop", data=((np.zeros((4, 2)), np.arange(4) % 2),) * 2, iters=1,
                    batch_size=2, hidden_size=2, eval_every=0, progress=False)


def test_the_cli_page_lists_no_hidden_option(monkeypatch):
    ext = _load_ext(monkeypatch, "cli_reference")
    text = "\n".join(ext.reference_lines(ext.load_parser("xgrad._cli.main:_parser")))
    assert "SUPPRESS" not in text and "``--grad " not in text and "``--grad``" not in text
    assert "``--gradient {backprop,numerical}``" in text
