"""torchreid backbones, adapted to the :class:`EmbeddingModel` contract.

torchreid's models already return ``(logits, features)`` in training when built with
``loss="triplet"`` and features in eval mode, so they are used as they are. Pretrained weights
are never downloaded: ``weights`` is a local file, loaded as torchreid's
``load_pretrained_weights`` does (``module.`` prefixes dropped, mismatched layers skipped and
reported).
"""

from __future__ import annotations

import logging
import warnings
from functools import cache

import torch
from torch import nn

log = logging.getLogger(__name__)


@cache
def torchreid_models():
    with warnings.catch_warnings():  # "Cython evaluation is unavailable": not our concern here
        warnings.simplefilter("ignore")
        from torchreid.reid import models
    return models


class TorchreidModel(nn.Module):
    """A torchreid network; ``embedding_dim`` is discovered from the network itself."""

    def __init__(self, network: nn.Module, embedding_dim: int) -> None:
        super().__init__()
        self.network = network
        self.embedding_dim = embedding_dim

    def forward(self, images: torch.Tensor):
        out = self.network(images)
        if self.training and not isinstance(out, tuple):
            raise RuntimeError("the torchreid model did not return (logits, features) in train mode")
        return out


def discover_dim(network: nn.Module) -> int:
    dim = getattr(network, "feature_dim", None)
    if isinstance(dim, int):
        return dim
    was_training = network.training
    network.eval()
    with torch.inference_mode():
        dim = int(network(torch.zeros(1, 3, 64, 32)).shape[1])
    network.train(was_training)
    return dim


def build(arch: str, num_classes: int, weights: str | None = None) -> TorchreidModel:
    network = torchreid_models().build_model(arch, num_classes=num_classes, loss="triplet", pretrained=False)
    if weights:
        report = load_weights(network, weights)
        log.info("loaded %s: %d tensors, skipped %s", weights, report["loaded"], report["skipped"] or "none")
    return TorchreidModel(network, discover_dim(network))


def load_weights(network: nn.Module, path: str) -> dict:
    """Load what matches by name and shape; return what was loaded and skipped."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    state = checkpoint.get("state_dict", checkpoint.get("model", checkpoint))
    own = network.state_dict()
    loaded, skipped = {}, []
    for key, value in state.items():
        key = key.removeprefix("module.").removeprefix("network.")
        if key in own and own[key].shape == value.shape:
            loaded[key] = value
        else:
            skipped.append(key)
    if not loaded:
        raise ValueError(f"no tensor of {path!r} matches the model; is it a checkpoint of this arch?")
    own.update(loaded)
    network.load_state_dict(own)
    if skipped:
        warnings.warn(f"{path}: skipped {len(skipped)} tensors that do not match: {skipped[:8]}", stacklevel=2)
    return {"loaded": len(loaded), "skipped": skipped}
