"""``visim config show CONFIG``: the fully resolved config, every default included, as YAML."""

from __future__ import annotations

import sys

from visim.commands._args import add_config_arguments


def add_parser(subparsers) -> None:
    help_text = "inspect configs"
    parser = subparsers.add_parser("config", help=help_text, description=help_text)
    actions = parser.add_subparsers(dest="config_action", metavar="ACTION")
    show_help = "print the resolved config (every default included) as YAML"
    show = actions.add_parser("show", help=show_help, description=show_help)
    add_config_arguments(show)
    show.set_defaults(handler=show_config)

    def no_action(args) -> int:
        parser.print_help(sys.stderr)
        return 2

    parser.set_defaults(handler=no_action)


def show_config(args) -> int:
    from visim.config.load import dump_config, load_config

    sys.stdout.write(dump_config(load_config(args.config, args.set)))
    return 0
