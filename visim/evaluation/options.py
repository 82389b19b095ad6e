"""The evaluation options, validated once, and how a memory budget becomes a chunk size."""

from __future__ import annotations

import operator
from collections.abc import Iterable

import attrs

PROTOCOLS = ("market1501", "none", "exclude_self")
NO_POSITIVE = ("skip", "zero", "error")
AP_MODES = ("standard", "market_official")
DEFAULT_TOPK = (1, 5, 10, 20)
DEFAULT_MEMORY_BUDGET = 1 << 30
# How a memory budget is spent. A quarter is scratch space, in which the candidate lists, the
# tie fallback and the top-k lists are processed in slices; the rest holds a chunk of queries:
# its distance block, the metric's temporaries, the candidate flags and candidate indices, at
# most BYTES_PER_PAIR per (query, gallery) pair (measured with float32 blocks, rounded up).
SCRATCH_SHARE = 4
BYTES_PER_PAIR = 32
BYTES_PER_CANDIDATE = 160  # labels, composite keys and search results of one candidate
BYTES_PER_SORTED_PAIR = 48  # a row stable-sorted by the tie fallback, or ranked for top-k


def _choice(name: str, allowed: tuple[str, ...]):
    def check(instance, attribute, value):
        if value not in allowed:
            raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))} (got {value!r})")

    return check


def _positive_int(name: str):
    def check(instance, attribute, value):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1 (got {value!r})")

    return check


def _as_topk(value: Iterable[int] | int) -> tuple[int, ...]:
    values = (value,) if isinstance(value, int) else tuple(value)
    for k in values:
        if isinstance(k, bool):
            raise ValueError(f"topk values must be integers >= 1 (got {k!r})")
        try:
            operator.index(k)
        except TypeError:
            raise ValueError(f"topk values must be integers >= 1 (got {k!r})") from None
        if k < 1:
            raise ValueError(f"topk values must be integers >= 1 (got {k!r})")
    return tuple(int(k) for k in values)


@attrs.frozen(kw_only=True)
class EvalOptions:
    """Everything besides the data that changes what :func:`~visim.evaluation.evaluate` reports."""

    topk: tuple[int, ...] = attrs.field(default=DEFAULT_TOPK, converter=_as_topk)
    higher_is_better: bool = attrs.field(default=False, converter=bool)
    protocol: str = attrs.field(default="market1501", validator=_choice("protocol", PROTOCOLS))
    no_positive: str = attrs.field(default="skip", validator=_choice("no_positive", NO_POSITIVE))
    ap: str = attrs.field(default="standard", validator=_choice("ap", AP_MODES))
    max_rank: int = attrs.field(default=50, validator=_positive_int("max_rank"))
    keep_topk: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    memory_budget: int = attrs.field(
        default=DEFAULT_MEMORY_BUDGET, validator=_positive_int("memory_budget")
    )

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
