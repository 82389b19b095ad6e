"""Gallery indexes: the ``indexes`` component kind and the index directory format.

This module is the built-ins' plugin: it registers ``exact`` through ``register_indexes``, the
hook every index plugin uses. It imports no torch; the index is built by its factory.
"""

from __future__ import annotations

import attrs

from visim.config import rules
from visim.evaluation.options import DEFAULTS
from visim.hookspecs import hookimpl


@attrs.frozen(kw_only=True)
class ExactParams:
    """Exact search, chunked so that its working set stays within ``memory_budget`` bytes."""

    memory_budget: int = attrs.field(default=DEFAULTS.memory_budget, validator=rules.gte(1 << 20))


def build_exact(params: ExactParams, *, metric, dim: int):
    from visim.index.exact import ExactIndex

    return ExactIndex(metric, dim, memory_budget=params.memory_budget)


@hookimpl
def register_indexes(register):
    register("exact", build_exact, params=ExactParams,
             doc="Exact search over the whole gallery with any metric, in bounded memory.")
