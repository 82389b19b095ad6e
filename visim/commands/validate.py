"""``visim validate CONFIG``: check a config without running anything; every problem at once."""

from __future__ import annotations

from visim.commands._args import add_config_arguments


def add_parser(subparsers) -> None:
    help_text = "check a config and report every problem (exit 2 if there is any)"
    parser = subparsers.add_parser("validate", help=help_text, description=help_text)
    add_config_arguments(parser)
    parser.set_defaults(handler=handle)


def summary(config) -> str:
    """One line naming what the config will run."""
    parts = [f"model {config.model.name}", f"dataset {config.data.dataset.name}"]
    if config.train is None:
        parts.append("test only")
    else:
        train = config.train
        parts.append(
            f"train {train.epochs} epoch{'s' if train.epochs != 1 else ''} "
            f"({train.loss.name}, {train.optimizer.name})"
        )
    parts.append(f"metric {config.test.metric.name}")
    return f"experiment {config.name!r}: " + ", ".join(parts)


def handle(args) -> int:
    from visim.config.load import load_config

    config = load_config(args.config, args.set)  # a ConfigError becomes exit 2 in cli.main
    print(f"{args.config}: valid; {summary(config)}")
    return 0
