"""Every check a run makes before it trains, runnable alone: ``visim validate`` runs it too.

:func:`preflight` builds the dataset's records (no image is decoded, unless
``on_bad_image: skip`` asks for it), applies the bad-image policy, checks the splits, builds
the train sampler, checks that it gives a full batch, and checks ``train.nof_classes``
against the data. :func:`~visim.data.loaders.build_loaders` builds its loaders from the
result, so a config that passes ``visim validate`` does not fail these checks in ``run``.

A :class:`~visim.data.records.DataError` raised here carries ``path``, the setting it is
about, so ``visim validate`` can report it as a config problem. Imports no torch.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import attrs

from visim import contract_checks
from visim.config.errors import ConfigError, Problem
from visim.data.bad_images import BadImage, find_bad_images, missing_files_error
from visim.data.records import DataError, ReidData, validate_splits


@attrs.frozen
class Prepared:
    """What the checks built: the records (bad images left out), the train sampler."""

    data: ReidData
    skipped: tuple[BadImage, ...] = ()
    sampler: object | None = None  # None when not training


@contextmanager
def about(path: str) -> Iterator[None]:
    """A DataError raised inside is about the setting at ``path`` (unless it says otherwise)."""
    try:
        yield
    except DataError as exc:
        exc.path = exc.path or path
        raise


def preflight(
    config, *, train: bool = True, decode: bool = True, seed: int | None = None, num_replicas: int = 1, rank: int = 0
) -> Prepared:
    """The data checks of a run of ``config`` (an :class:`~visim.config.schema.Experiment`).

    ``train``: also the train split, sampler and class count (when the config trains).
    ``decode`` False: ``on_bad_image: skip`` only leaves out missing files instead of decoding
    every image (what ``visim validate`` does; a run decodes). ``num_replicas`` / ``rank``
    shard the sampler for distributed training.
    """
    training = train and config.train is not None
    with about("$.data.dataset"):
        data, skipped = prepare_data(config, train=training, decode=decode)
    if not training:
        return Prepared(data, tuple(skipped))
    check_class_count(config, data)
    with about("$.data.sampler"):
        sampler = train_sampler(config, data, config.seed if seed is None else seed, num_replicas, rank)
    return Prepared(data, tuple(skipped), sampler)


def prepare_data(config, *, train: bool, decode: bool = True) -> tuple[ReidData, list[BadImage]]:
    """Build the dataset, apply the bad-image policy and check the splits."""
    data = contract_checks.build(config.data.dataset)
    splits = ("train", "query", "gallery") if train else ("query", "gallery")
    skipped: list[BadImage] = []
    if config.data.on_bad_image == "skip":
        skipped = find_bad_images(data, splits, read=decode)
        data = data.without((b.split, b.index) for b in skipped)
    else:
        missing = find_bad_images(data, splits, read=False)
        if missing:
            raise DataError(missing_files_error(missing))
    validate_splits(data, train=train)
    return data, skipped


def check_class_count(config, data: ReidData) -> None:
    expected = config.train.nof_classes
    if expected is not None and expected != data.num_train_classes:
        message = f"the training data has {data.num_train_classes} classes, not {expected}"
        raise ConfigError(Problem(message, "$.train.nof_classes"))


def train_sampler(config, data: ReidData, seed: int, num_replicas: int, rank: int):
    """The configured sampler over the train split; a DataError unless it gives a full batch."""
    cfg = config.data
    sharding = {"num_replicas": num_replicas, "rank": rank} if num_replicas > 1 else {}
    sampler = contract_checks.build(cfg.sampler, records=data.train, batch_size=cfg.batch_size, seed=seed, **sharding)
    if len(sampler) < cfg.batch_size:
        raise DataError(
            f"the train split gives no full batch of {cfg.batch_size} "
            f"({len(data.train)} images, sampler {cfg.sampler.name!r} yields {len(sampler)})",
            path="$.data.batch_size",
        )
    return sampler
