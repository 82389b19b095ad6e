"""Exact retrieval evaluation: CMC, mAP and mINP under re-id protocols, with bounded memory.

``evaluate`` ranks a distance matrix; ``evaluate_embeddings`` computes one chunk of queries at
a time from embeddings and a metric. Both return a :class:`RankingResult`.

Names are imported when first used (PEP 562): :mod:`visim.evaluation.options` holds no torch,
and the config layer imports it without paying for torch.
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> the module that defines it
HOMES = {
    "evaluate_embeddings": "visim.evaluation.embeddings",
    "AP_MODES": "visim.evaluation.options",
    "NO_POSITIVE": "visim.evaluation.options",
    "PROTOCOLS": "visim.evaluation.options",
    "EvalOptions": "visim.evaluation.options",
    "evaluate": "visim.evaluation.ranking",
    "NoPositiveError": "visim.evaluation.result",
    "PerQuery": "visim.evaluation.result",
    "RankingResult": "visim.evaluation.result",
}
__all__ = sorted(HOMES)


def __getattr__(name: str) -> Any:
    if name not in HOMES:
        raise AttributeError(f"module 'visim.evaluation' has no attribute {name!r}")
    return getattr(importlib.import_module(HOMES[name]), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *HOMES])
