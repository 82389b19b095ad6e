"""Built-in losses, registered through ``register_losses``.

A loss factory gets ``num_classes`` and ``embedding_dim`` and returns an ``nn.Module`` called
``loss(logits, embeddings, targets) -> scalar`` (:class:`visim.contracts.Loss`): classification
losses use the logits, metric losses the embeddings, so ``sum`` can combine them.
"""

from __future__ import annotations

import attrs

from visim.config import rules
from visim.config.refs import LossRef
from visim.hookspecs import hookimpl


@attrs.frozen
class CrossEntropyParams:
    label_smoothing: float = attrs.field(default=0.1, validator=rules.all_(rules.gte(0.0), rules.lt(1.0)))


@attrs.frozen
class TripletParams:
    margin: float = attrs.field(default=0.3, validator=rules.gte(0.0))
    # Normalise embeddings first (cosine geometry) or not (euclidean, as torchreid).
    normalize: bool = False


@attrs.frozen
class WeightedLoss:
    loss: LossRef
    weight: float = attrs.field(default=1.0, validator=rules.gt(0.0))


@attrs.frozen
class SumParams:
    """``terms: [{loss: cross_entropy, weight: 1}, {loss: triplet, weight: 1}]``."""

    terms: tuple[WeightedLoss, ...] = attrs.field(validator=rules.longer_eq(1))


def build_cross_entropy(params: CrossEntropyParams, num_classes: int = 1, embedding_dim: int | None = None):
    """Cross entropy on the identity logits, with label smoothing (torchreid's default 0.1)."""
    from visim.losses.functional import CrossEntropy

    return CrossEntropy(params.label_smoothing)


def build_triplet(params: TripletParams, num_classes: int = 1, embedding_dim: int | None = None):
    """Batch-hard triplet loss on the embeddings (Hermans et al., 2017)."""
    from visim.losses.functional import BatchHardTriplet

    return BatchHardTriplet(params.margin, params.normalize)


def build_sum(params: SumParams, num_classes: int = 1, embedding_dim: int | None = None):
    """A weighted sum of other losses; each term's value is also reported on its own."""
    from visim.contract_checks import build, watch_loss
    from visim.losses.functional import WeightedSum

    context = {"num_classes": num_classes, "embedding_dim": embedding_dim}
    terms = [(t.loss.name, build(t.loss, **context), t.weight) for t in params.terms]
    for _, term, _ in terms:
        watch_loss(term)  # a breach names the term, not the sum
    return WeightedSum(terms)


@hookimpl
def register_losses(register):
    register("cross_entropy", build_cross_entropy, params=CrossEntropyParams, aliases=("softmax", "CrossEntropyLoss"))
    register("triplet", build_triplet, params=TripletParams, aliases=("TripletLoss",))
    register("sum", build_sum, params=SumParams, aliases=("weighted_sum",))
