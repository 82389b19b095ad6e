"""Database-side augmentation (Arandjelović & Zisserman 2012; Gordo et al. 2017).

Every gallery item is replaced by the mean of its ``k`` most cosine-similar gallery items
(itself included); the queries are unchanged. It smooths the gallery towards its identity
clusters before the queries are ranked against it.
"""

from __future__ import annotations

import torch

from visim.rerank.base import EmbeddingReranker
from visim.rerank.neighbours import clipped, weighted_neighbour_mean


class DatabaseAugmentation(EmbeddingReranker):
    name = "dba"

    @torch.no_grad()
    def expand(self, queries, gallery, memory_budget: int):
        k = clipped(self.params.k, len(gallery), "k")
        return queries, weighted_neighbour_mean(gallery, gallery, k, 0.0, memory_budget)
