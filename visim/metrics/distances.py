"""The built-in metrics as torch code. Imported by the factories in :mod:`visim.metrics` only.

Every metric returns an ``[N, M]`` tensor. Distances have ``higher_is_better = False``,
similarities ``True``. Zero vectors have cosine similarity 0 (not NaN): they are normalised
with an epsilon, as :func:`torch.nn.functional.normalize` does.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from visim.metrics.base import Metric


def squared_euclidean(a: torch.Tensor, b: torch.Tensor, b_norms: torch.Tensor | None = None):
    """``|a|^2 + |b|^2 - 2 a.b`` in one GEMM (torchreid's formula, bit for bit), clamped at 0.

    Cancellation can make the expansion slightly negative for near-identical rows; a squared
    distance is never negative, so it is clamped.
    """
    if b_norms is None:
        b_norms = b.pow(2).sum(dim=1)
    norms = a.pow(2).sum(dim=1, keepdim=True) + b_norms.unsqueeze(0)
    return torch.addmm(norms, a, b.t(), beta=1, alpha=-2).clamp_min_(0)


class GalleryNormsMetric(Metric):
    """A metric built on :func:`squared_euclidean`.

    The gallery's norms are recomputed on every call, never cached across calls: a tensor can
    change without its version counter moving (through ``.data`` or a shared numpy array), and
    a stale norm silently corrupts every distance. The norms take one pass over the gallery per
    call, 1/N of the work of the call's [N, M] matrix product.
    """

    def squared(self, a, b):
        return squared_euclidean(a, b)


def cosine_similarity(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return F.normalize(a, dim=1) @ F.normalize(b, dim=1).t()


class Euclidean(GalleryNormsMetric):
    """L2 distance."""

    def compute(self, a, b):
        return self.squared(a, b).sqrt_()


class SquaredEuclidean(GalleryNormsMetric):
    """Squared L2 distance (torchreid's ``euclidean``); ranks exactly like ``euclidean``."""

    def compute(self, a, b):
        return self.squared(a, b)


class CosineDistance(Metric):
    """``1 - cos(a, b)``, in [0, 2]."""

    def compute(self, a, b):
        return cosine_similarity(a, b).neg_().add_(1)


class CosineSimilarity(Metric):
    """``cos(a, b)``, in [-1, 1]; a similarity."""

    higher_is_better = True

    def compute(self, a, b):
        return cosine_similarity(a, b)


class DotProduct(Metric):
    """Inner product ``a . b``; a similarity."""

    higher_is_better = True

    def compute(self, a, b):
        return a @ b.t()


class Minkowski(GalleryNormsMetric):
    """Minkowski (Lp) distance for ``p >= 1``: 1 is Manhattan, 2 Euclidean, inf Chebyshev."""

    def __init__(self, p: float = 2.0) -> None:
        super().__init__()
        if not p >= 1:
            raise ValueError(f"minkowski needs p >= 1 (got {p})")
        self.p = float(p)

    def compute(self, a, b):
        if self.p == 2:
            return self.squared(a, b).sqrt_()
        return torch.cdist(a, b, p=self.p)

    def __repr__(self) -> str:
        return f"Minkowski(p={self.p})"


class Manhattan(Minkowski):
    """L1 (city-block) distance."""

    def __init__(self) -> None:
        super().__init__(p=1.0)


class Chebyshev(Minkowski):
    """L-infinity distance: the largest coordinate difference."""

    def __init__(self) -> None:
        super().__init__(p=math.inf)


class NegSoftmax(GalleryNormsMetric):
    """Softmax over the gallery axis of the negative distance: a similarity per query row.

    As in the original engine. It ranks like the underlying distance except where the softmax
    underflows to 0 for far-away gallery items, which then tie (broken by gallery index). Each
    row is normalised over the gallery it is given, so evaluation must pass whole gallery rows
    (visim's chunked evaluation splits queries only, never the gallery).
    """

    higher_is_better = True
    whole_gallery = True  # never computed on blocks or shards of the gallery

    def __init__(self, squared: bool) -> None:
        super().__init__()
        self.of_squared = squared

    def compute(self, a, b):
        distance = self.squared(a, b)
        if not self.of_squared:
            distance.sqrt_()
        return torch.softmax(distance.neg_(), dim=1)

    def __repr__(self) -> str:
        return f"NegSoftmax(squared={self.of_squared})"
