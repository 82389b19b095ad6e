"""pytorch-metric-learning losses as visim losses named ``pml.<name>``.

Each params class mirrors the PML 2.9 loss's constructor arguments, with PML's defaults, plus an
optional ``miner`` and (where PML lets the loss use another) ``distance``. This hook module
imports neither torch nor PML: :mod:`visim_pml.loss` is imported when a loss is built.
"""

from __future__ import annotations

from typing import Any

import attrs

import visim
from visim.config import rules
from visim_pml.choices import Choice, distance_field, miner_field

__version__ = "0.1.0"

per_anchor = rules.any_(rules.eq("all"), rules.all_(rules.instance(int), rules.gte(1)))


def number(default: float, *validators):
    return attrs.field(default=default, validator=rules.all_(*validators) if validators else None)


# -- losses holding one learnable weight per class ([embedding_dim, num_classes] or proxies) --
@attrs.frozen
class ArcFaceParams:
    """``margin`` in degrees."""

    margin: float = number(28.6, rules.gte(0.0))
    scale: float = number(64.0, rules.gt(0.0))
    miner: Choice = miner_field


@attrs.frozen
class CosFaceParams:
    margin: float = number(0.35, rules.gte(0.0))
    scale: float = number(64.0, rules.gt(0.0))
    miner: Choice = miner_field


@attrs.frozen
class SubCenterArcFaceParams:
    """``margin`` in degrees; ``sub_centers`` weights per class."""

    margin: float = number(28.6, rules.gte(0.0))
    scale: float = number(64.0, rules.gt(0.0))
    sub_centers: int = attrs.field(default=3, validator=rules.gte(1))
    miner: Choice = miner_field


@attrs.frozen
class NormalizedSoftmaxParams:
    temperature: float = number(0.05, rules.gt(0.0))
    distance: Choice = distance_field
    miner: Choice = miner_field


@attrs.frozen
class ProxyAnchorParams:
    margin: float = number(0.1)
    alpha: float = number(32.0, rules.gt(0.0))
    distance: Choice = distance_field
    miner: Choice = miner_field


@attrs.frozen
class ProxyNCAParams:
    softmax_scale: float = number(1.0, rules.gt(0.0))
    distance: Choice = distance_field
    miner: Choice = miner_field


# -- pair and tuple losses -------------------------------------------------------------------
@attrs.frozen
class ContrastiveParams:
    pos_margin: float = number(0.0)
    neg_margin: float = number(1.0)
    distance: Choice = distance_field
    miner: Choice = miner_field


@attrs.frozen
class TripletMarginParams:
    """``triplets_per_anchor``: ``all`` or a number sampled per anchor."""

    margin: float = number(0.05)
    swap: bool = False
    smooth_loss: bool = False
    triplets_per_anchor: int | str = attrs.field(default="all", validator=per_anchor)
    distance: Choice = distance_field
    miner: Choice = miner_field


@attrs.frozen
class MultiSimilarityParams:
    alpha: float = number(2.0, rules.gt(0.0))
    beta: float = number(50.0, rules.gt(0.0))
    base: float = number(0.5)
    distance: Choice = distance_field
    miner: Choice = miner_field


@attrs.frozen
class NTXentParams:
    temperature: float = number(0.07, rules.gt(0.0))
    distance: Choice = distance_field
    miner: Choice = miner_field


@attrs.frozen
class CircleParams:
    m: float = number(0.4)
    gamma: float = number(80.0, rules.gt(0.0))
    miner: Choice = miner_field


@attrs.frozen
class SupConParams:
    temperature: float = number(0.1, rules.gt(0.0))
    distance: Choice = distance_field
    miner: Choice = miner_field


@attrs.frozen
class MarginParams:
    """``learn_beta``: ``beta`` becomes a learnable parameter (one for all classes)."""

    margin: float = number(0.2, rules.gte(0.0))
    nu: float = number(0.0, rules.gte(0.0))
    beta: float = number(1.2)
    triplets_per_anchor: int | str = attrs.field(default="all", validator=per_anchor)
    learn_beta: bool = False
    distance: Choice = distance_field
    miner: Choice = miner_field


@attrs.frozen(kw_only=True)
class Loss:
    """A registered PML loss: its PML class, params, and whether it holds class weights."""

    pml_class: str
    params: type
    per_class_weights: bool = False
    doc: str


LOSSES = {
    "arcface": Loss(pml_class="ArcFaceLoss", params=ArcFaceParams, per_class_weights=True,
                    doc="ArcFace: additive angular margin softmax (Deng et al., 2019)."),
    "cosface": Loss(pml_class="CosFaceLoss", params=CosFaceParams, per_class_weights=True,
                    doc="CosFace: additive cosine margin softmax (Wang et al., 2018)."),
    "sub_center_arcface": Loss(pml_class="SubCenterArcFaceLoss", params=SubCenterArcFaceParams,
                               per_class_weights=True, doc="Sub-center ArcFace (Deng et al., 2020)."),
    "normalized_softmax": Loss(pml_class="NormalizedSoftmaxLoss", params=NormalizedSoftmaxParams,
                               per_class_weights=True, doc="Normalized softmax (Zhai & Wu, 2018)."),
    "proxy_anchor": Loss(pml_class="ProxyAnchorLoss", params=ProxyAnchorParams, per_class_weights=True,
                         doc="Proxy Anchor loss (Kim et al., 2020)."),
    "proxy_nca": Loss(pml_class="ProxyNCALoss", params=ProxyNCAParams, per_class_weights=True,
                      doc="ProxyNCA loss (Movshovitz-Attias et al., 2017)."),
    "contrastive": Loss(pml_class="ContrastiveLoss", params=ContrastiveParams,
                        doc="Contrastive loss on every positive and negative pair (Hadsell et al., 2006)."),
    "triplet_margin": Loss(pml_class="TripletMarginLoss", params=TripletMarginParams,
                           doc="Triplet margin loss on every (or mined) triplet of the batch."),
    "multi_similarity": Loss(pml_class="MultiSimilarityLoss", params=MultiSimilarityParams,
                             doc="Multi-Similarity loss (Wang et al., 2019)."),
    "ntxent": Loss(pml_class="NTXentLoss", params=NTXentParams,
                   doc="NT-Xent / InfoNCE loss with the batch's identities as positives."),
    "circle": Loss(pml_class="CircleLoss", params=CircleParams, doc="Circle loss (Sun et al., 2020)."),
    "supcon": Loss(pml_class="SupConLoss", params=SupConParams,
                   doc="Supervised contrastive loss (Khosla et al., 2020)."),
    "margin": Loss(pml_class="MarginLoss", params=MarginParams,
                   doc="Margin loss with distance-weighted sampling (Wu et al., 2017)."),
}


def factory_for(name: str):
    def factory(params: Any, *, num_classes: int, embedding_dim: int):
        from visim_pml.loss import build

        return build(name, LOSSES[name], params, num_classes, embedding_dim)

    factory.__name__ = f"build_pml_{name}"
    return factory


@visim.hookimpl
def register_losses(register):
    for name, loss in LOSSES.items():
        register(f"pml.{name}", factory_for(name), params=loss.params, doc=f"pytorch-metric-learning: {loss.doc}")
