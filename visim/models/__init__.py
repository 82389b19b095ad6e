"""Built-in embedding models, registered through ``register_models``.

A model factory gets ``num_classes`` and returns an :class:`~visim.models.wrapper.EmbeddingModel`:
train mode gives ``(logits, embeddings)``, eval mode gives embeddings. Torch and torchreid are
imported only when a model is built.
"""

from __future__ import annotations

import attrs

from visim.config import rules
from visim.hookspecs import hookimpl
from visim.models.archs import TORCHREID_ARCHS
from visim.suggest import did_you_mean

# One of TORCHREID_ARCHS; the list is too long to print in an error, so it gets a did-you-mean.
known_arch = rules.custom(
    lambda value: value in TORCHREID_ARCHS,
    "be a torchreid architecture (see 'visim components models')",
    hint=lambda value: did_you_mean(value, TORCHREID_ARCHS),
)


@attrs.frozen
class TorchreidParams:
    """``arch``: a torchreid model name; ``weights``: an optional local checkpoint."""

    arch: str = attrs.field(default="osnet_x0_25", validator=known_arch)
    weights: str | None = attrs.field(default=None, validator=rules.optional(rules.file_exists()))


@attrs.frozen
class ConvNetParams:
    """A small CNN for tests and quick experiments."""

    width: int = attrs.field(default=16, validator=rules.gte(1))
    embedding_dim: int = attrs.field(default=32, validator=rules.gte(1))


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
