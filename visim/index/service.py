"""Build, open and query index directories: what ``visim index`` and ``visim search`` do."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from visim.index.store import IndexFileError, StoredIndex, open_index_dir, write_index_dir


def component_ref(ref: Any) -> tuple[str, dict]:
    """``exact`` or ``{name: faiss.ivf, nlist: 64}`` -> ``(name, params)``."""
    if isinstance(ref, dict):
        params = dict(ref)
        name = params.pop("name", None)
        if not isinstance(name, str):
            raise IndexFileError(f"an index mapping needs a 'name' (got {ref!r})")
        return name, params
    return str(ref), {}


def build_component(ref: Any, metric, dim: int):
    from visim.plugins import get_registry

    name, params = component_ref(ref)
    component = get_registry().indexes.get(name)
    return component.build(params, metric=metric, dim=dim), component


def build_index(out, gallery, pids, camids, paths, *, metric_ref, metric, index_ref, dtype: str) -> dict:
    """Store the gallery and build the index in ``out``; returns the directory's metadata."""
    dim = int(gallery.shape[1])
    check_finite(gallery)
    index, _ = build_component(index_ref, metric, dim)

    def build(stored_gallery):
        index.build(stored_gallery)
        return index

    return write_index_dir(out, gallery, pids, camids, paths, metric=metric_ref, index_ref=index_ref,
                           dtype=dtype, build_component=build)


def check_finite(array, rows: int = 1 << 18) -> None:
    for start in range(0, len(array), rows):
        if not np.isfinite(np.asarray(array[start : start + rows], dtype=np.float32)).all():
            raise IndexFileError("the embeddings contain NaN or infinite values")


def open_index(folder, metric_override=None):
    """``(stored, index, metric)`` of an index directory, ready to search."""
    from visim.commands.evaluate import build_metric

    stored = open_index_dir(folder)
    metric = build_metric(stored.meta["metric"]) if metric_override is None else metric_override
    if metric is None:
        raise IndexFileError(f"{folder}: its metric {stored.meta['metric']!r} cannot be built")
    index, _ = build_component(stored.meta["index"], metric, stored.meta["dim"])
    index.load(Path(folder) / "component", stored.gallery)
    return stored, index, metric


def check_queries(queries, stored: StoredIndex) -> np.ndarray:
    queries = np.asarray(queries, dtype=np.float32)
    if queries.ndim != 2 or queries.shape[1] != stored.meta["dim"]:
        raise IndexFileError(
            f"query embeddings have size {queries.shape[-1] if queries.ndim else '?'} but the index holds "
            f"{stored.meta['dim']}-d embeddings"
        )
    if not np.isfinite(queries).all():
        raise IndexFileError("the query embeddings contain NaN or infinite values")
    return queries


def hits(stored: StoredIndex, scores, indices, *, higher_is_better: bool, threshold: float | None,
         query_paths=None):
    """One record per query, best first, the hits beyond ``threshold`` dropped."""
    approximate = bool(stored.meta.get("approximate"))
    for q, (row_scores, row_ids) in enumerate(zip(scores, indices)):
        found = []
        for score, gallery in zip(row_scores.tolist(), row_ids.tolist()):
            if gallery < 0 or math.isnan(score):
                continue
            if threshold is not None and (score < threshold if higher_is_better else score > threshold):
                continue
            found.append({"gallery": gallery, "path": stored.paths[gallery], "pid": int(stored.pids[gallery]),
                          "score": score})
        record = {"query": q, "path": query_paths[q] if query_paths is not None else None, "hits": found}
        if approximate:
            record["approximate"] = True
        yield record


def timed_search(index, queries, k: int):
    start = time.perf_counter()
    scores, ids = index.search(queries, k)
    return scores, ids, time.perf_counter() - start
