"""``.. cli-reference:: module:function``: the reference of a command, written
at build time from its :mod:`argparse` parser.

`function` returns the :class:`argparse.ArgumentParser` of the command (for
xgrad, ``xgrad._cli.main:_parser``). The page gets the command's usage and, for
every subcommand, a section with its description, its usage line, and each
option with its argument, help, choices and default: what ``--help`` prints,
so the page cannot drift from the command.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles


def load_parser(spec: str) -> argparse.ArgumentParser:
    """Call ``module:function`` and return the parser it makes."""
    module, _, function = spec.partition(":")
    parser = getattr(importlib.import_module(module), function)()
    if not isinstance(parser, argparse.ArgumentParser):
        raise TypeError(f"{spec} returned {type(parser).__name__}, not an argparse.ArgumentParser")
    return parser


def subcommands(parser: argparse.ArgumentParser) -> dict[str, tuple[str, argparse.ArgumentParser]]:
    """Each subcommand's name -> (its one-line help, its parser), in the order they were added."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            return {name: (helps.get(name, ""), sub) for name, sub in action.choices.items()}
    return {}


def _literal(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return " ".join(map(str, value))
    return str(value)


def option_lines(parser: argparse.ArgumentParser, action: argparse.Action) -> list[str]:
    """One option as a reST definition list item."""
    formatter = parser._get_formatter()
    invocation = formatter._format_action_invocation(action)
    help_text = formatter._expand_help(action) if action.help else ""
    notes = []
    hidden = action.choices is not None and action.metavar is not None  # else the invocation lists them
    if hidden and not all(str(c) in help_text for c in action.choices or ()):
        notes.append("One of " + ", ".join(f"``{c}``" for c in action.choices) + ".")
    if action.required and action.option_strings:
        notes.append("Required.")
    unset = action.default is None or action.default is False or action.default == argparse.SUPPRESS
    if not unset and action.nargs != 0 and "default" not in help_text:
        notes.append(f"Default: ``{_literal(action.default)}``.")
    text = " ".join(part for part in (_sentence(help_text), *notes) if part) or "(no description)"
    return [f"``{invocation}``", f"   {text}", ""]


def _sentence(text: str) -> str:
    """`text` as reST, ended with a full stop: markup characters escaped and
    options (``--out``) set as code, so that ``--`` is not made a dash."""
    text = " ".join(text.split())
    text = re.sub(r"([\\*`|_])", r"\\\1", text)
    text = re.sub(r"(?<![\w-])(--[a-z][a-z0-9-]*)", lambda m: "``" + m[1].replace("\\", "") + "``", text)
    return text + ("" if not text or text.endswith(".") else ".")


def command_lines(name: str, summary: str, parser: argparse.ArgumentParser) -> list[str]:
    """A section for one subcommand: description, usage and options."""
    title = f"``{parser.prog}``"
    lines = [title, "-" * len(title), ""]
    lines += [_sentence(parser.description or summary), ""]
    lines += [".. code-block:: text", ""]
    lines += ["   " + line for line in parser.format_usage().strip().splitlines()] + [""]
    # what --help hides (an old name still read, help=SUPPRESS) the page hides too
    options = [a for a in parser._actions if not isinstance(a, argparse._HelpAction) and a.help != argparse.SUPPRESS]
    positionals = [a for a in options if not a.option_strings]
    optionals = [a for a in options if a.option_strings]
    for heading, actions in (("Arguments", positionals), ("Options", optionals)):
        if actions:
            lines += [f"**{heading}**", ""]
            for action in actions:
                lines += option_lines(parser, action)
    return lines


def reference_lines(parser: argparse.ArgumentParser) -> list[str]:
    """The whole reference: the command's usage, then one section per subcommand."""
    lines = [_sentence(parser.description or ""), "", ".. code-block:: text", ""]
    lines += ["   " + line for line in parser.format_usage().strip().splitlines()] + [""]
    commands = subcommands(parser)
    lines += [f"- :ref:`{parser.prog} {name} <cli-{name}>`: {summary}" for name, (summary, _) in commands.items()]
    lines += [""]
    for name, (summary, sub) in commands.items():
        lines += [f".. _cli-{name}:", "", *command_lines(name, summary, sub)]
    return lines


class CliReference(SphinxDirective):
    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        parser = load_parser(self.arguments[0])
        # rebuild the page when any module of the command's package changes (options, defaults, help)
        package = self.arguments[0].partition(".")[0].partition(":")[0]
        for name, module in list(sys.modules.items()):
            if (name == package or name.startswith(package + ".")) and getattr(module, "__file__", None):
                self.env.note_dependency(module.__file__)
        node = nodes.section()
        node.document = self.state.document
        source = self.get_source_info()[0]
        content = StringList(reference_lines(parser), source=source)
        nested_parse_with_titles(self.state, content, node)
        return node.children


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("cli-reference", CliReference)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
