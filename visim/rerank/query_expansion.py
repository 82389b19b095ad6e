"""Alpha query expansion, as fast-reid's ``aqe`` defines it (Radenović et al.'s alpha-QE).

Queries and gallery are pooled; every item is replaced by the mean, over its ``k`` most
cosine-similar items (itself included), of ``similarity ** alpha`` times that item's
embedding. ``alpha = 0`` is plain average query expansion. Both sides change, as in fast-reid.
"""

from __future__ import annotations

import torch

from visim.rerank.base import EmbeddingReranker
from visim.rerank.neighbours import clipped, weighted_neighbour_mean


class QueryExpansion(EmbeddingReranker):
    name = "query_expansion"

    @torch.no_grad()
    def expand(self, queries, gallery, memory_budget: int):
        items = torch.cat([queries, gallery])
        k = clipped(self.params.k, len(items), "k")
        expanded = weighted_neighbour_mean(items, items, k, self.params.alpha, memory_budget)
        return expanded[: len(queries)], expanded[len(queries) :]
