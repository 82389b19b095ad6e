"""Evaluate query and gallery embeddings with a metric, never holding the whole Q x G matrix."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import torch

from visim.evaluation.blocks import metric_block
from visim.evaluation.labels import Labels
from visim.evaluation.options import EvalOptions
from visim.evaluation.ranking import rank_blocks
from visim.evaluation.result import RankingResult
from visim.metrics.base import as_matrix_pair


def resolve_metric(metric: Callable | str) -> Callable:
    """A metric callable, or a registered metric name built with its default parameters."""
    if isinstance(metric, str):
        from visim.plugins import get_registry

        return get_registry().metrics.get(metric).build()
    if not callable(metric):
        raise TypeError(f"metric must be callable or a metric name, got {type(metric).__name__}")
    return metric


def evaluate_embeddings(
    q_emb: Any,
    g_emb: Any,
    metric: Callable | str,
    q_pids: Any,
    g_pids: Any,
    q_camids: Any = None,
    g_camids: Any = None,
    *,
    options: EvalOptions | None = None,
    rerank: Any = None,
    **settings: Any,
) -> RankingResult:
    """Like :func:`~visim.evaluation.evaluate` (the same ``options`` and keywords), computing
    ``metric(q_chunk, g_emb)`` for chunks of queries sized so that a chunk's working set stays
    within ``memory_budget`` bytes.

    ``higher_is_better`` defaults to the metric's own attribute (False when absent). The work
    runs on ``q_emb``'s device. ``rerank`` is a reranker or a list of them (see
    :mod:`visim.rerank`); k-reciprocal re-ranking feeds its distances chunk by chunk.
    """
    options = EvalOptions.build(options, **settings)
    metric = resolve_metric(metric)
    if options.higher_is_better is None:
        options = EvalOptions.build(options, higher_is_better=bool(getattr(metric, "higher_is_better", False)))
    protocol = options.protocol
    queries, gallery = as_matrix_pair(q_emb, g_emb)
    num_q, num_g = queries.shape[0], gallery.shape[0]
    labels = Labels(q_pids, g_pids, q_camids, g_camids, protocol=protocol, shape=(num_q, num_g))
    labels.to(queries.device)
    reranked = None
    if rerank is not None:
        from visim.rerank.chain import apply_chain

        queries, gallery, reranked = apply_chain(
            rerank, queries, gallery, metric, options.higher_is_better, options.memory_budget
        )
    rows = options.chunk_rows(num_g, max(4, queries.element_size()))

    def blocks():
        for start in range(0, num_q, rows):
            with torch.no_grad():
                block = metric_block(metric, queries[start : start + rows], gallery)
            expected = (min(rows, num_q - start), num_g)
            if tuple(block.shape) != expected:
                raise ValueError(
                    f"metric {metric!r} returned shape {tuple(block.shape)} for inputs of "
                    f"{expected[0]} and {num_g} rows; a metric must return [N, M]"
                )
            yield start, block

    if reranked is not None:  # re-ranked distances: lower is closer, whatever the metric
        return rank_blocks(reranked, labels, attrs.evolve(options, higher_is_better=False))
    return rank_blocks(blocks(), labels, options)
