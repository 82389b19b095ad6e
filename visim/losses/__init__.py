"""Built-in losses, registered through ``register_losses``.

A loss factory gets ``num_classes`` and returns ``loss(logits, embeddings, targets) -> scalar``:
classification losses use the logits, metric losses the embeddings, so ``sum`` can combine them.
"""

from __future__ import annotations

import attrs
from attrs import validators as v

from visim.config.refs import LossRef
from visim.hookspecs import hookimpl


@attrs.frozen
class CrossEntropyParams:
    label_smoothing: float = attrs.field(default=0.1, validator=v.and_(v.ge(0.0), v.lt(1.0)))


@attrs.frozen
class TripletParams:
    margin: float = attrs.field(default=0.3, validator=v.ge(0.0))
    # Normalise embeddings first (cosine geometry) or not (euclidean, as torchreid).
    normalize: bool = False


@attrs.frozen
class WeightedLoss:
    loss: LossRef
    weight: float = attrs.field(default=1.0, validator=v.gt(0.0))


def non_empty(instance, attribute, value) -> None:
    if not value:
        raise ValueError("needs at least one term")


@attrs.frozen
class SumParams:
    """``terms: [{loss: cross_entropy, weight: 1}, {loss: triplet, weight: 1}]``."""

    terms: tuple[WeightedLoss, ...] = attrs.field(validator=non_empty)


def build_cross_entropy(params: CrossEntropyParams, num_classes: int = 1, **context):
    """Cross entropy on the identity logits, with label smoothing (torchreid's default 0.1)."""
    from visim.losses.functional import CrossEntropy

    return CrossEntropy(params.label_smoothing)


def build_triplet(params: TripletParams, num_classes: int = 1, **context):
    """Batch-hard triplet loss on the embeddings (Hermans et al., 2017)."""
    from visim.losses.functional import BatchHardTriplet

    return BatchHardTriplet(params.margin, params.normalize)


def build_sum(params: SumParams, num_classes: int = 1, **context):
    """A weighted sum of other losses; each term's value is also reported on its own."""
    from visim.losses.functional import WeightedSum

    terms = [(t.loss.name, t.loss.build(num_classes=num_classes, **context), t.weight) for t in params.terms]
    return WeightedSum(terms)


@hookimpl
def register_losses(register):
    register("cross_entropy", build_cross_entropy, params=CrossEntropyParams, aliases=("softmax", "CrossEntropyLoss"))
    register("triplet", build_triplet, params=TripletParams, aliases=("TripletLoss",))
    register("sum", build_sum, params=SumParams, aliases=("weighted_sum",))
