"""Exact retrieval evaluation: CMC, mAP and mINP under re-id protocols, with bounded memory.

``evaluate`` ranks a distance matrix; ``evaluate_embeddings`` computes one chunk of queries at
a time from embeddings and a metric. Both return a :class:`RankingResult`.
"""

from __future__ import annotations

from visim.evaluation.embeddings import evaluate_embeddings
from visim.evaluation.options import AP_MODES, NO_POSITIVE, PROTOCOLS, EvalOptions
from visim.evaluation.ranking import evaluate
from visim.evaluation.result import NoPositiveError, PerQuery, RankingResult

__all__ = [
    "AP_MODES",
    "NO_POSITIVE",
    "PROTOCOLS",
    "EvalOptions",
    "NoPositiveError",
    "PerQuery",
    "RankingResult",
    "evaluate",
    "evaluate_embeddings",
]
