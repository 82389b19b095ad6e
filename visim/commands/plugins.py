"""``visim plugins [--json]``: every plugin, where it comes from, and what it registered."""

from __future__ import annotations

import json
from collections import Counter

from visim.commands._table import format_table, join_wrapped

STATUSES = ("ok", "failed", "incompatible", "blocked")


def add_parser(subparsers) -> None:
    help_text = "list the plugins, what each registered, and whether it loaded"
    parser = subparsers.add_parser("plugins", help=help_text, description=help_text)
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")
    parser.set_defaults(handler=handle)


def handle(args) -> int:
    from visim.plugins import get_state

    plugins = get_state().plugins
    if args.json:
        print(json.dumps([info.as_dict() for info in plugins], indent=2))
    else:
        print(render(plugins))
    return 0


def render(plugins) -> str:
    rows = [
        [info.name, info.distribution or "-", info.version or "-", info.status, details(info)]
        for info in plugins
    ]
    table = format_table(["PLUGIN", "DISTRIBUTION", "VERSION", "STATUS", "DETAILS"], rows)
    counts = Counter(info.status for info in plugins)
    summary = ", ".join(f"{counts[status]} {status}" for status in STATUSES if counts[status])
    return f"{table}\n\n{len(plugins)} plugin{'s' if len(plugins) != 1 else ''}: {summary}"


def details(info) -> str:
    """One line per hook with what it registered; the reason when the plugin did not load."""
    if info.status != "ok":
        return info.reason or info.status
    if not info.hooks:
        return "no hooks"
    lines = []
    for hook in info.hooks:
        # register_<kind> stores its names under <kind> ("metrics", ..., "rules")
        names = info.components.get(hook.removeprefix("register_"), [])
        lines.append(join_wrapped(f"{hook}:", names or ["-"]))
    return "\n".join(lines)
