"""What an evaluation reports: CMC, mAP, mINP, per-query values and the query counts."""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np

from visim.evaluation.options import EvalOptions


class NoPositiveError(ValueError):
    """Queries without a positive in the gallery, under ``no_positive="error"`` (or all of them)."""


@attrs.frozen(eq=False)
class PerQuery:
    """One entry per query. ``first_hit`` is the 1-based rank of the first positive, 0 if none."""

    ap: np.ndarray
    inp: np.ndarray
    first_hit: np.ndarray
    num_positives: np.ndarray

    def __len__(self) -> int:
        return len(self.ap)


@attrs.frozen(eq=False)
class RankingResult:
    """``cmc[k-1]`` is rank-k accuracy (length ``max_rank``); ``cmc_at`` holds the requested
    ``topk`` (which may exceed ``max_rank``). Means are over the counted queries: the valid
    ones under ``no_positive="skip"``, all of them under "zero"."""

    cmc: np.ndarray
    cmc_at: dict[int, float]
    mAP: float
    mINP: float
    num_queries: int
    num_valid_queries: int
    skipped: np.ndarray
    per_query: PerQuery
    options: EvalOptions = attrs.field(repr=False)
    topk_indices: np.ndarray | None = attrs.field(default=None, repr=False)
    world_size: int = 1  # the processes that ranked shares of the gallery

    @property
    def num_skipped(self) -> int:
        return len(self.skipped)

    def rank(self, k: int) -> float:
        """Rank-k accuracy for any ``k`` in ``topk`` or up to ``max_rank``."""
        if k in self.cmc_at:
            return self.cmc_at[k]
        if 1 <= k <= len(self.cmc):
            return float(self.cmc[k - 1])
        raise KeyError(f"rank-{k} was not computed (topk={self.options.topk}, max_rank={len(self.cmc)})")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary: ``{"cmc": {"1": ..}, "mAP", "mINP", query counts, options}``."""
        return {
            "cmc": {str(k): v for k, v in self.cmc_at.items()},
            "mAP": self.mAP,
            "mINP": self.mINP,
            "num_queries": self.num_queries,
            "num_valid_queries": self.num_valid_queries,
            "num_skipped": self.num_skipped,
            "protocol": self.options.protocol,
            "ap": self.options.ap,
            "no_positive": self.options.no_positive,
            "max_rank": self.options.max_rank,
            "world_size": self.world_size,
        }

    @classmethod
    def from_per_query(cls, per_query: PerQuery, options: EvalOptions, topk_indices=None):
        has_positive = per_query.num_positives > 0
        missing = np.flatnonzero(~has_positive)
        if options.no_positive == "error" and len(missing):
            raise no_positive_error(missing)
        counted = has_positive if options.no_positive == "skip" else np.ones_like(has_positive)
        num_counted = int(counted.sum())
        if num_counted == 0:
            raise NoPositiveError(
                f"none of the {len(per_query)} queries has a positive match in the gallery "
                f"under protocol {options.protocol!r}: nothing to evaluate"
            )
        depth = max((options.max_rank, *options.topk))
        first = per_query.first_hit[counted]
        hits = np.bincount(np.minimum(first[first > 0], depth + 1), minlength=depth + 2)
        curve = np.cumsum(hits[1 : depth + 1]) / num_counted
        return cls(
            cmc=curve[: options.max_rank].copy(),
            cmc_at={k: float(curve[k - 1]) for k in options.topk},
            mAP=float(per_query.ap[counted].mean()),
            mINP=float(per_query.inp[counted].mean()),
            num_queries=len(per_query),
            num_valid_queries=int(has_positive.sum()),
            skipped=missing if options.no_positive == "skip" else np.empty(0, dtype=np.int64),
            per_query=per_query,
            options=options,
            topk_indices=topk_indices,
        )


def no_positive_error(missing: np.ndarray) -> NoPositiveError:
    shown = ", ".join(str(i) for i in missing[:5]) + (", ..." if len(missing) > 5 else "")
    return NoPositiveError(
        f"{len(missing)} queries have no positive match in the gallery (query indices {shown}); "
        "use no_positive='skip' to leave them out or 'zero' to count them as misses"
    )
