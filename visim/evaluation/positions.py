"""Where each query's positives land in its ranking, found without sorting the gallery.

AP, INP and the first hit depend only on the ranks of the positives among the valid gallery
items. The rank of the m-th closest positive is ``m`` plus the number of valid negatives
ranked before it, and only gallery items up to the deepest positive can be before any of them.
So for a chunk of queries we

1. gather each query's positives through the identity groups and sort those few keys;
2. flag the gallery items whose key is at most the deepest positive's (one pass, no sort);
3. place each flagged valid negative among its row's sorted positive keys with one
   ``searchsorted`` (keys become order-preserving integers prefixed by the row, so rows never
   mix), and count: cumulative counts are the negatives before each positive.

Step 3 runs over slices of the flagged candidates, so its memory is bounded by the scratch
budget however deep the positives rank.

Ties: a ranking is ordered by key, then by gallery index (a stable sort). Placing by key alone
is exact unless a valid negative has exactly the key of a positive; such rows are recomputed
with a stable sort of the row (:func:`ranks_by_sorting`), which is the definition. Keys are
placed as float32; float64 keys that round to a positive's float32 key count as such a tie, so
the result stays exact for them too.
"""

from __future__ import annotations

import torch

from visim.evaluation.labels import Labels
from visim.evaluation.options import BYTES_PER_CANDIDATE, BYTES_PER_SORTED_PAIR


def query_positives(labels: Labels, queries: torch.Tensor):
    """``(members, positive, num_positives)`` of a chunk of queries: the gallery indices of each
    query's identity ``[c, W]`` (padded), which of them are valid positives under the protocol,
    and how many each query has."""
    members, in_group = labels.groups.members(labels.q_pids[queries])
    positive = in_group & labels.relevance(queries.unsqueeze(1), members)[0]
    return members, positive, positive.sum(1)


def positive_ranks(keys: torch.Tensor, queries: torch.Tensor, labels: Labels, scratch_bytes: int):
    """``(ranks, num_positives)`` for a chunk: ``keys`` ``[c, G]`` (lower is closer, no NaN),
    ``queries`` the chunk's global query indices. ``ranks[i, m-1]`` is the 1-based rank of the
    m-th positive of query i among its valid gallery items, 0 past its positives."""
    c, num_gallery = keys.shape
    members, positive, num_positives = query_positives(labels, queries)
    width = members.shape[1]
    if width == 0 or not bool(num_positives.any()):
        return torch.zeros((c, 0), dtype=torch.int64, device=keys.device), num_positives
    positive_keys = keys.gather(1, members).masked_fill_(~positive, float("inf"))
    positives = SortedPositives(positive_keys.sort(dim=1).values, num_positives)
    deepest = positives.keys.gather(1, (num_positives - 1).clamp(min=0).unsqueeze(1))
    deepest.masked_fill_((num_positives == 0).unsqueeze(1), float("nan"))  # NaN: nothing is <=
    candidates = at_most(keys, deepest)
    step = max(1, scratch_bytes // BYTES_PER_CANDIDATE)
    for part in candidates.split(step):
        rows = torch.div(part, num_gallery, rounding_mode="floor")
        cols = part - rows * num_gallery
        is_positive, valid = labels.relevance(queries[rows], cols)
        negative = valid & ~is_positive
        rows, cols = rows[negative], cols[negative]
        positives.count(rows, keys[rows, cols])
    del candidates
    ranks = positives.ranks()
    tied = positives.tied.nonzero().squeeze(1)
    rows_per_sort = max(1, scratch_bytes // (num_gallery * BYTES_PER_SORTED_PAIR))
    for fix in tied.split(rows_per_sort):
        ranks[fix] = ranks_by_sorting(keys[fix], queries[fix], labels, width)
    return ranks, num_positives


def at_most(keys: torch.Tensor, bound: torch.Tensor) -> torch.Tensor:
    """``(keys <= bound)``'s flat indices, row-major, scanning the flags 8 at a time.

    Candidates are usually sparse, and finding the non-zero int64 words of the flag buffer,
    then the set flags inside those few words, takes a fraction of a byte-by-byte
    ``nonzero``. When most words hold a candidate, a plain ``nonzero`` is used instead.
    """
    c, num_gallery = keys.shape
    size = c * num_gallery
    flags = torch.empty(size + (-size) % 8, dtype=torch.bool, device=keys.device)
    flags[size:] = False
    torch.le(keys, bound, out=flags[:size].view(c, num_gallery))
    words = flags.view(torch.int64).nonzero().squeeze(1)
    if len(words) * 8 > size // 4:
        return flags.nonzero().squeeze(1)
    flat = (words.unsqueeze(1) * 8 + torch.arange(8, device=keys.device)).view(-1)
    return flat[flags[flat]]


def row_ordered(rows: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """int64 keys that sort by (row, value): the row in the high 32 bits, the float32 value's
    bits made order-preserving in the low 32 (-0.0 folded into +0.0, as they compare equal)."""
    bits = (values.to(torch.float32) + 0.0).view(torch.int32).to(torch.int64)
    ordered = torch.where(bits < 0, bits ^ 0x7FFFFFFF, bits) + (1 << 31)
    return (rows << 32) | ordered


class SortedPositives:
    """Each row's sorted positive keys, and the count of valid negatives before each of them."""

    def __init__(self, keys: torch.Tensor, num_positives: torch.Tensor) -> None:
        c, width = keys.shape
        device = keys.device
        self.keys, self.num_positives = keys, num_positives
        self.real = torch.arange(width, device=device).unsqueeze(0) < num_positives.unsqueeze(1)
        self.rows = torch.arange(c, device=device).unsqueeze(1).expand(c, width)[self.real]
        self.placed = row_ordered(self.rows, keys[self.real])  # ascending: rows, then keys
        self.histogram = torch.zeros(len(self.placed) + 1, dtype=torch.int64, device=device)
        self.tied = torch.zeros(c, dtype=torch.bool, device=device)

    def count(self, rows: torch.Tensor, negative_keys: torch.Tensor) -> None:
        """Add valid negatives (their rows and keys) that may precede some positives."""
        probe = row_ordered(rows, negative_keys)
        slot = torch.searchsorted(self.placed, probe)  # the first positive not closer
        self.histogram += torch.bincount(slot, minlength=len(self.histogram))
        equal = self.placed[slot.clamp(max=len(self.placed) - 1)] == probe
        self.tied[rows[equal]] = True

    def ranks(self) -> torch.Tensor:
        """``[c, width]`` ranks of the positives, 0 past each row's positives."""
        # Negatives before the k-th placed positive: all counts up to k, minus earlier rows'.
        cumulative = self.histogram[:-1].cumsum(0)
        row_start = torch.cumsum(self.num_positives, 0) - self.num_positives
        earlier = torch.where(row_start > 0, cumulative[(row_start - 1).clamp(min=0)], 0)
        before = cumulative - earlier[self.rows]
        nth = self.real.cumsum(1)[self.real]
        ranks = torch.zeros(self.keys.shape, dtype=torch.int64, device=self.keys.device)
        ranks[self.real] = before + nth
        return ranks


def ranks_by_sorting(keys, queries, labels, width):
    """The definition, for a few rows: stable-sort the row, then count valid items."""
    num_gallery = keys.shape[1]
    gallery = torch.arange(num_gallery, device=keys.device).unsqueeze(0)
    positive, valid = labels.relevance(queries.unsqueeze(1), gallery)
    order = torch.sort(keys, dim=1, stable=True).indices
    rank_at = valid.gather(1, order).cumsum(1)
    beyond = num_gallery + 1
    ranked = torch.where(positive.gather(1, order), rank_at, beyond)
    smallest = ranked.topk(min(width, num_gallery), dim=1, largest=False, sorted=True).values
    return smallest.masked_fill_(smallest == beyond, 0)
