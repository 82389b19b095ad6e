"""A plugin as a third party writes one, for tests: a learnable loss and contract breakers.

Register it for one test with the ``register_plugin`` fixture (``register_plugin(contract_plugin)``).
"""

from __future__ import annotations

import attrs
import torch
import torch.nn.functional as F
from torch import nn

import visim


@attrs.frozen
class CosineSoftmaxParams:
    scale: float = attrs.field(default=16.0, validator=attrs.validators.gt(0.0))
    # The class weights' own learning rate; None: the optimizer's.
    lr: float | None = None


class CosineSoftmax(nn.Module):
    """Softmax over scaled cosines to learnable class weights [num_classes, embedding_dim]."""

    def __init__(self, num_classes: int, embedding_dim: int, scale: float, lr: float | None) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(num_classes, embedding_dim))
        self.scale = scale
        if lr is not None:
            self.param_group = {"lr": lr}

    def forward(self, logits, embeddings, targets):
        cosines = F.normalize(embeddings.float(), dim=1) @ F.normalize(self.weight, dim=1).T
        return F.cross_entropy(self.scale * cosines, targets)


def build_cosine_softmax(params: CosineSoftmaxParams, *, num_classes: int, embedding_dim: int):
    return CosineSoftmax(num_classes, embedding_dim, params.scale, params.lr)


class Headless(nn.Module):
    """The convnet without an ``embedding_dim`` attribute: the engine has to measure it."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        from visim.models.convnet import ConvNet

        self.backbone = ConvNet(4, 12)
        self.head = nn.Linear(12, num_classes)

    def forward(self, images):
        embeddings = self.backbone(images)
        return (self.head(embeddings), embeddings) if self.training else embeddings


class LogitsOnly(Headless):
    """Breaks the contract: returns the logits alone in training mode."""

    def forward(self, images):
        embeddings = self.backbone(images)
        return self.head(embeddings) if self.training else embeddings


@visim.hookimpl
def register_models(register):
    register("headless", lambda params, *, num_classes: Headless(num_classes))  # no params class
    register("logits_only", lambda params, *, num_classes: LogitsOnly(num_classes))


@visim.hookimpl
def register_losses(register):
    register("cosine_softmax", build_cosine_softmax, params=CosineSoftmaxParams)
