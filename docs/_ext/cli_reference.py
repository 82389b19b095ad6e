"""``.. visim-cli::`` renders the help of ``visim`` and of every sub-command.

The text comes from :func:`visim.cli.build_parser` at build time, so the reference cannot drift
from the command: a new option or sub-command shows up on the next docs build.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from contextlib import contextmanager

from docutils import nodes
from sphinx.util.docutils import SphinxDirective

# argparse wraps help to the terminal width; pin it so every build renders the same text.
HELP_WIDTH = "90"


def walk(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every parser under ``parser`` (itself first), depth first, in registration order."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            seen: set[int] = set()
            for name, sub in action.choices.items():
                if id(sub) not in seen:  # an alias maps to the same parser
                    seen.add(id(sub))
                    yield from walk(sub, (*path, name))


@contextmanager
def fixed_width() -> Iterator[None]:
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = HELP_WIDTH
    try:
        yield
    finally:
        if saved is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = saved


def help_text(parser: argparse.ArgumentParser) -> str:
    with fixed_width():
        return "\n".join(line.rstrip() for line in parser.format_help().splitlines())


class VisimCli(SphinxDirective):
    """The whole command-line reference: ``visim --help``, then a section per sub-command.

    The sections nest under whatever section holds the directive, at any depth.
    """

    def run(self) -> list[nodes.Node]:
        import visim.cli
        import visim.commands

        commands_dir = visim.commands.__path__[0]
        self.env.note_dependency(visim.cli.__file__)
        for name in sorted(os.listdir(commands_dir)):
            if name.endswith(".py"):
                self.env.note_dependency(os.path.join(commands_dir, name))
        result: list[nodes.Node] = []
        for path, parser in walk(visim.cli.build_parser()):
            block = nodes.literal_block(text := help_text(parser), text, language="text")
            if not path:
                result.append(block)
                continue
            section = nodes.section(ids=[nodes.make_id(parser.prog)], names=[parser.prog])
            section += nodes.title("", "", nodes.literal(parser.prog, parser.prog))
            section += block
            self.state.document.note_implicit_target(section, section)
            result.append(section)
        return result


def setup(app):
    app.add_directive("visim-cli", VisimCli)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
