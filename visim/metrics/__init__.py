"""Built-in distance and similarity metrics, registered through ``register_metrics``.

This hook module stays free of torch: each factory imports :mod:`visim.metrics.distances`
when a metric is actually built. The metric contract lives in :mod:`visim.metrics.base`.
"""

from __future__ import annotations

import importlib

import attrs

from visim.config import rules
from visim.config.converter import INFINITY_OK
from visim.hookspecs import hookimpl
from visim.metrics.base import Metric


@attrs.frozen
class NoParams:
    """The metric takes no parameters."""


@attrs.frozen
class MinkowskiParams:
    p: float = attrs.field(default=2.0, validator=rules.gte(1.0), metadata={INFINITY_OK: True})


def lazy_factory(class_name: str, doc: str, **fixed):
    """A factory that imports the torch implementation only when called."""

    def factory(params):
        metrics = importlib.import_module("visim.metrics.distances")
        return getattr(metrics, class_name)(**fixed, **attrs.asdict(params))

    factory.__doc__ = doc
    factory.__name__ = f"build_{class_name.lower()}"
    return factory


# name, implementation, params, aliases (the original engine's CamelCase names first), summary
BUILTIN_METRICS = (
    ("euclidean", "Euclidean", NoParams, ("EuclideanDistance", "l2"), "L2 distance."),
    (
        "sqeuclidean",
        "SquaredEuclidean",
        NoParams,
        ("EuclideanSquare", "EuclideanSquareDistance", "squared_euclidean"),
        "Squared L2 distance (torchreid's 'euclidean').",
    ),
    ("cosine", "CosineDistance", NoParams, ("CosineDistance",), "Cosine distance 1 - cos(a, b)."),
    (
        "cosine_similarity",
        "CosineSimilarity",
        NoParams,
        ("CosineSimilarity",),
        "Cosine similarity cos(a, b) (higher is closer).",
    ),
    ("dot", "DotProduct", NoParams, ("DotProduct", "inner_product"), "Inner product (higher is closer)."),
    ("manhattan", "Manhattan", NoParams, ("ManhattanDistance", "l1", "cityblock"), "L1 distance."),
    ("chebyshev", "Chebyshev", NoParams, ("ChebyshevDistance", "linf"), "L-infinity distance."),
    ("minkowski", "Minkowski", MinkowskiParams, ("MinkowskiDistance",), "Lp distance, p >= 1."),
)
SOFTMAX_METRICS = (
    ("negsoftmax_euclidean", False, ("NegSoftmaxEuclideanDist", "NegSoftmaxEuclideanDistance")),
    (
        "negsoftmax_sqeuclidean",
        True,
        ("NegSoftmaxEuclideanSqDist", "NegSoftmaxEuclideanSquareDistance"),
    ),
)


@hookimpl
def register_metrics(register):
    for name, class_name, params, aliases, doc in BUILTIN_METRICS:
        register(name, lazy_factory(class_name, doc), params=params, aliases=aliases, doc=doc)
    for name, squared, aliases in SOFTMAX_METRICS:
        which = "squared L2" if squared else "L2"
        doc = f"Softmax over the gallery of the negative {which} distance (higher is closer)."
        factory = lazy_factory("NegSoftmax", doc, squared=squared)
        register(name, factory, params=NoParams, aliases=aliases, doc=doc)


__all__ = ["Metric", "MinkowskiParams", "NoParams", "register_metrics"]
