"""PML's miners and distances, chosen inside a loss's params: ``miner: batch_hard`` or
``miner: {name: triplet_margin, margin: 0.1, distance: cosine}``.

They are not visim components (no other part of visim uses them), so each is a small table of
name -> attrs params class, checked by the same converter as everything else in a config.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

import attrs

from visim.config import rules
from visim.config.errors import ConfigError, Problem

STRATEGIES = ("easy", "semihard", "hard", "all")


def parse_choice(value: Any, table: Mapping[str, type], what: str, path: str) -> tuple[str, Any]:
    """``(name, params instance)`` of ``name`` or ``{name: ..., <params>}``; ConfigError if bad."""
    from visim.config.converter import structure

    if isinstance(value, str):
        name, given, name_path = value, {}, path
    else:
        if "name" not in value:
            raise ConfigError(Problem(f"a {what} needs a 'name' (one of {', '.join(table)})", path))
        name, name_path = value["name"], f"{path}.name"
        given = {key: item for key, item in value.items() if key != "name"}
    if name not in table:
        close = difflib.get_close_matches(str(name), list(table), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f" (one of {', '.join(table)})"
        raise ConfigError(Problem(f"unknown {what} {name!r}{hint}", name_path))
    return name, structure(given, table[name], path)


def choice_of(table: Mapping[str, type], what: str):
    """An attrs validator: the value names an entry of ``table`` and its params are valid."""

    def check(instance, attribute, value) -> None:
        if value is not None:
            parse_choice(value, table, what, f"$.{attribute.name}")

    check.__doc__ = f"must be a {what}: one of {', '.join(table)}, or a mapping with 'name'"
    return check


Choice = str | dict[str, Any] | None


# -- distances -------------------------------------------------------------------------------
@attrs.frozen
class CosineParams:
    """Cosine similarity of the L2-normalised embeddings (higher is closer)."""


@attrs.frozen
class LpParams:
    """The Lp distance, raised to ``power``; on normalised embeddings by default (PML's)."""

    p: float = attrs.field(default=2.0, validator=rules.gt(0.0))
    power: float = attrs.field(default=1.0, validator=rules.gt(0.0))
    normalize_embeddings: bool = True


DISTANCES = {"cosine": CosineParams, "lp": LpParams}
distance_field = attrs.field(default=None, validator=choice_of(DISTANCES, "distance"))


# -- miners ----------------------------------------------------------------------------------
@attrs.frozen
class MultiSimilarityMinerParams:
    epsilon: float = attrs.field(default=0.1, validator=rules.gte(0.0))
    distance: Choice = distance_field


@attrs.frozen
class BatchHardMinerParams:
    """For each anchor, the hardest positive and the hardest negative."""

    distance: Choice = distance_field


@attrs.frozen
class TripletMarginMinerParams:
    margin: float = attrs.field(default=0.2, validator=rules.gte(0.0))
    type_of_triplets: str = attrs.field(default="all", validator=rules.in_(STRATEGIES))
    distance: Choice = distance_field


@attrs.frozen
class PairMarginMinerParams:
    pos_margin: float = 0.2
    neg_margin: float = 0.8
    distance: Choice = distance_field


@attrs.frozen
class BatchEasyHardMinerParams:
    pos_strategy: str = attrs.field(default="easy", validator=rules.in_(STRATEGIES))
    neg_strategy: str = attrs.field(default="semihard", validator=rules.in_(STRATEGIES))
    allowed_pos_range: tuple[float, float] | None = None
    allowed_neg_range: tuple[float, float] | None = None
    distance: Choice = distance_field

    def __attrs_post_init__(self) -> None:
        pair = {self.pos_strategy, self.neg_strategy}
        if pair == {"semihard"} or pair == {"semihard", "all"}:
            raise ValueError("pos_strategy and neg_strategy cannot be semihard and semihard, or semihard and all")


MINERS = {
    "multi_similarity": MultiSimilarityMinerParams,
    "batch_hard": BatchHardMinerParams,
    "triplet_margin": TripletMarginMinerParams,
    "pair_margin": PairMarginMinerParams,
    "batch_easy_hard": BatchEasyHardMinerParams,
}
miner_field = attrs.field(default=None, validator=choice_of(MINERS, "miner"))
