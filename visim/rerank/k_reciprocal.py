"""k-reciprocal re-ranking (Zhong et al., CVPR 2017) in bounded memory.

It computes what torchreid's ``re_ranking(q_g_dist, q_q_dist, g_g_dist, k1, k2,
lambda_value)`` computes, without its dense ``(Q+G) x (Q+G)`` matrices:

1. every item (queries and gallery together) gets its squared distances to all items,
   divided by their maximum (torchreid's column normalisation; the metric is symmetric), and
   its ``k1 + 1`` nearest items: one chunk of rows at a time, keeping only the neighbour lists;
2. the k-reciprocal expansion sets and their weights ``exp(-d)`` (normalised) become the sparse
   rows of ``V``; the distances they need are computed for just those pairs;
3. local query expansion: each row of ``V`` is the mean of the rows of its ``k2`` nearest items;
4. for a chunk of queries, the Jaccard distance to every gallery item is summed through an
   inverted index over the gallery's rows of ``V`` and mixed with the normalised original
   distance by ``lambda_value``; each chunk goes straight to the ranking.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch

from visim.evaluation.options import SCRATCH_SHARE
from visim.rerank.base import DistanceReranker
from visim.rerank.neighbours import SparseRows, chunk_rows, clipped, expand_ranges, smallest_k

BYTES_PER_ENTRY = 64  # one (row, column, value) pair being expanded, with its temporaries


class KReciprocal(DistanceReranker):
    name = "k_reciprocal"

    def __init__(self, params) -> None:
        super().__init__(params)
        self.k1, self.k2, self.lambda_value = params.k1, params.k2, params.lambda_value

    @torch.no_grad()
    def distances(self, queries, gallery, distance: Callable, memory_budget: int) -> Iterator:
        items = torch.cat([queries, gallery])
        num_items = len(items)
        forward = clipped(self.k1 + 1, num_items, "k1 + 1")
        half = min(int(round(self.k1 / 2)) + 1, num_items)  # round half to even, as numpy
        k2 = clipped(self.k2, num_items, "k2")
        scale, ranks = self.neighbours(items, distance, max(forward, k2), memory_budget)
        v = self.expansion_rows(items, distance, scale, ranks[:, :forward], half, memory_budget)
        if k2 != 1:
            v = mean_of_rows(v, ranks[:, :k2], memory_budget)
        return self.final_blocks(queries, gallery, distance, scale, v, memory_budget)

    @staticmethod
    def neighbours(items, distance, k: int, memory_budget: int):
        """Each item's largest squared distance and its ``k`` nearest items by normalised one."""
        scale = torch.empty(len(items), dtype=items.dtype, device=items.device)
        ranks = torch.empty(len(items), k, dtype=torch.long, device=items.device)
        rows = chunk_rows(len(items), memory_budget)
        for start in range(0, len(items), rows):
            block = distance(items[start : start + rows], items).pow(2)
            peak = block.amax(1)
            scale[start : start + rows] = torch.where(peak > 0, peak, torch.ones_like(peak))
            ranks[start : start + rows] = smallest_k(block / scale[start : start + rows, None], k)
        return scale, ranks

    def expansion_rows(self, items, distance, scale, forward, half: int, memory_budget: int):
        """The sparse rows of V: weights ``exp(-d)`` over each item's expansion set, summing to 1."""
        num_items, device = len(items), items.device
        nearest_half = forward[:, :half]
        half_reciprocal = reciprocal(nearest_half, nearest_half)
        parts = []
        width = forward.shape[1] * (1 + half)
        rows = max(1, min(chunk_rows(num_items, memory_budget),
                          memory_budget // SCRATCH_SHARE // (width * forward.shape[1] * 8)))
        for start in range(0, num_items, rows):
            fwd = forward[start : start + rows]
            own = reciprocal(fwd, forward, torch.arange(start, start + len(fwd), device=device))
            cand, cand_valid = nearest_half[fwd], half_reciprocal[fwd]  # [c, K, H]
            in_set = ((cand[..., None] == fwd[:, None, None, :]) & own[:, None, None, :]).any(-1)
            overlap = (in_set & cand_valid).sum(-1)
            accepted = own & (3 * overlap > 2 * cand_valid.sum(-1))  # |H ∩ R| > 2/3 |H|
            members = torch.cat([fwd, cand.flatten(1)], 1)
            valid = torch.cat([own, (accepted[..., None] & cand_valid).flatten(1)], 1)
            members = torch.where(valid, members, num_items).sort(1).values
            repeated = torch.zeros_like(valid)
            repeated[:, 1:] = members[:, 1:] == members[:, :-1]
            row, slot = ((members < num_items) & ~repeated).nonzero(as_tuple=True)
            col = members[row, slot]
            weight = torch.exp(-pair_distances(items, distance, start + row, col) / scale[start + row])
            total = torch.zeros(len(fwd), dtype=weight.dtype, device=device).index_add_(0, row, weight)
            counts = torch.bincount(row, minlength=len(fwd))
            parts.append((counts, col, weight / total[row]))
        return SparseRows.from_parts(parts, num_items, device)

    def final_blocks(self, queries, gallery, distance, scale, v: SparseRows, memory_budget: int):
        """Jaccard distance through an inverted index over the gallery rows, mixed with the
        normalised original distance, one chunk of queries at a time."""
        num_q, num_g, device = len(queries), len(gallery), queries.device
        gallery_rows = SparseRows(v.crow[num_q:] - v.crow[num_q], v.col[v.crow[num_q]:], v.val[v.crow[num_q]:], v.num_columns)
        inverted = gallery_rows.transposed()  # column -> gallery items that use it
        pair_limit = max(1, memory_budget // SCRATCH_SHARE // BYTES_PER_ENTRY)
        rows = chunk_rows(num_g, memory_budget)
        for start in range(0, num_q, rows):
            chunk = torch.arange(start, min(start + rows, num_q), device=device)
            owner, col, val = v.entries(chunk)
            lengths = inverted.crow[col + 1] - inverted.crow[col]
            mins = torch.zeros(len(chunk) * num_g, dtype=val.dtype, device=device)
            for first, last in slices(lengths, pair_limit):
                entry, position = expand_ranges(inverted.crow[col[first:last]], lengths[first:last])
                entry = entry + first
                target = owner[entry] * num_g + inverted.col[position]
                mins.index_add_(0, target, torch.minimum(val[entry], inverted.val[position]))
            mins = mins.view(len(chunk), num_g)
            jaccard = 1 - mins / (2 - mins)
            original = distance(queries[start : start + len(chunk)], gallery).pow(2) / scale[chunk, None]
            yield start, jaccard * (1 - self.lambda_value) + original * self.lambda_value


def reciprocal(nearest, lists, items=None):
    """``[c, K]``: whether ``items[i]`` (default: row i) is in ``lists`` of its neighbour
    ``nearest[i, j]``."""
    if items is None:
        items = torch.arange(len(nearest), device=nearest.device)
    return (lists[nearest] == items[:, None, None]).any(-1)


def pair_distances(items, distance, rows, cols):
    """Squared ``distance(items[rows[p]], items[cols[p]])`` for each pair ``p``, computed
    block-wise over the distinct rows and columns involved (a few hundred per row)."""
    unique_rows, row_at = torch.unique(rows, return_inverse=True)
    unique_cols, col_at = torch.unique(cols, return_inverse=True)
    return distance(items[unique_rows], items[unique_cols]).pow(2)[row_at, col_at]


def mean_of_rows(v: SparseRows, neighbours, memory_budget: int) -> SparseRows:
    """Row i becomes the mean of the rows ``neighbours[i]`` (local query expansion)."""
    k, num = neighbours.shape[1], v.num_columns
    longest = int(v.row_lengths().max()) if len(v.col) else 1
    rows = max(1, memory_budget // SCRATCH_SHARE // (k * longest * BYTES_PER_ENTRY))
    parts = []
    for start in range(0, len(neighbours), rows):
        chunk = neighbours[start : start + rows]
        owner, col, val = v.entries(chunk.flatten())
        keys, at = torch.unique((owner // k) * num + col, return_inverse=True)
        total = torch.zeros(len(keys), dtype=val.dtype, device=val.device).index_add_(0, at, val)
        parts.append((torch.bincount(keys // num, minlength=len(chunk)), keys % num, total / k))
    return SparseRows.from_parts(parts, num, v.col.device)


def slices(lengths, limit: int):
    """``(first, last)`` runs of entries whose summed lengths stay within ``limit`` (a run
    holds at least one entry)."""
    ends = lengths.cumsum(0)
    first, done = 0, 0
    while first < len(lengths):
        last = int(torch.searchsorted(ends, done + limit, right=True))
        last = max(last, first + 1)
        yield first, last
        done = int(ends[last - 1])
        first = last
