"""Rank a gallery for every query and score the rankings, one chunk of queries at a time."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from visim.evaluation.labels import Labels
from visim.evaluation.options import EvalOptions
from visim.evaluation.positions import positive_ranks
from visim.evaluation.result import PerQuery, RankingResult, no_positive_error
from visim.evaluation.scores import query_scores
from visim.evaluation.topk import topk_gallery


def evaluate(
    distmat: Any,
    q_pids: Any,
    g_pids: Any,
    q_camids: Any = None,
    g_camids: Any = None,
    *,
    options: EvalOptions | None = None,
    **settings: Any,
) -> RankingResult:
    """CMC, mAP and mINP of a ``[Q, G]`` distance (or, with ``higher_is_better``, similarity)
    matrix, a numpy array or torch tensor. See the evaluation page of the docs for the
    definitions; ``keep_topk=k`` also returns each query's k closest valid gallery indices.

    The options are an :class:`~visim.evaluation.options.EvalOptions` (its defaults when
    None), with any of its fields given as keywords applied over it: ``protocol="none"``.
    """
    options = EvalOptions.build(options, **settings)
    if options.higher_is_better is None:  # a bare matrix: distances unless told otherwise
        options = EvalOptions.build(options, higher_is_better=False)
    protocol = options.protocol
    scores = torch.as_tensor(distmat)
    if scores.dim() != 2:
        raise ValueError(f"distmat must be a 2-D [queries, gallery] matrix, got shape {tuple(scores.shape)}")
    labels = Labels(q_pids, g_pids, q_camids, g_camids, protocol=protocol, shape=scores.shape)
    labels.to(scores.device)
    rows = options.chunk_rows(scores.shape[1], scores.element_size())
    blocks = ((start, scores[start : start + rows]) for start in range(0, scores.shape[0], rows))
    return rank_blocks(blocks, labels, options)


def ranking_keys(block: torch.Tensor, higher_is_better: bool) -> torch.Tensor:
    """A float block in which lower is closer; NaN is rejected (it has no place in a ranking)."""
    if not block.is_floating_point():
        block = block.to(torch.float64)
    elif block.dtype in (torch.float16, torch.bfloat16):
        block = block.float()  # exact, and searchsorted/sort are complete for float32
    if bool(torch.isnan(block.amax())):  # amax propagates NaN, in one pass without a mask
        raise ValueError("the distance matrix contains NaN; check the embeddings and the metric")
    return -block if higher_is_better else block


@torch.no_grad()
def rank_blocks(blocks, labels: Labels, options: EvalOptions) -> RankingResult:
    """Evaluate ``(first query index, [c, G] block)`` pairs in order and combine them."""
    parts: list[tuple[np.ndarray, ...]] = []
    shortlists: list[np.ndarray] = []
    for start, block in blocks:
        keys = ranking_keys(block, options.higher_is_better)
        queries = torch.arange(start, start + keys.shape[0], device=keys.device)
        ranks, num_positives = positive_ranks(keys, queries, labels, options.scratch_bytes)
        if options.no_positive == "error" and not bool(num_positives.all()):
            raise no_positive_error(start + np.flatnonzero((num_positives == 0).cpu().numpy()))
        ap, inp, first_hit = query_scores(ranks, num_positives, options.ap)
        parts.append(tuple(t.cpu().numpy() for t in (ap, inp, first_hit, num_positives)))
        if options.keep_topk:
            shortlist = topk_gallery(keys, queries, labels, options.keep_topk, options.scratch_bytes)
            shortlists.append(shortlist.cpu().numpy())
        del keys, ranks
    per_query = PerQuery(*(np.concatenate(column) for column in zip(*parts)))
    topk_indices = np.concatenate(shortlists) if shortlists else None
    return RankingResult.from_per_query(per_query, options, topk_indices)
