"""Re-ranking: post-processing of rankings, registered through ``register_rerankers``.

Built-ins: ``k_reciprocal`` (Zhong et al. 2017, as torchreid computes it), ``query_expansion``
(alpha query expansion, as fast-reid's ``aqe``) and ``dba`` (database-side augmentation). This
hook module stays free of torch: a factory imports its implementation when it is built. The
contract lives in :mod:`visim.rerank.base`.
"""

from __future__ import annotations

import importlib

import attrs

from visim.config import rules
from visim.hookspecs import hookimpl


@attrs.frozen
class KReciprocalParams:
    """Zhong et al.'s defaults: k1=20, k2=6, lambda_value=0.3."""

    k1: int = attrs.field(default=20, validator=[rules.instance(int), rules.gte(1)])
    k2: int = attrs.field(default=6, validator=[rules.instance(int), rules.gte(1)])
    lambda_value: float = attrs.field(default=0.3, validator=rules.within(0.0, 1.0))


@attrs.frozen
class QueryExpansionParams:
    """``k`` neighbours (itself included), weighted by ``similarity ** alpha``."""

    k: int = attrs.field(default=5, validator=[rules.instance(int), rules.gte(1)])
    alpha: float = attrs.field(default=3.0, validator=rules.gte(0.0))


@attrs.frozen
class DBAParams:
    """``k`` gallery neighbours averaged (itself included)."""

    k: int = attrs.field(default=5, validator=[rules.instance(int), rules.gte(1)])


def lazy_factory(module: str, class_name: str, doc: str):
    """A factory that imports the torch implementation only when called."""

    def factory(params):
        return getattr(importlib.import_module(module), class_name)(params)

    factory.__doc__ = doc
    factory.__name__ = f"build_{class_name.lower()}"
    return factory


BUILTIN_RERANKERS = (
    ("k_reciprocal", "visim.rerank.k_reciprocal", "KReciprocal", KReciprocalParams, ("rerank", "re_ranking"),
     "k-reciprocal re-ranking (Zhong et al. 2017), bounded memory, torchreid's numbers."),
    ("query_expansion", "visim.rerank.query_expansion", "QueryExpansion", QueryExpansionParams, ("aqe", "qe"),
     "Alpha query expansion of queries and gallery (fast-reid's aqe)."),
    ("dba", "visim.rerank.dba", "DatabaseAugmentation", DBAParams, ("database_augmentation",),
     "Database-side augmentation: each gallery item averaged with its k neighbours."),
)


@hookimpl
def register_rerankers(register):
    for name, module, class_name, params, aliases, doc in BUILTIN_RERANKERS:
        register(name, lazy_factory(module, class_name, doc), params=params, aliases=aliases, doc=doc)
