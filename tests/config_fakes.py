"""Tiny stand-in components for the config tests, one per kind a config names.

Registered for a test with ``visim.plugins.plugin_registered(config_fakes)``; the names
(``fake_model``, ...) do not clash with any built-in. ``minimal_config()`` is a valid config
that uses only these, so the config tests do not depend on the real components.
"""

from __future__ import annotations

import attrs

from visim import hookimpl
from visim.config import rules
from visim.data import Record, ReidData


@attrs.frozen
class FakeModelParams:
    arch: str = attrs.field(default="tiny", validator=rules.in_(("tiny", "small")))
    width: int = attrs.field(default=8, validator=rules.gte(1))


@attrs.frozen
class FakeDatasetParams:
    root: str = "data"
    identities: int = attrs.field(default=10, validator=rules.gte(2))


@attrs.frozen
class FakeMetricParams:
    p: float = attrs.field(default=2.0, validator=rules.gte(1))


@attrs.frozen
class FakeLossParams:
    label_smoothing: float = attrs.field(default=0.1, validator=rules.within(0, 1))


@attrs.frozen
class FakeSamplerParams:
    num_instances: int = attrs.field(default=4, validator=rules.gte(1))


@attrs.frozen
class NoParams:
    """No parameters."""


def build(params, **context):
    """Returns its params: enough to see what a reference was structured into."""
    return params


class FakeData(ReidData):
    """``identities`` people in memory: 4 train images each, 1 query and 3 gallery images."""

    in_memory = True


def build_dataset(params: FakeDatasetParams) -> FakeData:
    def records(split: str, per_identity: int, camid: int) -> list[Record]:
        first = 0 if split == "train" else params.identities  # test people are not train people
        ids = range(first, first + params.identities)
        return [Record(f"{split}/{pid}/{i}", pid, camid + i % 2) for pid in ids for i in range(per_identity)]

    return FakeData(records("train", 4, 0), records("query", 1, 0), records("gallery", 3, 1), name="fake")


def build_sampler(params: FakeSamplerParams, records, batch_size, seed=0, **sharding) -> list[int]:
    """Every train image once, in order (``visim validate`` checks it gives a full batch)."""
    return list(range(len(records)))


@hookimpl
def register_models(register):
    register("fake_model", build, params=FakeModelParams)


@hookimpl
def register_datasets(register):
    register("fake_dataset", build_dataset, params=FakeDatasetParams)


@hookimpl
def register_metrics(register):
    register("fake_metric", build, params=FakeMetricParams, aliases=("FakeMinkowski",))
    register("fake_plain_metric", build, params=NoParams)


@hookimpl
def register_losses(register):
    register("fake_loss", build, params=FakeLossParams)


@hookimpl
def register_samplers(register):
    register("fake_sampler", build_sampler, params=FakeSamplerParams)


@hookimpl
def register_transforms(register):
    register("fake_transform", build, params=NoParams)


def minimal_config() -> dict:
    """A valid config naming only the fakes (and the built-in ``adam`` optimizer)."""
    return {
        "name": "fake",
        "device": "cpu",
        "data": {"dataset": "fake_dataset", "sampler": "fake_sampler", "image_size": [8, 4]},
        "model": {"name": "fake_model", "arch": "small"},
        "train": {"epochs": 2, "loss": "fake_loss", "optimizer": {"name": "adam", "lr": 0.001}},
        "test": {"metric": "fake_metric", "topk_cmc": [1, 5]},
    }
