"""Every snippet a reader of README.md and docs/ would copy runs against this checkout.

``tests/test_docs.py`` runs the pages' ``>>>`` examples. This file runs the rest:
the ``.. code-block:: python`` blocks, the ``xgrad ...`` commands (in console
blocks and in the prose) and the options the pages give the scripts. Training
commands run with few iterations; a snippet that cannot run here (a Dask
scheduler, a CUDA GPU) is still checked: its calls must match the signatures
and its command line must parse.
"""

from __future__ import annotations

import ast
import contextlib
import importlib.util
import inspect
import io
import re
import shlex
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

import xgrad

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted([*DOCS.glob("*.rst"), *(DOCS / "api").glob("*.rst")])
README = ROOT / "README.md"


@dataclass(frozen=True)
class Snippet:
    where: str  # "page.rst:line"
    lang: str  # "python", "console", "text", ...
    text: str


def _indented_body(lines: list[str], start: int, indent: int) -> str:
    """The block that follows line `start`: the lines indented deeper than `indent`."""
    body = []
    for line in lines[start + 1:]:
        if line.strip() and len(line) - len(line.lstrip()) <= indent:
            break
        body.append(line)
    text = textwrap.dedent("\n".join(body)).strip("\n")
    return "\n".join(line for line in text.splitlines() if not re.match(r":[a-z-]+:", line)).strip("\n")


def rst_snippets(page: Path) -> list[Snippet]:
    """The code blocks of a reST page: ``.. code-block:: LANG`` and ``::`` literal blocks."""
    lines = page.read_text().splitlines()
    found = []
    for i, line in enumerate(lines):
        indent = len(line) - len(line.lstrip())
        directive = re.match(r"\s*\.\. code-block:: *(\w+)", line)
        if directive:
            lang = directive.group(1)
        elif line.rstrip().endswith("::") and not re.match(r"\s*\.\. ", line):
            lang = "literal"
        else:
            continue
        text = _indented_body(lines, i, indent)
        if lang == "literal":
            lang = "console" if text.startswith(("xgrad ", "$ ")) else "python"
        found.append(Snippet(f"{page.relative_to(DOCS)}:{i + 1}", lang, text))
    return found


def readme_snippets() -> list[Snippet]:
    text = README.read_text()
    return [Snippet(f"README.md:{text[:m.start()].count(chr(10)) + 1}", m.group(1), m.group(2).strip("\n"))
            for m in re.finditer(r"^```(\w*)\n(.*?)^```", text, flags=re.S | re.M)]


ALL = [s for page in PAGES for s in rst_snippets(page)] + readme_snippets()
PYTHON = [s for s in ALL if s.lang == "python"]


def _works(backend: str) -> bool:
    try:
        xgrad.resolve_backend(backend)
    except xgrad.BackendUnavailableError:
        return False
    return True


def _cupy_works() -> bool:
    return _works("cupy")


def _missing(text: str) -> str | None:
    """What a snippet needs that this machine lacks, or None."""
    if "tcp://scheduler:8786" in text:
        return "a running Dask scheduler"
    for name in re.findall(r'backend="(\w+)"', text):
        if name != "auto" and not _works(name):
            return f"the {name} backend" + (" (a CUDA GPU)" if name == "cupy" else "")
    return None


def test_the_snippets_are_found():
    where = {s.where.split(":")[0] for s in PYTHON}
    assert {"index.rst", "tutorial.rst", "troubleshooting.rst", "book_code.rst", "README.md"} <= where
    assert any(s.lang == "console" and "xgrad sweep" in s.text for s in ALL)  # the ``::`` block


def _xgrad_calls(tree: ast.AST):
    """(name, number of positional arguments, keywords) of every ``xgrad.NAME(...)`` call."""
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "xgrad"):
            if any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords):
                continue
            yield node.func.attr, len(node.args), [k.arg for k in node.keywords]


@pytest.mark.parametrize("snippet", PYTHON, ids=[s.where for s in PYTHON])
def test_python_block_calls_match_the_signatures(snippet):
    tree = ast.parse(snippet.text)
    for name, nargs, keywords in _xgrad_calls(tree):
        assert name in xgrad.__all__, f"{snippet.where}: xgrad.{name} is not public"
        inspect.signature(getattr(xgrad, name)).bind(*[None] * nargs, **dict.fromkeys(keywords))


@pytest.mark.slow
@pytest.mark.parametrize("snippet", PYTHON, ids=[s.where for s in PYTHON])
def test_python_block_runs(snippet, tmp_path, monkeypatch):
    need = _missing(snippet.text)
    if need:
        pytest.skip(f"{snippet.where} needs {need}")
    if "matplotlib" in snippet.text or "xgrad.plot" in snippet.text:
        pytest.importorskip("matplotlib")
    monkeypatch.chdir(tmp_path)
    import numpy as np

    # a page's blocks follow its imports: a reader has run ``import xgrad`` by then
    namespace = {"__name__": "__doc_snippet__", "xgrad": xgrad, "np": np}
    with contextlib.redirect_stdout(io.StringIO()) as out:
        exec(compile(snippet.text, snippet.where, "exec"), namespace)
    if "summary()" in snippet.text:
        assert "test accuracy" in out.getvalue()
    if "savefig(" in snippet.text:
        assert list(tmp_path.glob("*.png"))
    result = namespace.get("result")
    if 'xgrad.train(backend="numpy")' in snippet.text:  # the book's run, whose accuracies the tutorial quotes
        tutorial = _flat((DOCS / "tutorial.rst").read_text())
        assert (f"reached a train accuracy of {result.train_acc[-1]:.4f} and a test accuracy of "
                f"{result.test_acc[-1]:.4f}") in tutorial


# -- the commands -------------------------------------------------------------------
# "xgrad COMMAND --help" stands for many commands; help needs no test
PLACEHOLDERS = re.compile(r"\b(NAME|FILE|COMMAND)\b|\.\.\.|--help")


def _inline_commands(text: str, page: str) -> list[str]:
    """``xgrad ...`` quoted inline in the prose (reST double or Markdown single backquotes)."""
    pattern = r"``(xgrad [^`]+)``" if page.endswith(".rst") else r"(?<!`)`(xgrad [^`]+)`(?!`)"
    return [" ".join(m.group(1).split()) for m in re.finditer(pattern, text)]


def _block_commands(snippets: list[Snippet]) -> list[str]:
    found = []
    for s in snippets:
        if s.lang not in ("console", "sh", "shell", "bash"):
            continue
        for line in s.text.splitlines():
            command = re.sub(r"\s+#.*", "", line.removeprefix("$ ")).strip()
            for part in command.split(" && "):  # README: ".venv/bin/xgrad train ..."
                part = re.sub(r"^\S*/bin/(?=xgrad )", "", part.strip())
                if part.startswith("xgrad "):
                    found.append(part)
    return found


def xgrad_commands() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(page, command) for the ``xgrad`` commands of the pages and README, in page
    order: those of code blocks, and those quoted in the prose."""
    blocks, prose = [], []
    for page in [*PAGES, README]:
        name = str(page.relative_to(DOCS)) if page != README else "README.md"
        snippets = rst_snippets(page) if page != README else readme_snippets()
        blocks += [(name, c) for c in _block_commands(snippets) if not PLACEHOLDERS.search(c)]
        prose += [(name, c) for c in _inline_commands(page.read_text(), name) if not PLACEHOLDERS.search(c)]
    return blocks, prose


def _parse(command: str):
    """The parsed arguments of `command`, or the parser's complaint (a string)."""
    from xgrad._cli.main import _parser

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            return _parser().parse_args(shlex.split(command)[1:])
        except SystemExit:
            return err.getvalue().strip().splitlines()[-1]


BLOCK_COMMANDS, PROSE_COMMANDS = xgrad_commands()
# the prose quotes whole commands and parts of them ("``xgrad train --threads``"); the whole ones run
COMMANDS = BLOCK_COMMANDS + [(p, c) for p, c in PROSE_COMMANDS if not isinstance(_parse(c), str)]
# run with few iterations: the pages' commands train for the book's 10,000
SHORT = ["--iters", "12", "--eval-every", "6", "--no-progress"]


def test_the_commands_are_found():
    pages = {page for page, _ in BLOCK_COMMANDS}
    assert {"README.md", "index.rst", "gallery.rst", "tutorial.rst"} <= pages
    assert ("README.md", "xgrad train --out runs/mnist") in BLOCK_COMMANDS
    assert ("README.md", "xgrad train --gradient numerical") in COMMANDS
    assert ("troubleshooting.rst", "xgrad train --threads 1") in COMMANDS


@pytest.mark.parametrize(("page", "command"), BLOCK_COMMANDS, ids=[f"{p}: {c}" for p, c in BLOCK_COMMANDS])
def test_block_command_parses(page, command):
    parsed = _parse(command)
    assert not isinstance(parsed, str), f"{page}: `{command}` does not parse: {parsed}"


def _subparsers():
    import argparse

    from xgrad._cli.main import _parser

    action = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


@pytest.mark.parametrize(("page", "command"), PROSE_COMMANDS, ids=[f"{p}: {c}" for p, c in PROSE_COMMANDS])
def test_prose_command_names_real_options(page, command):
    words = command.split()
    subs = _subparsers()
    assert len(words) > 1 and words[1] in subs, f"{page}: `{command}`: no such subcommand"
    options = {o for a in subs[words[1]]._actions for o in a.option_strings}
    for word in words[2:]:
        if word.startswith("--"):
            assert word in options, f"{page}: `{command}`: `xgrad {words[1]}` has no {word}"


def _runnable(command: str) -> str | None:
    """Why `command` cannot run in a test, or None."""
    if command.startswith("xgrad sweep"):
        return "a Dask cluster"
    if "cupy" in command and not _cupy_works():
        return "a CUDA GPU with CuPy"
    if command.startswith(("xgrad plot", "xgrad train")) and importlib.util.find_spec("matplotlib") is None:
        return "matplotlib"
    return None


@pytest.mark.slow
@pytest.mark.parametrize("page", sorted({p for p, _ in COMMANDS}))
def test_commands_of_a_page_run_in_order(page, tmp_path, monkeypatch):
    """A page's commands in one folder, as a reader types them: those of its code
    blocks in their order, then the whole commands its prose quotes."""
    from xgrad._cli.main import main

    monkeypatch.chdir(tmp_path)
    ran = 0
    for _, command in [c for c in COMMANDS if c[0] == page]:
        if _runnable(command):
            continue
        argv = shlex.split(command)[1:]
        if argv[0] == "train":
            argv += SHORT
        err = io.StringIO()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            status = main(argv)
        assert status == 0, f"{page}: `{command}` exited with {status}: {err.getvalue().strip()}"
        ran += 1
    assert ran > 0 or page == "tutorial.rst"  # its one command needs a cluster


def test_readme_train_writes_what_it_says(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from xgrad._cli.main import main

    monkeypatch.chdir(tmp_path)
    with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.redirect_stderr(io.StringIO()):
        assert main(["train", "--out", "runs/mnist", *SHORT]) == 0
    assert "test accuracy" in out.getvalue()  # "prints a summary"
    # "writes the history, curves and weights to runs/mnist"
    assert {p.name for p in (tmp_path / "runs" / "mnist").iterdir()} >= {"history.json", "training.png", "net.npz"}


# -- the scripts' options -----------------------------------------------------------
def script_commands() -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        for m in re.finditer(r"python (scripts/\w+\.py)((?: --?[a-z][\w-]*(?: [\w./-]+)*)*)", page.read_text()):
            found.append((page.name, " ".join(m.group(0).split())))
    return sorted(set(found))


SCRIPT_COMMANDS = script_commands()
# options the prose gives a script apart from a command line: (page, script, option)
PROSE_SCRIPT_OPTIONS = [
    ("benchmarks.rst", "scripts/bench_train.py", "--busy"),
    ("benchmarks.rst", "scripts/bench_train.py", "--accuracy-seeds"),
    ("benchmarks.rst", "scripts/bench_numgrad.py", "--train"),
    ("benchmarks.rst", "scripts/bench_check_gradient.py", "--seeds"),
    ("benchmarks.rst", "scripts/bench_step.py", "--ops"),
    ("benchmarks.rst", "scripts/bench_step.py", "--minibatch"),
    ("benchmarks.rst", "scripts/bench_step.py", "--loop"),
    ("benchmarks.rst", "scripts/bench_step.py", "--baseline"),
    ("derivative.rst", "scripts/bench_check_gradient.py", "--seeds"),
    ("gradient_check.rst", "scripts/calibrate_gradient_check.py", "--no-float64"),
]


def test_script_commands_are_found():
    scripts = {c.split()[1] for _, c in SCRIPT_COMMANDS}
    assert {"scripts/bench_train.py", "scripts/bench_numgrad.py", "scripts/bench_derivative.py",
            "scripts/bench_check_gradient.py", "scripts/calibrate_gradient_check.py"} <= scripts


@pytest.fixture(scope="module")
def script_help():
    cache: dict[str, str] = {}

    def help_of(script: str) -> str:
        if script not in cache:
            run = subprocess.run([sys.executable, str(ROOT / script), "--help"], capture_output=True, text=True,
                                 cwd=ROOT, timeout=120, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
            assert run.returncode == 0, run.stderr
            cache[script] = run.stdout
        return cache[script]

    return help_of


@pytest.mark.parametrize(("page", "command"), SCRIPT_COMMANDS, ids=[c for _, c in SCRIPT_COMMANDS])
def test_script_options_exist(page, command, script_help):
    script, *args = command.split()[1:]
    text = script_help(script)
    for option in (a for a in args if a.startswith("-")):
        assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", text), f"{page}: {script} has no {option}"


@pytest.mark.parametrize(("page", "script", "option"), PROSE_SCRIPT_OPTIONS)
def test_script_options_in_the_prose_exist(page, script, option, script_help):
    assert option in (DOCS / page).read_text()  # the page still gives it
    assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", script_help(script)), f"{script} has no {option}"


# -- claims of the pages that the code no longer bears out ----------------------------
def _script_module(name: str):
    """A helper module of scripts/ (which the scripts import from their own folder)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_without_float64_the_check_separates_correct_gradients_from_small_errors():
    """A 1% error of a median entry is caught in W1, b1 and W2, a 2% one in
    b2 (whose float32 differences are the noisiest), and the correct gradient
    passes: the tolerance sits between, as docs/gradient_check.rst says."""
    array_api_strict = pytest.importorskip("array_api_strict")
    import numpy as np

    from xgrad._net.check import TOLERANCE

    calibration_row = _script_module("_calibration").calibration_row

    b = xgrad.resolve_backend("array_api_strict", device=array_api_strict.Device("no_float64"))
    (x, t), _ = xgrad.load_mnist()
    net = xgrad.TwoLayerNet(784, 50, 10, dtype="float32", seed=0, xp=b.xp, device=b.device)
    with pytest.warns(RuntimeWarning, match="no float64"):
        row = calibration_row(net, b.asarray(x[:10], dtype=net.dtype), b.asarray(t[:10]))
    tolerance = TOLERANCE[("float32", "float32")] / float(np.finfo(np.float32).eps)
    for k in ("W1", "b1", "W2", "b2"):
        assert row[k]["correct"] < tolerance / 2, k  # no false alarm, with room to spare ...
    for k in ("W1", "b1", "W2"):
        assert row[k]["one_percent"] > tolerance, k  # ... and a 1% error is caught
    assert 2 * row["b2"]["one_percent"] > tolerance  # a 2% one in b2


# -- figures the prose quotes from the recorded benchmarks ------------------------------
def _recorded(name: str) -> dict:
    import json

    return json.loads((DOCS / "_data" / f"{name}.json").read_text())


def _train_seconds(row_name: str) -> float:
    data = _recorded("train")
    row = next(r for r in data["rows"] if r["name"] == row_name)
    return row["median_s"] * 10_000 / data["iters"]


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_readme_quotes_the_recorded_benchmarks():
    readme = _flat(README.read_text())
    grad = _recorded("numgrad")["one_gradient"]
    assert f"took {grad['fast_s']:.3f} s on our 2-core development machine" in readme
    assert f"against {grad['book']['seconds']:.0f} s for the book's own loop" in readme
    assert f"(about {round(grad['speedup_vs_book'], -3):,.0f}x)" in readme
    quoted = {
        "in about {:.1f} s with its default threads": "xgrad numpy float32 (default threads='auto')",
        "against {:.1f} s for the book's code": "reference-style loop, 1 BLAS thread",
        "{:.1f} s for PyTorch eager": "pytorch eager (autograd), default threads",
        "{:.1f} s for a hand-jitted JAX loop": "jax hand-jitted lax.scan, 1000-step blocks",
        "compiled, takes {:.1f} s": "xgrad jax float32 (compiled)",
    }
    for phrase, row in quoted.items():
        assert phrase.format(_train_seconds(row)) in readme, (phrase, row)


def test_the_benchmarks_page_quotes_the_recorded_differentiation_times():
    data = _recorded("bench_check")
    rows = {(r["case"], r["backend"]): r for r in data["rows"]}
    page = (DOCS / "benchmarks.rst").read_text()
    load = data["environment"]["load_average_1_5_15_min"][0]
    assert f"(load average {load:.1f})" in page
    table = page[page.index("case                NumPy ms"):]
    for case in ("check_gradient", "derivative", "numerical_gradient", "jacobian", "hessian"):
        line = next(line.split() for line in table.splitlines() if line.startswith(case + " "))
        numpy_ms = rows[case, "numpy"]["median_s"] * 1e3
        assert float(line[1]) == pytest.approx(numpy_ms, abs=0.051 if numpy_ms >= 1 else 0.0051), case
        for column, backend in ((2, "torch"), (3, "jax")):
            assert line[column] == f"{rows[case, backend]['ratio_to_numpy']:.1f}x", (case, backend)
        assert line[4] == f"{rows[case, 'jax']['first_s']:.1f}", case


def test_how_it_works_quotes_the_recorded_numerical_gradient():
    page = _flat((DOCS / "how_it_works.rst").read_text())
    data = _recorded("numgrad")
    grad = data["one_gradient"]
    load = data["environment"]["load_average_1_5_15_min"][0]
    assert f"load average {load:.1f}) xgrad took {grad['fast_s'] * 1e3:.1f} ms" in page
    assert f"the book's loop {grad['book']['seconds']:.1f} s, **{grad['speedup_vs_book']:,.0f} times faster**" in page
    assert f"the largest difference is {grad['book']['largest_difference']:.1e}".replace("e-0", "e-") in page


# the values the book prints (chapter 4 and the gradient check of 5.7.3), as book_code.rst
# quotes them (runs of spaces as one); its ``>>>`` examples show xgrad printing the same
BOOK_PRINTS = [
    "0.09750000000000003", "0.5975",  # sum_squares_error
    "0.510825457099338", "2.302584092994546",  # cross_entropy_error, with its 1e-7
    "0.1999999999990898", "0.2999999999986347",  # numerical_diff(function_1, 5 and 10)
    "6.00000000000378",  # function_tmp1
    "array([6., 8.])", "array([0., 4.])", "array([6., 0.])",  # numerical_gradient(function_2, ...)
    "-6.11110793e-10, 8.14814391e-10", "-2.99999994, 3.99999992",  # gradient_descent, lr 0.1 and 1e-10
    "[-2.58983747e+13 -1.29524862e+12]",  # lr 10
    "1.05414809, 0.63071653, 1.1328074", "0.92806853663411326",  # simpleNet's predict and loss
    "0.21924763, 0.14356247, -0.36281009", "0.32887144, 0.2153437 , -0.54421514",  # its dW
    "W1:2.2e-13 b1:9.7e-13 W2:8.4e-13 b2:1.2e-10",  # gradient_check.py
]


@pytest.mark.parametrize("value", BOOK_PRINTS)
def test_book_code_quotes_what_the_book_prints(value):
    assert value in _flat((DOCS / "book_code.rst").read_text()).replace("``", "")


# -- the README's two set-up commands --------------------------------------------------
def _setup_commands() -> list[str]:
    return [s.text.strip() for s in readme_snippets() if s.lang == "sh"]


def test_the_readme_has_two_setup_commands_that_install_into_a_virtual_environment():
    """A system Python that refuses global installs (PEP 668) runs both: each starts by
    making `.venv` and installs only there."""
    commands = _setup_commands()
    assert len(commands) == 2, commands
    for command in commands:
        assert "\n" not in command
        first, *rest = command.split(" && ")
        assert first == "python3 -m venv .venv", command
        assert all(part.startswith(".venv/bin/") for part in rest), command


def test_ci_runs_the_readmes_test_command():
    test_command = next(c for c in _setup_commands() if "nox" in c)
    assert test_command in (ROOT / ".ci" / "run").read_text()
