"""timm backbones as the visim model ``timm``: ``model: {name: timm, arch: resnet50}``.

This hook module imports neither torch nor timm, so ``visim plugins`` and ``visim components``
stay fast. timm is imported when a config is validated (``arch`` is checked against
``timm.list_models()``) and when the model is built (:mod:`visim_timm.model`).
"""

from __future__ import annotations

import difflib
from functools import cache
from typing import Any

import attrs

import visim
from visim.config import rules

__version__ = "0.1.0"

POOLS = ("avg", "max", "gem")
WEIGHT_SUFFIXES = (".pth", ".bin", ".safetensors")
# Arguments of timm.create_model that visim sets itself, from the params named here.
RESERVED_KWARGS = {
    "num_classes": "the identity classifier is visim's (num_classes comes from the data)",
    "global_pool": "use 'pool'",
    "drop_rate": "use 'drop_rate'",
    "pretrained": "use 'weights'",
    "pretrained_cfg_overlay": "use 'weights'",
}


@cache
def timm_archs() -> frozenset[str]:
    import timm

    return frozenset(timm.list_models())


def known_arch(instance, attribute, value: str) -> None:
    """must be a timm architecture (``timm.list_models()``), optionally with a ``.tag``"""
    if value.split(".", 1)[0] in timm_archs():
        return
    close = difflib.get_close_matches(value, sorted(timm_archs()), n=3)
    hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
    raise ValueError(f"unknown timm arch {value!r}{hint} (see timm.list_models())")


def free_kwargs(instance, attribute, value: dict) -> None:
    """must not set what visim sets itself"""
    for key in value:
        if key in RESERVED_KWARGS:
            raise ValueError(f"model_kwargs may not set {key!r}: {RESERVED_KWARGS[key]}")


@attrs.frozen
class TimmParams:
    """``arch``: a timm model name; ``weights``: a local .pth/.bin/.safetensors file (nothing is
    downloaded); ``embedding_dim``: a linear + BatchNorm neck to that size (none: the backbone's
    own feature size); ``pool``: avg, max or gem (none: the architecture's own pooling, e.g. the
    class token of a ViT); ``drop_rate``: dropout on the pooled features; ``model_kwargs``: more
    arguments for ``timm.create_model`` (e.g. ``img_size: [256, 128]`` for a ViT)."""

    arch: str = attrs.field(default="resnet50", validator=known_arch)
    weights: str | None = attrs.field(
        default=None, validator=rules.optional(rules.endswith(WEIGHT_SUFFIXES), rules.file_exists())
    )
    embedding_dim: int | None = attrs.field(default=None, validator=rules.optional(rules.gte(1)))
    pool: str | None = attrs.field(default=None, validator=rules.optional(rules.in_(POOLS)))
    drop_rate: float = attrs.field(default=0.0, validator=rules.all_(rules.gte(0.0), rules.lt(1.0)))
    model_kwargs: dict[str, Any] = attrs.field(factory=dict, validator=free_kwargs)


def build_timm(params: TimmParams, *, num_classes: int = 1):
    """A timm backbone with a visim identity classifier (weights only from a local file)."""
    from visim_timm.model import build

    return build(params, num_classes)


@visim.hookimpl
def register_models(register):
    register("timm", build_timm, params=TimmParams)
