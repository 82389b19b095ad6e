"""``visim data check CONFIG``: per-split counts and the data problems an evaluation would hit."""

from __future__ import annotations

import sys

from visim.commands._args import add_config_arguments
from visim.errors import VisimError

EXIT_CLEAN, EXIT_PROBLEMS = 0, 1


def add_parser(subparsers) -> None:
    help_text = "inspect the data a config uses"
    parser = subparsers.add_parser("data", help=help_text, description=help_text)
    parser.set_defaults(handler=lambda args: print_usage(parser))
    actions = parser.add_subparsers(dest="data_command", metavar="ACTION")
    check_help = (
        "count images, identities and cameras per split; list unreadable images, queries "
        "without a valid positive and train/test identity overlap (exit 1 if any)"
    )
    check = actions.add_parser("check", help=check_help, description=check_help)
    add_config_arguments(check)
    check.add_argument("--no-read", action="store_true", help="only check that image files exist; do not decode them")
    check.add_argument("--limit", type=int, default=20, metavar="N", help="list at most N items per problem (default 20)")
    check.set_defaults(handler=handle_check)


class DataCheckFailed(VisimError):
    """The data could not be read at all (no report to print)."""

    prog = "visim data check"


def print_usage(parser) -> int:
    parser.print_help(sys.stderr)
    return 2


def handle_check(args) -> int:
    from visim.config.load import load_config
    from visim.data.check import check_data
    from visim.data.records import DataError

    config = load_config(args.config, args.set)  # ConfigError: cli.main reports it, exit 2
    try:
        report = check_data(config, read_images=not args.no_read)
    except (DataError, OSError) as exc:  # no such root, unparsable file names or lists
        raise DataCheckFailed(str(exc)) from exc
    print(report.format(limit=max(args.limit, 0)))
    return EXIT_CLEAN if report.clean else EXIT_PROBLEMS
