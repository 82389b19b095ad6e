"""Exact evaluation with the gallery split across processes.

Every process holds all the labels, all the queries and one contiguous shard of the gallery
(:func:`gallery_shard`). A query's AP, INP and first hit depend only on the global ranks of its
positives, and the global rank of its m-th positive is ``m`` plus the valid negatives ranked
before it, summed over the shards. So, for each chunk of queries, every process

1. fills in the keys of the positives that lie in its shard (zeros elsewhere); one sum over the
   processes gives everyone every positive's key (``x + 0 + ... + 0 == x`` exactly);
2. counts, per positive, the valid negatives of its shard ranked before it, with the
   single-process machinery (:class:`~visim.evaluation.positions.SortedPositives`);
3. recounts by definition, on every shard, the rows in which some process saw a negative with
   exactly a positive's key: ``(key, global gallery index)`` order, the tie rule of one process;
4. sums the counts: the ranks, hence every float reported, equal one process's.

Communication goes through a :class:`Communicator` passed in (:class:`TorchCommunicator` wraps
``torch.distributed``), so this module knows nothing of how the processes were started. Memory
per process: the chunk of queries against its shard, within ``memory_budget``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import attrs
import numpy as np
import torch

from visim.evaluation import blocks
from visim.evaluation.labels import Labels
from visim.evaluation.options import EvalOptions
from visim.evaluation.positions import SortedPositives, at_most, query_positives
from visim.evaluation.ranking import ranking_keys
from visim.evaluation.result import PerQuery, RankingResult, no_positive_error
from visim.evaluation.scores import query_scores
from visim.metrics.base import as_matrix_pair

BYTES_PER_TIE_PAIR = 24  # a (positive, negative) comparison of the tie recount


class Communicator(Protocol):
    """The collectives exact merging needs: in-place sums and maxima of same-shape tensors."""

    rank: int
    world_size: int

    def all_reduce(self, tensor: torch.Tensor, op: str) -> None:
        """Replace ``tensor`` by its element-wise ``"sum"`` or ``"max"`` over the processes."""


class TorchCommunicator:
    """:class:`Communicator` over an initialised ``torch.distributed`` process group (gloo for
    CPU tensors, nccl for CUDA tensors, as the group was set up)."""

    def __init__(self, group: Any = None) -> None:
        import torch.distributed as dist

        self.dist, self.group = dist, group
        self.rank = dist.get_rank(group)
        self.world_size = dist.get_world_size(group)

    def all_reduce(self, tensor: torch.Tensor, op: str) -> None:
        ops = {"sum": self.dist.ReduceOp.SUM, "max": self.dist.ReduceOp.MAX}
        self.dist.all_reduce(tensor, op=ops[op], group=self.group)


def gallery_shard(num_gallery: int, rank: int, world_size: int) -> slice:
    """The gallery rows of ``rank``: whole metric blocks (:mod:`~visim.evaluation.blocks`),
    dealt out contiguously, the counts differing by at most one block."""
    block = blocks.GALLERY_BLOCK
    base, extra = divmod(-(-num_gallery // block), world_size)
    first = rank * base + min(rank, extra)
    last = first + base + (rank < extra)
    return slice(min(first * block, num_gallery), min(last * block, num_gallery))


def evaluate_sharded(
    q_emb: Any,
    g_shard: Any,
    metric: Callable,
    q_pids: Any,
    g_pids: Any,
    q_camids: Any = None,
    g_camids: Any = None,
    *,
    comm: Communicator,
    options: EvalOptions | None = None,
    **settings: Any,
) -> RankingResult:
    """:func:`~visim.evaluation.evaluate_embeddings` with this process's gallery rows
    ``g_shard`` (``gallery_shard(G, comm.rank, comm.world_size)`` of them) and the labels of
    the whole gallery. Every process must call it; every process gets the same result, which
    records ``world_size``. ``options`` and the keywords are those of ``evaluate_embeddings``.
    """
    options = EvalOptions.build(options, **settings)
    if options.higher_is_better is None:
        options = EvalOptions.build(options, higher_is_better=bool(getattr(metric, "higher_is_better", False)))
    protocol = options.protocol
    if blocks.whole_gallery(metric) and comm.world_size > 1:
        raise ValueError(f"metric {metric!r} normalises over the whole gallery: it cannot rank shards of it")
    queries, gallery = as_matrix_pair(q_emb, g_shard)
    num_q = queries.shape[0]
    num_g = len(g_pids)
    shard = gallery_shard(num_g, comm.rank, comm.world_size)
    if gallery.shape[0] != shard.stop - shard.start:
        raise ValueError(f"rank {comm.rank} of {comm.world_size} holds {gallery.shape[0]} gallery rows; "
                         f"its shard of {num_g} is rows {shard.start}..{shard.stop - 1}")
    labels = Labels(q_pids, g_pids, q_camids, g_camids, protocol=protocol, shape=(num_q, num_g))
    labels.to(queries.device)
    # The chunks and metric blocks of one process: every key equals one process's.
    rows = options.chunk_rows(num_g, max(4, queries.element_size()))
    parts = []
    for start in range(0, num_q, rows):
        chunk = torch.arange(start, min(start + rows, num_q), device=queries.device)
        if len(gallery):
            with torch.no_grad():
                block = blocks.metric_block(metric, queries[start : start + rows], gallery)
            keys = ranking_keys(block, options.higher_is_better)
        else:  # more processes than gallery blocks
            block = keys = torch.empty((len(chunk), 0), device=queries.device)
        ranks, num_positives = merged_positive_ranks(keys, chunk, labels, shard.start, comm, options.scratch_bytes)
        if options.no_positive == "error" and not bool(num_positives.all()):
            raise no_positive_error(start + np.flatnonzero((num_positives == 0).cpu().numpy()))
        scores = query_scores(ranks, num_positives, options.ap)
        parts.append(tuple(t.cpu().numpy() for t in (*scores, num_positives)))
        del block, keys, ranks
    per_query = PerQuery(*(np.concatenate(column) for column in zip(*parts)))
    return attrs.evolve(RankingResult.from_per_query(per_query, options), world_size=comm.world_size)


@torch.no_grad()
def merged_positive_ranks(keys, queries, labels: Labels, offset: int, comm: Communicator, scratch_bytes: int):
    """``(ranks, num_positives)`` as :func:`~visim.evaluation.positions.positive_ranks` gives
    them for the whole gallery, from ``keys`` ``[c, S]`` of the shard starting at ``offset``."""
    c, size = keys.shape
    members, positive, num_positives = query_positives(labels, queries)
    width = members.shape[1]
    if width == 0 or not bool(num_positives.any()):
        return torch.zeros((c, 0), dtype=torch.int64, device=keys.device), num_positives
    here = positive & (members >= offset) & (members < offset + size)
    # float64 holds float32 and float64 keys exactly, and is known to a process without gallery.
    positive_keys = torch.zeros(members.shape, dtype=torch.float64, device=keys.device)
    if size:
        local = (members - offset).clamp(0, size - 1)
        positive_keys = keys.gather(1, local).to(torch.float64).masked_fill_(~here, 0)
    comm.all_reduce(positive_keys, "sum")
    positive_keys = positive_keys.to(keys.dtype if size else torch.float64)
    positive_keys.masked_fill_(~positive, float("inf"))
    # (key, global index) order; any order of equal keys gives the same ranks.
    order = torch.sort(members.masked_fill(~positive, torch.iinfo(torch.int64).max), dim=1, stable=True).indices
    order = order.gather(1, torch.sort(positive_keys.gather(1, order), dim=1, stable=True).indices)
    sorted_keys, sorted_members = positive_keys.gather(1, order), members.gather(1, order)
    positives = SortedPositives(sorted_keys, num_positives)
    if size:
        count_negatives(positives, keys, queries, labels, offset, scratch_bytes)
    before = positives.ranks() - torch.arange(1, width + 1, device=keys.device) * positives.real
    tied = positives.tied.to(torch.int32)
    comm.all_reduce(tied, "max")
    for row in tied.nonzero().squeeze(1).tolist():
        before[row] = negatives_before(keys[row], queries[row], labels, offset, sorted_keys[row],
                                       sorted_members[row], positives.real[row], scratch_bytes)
    comm.all_reduce(before, "sum")
    ranks = torch.where(positives.real, before + torch.arange(1, width + 1, device=keys.device), 0)
    return ranks, num_positives


def count_negatives(positives: SortedPositives, keys, queries, labels: Labels, offset: int, scratch_bytes: int) -> None:
    """Add the shard's valid negatives that may precede a positive (as one process does)."""
    from visim.evaluation.options import BYTES_PER_CANDIDATE

    num_positives = positives.num_positives
    deepest = positives.keys.gather(1, (num_positives - 1).clamp(min=0).unsqueeze(1))
    deepest.masked_fill_((num_positives == 0).unsqueeze(1), float("nan"))  # NaN: nothing is <=
    size = keys.shape[1]
    for part in at_most(keys, deepest).split(max(1, scratch_bytes // BYTES_PER_CANDIDATE)):
        rows = torch.div(part, size, rounding_mode="floor")
        cols = part - rows * size
        is_positive, valid = labels.relevance(queries[rows], cols + offset)
        negative = valid & ~is_positive
        rows, cols = rows[negative], cols[negative]
        positives.count(rows, keys[rows, cols])


def negatives_before(keys, query, labels: Labels, offset: int, positive_keys, positive_members, real, scratch_bytes):
    """For one row, the shard's valid negatives ordered before each positive by
    ``(key, global gallery index)``: the definition, for the rare rows with tied keys."""
    gallery = torch.arange(offset, offset + keys.shape[0], device=keys.device)
    is_positive, valid = labels.relevance(query, gallery)
    negative_keys = keys[valid & ~is_positive]
    negative_index = gallery[valid & ~is_positive]
    counts = torch.zeros(positive_keys.shape, dtype=torch.int64, device=keys.device)
    step = max(1, scratch_bytes // max(1, len(negative_keys) * BYTES_PER_TIE_PAIR))
    for start in range(0, int(real.sum()), step):
        k = positive_keys[start : start + step].unsqueeze(1)
        g = positive_members[start : start + step].unsqueeze(1)
        earlier = (negative_keys < k) | ((negative_keys == k) & (negative_index < g))
        counts[start : start + step] = earlier.sum(1)
    return counts


def evaluate_across(comm: Communicator | None, q_emb, g_emb, metric, q_pids, g_pids, q_camids=None, g_camids=None, **options):
    """:func:`~visim.evaluation.evaluate_embeddings` by one process (``comm`` None or of one
    process), else :func:`evaluate_sharded` on this process's shard of ``g_emb`` (which may be
    a memory-mapped array: only the shard is read)."""
    from visim.evaluation.embeddings import evaluate_embeddings, resolve_metric

    metric = resolve_metric(metric)
    # Re-ranking needs every gallery item's neighbours, and some metrics normalise over the
    # whole gallery row: then every process ranks the whole gallery (world_size 1).
    rerank = options.pop("rerank", None)
    if comm is None or comm.world_size == 1 or blocks.whole_gallery(metric) or rerank:
        return evaluate_embeddings(q_emb, g_emb, metric, q_pids, g_pids, q_camids, g_camids, rerank=rerank, **options)
    shard = gallery_shard(len(g_pids), comm.rank, comm.world_size)
    return evaluate_sharded(q_emb, g_emb[shard], metric, q_pids, g_pids, q_camids, g_camids,
                            comm=comm, **options)
