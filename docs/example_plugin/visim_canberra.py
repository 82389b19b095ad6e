"""visim-canberra: the Canberra distance as a visim metric."""

from __future__ import annotations

import attrs
from attrs import validators as v

from visim import hookimpl
from visim.metrics.base import Metric


@attrs.frozen
class CanberraParams:
    """The metric's config schema: fields, defaults and validators."""

    eps: float = attrs.field(default=1e-12, validator=v.gt(0.0))


class Canberra(Metric):
    """``sum_i |a_i - b_i| / (|a_i| + |b_i|)``: a distance, lower is closer."""

    def __init__(self, eps: float) -> None:
        self.eps = eps

    def compute(self, a, b):
        # a [N, E] and b [M, E] arrive as validated float tensors; broadcast to [N, M, E].
        a, b = a.unsqueeze(1), b.unsqueeze(0)
        return ((a - b).abs() / (a.abs() + b.abs()).clamp_min(self.eps)).sum(dim=2)


def build_canberra(params: CanberraParams) -> Canberra:
    """Canberra distance: per-dimension differences relative to the magnitudes."""
    return Canberra(params.eps)


@hookimpl
def register_metrics(register):
    register("canberra", build_canberra, params=CanberraParams, aliases=("CanberraDistance",))
