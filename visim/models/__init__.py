"""Built-in embedding models, registered through ``register_models``.

A model factory gets ``num_classes`` and returns an :class:`~visim.models.wrapper.EmbeddingModel`:
train mode gives ``(logits, embeddings)``, eval mode gives embeddings. Torch and torchreid are
imported only when a model is built.
"""

from __future__ import annotations

import difflib

import attrs
from attrs import validators as v

from visim.hookspecs import hookimpl


def known_arch(instance, attribute, value: str) -> None:
    """must be a torchreid architecture name"""
    from visim.models.archs import TORCHREID_ARCHS as archs

    if value not in archs:
        close = difflib.get_close_matches(value, archs, n=3)
        hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
        raise ValueError(f"unknown torchreid arch {value!r}{hint} (see 'visim components models')")


def existing_file(instance, attribute, value: str | None) -> None:
    """must be an existing local file (nothing is downloaded)"""
    import os

    if value is not None and not os.path.isfile(value):
        raise ValueError(f"weights file not found (got {value!r})")


@attrs.frozen
class TorchreidParams:
    """``arch``: a torchreid model name; ``weights``: an optional local checkpoint."""

    arch: str = attrs.field(default="osnet_x0_25", validator=known_arch)
    weights: str | None = attrs.field(default=None, validator=existing_file)


@attrs.frozen
class ConvNetParams:
    """A small CNN for tests and quick experiments."""

    width: int = attrs.field(default=16, validator=v.ge(1))
    embedding_dim: int = attrs.field(default=32, validator=v.ge(1))


def build_torchreid(params: TorchreidParams, num_classes: int = 1):
    """A torchreid backbone (no download: weights come only from a local file)."""
    from visim.models.torchreid_backbone import build

    return build(params.arch, num_classes, params.weights)


def build_convnet(params: ConvNetParams, num_classes: int = 1):
    """A small 3-layer CNN: fast enough for unit tests on a CPU."""
    from visim.models.convnet import ConvNet
    from visim.models.wrapper import EmbeddingModel

    backbone = ConvNet(params.width, params.embedding_dim)
    return EmbeddingModel(backbone, params.embedding_dim, num_classes)


@hookimpl
def register_models(register):
    register("torchreid", build_torchreid, params=TorchreidParams, aliases=("TorchreidVisualSimilarity",))
    register("convnet", build_convnet, params=ConvNetParams)
