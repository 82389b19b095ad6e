"""The built-in sampler components: ``factory(params, records, batch_size, seed)``.

The factories also take ``num_replicas`` and ``rank`` (default 1 and 0) so distributed
training can shard the same epoch plan. torch is imported only when a sampler is built.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from visim.config import rules
from visim.config.errors import ConfigError, Problem
from visim.data.records import Record


@attrs.frozen
class IdentitySamplerParams:
    # K: images per identity in a batch; batch_size must be a multiple of it.
    num_instances: int = attrs.field(default=4, validator=rules.gte(1))


@attrs.frozen
class PlainSamplerParams:
    """No parameters."""


def build_identity(
    params: IdentitySamplerParams,
    records: Sequence[Record],
    batch_size: int,
    seed: int = 0,
    num_replicas: int = 1,
    rank: int = 0,
):
    """P identities x K instances per batch, every identity distinct (for triplet losses)."""
    from visim.data.samplers import IdentitySampler

    k = params.num_instances
    if batch_size % k:
        raise ConfigError(
            Problem(
                f"batch_size ({batch_size}) must be a multiple of the identity sampler's "
                f"num_instances ({k}); e.g. {max(k, batch_size - batch_size % k)}",
                "$.data.batch_size",
            )
        )
    labels = [r.pid if r.class_id is None else r.class_id for r in records]
    return IdentitySampler(labels, batch_size, k, seed=seed, num_replicas=num_replicas, rank=rank)


def build_random(
    params: PlainSamplerParams,
    records: Sequence[Record],
    batch_size: int,
    seed: int = 0,
    num_replicas: int = 1,
    rank: int = 0,
):
    """A new seeded permutation of the train images every epoch."""
    from visim.data.samplers import RandomSampler

    return RandomSampler(len(records), seed=seed, num_replicas=num_replicas, rank=rank)


def build_sequential(
    params: PlainSamplerParams,
    records: Sequence[Record],
    batch_size: int,
    seed: int = 0,
    num_replicas: int = 1,
    rank: int = 0,
):
    """The train images in dataset order (for debugging and reproducing)."""
    from visim.data.samplers import SequentialSampler

    return SequentialSampler(len(records), seed=seed, num_replicas=num_replicas, rank=rank)
