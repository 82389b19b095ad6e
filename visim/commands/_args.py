"""Arguments several commands share, declared once."""

from __future__ import annotations


def add_config_arguments(parser, metavar: str = "CONFIG", help: str = "the YAML experiment config") -> None:
    """The CONFIG positional (``args.config``, which cli.main names in reports) and ``--set``."""
    parser.add_argument("config", metavar=metavar, help=help)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY.PATH=VALUE",
        help="override a config value, read as YAML (repeatable): --set train.epochs=3",
    )


def add_quiet_argument(parser) -> None:
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bars or console output")
