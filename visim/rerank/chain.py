"""Apply a chain of rerankers to query and gallery embeddings: what the evaluation calls."""

from __future__ import annotations

from collections.abc import Callable

import torch

from visim.rerank.base import DistanceReranker, as_chain

# A similarity s becomes the distance 1 - s (cosine similarity -> cosine distance). Larger
# similarities have no such distance; a little above 1 is rounding and is clamped to 0.
SIMILARITY_SLACK = 1e-4


def as_distance(metric: Callable, higher_is_better: bool) -> Callable:
    """The metric as a distance (lower is closer, never negative), as k-reciprocal needs."""
    if not higher_is_better:
        return lambda a, b: torch.as_tensor(metric(a, b))

    def distance(a, b):
        block = 1 - torch.as_tensor(metric(a, b))
        if bool(block.amin() < -SIMILARITY_SLACK):
            raise ValueError(
                f"re-ranking turns the similarity {metric!r} into the distance 1 - s, which "
                f"needs s <= 1 (got {1 - float(block.amin()):.4g}); use a distance metric"
            )
        return block.clamp_min(0)

    return distance


def apply_chain(rerank, queries, gallery, metric, higher_is_better: bool, memory_budget: int):
    """``(queries, gallery, blocks)``: the expanded embeddings, and the re-ranked distance
    blocks when the chain ends with a distance reranker (else None: rank as usual)."""
    chain = as_chain(rerank)
    for reranker in chain:
        if not isinstance(reranker, DistanceReranker):
            queries, gallery = reranker.expand(queries, gallery, memory_budget)
    last = chain[-1] if chain else None
    if isinstance(last, DistanceReranker):
        distance = as_distance(metric, higher_is_better)
        return queries, gallery, last.distances(queries, gallery, distance, memory_budget)
    return queries, gallery, None


def build_chain(refs) -> list | None:
    """Rerankers built from config references (one, a list, or None for no re-ranking)."""
    if refs is None:
        return None
    refs = refs if isinstance(refs, (list, tuple)) else (refs,)
    return [ref.build() for ref in refs] or None


def rerank_summary(rerank, plain) -> dict:
    """What results.json, the console and TensorBoard add when a reranker ran: its description
    and the plain (not re-ranked) results, so the gain is visible."""
    from visim.rerank.base import describe_chain

    summary = {key: value for key, value in plain.as_dict().items() if key in ("cmc", "mAP", "mINP")}
    return {"rerank": describe_chain(rerank), "plain": summary}
