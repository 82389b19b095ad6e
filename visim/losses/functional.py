"""Loss modules: ``loss(logits, embeddings, targets) -> scalar tensor``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class CrossEntropy(nn.Module):
    def __init__(self, label_smoothing: float) -> None:
        super().__init__()
        self.label_smoothing = label_smoothing

    def forward(self, logits, embeddings, targets):
        return F.cross_entropy(logits.float(), targets, label_smoothing=self.label_smoothing)


class BatchHardTriplet(nn.Module):
    """For each anchor, the farthest positive and the closest negative in the batch."""

    def __init__(self, margin: float, normalize: bool = False) -> None:
        super().__init__()
        self.margin = margin
        self.normalize = normalize

    def forward(self, logits, embeddings, targets):
        x = embeddings.float()
        if self.normalize:
            x = F.normalize(x, dim=1)
        dist = torch.cdist(x, x).clamp_min(1e-12)
        same = targets[:, None] == targets[None, :]
        hardest_pos = dist.masked_fill(~same, float("-inf")).amax(dim=1)
        hardest_neg = dist.masked_fill(same, float("inf")).amin(dim=1)
        # Anchors without a positive or negative in the batch carry no signal.
        valid = torch.isfinite(hardest_pos) & torch.isfinite(hardest_neg) & (same.sum(1) > 1)
        if not valid.any():
            return x.sum() * 0.0
        return F.relu(hardest_pos[valid] - hardest_neg[valid] + self.margin).mean()


class WeightedSum(nn.Module):
    def __init__(self, terms: list[tuple[str, nn.Module, float]]) -> None:
        super().__init__()
        self.names = [name for name, _, _ in terms]
        self.terms = nn.ModuleList(loss for _, loss, _ in terms)
        self.weights = [weight for _, _, weight in terms]
        self.last_values: dict[str, float] = {}

    def forward(self, logits, embeddings, targets):
        total = 0.0
        for name, loss, weight in zip(self.names, self.terms, self.weights):
            value = loss(logits, embeddings, targets)
            self.last_values[name] = float(value.detach())
            total = total + weight * value
        return total
