"""Samplers: P x K identity batches, seeding, per-epoch reshuffling, epoch length, sharding."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from visim.config.errors import ConfigError
from visim.data.records import DataError, Record, assign_class_ids
from visim.plugins import get_registry

pytestmark = pytest.mark.usefixtures("subnormal_floats")  # hypothesis needs them (conftest.py)


def records_with(counts: dict[int, int]) -> tuple[Record, ...]:
    """``counts``: pid -> number of images."""
    rows = [Record(f"{pid}/{i}.png", pid, i % 2) for pid, n in counts.items() for i in range(n)]
    return assign_class_ids(rows)


def sampler(name: str, records, batch_size: int, seed: int = 0, **params):
    context = {k: params.pop(k) for k in ("num_replicas", "rank") if k in params}
    component = get_registry().samplers.get(name)
    return component.build(params, records=records, batch_size=batch_size, seed=seed, **context)


def batches_of(s, batch_size: int) -> list[list[int]]:
    order = list(s)
    assert len(order) == len(s)
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def test_identity_batches_are_p_distinct_identities_times_k():
    records = records_with({10: 9, 11: 4, 12: 2, 13: 7, 14: 5, 15: 12})
    s = sampler("identity", records, batch_size=8, num_instances=4)
    for batch in batches_of(s, 8):
        labels = Counter(records[i].class_id for i in batch)
        assert len(batch) == 8 and len(labels) == 2 and set(labels.values()) == {4}


def test_identity_epoch_length_is_the_documented_formula():
    counts = {0: 9, 1: 4, 2: 2, 3: 7, 4: 5, 5: 12}
    k, p = 4, 2
    chunks = sum(-(-max(n, k) // k) for n in counts.values())  # 3+1+1+2+2+3 = 12
    s = sampler("identity", records_with(counts), batch_size=p * k, num_instances=k)
    assert len(s) == (chunks // p) * p * k == 48


def test_identity_caps_a_dominant_identity():
    # 40 images of one identity and 4 of each of two others: 12 chunks, but every batch can
    # hold the big identity only once, so capping settles at L = 2 batches.
    records = records_with({0: 40, 1: 4, 2: 4})
    s = sampler("identity", records, batch_size=8, num_instances=4)
    assert len(s) == 2 * 8
    for batch in batches_of(s, 8):
        labels = Counter(records[i].pid for i in batch)
        assert labels[0] == 4 and len(labels) == 2


def test_identity_visits_every_image_when_chunks_fill_batches():
    counts = {pid: 8 for pid in range(6)}  # 12 chunks of 4, P = 3: 4 batches, nothing cut
    records = records_with(counts)
    s = sampler("identity", records, batch_size=12, num_instances=4)
    assert sorted(s) == list(range(len(records)))


def test_identity_pads_small_identities_with_their_own_images():
    counts = {0: 1, 1: 2, 2: 5, 3: 3}
    records = records_with(counts)
    s = sampler("identity", records, batch_size=8, num_instances=4)
    assert len(s) == 16  # chunks 1 + 1 + 2 + 1 = 5, P = 2: 2 batches
    for batch in batches_of(s, 8):
        for pid in {records[i].pid for i in batch}:
            chunk = [i for i in batch if records[i].pid == pid]
            everyone = {i for i, r in enumerate(records) if r.pid == pid}
            assert len(chunk) == 4 and set(chunk) <= everyone
            # Below K images an identity repeats all of them; otherwise a chunk repeats none.
            assert set(chunk) == everyone if counts[pid] < 4 else len(set(chunk)) == 4


def test_identity_is_seeded_and_reshuffles_per_epoch():
    records = records_with({pid: 6 for pid in range(8)})
    a = sampler("identity", records, batch_size=8, seed=3, num_instances=4)
    b = sampler("identity", records, batch_size=8, seed=3, num_instances=4)
    assert list(a) == list(b)
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first
    assert set(a) == set(first) == set(range(len(records)))  # 16 chunks fill 8 batches
    b.set_epoch(1)
    assert list(a) == list(b)
    other_seed = sampler("identity", records, batch_size=8, seed=4, num_instances=4)
    assert list(other_seed) != first


def test_identity_shards_are_disjoint_equal_and_cover_the_epoch():
    records = records_with({pid: 4 for pid in range(10)})  # 10 chunks, P=2: 5 batches
    whole = sampler("identity", records, batch_size=8, seed=1, num_instances=4)
    shards = [sampler("identity", records, batch_size=8, seed=1, num_instances=4, num_replicas=2, rank=r) for r in (0, 1)]
    assert [len(s) for s in shards] == [16, 16]  # floor(5 / 2) batches each
    batches = [tuple(b) for s in shards for b in batches_of(s, 8)]
    assert len(set(batches)) == 4
    assert set(batches) <= {tuple(b) for b in batches_of(whole, 8)}


def test_identity_config_errors():
    records = records_with({0: 4, 1: 4, 2: 4})
    with pytest.raises(ConfigError) as info:
        sampler("identity", records, batch_size=10, num_instances=4)
    assert "multiple of the identity sampler's num_instances (4)" in str(info.value)
    assert info.value.problems[0].path == "$.data.batch_size"
    with pytest.raises(DataError, match="cannot fill one batch of 4 identities x 4 instances: the train split has 3"):
        sampler("identity", records, batch_size=16, num_instances=4)
    with pytest.raises(ConfigError, match="num_instances"):
        sampler("identity", records, batch_size=8, num_instances=0)


@settings(max_examples=40, deadline=None)
@given(
    counts=st.lists(st.integers(1, 12), min_size=2, max_size=12),
    k=st.integers(1, 4),
    p=st.integers(1, 4),
    seed=st.integers(0, 3),
)
def test_identity_invariants(counts, k, p, seed):
    records = records_with(dict(enumerate(counts)))
    try:
        s = sampler("identity", records, batch_size=p * k, seed=seed, num_instances=k)
    except DataError:
        assert len(counts) < p
        return
    batches = batches_of(s, p * k)
    assert len(s) % (p * k) == 0 and len(batches) == len(s) // (p * k)
    for batch in batches:
        labels = Counter(records[i].class_id for i in batch)
        assert len(labels) == p and set(labels.values()) == {k}
    chunks = [-(-max(n, k) // k) for n in counts]
    assert len(batches) <= sum(chunks) // p


def test_random_sampler_is_a_seeded_permutation_per_epoch():
    records = records_with({0: 5, 1: 6})
    s = sampler("random", records, batch_size=4, seed=7)
    first = list(s)
    assert sorted(first) == list(range(11)) and len(s) == 11
    assert list(sampler("random", records, batch_size=4, seed=7)) == first
    s.set_epoch(2)
    assert list(s) != first and sorted(s) == list(range(11))
    shards = [list(sampler("random", records, batch_size=4, seed=7, num_replicas=3, rank=r)) for r in range(3)]
    assert [len(x) for x in shards] == [3, 3, 3]
    assert len(set().union(*shards)) == 9


def test_sequential_sampler():
    records = records_with({0: 3, 1: 2})
    assert list(sampler("sequential", records, batch_size=2)) == [0, 1, 2, 3, 4]
    assert list(sampler("sequential", records, batch_size=2, num_replicas=2, rank=1)) == [1, 3]
    with pytest.raises(ValueError, match="rank 2 of 2"):
        sampler("sequential", records, batch_size=2, num_replicas=2, rank=2)
