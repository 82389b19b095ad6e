"""A PML loss (and miner) behind visim's loss contract ``loss(logits, embeddings, targets)``.

PML computes ``loss(embeddings, labels, indices_tuple)``; the miner, when there is one, picks
the pairs or triplets (``indices_tuple``) first. Both run in float32 outside autocast: PML's
margins and exponentials (ArcFace's scale 64, Multi-Similarity's beta 50) overflow in bf16/fp16.

Under DDP (a process group of more than one process) each process gathers every process's
embeddings and labels with PML's ``DistributedLossWrapper`` / ``DistributedMinerWrapper``, so
that the loss is the one of the whole global batch, as in one process: pair and proxy losses
(all but the per-sample softmax ones) do not decompose into per-process losses, and even the
per-sample ones see every pair this way. The wrapper multiplies the loss by the world size so
that DDP's gradient averaging gives each process's embeddings their exact gradient; a loss's
own parameters then get the same full-batch gradient times the world size on every process,
which a hook divides back (tests/test_pml.py checks both against one process).
"""

from __future__ import annotations

import attrs
import torch
from pytorch_metric_learning import distances, losses, miners
from pytorch_metric_learning.utils.distributed import (
    DistributedLossWrapper,
    DistributedMinerWrapper,
)
from torch import nn

from visim_pml.choices import DISTANCES, MINERS, parse_choice

DISTANCE_CLASSES = {"cosine": distances.CosineSimilarity, "lp": distances.LpDistance}
MINER_CLASSES = {
    "multi_similarity": miners.MultiSimilarityMiner,
    "batch_hard": miners.BatchHardMiner,
    "triplet_margin": miners.TripletMarginMiner,
    "pair_margin": miners.PairMarginMiner,
    "batch_easy_hard": miners.BatchEasyHardMiner,
}


def world_size() -> int:
    dist = torch.distributed
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def pml_kwargs(params) -> dict:
    """The params as PML keyword arguments, with ``distance`` built and ``miner`` left out."""
    kwargs = attrs.asdict(params, recurse=False)
    kwargs.pop("miner", None)
    if kwargs.get("distance") is not None:
        kwargs["distance"] = build_distance(kwargs["distance"])
    else:
        kwargs.pop("distance", None)  # PML's default distance for this loss
    return kwargs


def build_distance(value):
    name, params = parse_choice(value, DISTANCES, "distance", "$.distance")
    return DISTANCE_CLASSES[name](**attrs.asdict(params))


def build_miner(value):
    if value is None:
        return None
    name, params = parse_choice(value, MINERS, "miner", "$.miner")
    return MINER_CLASSES[name](**pml_kwargs(params))


class PMLLoss(nn.Module):
    """visim's loss contract around a PML loss; its parameters (class weights) are this module's."""

    def __init__(self, name: str, loss: nn.Module, miner: nn.Module | None) -> None:
        super().__init__()
        self.name = name
        self.loss = loss
        self.miner = miner
        size = world_size()
        if size > 1:  # see the module docstring: every process has world_size x the gradient
            for weight in self.loss.parameters():
                weight.register_hook(lambda grad: grad / size)

    def forward(self, logits, embeddings, targets):
        loss, miner = self.loss, self.miner
        if world_size() > 1:
            loss = DistributedLossWrapper(loss)
            miner = DistributedMinerWrapper(miner) if miner is not None else None
        with torch.autocast(embeddings.device.type, enabled=False):
            x = embeddings.float()
            indices = miner(x, targets) if miner is not None else None
            return loss(x, targets, indices)


def build(name: str, spec, params, num_classes: int, embedding_dim: int) -> PMLLoss:
    pml_class = getattr(losses, spec.pml_class)
    kwargs = pml_kwargs(params)

    if spec.per_class_weights:  # [embedding_dim, num_classes] weights: the factory context
        loss = pml_class(num_classes=num_classes, embedding_size=embedding_dim, **kwargs)
    else:
        loss = pml_class(**kwargs)
    return PMLLoss(f"pml.{name}", loss, build_miner(params.miner))
