"""The embedding-model contract the engine relies on."""

from __future__ import annotations

import torch
from torch import nn


class EmbeddingModel(nn.Module):
    """A backbone producing embeddings plus a linear identity classifier.

    ``train()`` mode returns ``(logits, embeddings)`` for classification and metric losses;
    ``eval()`` mode returns the embeddings only, as used for ranking.
    """

    def __init__(self, backbone: nn.Module, embedding_dim: int, num_classes: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.embedding_dim = embedding_dim
        self.classifier = nn.Linear(embedding_dim, num_classes)

    def forward(self, images: torch.Tensor):
        embeddings = self.backbone(images)
        if not self.training:
            return embeddings
        return self.classifier(embeddings), embeddings
