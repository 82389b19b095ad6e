"""Config reference directives, generated at build time so that the docs cannot drift.

``.. visim-config:: visim.config.schema.Experiment``
    A section per config section (the class and its nested attrs classes), each a table of
    field, type, default, rule and description, read from the attrs fields.
``.. visim-components:: optimizers``
    Every built-in component of a kind, with the table of its params class; with
    ``:distribution: visim-pml``, the components that installed distribution registers instead.
``.. visim-rules::``
    The built-in named validation rules and the data each takes.
"""

from __future__ import annotations

import importlib
import inspect

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective

from visim.config import reference


def literal(text: str) -> str:
    """Inline literal markup; empty stays empty, backquotes cannot break it."""
    text = text.replace("`", "'")
    return f"``{text}``" if text.strip() else ""


def list_table(header: list[str], rows: list[list[str]], widths: str) -> list[str]:
    lines = [".. list-table::", "   :header-rows: 1", f"   :widths: {widths}", ""]
    for row in [header, *rows]:
        lines.append(f"   * - {row[0]}")
        lines += [f"     - {cell}" if cell else "     -" for cell in row[1:]]
    return [*lines, ""]


def fields_table(cls: type) -> list[str]:
    docs = reference.field_docs(cls)
    if not docs:
        return ["No parameters.", ""]
    rows = [[literal(f.name), f.type, literal(f.default), f.rule] for f in docs]
    if not any(f.doc for f in docs):  # a params class without field docs: no empty column
        return list_table(["Field", "Type", "Default", "Rule"], rows, "20 20 20 40")
    rows = [[*row, f.doc] for row, f in zip(rows, docs)]
    return list_table(["Field", "Type", "Default", "Rule", "Description"], rows, "14 14 12 22 38")


def summary(obj) -> str:
    """The first paragraph of the object's own docstring (never an inherited one)."""
    text = inspect.cleandoc(obj.__dict__.get("__doc__") or "")
    return text.split("\n\n")[0].replace("\n", " ")


class VisimDirective(SphinxDirective):
    def parse(self, lines: list[str], into: nodes.Element) -> None:
        source = f"<{self.name} directive>"
        self.state.nested_parse(StringList(lines, source=source), self.content_offset, into)

    def note_source_of(self, obj) -> None:
        path = inspect.getsourcefile(obj)
        if path:
            self.env.note_dependency(path)


class ConfigReference(VisimDirective):
    """A section per config section, titled by its path (``train``), nested where it is used."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        module_name, _, class_name = self.arguments[0].rpartition(".")
        root = getattr(importlib.import_module(module_name), class_name)
        self.note_source_of(root)
        result: list[nodes.Node] = []
        for path, cls in reference.sections(root):
            title = path or "top level"
            anchor = nodes.make_id(f"config-{path or 'top-level'}")
            section = nodes.section(ids=[anchor], names=[f"config {title}"])
            section += nodes.title(
                "", "", nodes.literal(title, title) if path else nodes.Text(title)
            )
            intro = summary(cls) if path else ""
            self.parse([intro, "", *fields_table(cls)] if intro else fields_table(cls), section)
            self.state.document.note_implicit_target(section, section)
            result.append(section)
        return result


class ComponentsReference(VisimDirective):
    """Every built-in component of one kind (or a distribution's): name, aliases, summary, params."""

    required_arguments = 1
    option_spec = {"distribution": str}

    def run(self) -> list[nodes.Node]:
        from visim.plugins import get_registry

        registry = get_registry()[self.arguments[0]]
        distribution = self.options.get("distribution")
        components = [c for c in registry if (c.distribution == distribution if distribution else c.builtin)]
        lines: list[str] = []
        for component in components:
            self.note_source_of(component.params)
            aliases = ", ".join(literal(a) for a in component.aliases)
            lines += [f".. rubric:: {literal(component.name)}", ""]
            lines += [component.summary + (f" Also called {aliases}." if aliases else ""), ""]
            lines += fields_table(component.params)
        if not components:
            lines = [f"No {distribution or 'built-in'} {registry.kind} are registered.", ""]
        container = nodes.container()
        self.parse(lines, container)
        return container.children


class RulesReference(VisimDirective):
    """The built-in validation rules: name, data, meaning."""

    def run(self) -> list[nodes.Node]:
        from visim.config import rule_checks, rules

        self.note_source_of(rule_checks)
        self.note_source_of(rules)
        rows = [[literal(r.name), r.data, r.doc] for r in reference.rule_docs()]
        container = nodes.container()
        self.parse(list_table(["Rule", "Data", "Holds when"], rows, "22 28 50"), container)
        return container.children


def setup(app):
    app.add_directive("visim-config", ConfigReference)
    app.add_directive("visim-components", ComponentsReference)
    app.add_directive("visim-rules", RulesReference)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
