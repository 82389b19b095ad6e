"""Per-query AP, INP and first hit from the ranks of the positives.

``ranks[i, m-1]`` is the 1-based rank of the m-th positive of query i (0 past its positives).
With R positives at ranks r_1 < ... < r_R:

* standard AP (torchreid, fast-reid): ``(1/R) * sum_m m / r_m``;
* "market_official" AP (Market-1501's MATLAB code, trapezoid rule):
  ``(1/R) * sum_m (p(r_m - 1) + p(r_m)) / 2`` with ``p(r) = (#positives in the top r) / r``
  and ``p(0) = 1``, i.e. ``p(r_m - 1) = (m - 1) / (r_m - 1)``;
* INP (fast-reid's mINP): ``R / r_R``;
* first hit: ``r_1``.

A query without positives gets AP = INP = 0 and first hit 0.
"""

from __future__ import annotations

import torch


def query_scores(ranks: torch.Tensor, num_positives: torch.Tensor, ap_mode: str):
    """``(ap, inp, first_hit)`` float64 / int64 tensors of length ``c``."""
    c, width = ranks.shape
    if width == 0:
        zeros = torch.zeros(c, dtype=torch.float64, device=ranks.device)
        return zeros, zeros.clone(), torch.zeros(c, dtype=torch.int64, device=ranks.device)
    filled = ranks > 0
    nth = torch.arange(1, width + 1, dtype=torch.float64, device=ranks.device)
    at = ranks.to(torch.float64).clamp(min=1)
    precision = nth / at
    if ap_mode == "market_official":
        before = torch.where(at > 1, (nth - 1) / (at - 1).clamp(min=1), 1.0)
        precision = (before + precision) / 2
    count = num_positives.to(torch.float64)
    ap = torch.where(filled, precision, 0).sum(1) / count.clamp(min=1)
    deepest = ranks.gather(1, (num_positives - 1).clamp(min=0).unsqueeze(1)).squeeze(1)
    inp = torch.where(num_positives > 0, count / deepest.clamp(min=1), 0)
    return ap, inp, ranks[:, 0].clone()
