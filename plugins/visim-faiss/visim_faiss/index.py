"""faiss behind visim's index contract (:mod:`visim.index.base`)."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

from visim.index.exact import UnsupportedMetricError
from visim.metrics.distances import (
    CosineDistance,
    CosineSimilarity,
    DotProduct,
    Euclidean,
    SquaredEuclidean,
)

ADD_ROWS = 1 << 18  # gallery rows converted to float32 and added at a time
INDEX_FILE = "faiss.index"


def space_of(metric) -> tuple[int, bool]:
    """``(faiss metric type, normalise)`` for a visim metric, or UnsupportedMetricError."""
    if isinstance(metric, (Euclidean, SquaredEuclidean)):
        return faiss.METRIC_L2, False
    if isinstance(metric, DotProduct):
        return faiss.METRIC_INNER_PRODUCT, False
    if isinstance(metric, (CosineDistance, CosineSimilarity)):
        return faiss.METRIC_INNER_PRODUCT, True
    raise UnsupportedMetricError(
        f"faiss indexes support euclidean, sqeuclidean, dot, cosine and cosine_similarity, not {metric!r}"
    )


class FaissIndex:
    def __init__(self, kind: str, params, metric, dim: int) -> None:
        self.kind, self.params, self.metric, self.dim = kind, params, metric, dim
        self.space, self.normalise = space_of(metric)
        self.approximate = kind != "flat"
        self.index = None

    def vectors(self, rows) -> np.ndarray:
        """``rows`` as faiss takes them: float32, C order, L2-normalised for cosine metrics.
        Normalised in a copy: faiss normalises in place, and the rows may be the caller's
        array or a read-only memory map of the index's shards (writing there is a crash)."""
        if not self.normalise:
            return np.ascontiguousarray(rows, dtype=np.float32)
        rows = np.array(rows, dtype=np.float32, order="C", copy=True)
        faiss.normalize_L2(rows)
        return rows

    def make(self):
        d, space = self.dim, self.space
        if self.kind == "flat":
            return faiss.IndexFlatL2(d) if space == faiss.METRIC_L2 else faiss.IndexFlatIP(d)
        if self.kind == "hnsw":
            index = faiss.IndexHNSWFlat(d, self.params.M, space)
            index.hnsw.efConstruction = self.params.ef_construction
            return index
        return faiss.index_factory(d, self.ivf_description(), space)

    def ivf_description(self) -> str:
        """The IVF index in faiss's index_factory language: ``IVF4096,PQ64x4fs,Refine(SQfp16)``."""
        params = self.params
        if params.storage == "pq":
            m = params.pq_m or self.dim // 2
            if self.dim % m:
                raise UnsupportedMetricError(f"faiss.ivf pq_m={m} must divide the embedding size {self.dim}")
            codes = f"PQ{m}x4fs"
        else:
            codes = {"flat": "Flat", "fp16": "SQfp16", "sq8": "SQ8"}[params.storage]
        return f"IVF{params.nlist},{codes}" + (",Refine(SQfp16)" if params.refine > 1 else "")

    def build(self, gallery) -> None:
        index = self.make()
        if not index.is_trained:
            wanted = min(len(gallery), self.params.nlist * self.params.train_size)
            if len(gallery) < self.params.nlist:
                raise UnsupportedMetricError(f"faiss.ivf needs at least nlist={self.params.nlist} gallery items, got {len(gallery)}")
            picks = np.sort(np.random.default_rng(0).choice(len(gallery), wanted, replace=False))
            index.train(self.vectors(gallery.take(picks, axis=0)))
        for start in range(0, len(gallery), ADD_ROWS):
            index.add(self.vectors(gallery[start : start + ADD_ROWS]))
        self.index = index
        self.configure()

    def configure(self) -> None:
        if self.kind == "ivf":
            faiss.extract_index_ivf(self.index).nprobe = self.params.nprobe
            if self.params.refine > 1:
                self.index.k_factor = self.params.refine
        elif self.kind == "hnsw":
            self.index.hnsw.efSearch = self.params.ef_search

    def save(self, folder: Path) -> None:
        faiss.write_index(self.index, str(Path(folder) / INDEX_FILE))

    def load(self, folder: Path, gallery) -> None:
        path = Path(folder) / INDEX_FILE
        try:
            self.index = faiss.read_index(str(path))
        except RuntimeError as exc:
            from visim.index.store import IndexFileError

            raise IndexFileError(f"{path}: unreadable faiss index ({str(exc).splitlines()[0]})") from None
        if self.index.d != self.dim or self.index.ntotal != len(gallery):
            from visim.index.store import IndexFileError

            raise IndexFileError(f"{path}: holds {self.index.ntotal} x {self.index.d}, the gallery is {len(gallery)} x {self.dim}")
        self.configure()

    def search(self, queries, k: int):
        raw, ids = self.index.search(self.vectors(queries), k)
        scores = raw.astype(np.float64)
        scores[ids < 0] = np.nan
        if isinstance(self.metric, Euclidean):
            scores = np.sqrt(np.maximum(scores, 0))  # faiss L2 is squared
        elif isinstance(self.metric, CosineDistance):
            scores = 1 - scores
        return scores, ids.astype(np.int64)
