"""The index contract: what ``factory(params, metric=..., dim=...)`` returns.

``metric`` is the built metric (a callable ``(a [N, D], b [M, D]) -> [N, M]`` with
``higher_is_better``), ``dim`` the embedding size. visim stores the gallery embeddings itself
(:mod:`visim.index.store`) and hands them to the index as a possibly memory-mapped ``[G, D]``
array; an index saves only what it adds (e.g. a faiss index file) into the folder it is given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class GalleryIndex(Protocol):
    #: True when search may miss some of the true nearest neighbours (every output says so).
    approximate: bool

    def build(self, gallery: Any) -> None:
        """Index the ``[G, D]`` gallery (numpy, possibly memory-mapped float16 / float32)."""

    def save(self, folder: Path) -> None:
        """Write what :meth:`load` needs besides the gallery into ``folder`` (may be nothing)."""

    def load(self, folder: Path, gallery: Any) -> None:
        """Restore what :meth:`save` wrote; ``gallery`` is the stored gallery."""

    def search(self, queries: Any, k: int) -> tuple[Any, Any]:
        """``(scores, indices)``, ``[Q, k]`` numpy arrays, best first. Scores are the metric's
        values (distances, or similarities for a ``higher_is_better`` metric); ties are broken
        by gallery index; index -1 (score NaN) pads rows with fewer than ``k`` hits."""
