"""A timm network adapted to visim's model contract (:class:`visim.models.wrapper.EmbeddingModel`).

The network is created without its classifier (``num_classes=0``), so its forward gives pooled
features; an optional neck maps them to ``embedding_dim``; visim's linear classifier on top
gives the identity logits in training mode.
"""

from __future__ import annotations

import logging
import warnings
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from visim.config.errors import ConfigError, Problem
from visim.models.wrapper import EmbeddingModel


class GeM(nn.Module):
    """Generalized-mean pooling (Radenović et al., 2018) of a timm network's feature maps.

    timm has no GeM among its ``global_pool`` choices, so the network runs without pooling
    (``forward_features``) and the maps are pooled here, with a learnable exponent ``p``.
    """

    def __init__(self, network: nn.Module, drop_rate: float, p: float = 3.0, eps: float = 1e-6) -> None:
        super().__init__()
        self.network = network
        self.p = nn.Parameter(torch.tensor(p))
        self.eps = eps
        self.drop = nn.Dropout(drop_rate)
        # Most timm CNNs give NCHW maps; some (Swin, ...) declare NHWC.
        self.channels_last_output = getattr(network, "output_fmt", "NCHW") == "NHWC"

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        maps = self.network.forward_features(images)
        if maps.dim() != 4:
            raise RuntimeError(
                f"pool 'gem' needs feature maps [B, C, H, W]; this network gives shape {tuple(maps.shape)} "
                "(a transformer's tokens?): use pool avg, max or none"
            )
        if self.channels_last_output:
            maps = maps.permute(0, 3, 1, 2)
        pooled = F.avg_pool2d(maps.float().clamp(min=self.eps).pow(self.p), maps.shape[-2:]).pow(1.0 / self.p)
        return self.drop(pooled.flatten(1).to(maps.dtype))


class Neck(nn.Sequential):
    """Linear projection to ``embedding_dim`` then BatchNorm (the BNNeck of Luo et al., 2019)."""

    def __init__(self, in_features: int, embedding_dim: int) -> None:
        super().__init__(nn.Linear(in_features, embedding_dim, bias=False), nn.BatchNorm1d(embedding_dim))


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def partial_loads_warned(path: str):
    """timm loads a file without the classifier non-strictly and only logs the tensors the file
    lacks (they stay randomly initialised): say so as a warning, which run.log records."""
    logger = logging.getLogger("timm.models._builder")
    records, level = Records(), logger.level
    logger.addHandler(records)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(records)
        logger.setLevel(level)
    for message in records.messages:
        if message.startswith(("Missing keys", "Unexpected keys")):
            warnings.warn(f"{path}: {message.split(' discovered')[0].split(' found')[0]}", stacklevel=4)


def create_network(params) -> nn.Module:
    import timm

    kwargs = dict(params.model_kwargs, num_classes=0, drop_rate=params.drop_rate)
    if params.pool == "gem":
        kwargs["global_pool"] = ""
    elif params.pool is not None:
        kwargs["global_pool"] = params.pool
    if params.weights:
        # timm loads the file as it would a downloaded checkpoint: its own key filters (e.g. a
        # ViT's position embeddings resized to img_size) apply, the classifier is dropped.
        kwargs.update(pretrained=True, pretrained_cfg_overlay={"file": params.weights})
    try:
        with partial_loads_warned(params.weights):
            return timm.create_model(params.arch, **kwargs)
    except TypeError as exc:  # an argument this architecture does not take
        raise ConfigError(Problem(f"timm {params.arch}: {exc}", "$.model.model_kwargs")) from None


def build(params, num_classes: int) -> EmbeddingModel:
    network = create_network(params)
    if params.pool == "gem":
        body, dim = GeM(network, params.drop_rate), network.num_features
    else:
        # head_hidden_size: models with a conv head after pooling (MobileNetV3) give that size.
        body, dim = network, getattr(network, "head_hidden_size", None) or network.num_features
    if params.embedding_dim is not None:
        body, dim = nn.Sequential(body, Neck(dim, params.embedding_dim)), params.embedding_dim
    return EmbeddingModel(body, dim, num_classes)
