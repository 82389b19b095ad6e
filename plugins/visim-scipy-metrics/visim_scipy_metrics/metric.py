"""The metric object: scipy's ``cdist`` on numpy copies of the inputs, back as a torch tensor."""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial.distance import cdist

from visim.metrics.base import Metric


class ScipyMetric(Metric):
    """``cdist(a, b, name, **options)``; options left as None are not passed to scipy.

    ``V`` (seuclidean) and ``VI`` (mahalanobis) default to estimates from the gallery ``b``
    rather than from ``a`` and ``b`` together, so every chunk of queries sees one metric.
    """

    def __init__(self, name: str, **options) -> None:
        self.name = name
        self.options = {key: value for key, value in options.items() if value is not None}

    def compute(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        xa = a.detach().cpu().numpy().astype(np.float64, copy=False)
        xb = b.detach().cpu().numpy().astype(np.float64, copy=False)
        options = {key: np.asarray(value, dtype=np.float64) for key, value in self.options.items()}
        # cdist's compiled jensenshannon takes no base; the distance in base b is the
        # natural-log distance divided by sqrt(ln b).
        scale = 1 / np.sqrt(np.log(options.pop("base"))) if "base" in options else None
        if self.name == "seuclidean" and "V" not in options:
            options["V"] = np.var(xb, axis=0, ddof=1)
        if self.name == "mahalanobis" and "VI" not in options:
            options["VI"] = np.linalg.pinv(np.atleast_2d(np.cov(xb, rowvar=False)))
        try:
            out = cdist(xa, xb, self.name, **options)
        except ValueError as exc:
            raise ValueError(f"scipy.{self.name}: {exc}") from None
        if scale is not None:
            out *= scale
        return torch.from_numpy(out).to(device=a.device, dtype=a.dtype)

    def __repr__(self) -> str:
        options = ", ".join(f"{key}={value!r}" for key, value in self.options.items())
        return f"ScipyMetric({self.name!r}{', ' if options else ''}{options})"
