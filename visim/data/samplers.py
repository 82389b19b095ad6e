"""Training samplers (torch ``Sampler`` of dataset indices), seeded and reshuffled per epoch.

Each is used as ``DataLoader(dataset, sampler=s, batch_size=B, drop_last=True)``. The order of
an epoch depends only on (seed, epoch): call ``set_epoch(epoch)`` before iterating. With
``num_replicas`` > 1 every rank gets an equally long, disjoint share of the same epoch plan.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence

import torch.utils.data

from visim.data.records import DataError


class SeededSampler(torch.utils.data.Sampler):
    def __init__(self, num_items: int, *, seed: int = 0, num_replicas: int = 1, rank: int = 0) -> None:
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(f"invalid shard: rank {rank} of {num_replicas} replicas")
        self.num_items = num_items
        self.seed = seed
        self.epoch = 0
        self.num_replicas = num_replicas
        self.rank = rank

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def rng(self) -> random.Random:
        # A string seed is hashed with SHA-512: identical in every process and Python run.
        return random.Random(f"visim-sampler:{self.seed}:{self.epoch}")

    def shard(self, items: Sequence) -> list:
        """This rank's share; the tail that does not divide evenly is dropped on every rank."""
        usable = len(items) - len(items) % self.num_replicas
        return list(items[:usable][self.rank :: self.num_replicas])


class SequentialSampler(SeededSampler):
    """0, 1, 2, ... (sharded round-robin across ranks)."""

    def __iter__(self) -> Iterator[int]:
        return iter(self.shard(range(self.num_items)))

    def __len__(self) -> int:
        return self.num_items // self.num_replicas


class RandomSampler(SeededSampler):
    """A fresh permutation of all items every epoch."""

    def __iter__(self) -> Iterator[int]:
        order = list(range(self.num_items))
        self.rng().shuffle(order)
        return iter(self.shard(order))

    def __len__(self) -> int:
        return self.num_items // self.num_replicas


class IdentitySampler(SeededSampler):
    """P identities x K instances per batch (``batch_size = P * K``), every identity distinct.

    An epoch cuts each identity's shuffled images into chunks of K (the last chunk padded with
    other images of the same identity, sampling with replacement below K images), so
    ``c_i = ceil(max(n_i, K) / K)`` chunks. With ``T`` chunks in all, the epoch has
    ``L = floor(T / P)`` batches (an identity with more than L chunks is capped at L and T
    recomputed), i.e. ``L * P * K`` samples, fixed before iterating and equal on every rank
    (each rank takes ``floor(L / num_replicas)`` batches). Every image is visited once per epoch
    except fewer than P chunks cut to fill whole batches, plus any capped chunks.

    Placement: chunks grouped by identity, identities in a shuffled order, chunk ``j`` goes to
    batch ``j mod L`` -- an identity's at most L consecutive chunks land in distinct batches.
    """

    def __init__(self, labels: Sequence[int], batch_size: int, num_instances: int, **kwargs) -> None:
        super().__init__(len(labels), **kwargs)
        self.num_instances = num_instances
        self.num_identities = batch_size // num_instances
        self.by_label: dict[int, list[int]] = {}
        for index, label in enumerate(labels):
            self.by_label.setdefault(label, []).append(index)
        self.chunk_cap = self.plan_batches()
        if self.chunk_cap == 0:
            raise DataError(
                f"identity sampler cannot fill one batch of {self.num_identities} identities x "
                f"{num_instances} instances: the train split has {len(self.by_label)} identities "
                f"(lower batch_size or raise num_instances)"
            )

    def chunk_count(self, label: int) -> int:
        return -(-max(len(self.by_label[label]), self.num_instances) // self.num_instances)

    def plan_batches(self) -> int:
        """L: the number of batches per epoch (before sharding); identities are capped at L chunks."""
        counts = [self.chunk_count(label) for label in self.by_label]
        batches = sum(counts) // self.num_identities
        while True:
            capped = sum(min(c, batches) for c in counts) // self.num_identities
            if capped == batches:
                return batches
            batches = capped

    def chunks(self, label: int, rng: random.Random) -> list[list[int]]:
        indices = list(self.by_label[label])
        rng.shuffle(indices)
        k = self.num_instances
        chunks = [indices[i : i + k] for i in range(0, len(indices), k)]
        last = chunks[-1]
        if len(last) < k:
            others = [i for i in indices if i not in last]
            last += rng.sample(others, min(len(others), k - len(last)))
            last += rng.choices(indices, k=k - len(last))  # fewer than K images in all
        return chunks

    def epoch_batches(self) -> list[list[int]]:
        """The whole epoch's batches (all ranks), as lists of dataset indices."""
        rng = self.rng()
        labels = sorted(self.by_label)
        rng.shuffle(labels)
        num_batches = self.chunk_cap
        sequence = [c for label in labels for c in self.chunks(label, rng)[:num_batches]]
        batches: list[list[int]] = [[] for _ in range(num_batches)]
        for position, chunk in enumerate(sequence[: num_batches * self.num_identities]):
            batches[position % num_batches].extend(chunk)
        rng.shuffle(batches)
        return batches

    def __iter__(self) -> Iterator[int]:
        return iter([i for batch in self.shard(self.epoch_batches()) for i in batch])

    def __len__(self) -> int:
        return (self.chunk_cap // self.num_replicas) * self.num_identities * self.num_instances
