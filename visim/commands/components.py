"""``visim components [KIND] [--json]``: every registered component and its params schema."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import attrs

from visim.commands._table import format_table
from visim.config.reference import COMPUTED, default_label, default_value, field_type_label


def add_parser(subparsers) -> None:
    help_text = "list the registered components with their params and provenance"
    parser = subparsers.add_parser("components", help=help_text, description=help_text)
    parser.add_argument(
        "kind",
        nargs="?",
        metavar="KIND",
        help="one kind only: metric(s), model(s), loss(es), dataset(s), optimizer(s), "
        "scheduler(s), sampler(s), transform(s) or index(es)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")
    parser.set_defaults(handler=handle)


def handle(args) -> int:
    from visim.plugins import get_registry
    from visim.registry import KINDS, normalize_kind

    kinds = [normalize_kind(args.kind)] if args.kind else list(KINDS)
    registries = get_registry()
    if args.json:
        listing = [describe(c) for kind in kinds for c in registries[kind]]
        print(json.dumps(listing, indent=2))
    else:
        print("\n\n".join(render_kind(kind, list(registries[kind])) for kind in kinds))
    return 0


def describe(component) -> dict[str, Any]:
    """Everything a script needs to know about one component, as JSON-safe data."""
    return {
        "kind": component.kind,
        "name": component.name,
        "aliases": list(component.aliases),
        "plugin": component.plugin,
        "distribution": component.distribution,
        "version": component.version,
        "builtin": component.builtin,
        "doc": component.summary,
        "params": [
            {
                "name": field.alias,
                "type": field_type_label(field),
                "required": field.default is attrs.NOTHING,
                "default": json_safe(default_value(field)),
            }
            for field in params_fields(component.params)
        ],
    }


def render_kind(kind: str, components: list) -> str:
    if not components:
        return f"{kind} (0): none registered"
    rows = [
        [
            c.name,
            "\n".join(c.aliases) or "-",
            c.plugin,
            " ".join(part for part in (c.distribution, c.version) if part) or "-",
            "\n".join(param_line(field) for field in params_fields(c.params)) or "-",
            c.summary,
        ]
        for c in components
    ]
    headers = ["NAME", "ALIASES", "PLUGIN", "DISTRIBUTION", "PARAMS", "DESCRIPTION"]
    return f"{kind} ({len(components)})\n{format_table(headers, rows)}"


def params_fields(cls: type) -> list[attrs.Attribute]:
    """The fields a config may set, with their annotations resolved where that is possible."""
    # A plugin's annotation may name something unimportable: then the string is shown.
    with contextlib.suppress(Exception):
        attrs.resolve_types(cls)
    return [field for field in attrs.fields(cls) if field.init]


def param_line(field: attrs.Attribute) -> str:
    label = f"{field.alias}: {field_type_label(field)}"
    if field.default is attrs.NOTHING:
        return f"{label} (required)"
    return f"{label} = {default_label(field)}"


def json_safe(value: Any) -> Any:
    if value is attrs.NOTHING:
        return None
    if value is COMPUTED:
        return repr(value)
    from visim.config.converter import unstructure

    try:
        plain = unstructure(value)
        json.dumps(plain)
    except (TypeError, ValueError):
        return repr(value)
    return plain
