"""The evaluation options: their choices, their defaults and what each protocol means.

This module is the one home of those facts. :class:`EvalOptions` is what
:func:`~visim.evaluation.evaluate` and :func:`~visim.evaluation.evaluate_embeddings` take; the
config schema (``test.protocol`` ...), ``visim evaluate`` and ``visim data check`` take their
choices and defaults from here. It imports neither torch nor the engine, so the config layer can
use it; its validators are the named rules of :mod:`visim.config.rules`.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable
from typing import Any

import attrs

from visim.config import rules
from visim.config.errors import InvalidParameterException, Problem
from visim.suggest import did_you_mean

JUNK_PID = -1  # identity of distractor images ("junk"), as in Market-1501


@attrs.frozen
class Protocol:
    """Which gallery items a query ignores: they are neither positives nor negatives."""

    name: str
    same_camera: bool = False  # the query's identity seen by the query's camera
    junk: bool = False  # identity JUNK_PID
    itself: bool = False  # the gallery item at the query's own index (query set == gallery)
    meaning: str = ""


PROTOCOL_RULES = {
    protocol.name: protocol
    for protocol in (
        Protocol(
            "market1501",
            same_camera=True,
            junk=True,
            meaning="ignores gallery items of the query's identity taken by the query's camera, "
            f"and identity {JUNK_PID} (junk)",
        ),
        Protocol("none", meaning="ignores nothing"),
        Protocol(
            "exclude_self",
            itself=True,
            meaning="ignores the query itself: the query set is the gallery, item for item",
        ),
    )
}
PROTOCOLS = tuple(PROTOCOL_RULES)
NO_POSITIVE = ("skip", "zero", "error")
AP_MODES = ("standard", "market_official")

# How a memory budget is spent. A quarter is scratch space, in which the candidate lists, the
# tie fallback and the top-k lists are processed in slices; the rest holds a chunk of queries:
# its distance block, the metric's temporaries, the candidate flags and candidate indices, at
# most BYTES_PER_PAIR per (query, gallery) pair (measured with float32 blocks, rounded up).
SCRATCH_SHARE = 4
BYTES_PER_PAIR = 32
BYTES_PER_CANDIDATE = 160  # labels, composite keys and search results of one candidate
BYTES_PER_SORTED_PAIR = 48  # a row stable-sorted by the tie fallback, or ranked for top-k

counting_number = rules.all_(int, rules.gte(1))  # bool is rejected by gte (not a number)
# A CMC curve is computed as deep as the largest rank asked for: beyond this, a rank is a typo
# that would allocate gigabytes (no gallery of real data is this deep in useful ranks).
MAX_RANK = 100_000
rank_number = rules.all_(int, rules.gte(1), rules.lte(MAX_RANK))


def strict_bool(value: Any) -> Any:
    """None or a bool (numpy's too, made a bool); anything else, ``"false"`` included, is refused."""
    if value is None or isinstance(value, bool):
        return value
    if type(value).__module__ == "numpy" and type(value).__name__ in ("bool", "bool_"):
        return bool(value)
    raise InvalidParameterException(Problem(f"must be a bool or None (got {value!r})", "$.higher_is_better"))


def as_topk(value: Iterable[int] | int) -> tuple[Any, ...]:
    """``5`` -> ``(5,)``; integral numbers (numpy's too) become ints, the rest is validated."""
    values = (value,) if isinstance(value, numbers.Integral) else tuple(value)
    return tuple(int(k) if isinstance(k, numbers.Integral) and not isinstance(k, bool) else k for k in values)


@attrs.frozen(kw_only=True)
class EvalOptions:
    """Everything besides the data that changes what :func:`~visim.evaluation.evaluate` reports.

    ``higher_is_better`` None means: the metric's own attribute (False for a bare matrix).
    """

    topk: tuple[int, ...] = attrs.field(
        default=(1, 5, 10, 20), converter=as_topk, validator=rules.forall(rank_number)
    )
    higher_is_better: bool | None = attrs.field(default=None, converter=strict_bool)
    protocol: str = attrs.field(default="market1501", validator=rules.in_(PROTOCOLS))
    no_positive: str = attrs.field(default="skip", validator=rules.in_(NO_POSITIVE))
    ap: str = attrs.field(default="standard", validator=rules.in_(AP_MODES))
    max_rank: int = attrs.field(default=50, validator=rank_number)
    keep_topk: int = attrs.field(default=0, validator=rules.all_(int, rules.gte(0)))
    memory_budget: int = attrs.field(default=1 << 30, validator=counting_number)

    @classmethod
    def build(cls, options: EvalOptions | None = None, **settings: Any) -> EvalOptions:
        """``options`` (or the defaults) with ``settings`` (field names) applied over them."""
        names = [field.name for field in attrs.fields(cls)]
        for key in settings:
            if key not in names:
                raise TypeError(f"unknown evaluation option {key!r}{did_you_mean(key, names)}")
        return attrs.evolve(options or cls(), **settings)

    @property
    def protocol_rules(self) -> Protocol:
        return PROTOCOL_RULES[self.protocol]

    @property
    def scratch_bytes(self) -> int:
        return self.memory_budget // SCRATCH_SHARE

    def chunk_rows(self, num_gallery: int, itemsize: int = 4) -> int:
        """Queries per chunk so that a chunk and its scratch stay within ``memory_budget``.

        At least one query per chunk: a budget below one gallery row is exceeded by that row.
        """
        per_pair = BYTES_PER_PAIR * max(4, itemsize) // 4
        room = self.memory_budget - self.scratch_bytes
        return max(1, room // max(1, num_gallery * per_pair))


DEFAULTS = EvalOptions()


def protocol_named(name: str) -> Protocol:
    """The protocol called ``name``; an unknown name fails as the ``protocol`` option does."""
    return EvalOptions(protocol=name).protocol_rules
