"""Evaluate query and gallery embeddings with a metric, never holding the whole Q x G matrix."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from visim.evaluation.blocks import metric_block
from visim.evaluation.labels import Labels
from visim.evaluation.options import DEFAULT_MEMORY_BUDGET, DEFAULT_TOPK, EvalOptions
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
    topk: Iterable[int] = DEFAULT_TOPK,
    higher_is_better: bool | None = None,
    protocol: str = "market1501",
    no_positive: str = "skip",
    ap: str = "standard",
    max_rank: int = 50,
    keep_topk: int = 0,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
) -> RankingResult:
    """Like :func:`~visim.evaluation.evaluate`, computing ``metric(q_chunk, g_emb)`` for chunks
    of queries sized so that a chunk's working set stays within ``memory_budget`` bytes.

    ``higher_is_better`` defaults to the metric's own attribute (False when absent). The work
    runs on ``q_emb``'s device.
    """
    metric = resolve_metric(metric)
    if higher_is_better is None:
        higher_is_better = bool(getattr(metric, "higher_is_better", False))
    options = EvalOptions(
        topk=topk,
        higher_is_better=higher_is_better,
        protocol=protocol,
        no_positive=no_positive,
        ap=ap,
        max_rank=max_rank,
        keep_topk=keep_topk,
        memory_budget=memory_budget,
    )
    queries, gallery = as_matrix_pair(q_emb, g_emb)
    num_q, num_g = queries.shape[0], gallery.shape[0]
    labels = Labels(q_pids, g_pids, q_camids, g_camids, protocol=protocol, shape=(num_q, num_g))
    labels.to(queries.device)
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

    return rank_blocks(blocks(), labels, options)
