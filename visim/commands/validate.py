"""``visim validate CONFIG``: every check a run makes before training, without training;
every problem at once (exit 2)."""

from __future__ import annotations

from visim.commands._args import add_config_arguments


def add_parser(subparsers) -> None:
    help_text = "check a config and its data as a run would, and report every problem (exit 2 if there is any)"
    parser = subparsers.add_parser("validate", help=help_text, description=help_text)
    add_config_arguments(parser)
    parser.add_argument(
        "--config-only",
        action="store_true",
        help="check the config alone, not its data (a recipe whose data are not on this machine)",
    )
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


def data_summary(prepared) -> str:
    data = prepared.data
    sizes = f"{len(data.query)} query, {len(data.gallery)} gallery images"
    if prepared.sampler is not None:
        sizes = f"{len(data.train)} train images of {data.num_train_classes} identities, " + sizes
    skipped = f", {len(prepared.skipped)} missing skipped" if prepared.skipped else ""
    return f"; data: {sizes}{skipped}"


def check_data(config):
    """The run's data checks (:func:`visim.data.preflight.preflight`), no image decoded; a data
    problem is a config problem at the setting it is about."""
    from visim.config.errors import ConfigError, Problem
    from visim.data.preflight import preflight
    from visim.data.records import DataError

    try:
        return preflight(config, decode=False)
    except DataError as exc:
        raise ConfigError(Problem(str(exc), exc.path or "$.data")) from None


def handle(args) -> int:
    from visim.config.load import load_config

    config = load_config(args.config, args.set)  # a ConfigError becomes exit 2 in cli.main
    details = "" if args.config_only else data_summary(check_data(config))
    print(f"{args.config}: valid; {summary(config)}{details}")
    return 0
