"""The reranker contract: what a ``register_rerankers`` factory returns.

A reranker is one of two kinds. An :class:`EmbeddingReranker` (query expansion, DBA) replaces
the embeddings before they are compared; a :class:`DistanceReranker` (k-reciprocal) replaces
the query x gallery distances themselves and yields them one chunk of queries at a time, so
the ranking never holds more than a chunk. A chain applies embedding rerankers in order and may
end with one distance reranker. This module imports no torch, so a plugin can subclass these
classes at the top of its hook module.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from typing import Any

import attrs


class Reranker:
    """Base of both kinds. ``params`` is the component's attrs params instance (for reports)."""

    name: str = "reranker"

    def __init__(self, params: Any = None) -> None:
        self.params = params

    def describe(self) -> str:
        """``k_reciprocal(k1=20, k2=6, lambda_value=0.3)``: what ran, for results and logs."""
        fields = attrs.asdict(self.params) if attrs.has(type(self.params)) else {}
        return f"{self.name}({', '.join(f'{k}={v}' for k, v in fields.items())})"

    def __repr__(self) -> str:
        return self.describe()


class EmbeddingReranker(Reranker, ABC):
    @abstractmethod
    def expand(self, queries: Any, gallery: Any, memory_budget: int) -> tuple[Any, Any]:
        """New ``(queries [Q, E], gallery [G, E])`` tensors, computed in bounded memory."""


class DistanceReranker(Reranker, ABC):
    @abstractmethod
    def distances(
        self, queries: Any, gallery: Any, distance: Callable, memory_budget: int
    ) -> Iterator[tuple[int, Any]]:
        """``(first query index, [c, G] block)`` in query order; lower is closer.

        ``distance(a, b)`` is the evaluation metric as a distance (``[N, M]``, lower closer).
        """


def as_chain(rerank: Any) -> tuple[Reranker, ...]:
    """A reranker or a list of them, checked: embedding rerankers first, at most one distance
    reranker, last."""
    chain = tuple(rerank) if isinstance(rerank, (list, tuple)) else (rerank,)
    for position, reranker in enumerate(chain):
        if not isinstance(reranker, Reranker):
            raise TypeError(
                f"rerank takes rerankers (built from the registry), got {type(reranker).__name__}"
            )
        if isinstance(reranker, DistanceReranker) and position != len(chain) - 1:
            raise ValueError(
                f"{reranker.name} replaces the distances, so it must come last in a rerank chain"
            )
    return chain


def describe_chain(rerank: Any) -> str:
    """``query_expansion(k=5, alpha=3.0) -> k_reciprocal(...)``; empty without a reranker."""
    if rerank is None:
        return ""
    return " -> ".join(r.describe() for r in as_chain(rerank))


def check_chain_refs(instance: Any, attribute: Any, refs: Any) -> None:
    """attrs validator of a config's ``rerank`` list: the rerankers are built (cheap; it imports
    their modules) to learn which replace the distances, so a bad order fails at load time."""
    if isinstance(refs, (list, tuple)) and len(refs) > 1:
        as_chain([ref.build() for ref in refs])
