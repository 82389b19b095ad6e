"""Build a VisualSimilarityEngine and its loaders from a config, through the registries."""

from __future__ import annotations

from pathlib import Path

from visim import contract_checks
from visim.config.schema import Experiment
from visim.distributed.group import shard_of_this_rank
from visim.engine.engine import VisualSimilarityEngine, seed_everything


def as_experiment(config) -> Experiment:
    if isinstance(config, Experiment):
        return config
    from visim.config.load import config_from_dict, load_config

    if isinstance(config, (str, Path)):
        return load_config(config)
    return config_from_dict(config)


def build_engine(
    config,
    *,
    train: bool | None = None,
    run_dir: str | Path | None = None,
    resume: str | Path | None = None,
    weights: str | Path | None = None,
    quiet: bool = False,
    **engine_kwargs,
) -> VisualSimilarityEngine:
    """Data, model, loss and metric from ``config``; optionally resume or load weights.

    ``train`` (default: whether the config has a train section) decides whether a train
    loader is built. ``run_dir`` None means no files are written (library use, tests).
    """
    from visim.data.loaders import build_loaders

    config = as_experiment(config)
    train = config.train is not None if train is None else train and config.train is not None
    seed_everything(config.seed)
    # The data checks `visim validate` makes too (visim.data.preflight), then the loaders.
    loaders = build_loaders(config, train=train, **shard_of_this_rank())  # DDP: a sampler share per rank
    num_classes = max(loaders.num_classes, 1)
    model = contract_checks.build(config.model, num_classes=num_classes)
    engine = VisualSimilarityEngine(
        config,
        model,
        loaders.query,
        loaders.gallery,
        train_loader=loaders.train if train else None,
        loaders=loaders,
        run_dir=run_dir,
        quiet=quiet,
        num_classes=num_classes,
        **engine_kwargs,
    )
    if resume is not None:
        engine.load_model(resume)
    if weights is not None:
        engine.load_model(weights, weights_only=True)
    return engine
