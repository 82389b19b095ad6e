"""scipy.spatial.distance's cdist metrics as visim metrics named ``scipy.<name>``.

The hook module imports neither scipy nor torch: :mod:`visim_scipy_metrics.metric` is imported
when a metric is built.
"""

from __future__ import annotations

import attrs
from attrs import validators as v

import visim

__version__ = "0.1.0"

weights = attrs.field(
    default=None, validator=v.optional(v.deep_iterable(v.ge(0.0), v.instance_of(tuple)))
)


@attrs.frozen
class NoParams:
    """The metric takes no parameters."""


@attrs.frozen
class WeightedParams:
    """``w``: optional non-negative weight per embedding dimension."""

    w: tuple[float, ...] | None = weights


@attrs.frozen
class MinkowskiParams:
    p: float = attrs.field(default=2.0, validator=v.gt(0.0))
    w: tuple[float, ...] | None = weights


@attrs.frozen
class SEuclideanParams:
    """``V``: per-dimension variances; estimated from the gallery when omitted."""

    V: tuple[float, ...] | None = attrs.field(
        default=None, validator=v.optional(v.deep_iterable(v.gt(0.0), v.instance_of(tuple)))
    )


@attrs.frozen
class MahalanobisParams:
    """``VI``: the inverse covariance matrix; estimated from the gallery when omitted."""

    VI: tuple[tuple[float, ...], ...] | None = None


@attrs.frozen
class JensenShannonParams:
    base: float | None = attrs.field(default=None, validator=v.optional(v.gt(0.0)))


WEIGHTED = (
    "braycurtis",
    "canberra",
    "chebyshev",
    "cityblock",
    "correlation",
    "cosine",
    "dice",
    "euclidean",
    "hamming",
    "jaccard",
    "rogerstanimoto",
    "russellrao",
    "sokalsneath",
    "sqeuclidean",
    "yule",
)
SPECIAL = {
    "minkowski": MinkowskiParams,
    "seuclidean": SEuclideanParams,
    "mahalanobis": MahalanobisParams,
    "jensenshannon": JensenShannonParams,
}
BOOLEAN = {"dice", "hamming", "jaccard", "rogerstanimoto", "russellrao", "sokalsneath", "yule"}


def factory_for(scipy_name: str):
    def factory(params):
        from visim_scipy_metrics.metric import ScipyMetric

        return ScipyMetric(scipy_name, **attrs.asdict(params))

    factory.__name__ = f"build_scipy_{scipy_name}"
    return factory


def describe(scipy_name: str) -> str:
    kind = " (on the non-zero pattern of the inputs)" if scipy_name in BOOLEAN else ""
    return f"scipy.spatial.distance.cdist metric {scipy_name!r}{kind}."


@visim.hookimpl
def register_metrics(register):
    for scipy_name in WEIGHTED:
        register(f"scipy.{scipy_name}", factory_for(scipy_name), params=WeightedParams,
                 doc=describe(scipy_name))
    for scipy_name, params in SPECIAL.items():
        register(f"scipy.{scipy_name}", factory_for(scipy_name), params=params,
                 doc=describe(scipy_name))
