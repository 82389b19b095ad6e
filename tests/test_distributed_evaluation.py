"""Exact evaluation with the gallery split across 2 gloo processes equals one process."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from tests.helpers import (
    TORCHRUN_ENV,
    forked_ranks,
    free_port,
    run_forked,
    start_forked_processes,
    torchrun_forked,
)
from visim.cli import main
from visim.engine.extract import Embeddings
from visim.evaluation import blocks, evaluate_embeddings
from visim.evaluation.distributed import evaluate_across, evaluate_sharded, gallery_shard
from visim.outputs.embeddings import save_embeddings

CASES = [  # (metric, protocol, ap, no_positive)
    ("euclidean", "market1501", "standard", "skip"),
    ("cosine", "exclude_self", "market_official", "zero"),
    ("dot", "none", "standard", "zero"),
]


def synthetic(seed: int, num_query: int = 30, num_gallery: int = 101, dim: int = 6):
    """Small-integer embeddings: many exact ties between positives and negatives."""
    rng = np.random.default_rng(seed)
    q = torch.from_numpy(rng.integers(-2, 3, (num_query, dim)).astype(np.float32))
    g = torch.from_numpy(rng.integers(-2, 3, (num_gallery, dim)).astype(np.float32))
    labels = [rng.integers(-1, 6, n) for n in (num_query, num_gallery)] + [rng.integers(0, 3, n) for n in (num_query, num_gallery)]
    return q, g, *labels


def case_inputs(seed, protocol):
    q, g, qp, gp, qc, gc = synthetic(seed)
    if protocol == "exclude_self":
        q, qp, qc = g, gp, gc
    return q, g, qp, gp, qc, gc


def sharded_worker(rank: int, port: int, out_dir: str) -> None:
    import torch.distributed as dist

    from visim.evaluation.distributed import TorchCommunicator

    torch.set_num_threads(1)
    blocks.GALLERY_BLOCK = 16  # many blocks: each process ranks several
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        comm, results = TorchCommunicator(), []
        for seed, (metric, protocol, ap, no_positive) in enumerate(CASES):
            q, g, qp, gp, qc, gc = case_inputs(seed, protocol)
            for budget in (1 << 12, 1 << 30):  # one query per chunk, all queries in one chunk
                result = evaluate_across(comm, q, g, metric, qp, gp, qc, gc, protocol=protocol, ap=ap,
                                         no_positive=no_positive, memory_budget=budget)
                results.append((result.as_dict(), result.per_query))
        torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sharded")
    start_forked_processes(sharded_worker, (free_port(), str(folder)), nprocs=2)
    return [torch.load(folder / f"rank{r}.pt", weights_only=False) for r in range(2)]


def test_two_processes_report_exactly_what_one_process_reports(two_processes, monkeypatch):
    monkeypatch.setattr(blocks, "GALLERY_BLOCK", 16)
    expected = []
    for seed, (metric, protocol, ap, no_positive) in enumerate(CASES):
        q, g, qp, gp, qc, gc = case_inputs(seed, protocol)
        for budget in (1 << 12, 1 << 30):
            result = evaluate_embeddings(q, g, metric, qp, gp, qc, gc, protocol=protocol, ap=ap,
                                         no_positive=no_positive, memory_budget=budget)
            expected.append((result.as_dict(), result.per_query))
    for rank_results in two_processes:
        assert len(rank_results) == len(expected)
        for (got, got_per_query), (want, want_per_query) in zip(rank_results, expected):
            assert (got["world_size"], want["world_size"]) == (2, 1)
            assert {**got, "world_size": 1} == want
            for field in ("ap", "inp", "first_hit", "num_positives"):
                assert np.array_equal(getattr(got_per_query, field), getattr(want_per_query, field)), field


class Solo:
    """A communicator of one process: collectives are the identity."""

    rank, world_size = 0, 1

    def all_reduce(self, tensor, op):
        """Nothing to combine."""


def test_one_shard_of_everything_equals_the_plain_path(monkeypatch):
    monkeypatch.setattr(blocks, "GALLERY_BLOCK", 8)
    q, g, qp, gp, qc, gc = synthetic(7)
    plain = evaluate_embeddings(q, g, "euclidean", qp, gp, qc, gc)
    from visim.metrics.distances import Euclidean

    sharded = evaluate_sharded(q, g, Euclidean(), qp, gp, qc, gc, comm=Solo())
    assert sharded.as_dict() == plain.as_dict()


@pytest.mark.parametrize("num_gallery", [1, 15, 16, 17, 100])
@pytest.mark.parametrize("world", [1, 2, 3, 8])
def test_shards_are_whole_blocks_covering_the_gallery_once(num_gallery, world, monkeypatch):
    monkeypatch.setattr(blocks, "GALLERY_BLOCK", 16)
    shards = [gallery_shard(num_gallery, r, world) for r in range(world)]
    assert [i for s in shards for i in range(s.start, s.stop)] == list(range(num_gallery))
    assert all(s.start % 16 == 0 for s in shards if s.stop > s.start)
    sizes = [-(-(s.stop - s.start) // 16) for s in shards]
    assert max(sizes) - min(sizes) <= 1


def test_a_metric_over_whole_gallery_rows_is_not_split():
    q, g, qp, gp, qc, gc = synthetic(3)
    from visim.metrics.distances import NegSoftmax

    with pytest.raises(ValueError, match="normalises over the whole gallery"):
        evaluate_sharded(q, g[:150], NegSoftmax(squared=False), qp, gp, qc, gc, comm=type("Two", (Solo,), {"world_size": 2})())


@pytest.mark.slow
def test_torchrun_evaluate_prints_exactly_what_one_process_prints(tmp_path, capsys):
    """Over the default block size, so each of the two processes ranks its own blocks."""
    num_gallery = blocks.GALLERY_BLOCK + 1500
    rng = np.random.default_rng(11)
    centres = rng.normal(size=(40, 8)).astype(np.float32)

    def split(n, offset):
        pids = rng.integers(0, 40, n)
        emb = torch.from_numpy(centres[pids] + rng.normal(scale=0.8, size=(n, 8)).astype(np.float32))
        return Embeddings(emb, torch.from_numpy(pids), torch.from_numpy(rng.integers(offset, offset + 2, n)), [f"{n}/{i}.jpg" for i in range(n)])

    path = tmp_path / "emb.npz"
    save_embeddings(path, split(300, 0), split(num_gallery, 1), {"metric": "euclidean"})
    assert main(["evaluate", str(path)]) == 0
    one_table = capsys.readouterr().out
    assert main(["evaluate", str(path), "--json"]) == 0
    one = json.loads(capsys.readouterr().out)
    # torchrun's launcher once (in a child of its own; it forks its two workers): the table
    # it prints is the one process's, printed once.
    done = run_forked(torchrun_forked, 2, main, ["evaluate", str(path)], env={"OMP_NUM_THREADS": "1"}, unset=TORCHRUN_ENV)
    assert done.returncode == 0, done.stderr
    assert done.stdout == one_table
    # The same floats, to the last bit, from rank 0 of two processes in torchrun's environment.
    rank0, rank1 = forked_ranks(2, main, ["evaluate", str(path), "--json"])
    assert (rank0.returncode, rank1.returncode, rank1.stdout) == (0, 0, ""), rank0.stderr + rank1.stderr
    two = json.loads(rank0.stdout)
    assert (one.pop("world_size"), two.pop("world_size")) == (1, 2)
    assert one == two and 0 < one["mAP"] < 1
