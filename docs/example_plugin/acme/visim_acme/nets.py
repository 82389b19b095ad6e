"""The torch side of visim-acme, imported only when a component is built."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class AcmeNet(nn.Module):
    def __init__(self, width: int, embedding_dim: int, num_classes: int) -> None:
        super().__init__()
        self.embedding_dim = embedding_dim  # the loss is built with it
        self.features = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(width, embedding_dim),
        )
        self.classifier = nn.Linear(embedding_dim, num_classes)

    def forward(self, images: torch.Tensor):
        embeddings = self.features(images)  # [B, D]
        if not self.training:
            return embeddings
        return self.classifier(embeddings), embeddings  # ([B, C], [B, D])


class CosFace(nn.Module):
    """Cross entropy over scale * (cos(embedding, class weight) - margin at the target)."""

    def __init__(self, num_classes: int, embedding_dim: int, scale: float, margin: float) -> None:
        super().__init__()
        # A parameter of the loss: visim trains it with the model and saves it in checkpoints.
        self.weight = nn.Parameter(torch.randn(num_classes, embedding_dim) * 0.01)
        self.scale, self.margin = scale, margin

    def forward(self, logits, embeddings, targets):  # the model's logits are not used
        cosine = F.linear(F.normalize(embeddings.float(), dim=1), F.normalize(self.weight, dim=1))
        margins = F.one_hot(targets, cosine.shape[1]) * self.margin
        return F.cross_entropy(self.scale * (cosine - margins), targets)
