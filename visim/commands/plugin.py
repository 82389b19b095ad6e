"""``visim plugin new KIND NAME [--output DIR]``: start a plugin package from a working example."""

from __future__ import annotations

import sys

from visim.scaffold import KINDS


def add_parser(subparsers) -> None:
    help_text = "create a plugin package (visim plugin new KIND NAME)"
    parser = subparsers.add_parser("plugin", help=help_text, description=help_text)
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    new_help = "write DIR/visim-NAME: a working example component of KIND, its tests and pyproject.toml"
    new = actions.add_parser("new", help=new_help, description=new_help)
    new.add_argument("kind", metavar="KIND", choices=KINDS, help=f"one of {', '.join(KINDS)}")
    new.add_argument("name", metavar="NAME", help="the component's name, e.g. acme_net (lowercase, underscores)")
    new.add_argument("--output", "-o", default=".", metavar="DIR", help="where to create visim-NAME (default: here)")
    new.set_defaults(handler=handle_new)


def handle_new(args) -> int:
    from visim import __version__
    from visim.plugins import get_registry
    from visim.registry import ComponentError
    from visim.scaffold import ScaffoldError, create

    registry = get_registry()[args.kind]
    try:
        taken = registry.get(args.name)
    except ComponentError:
        taken = None
    try:
        if taken is not None:
            provider = "built into visim" if taken.builtin else f"taken by {taken.distribution or taken.plugin}"
            raise ScaffoldError(f"{args.kind} {args.name!r} is {provider}; choose another name")
        target = create(args.kind, args.name, args.output, __version__)
    except ScaffoldError as exc:
        print(f"visim: error: {exc}", file=sys.stderr)
        return 2
    print(f"created {target}")
    print(f"next: pip install -e {target} && pytest {target}")
    return 0
