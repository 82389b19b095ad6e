"""The k closest valid gallery items of each query, for ranked-result views and data checks."""

from __future__ import annotations

import torch

from visim.evaluation.labels import Labels
from visim.evaluation.options import BYTES_PER_SORTED_PAIR


def topk_gallery(keys: torch.Tensor, queries: torch.Tensor, labels: Labels, k: int,
                 scratch_bytes: int = 64 << 20) -> torch.Tensor:
    """``[c, k]`` gallery indices, closest first, ties by gallery index; -1 pads rows with
    fewer than ``k`` valid items. Ignored items (same camera, junk, self) are left out.

    ``keys`` are ``[c, G]`` (lower is closer) for the global query indices ``queries``. Rows
    are processed in slices whose temporaries fit in ``scratch_bytes``.
    """
    rows = max(1, scratch_bytes // (keys.shape[1] * BYTES_PER_SORTED_PAIR))
    parts = [closest_valid(keys[i : i + rows], queries[i : i + rows], labels, k)
             for i in range(0, keys.shape[0], rows)]
    return torch.cat(parts) if parts else torch.empty((0, k), dtype=torch.int64, device=keys.device)


def closest_valid(keys: torch.Tensor, queries: torch.Tensor, labels: Labels, k: int) -> torch.Tensor:
    """:func:`topk_gallery` for one slice, exact without sorting the rows: everything strictly
    closer than the k-th key is taken, and the remaining places go to the items at that key in
    gallery order."""
    c, num_gallery = keys.shape
    gallery = torch.arange(num_gallery, device=keys.device).unsqueeze(0)
    valid = labels.relevance(queries.unsqueeze(1), gallery)[1]
    masked = torch.where(valid, keys, float("inf"))
    kth = masked.topk(min(k, num_gallery), dim=1, largest=False, sorted=True).values[:, -1:]
    closer = valid & (masked < kth)
    level = valid & (masked == kth)
    room = min(k, num_gallery) - closer.sum(1, keepdim=True)
    take = closer | (level & (level.cumsum(1) <= room))
    rows, cols = take.nonzero(as_tuple=True)
    counts = torch.bincount(rows, minlength=c)
    slots = torch.arange(len(rows), device=keys.device) - (torch.cumsum(counts, 0) - counts)[rows]
    indices = torch.full((c, k), -1, dtype=torch.int64, device=keys.device)
    values = torch.full((c, k), float("inf"), dtype=keys.dtype, device=keys.device)
    indices[rows, slots] = cols
    values[rows, slots] = keys[rows, cols]
    # Padding (+inf) sits after the real entries, so the stable sort keeps it last.
    return indices.gather(1, torch.sort(values, dim=1, stable=True).indices)
