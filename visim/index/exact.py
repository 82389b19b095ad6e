"""Exact search: the metric against blocks of the gallery, keeping each query's k best."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from visim.errors import UsageError
from visim.evaluation.blocks import whole_gallery

BYTES_PER_PAIR = 16  # a block of keys, its top-k scratch and the metric's temporaries


class UnsupportedMetricError(UsageError, ValueError):
    """The index cannot search with this metric."""


class ExactIndex:
    """Every query against every gallery item, ``memory_budget`` bytes at a time."""

    approximate = False

    def __init__(self, metric, dim: int, *, memory_budget: int = 1 << 30) -> None:
        if whole_gallery(metric):
            raise UnsupportedMetricError(
                f"metric {metric!r} normalises over the whole gallery row; an index cannot search with it"
            )
        self.metric, self.dim, self.memory_budget = metric, dim, memory_budget
        self.higher_is_better = bool(getattr(metric, "higher_is_better", False))
        self.gallery: Any = None

    def build(self, gallery) -> None:
        self.gallery = gallery

    def save(self, folder: Path) -> None:
        """Nothing besides the gallery visim stores."""

    def load(self, folder: Path, gallery) -> None:
        self.gallery = gallery

    def search(self, queries, k: int) -> tuple[np.ndarray, np.ndarray]:
        queries = torch.as_tensor(np.asarray(queries, dtype=np.float32))
        num_gallery = len(self.gallery)
        k = max(1, int(k))
        # Up to 1024 queries at a time, against gallery blocks of at least 4096 rows if the
        # budget allows; a block's float32 copy and its keys stay within the budget.
        chunk = max(1, min(len(queries), 1024, self.memory_budget // (BYTES_PER_PAIR * 4096)))
        rows = max(1, self.memory_budget // (chunk * BYTES_PER_PAIR + 8 * self.dim))
        scores, indices = [], []
        for start in range(0, len(queries), chunk):
            best = TopK(len(queries[start : start + chunk]), k)
            for first in range(0, num_gallery, rows):
                block = torch.from_numpy(np.require(self.gallery[first : first + rows], np.float32, ["C", "W"]))
                with torch.no_grad():
                    values = torch.as_tensor(self.metric(queries[start : start + chunk], block))
                best.add(-values if self.higher_is_better else values, first)
            keys, ids = best.result()
            scores.append((-keys if self.higher_is_better else keys).numpy())
            indices.append(ids.numpy())
        return np.concatenate(scores), np.concatenate(indices)


class TopK:
    """A running k best (lowest key, then lowest gallery index) per row, over blocks in order."""

    def __init__(self, rows: int, k: int) -> None:
        self.k = k
        self.keys = torch.full((rows, 0), float("nan"))
        self.ids = torch.full((rows, 0), -1, dtype=torch.int64)

    def add(self, keys: torch.Tensor, first: int) -> None:
        if bool(torch.isnan(keys.amax())):  # amax propagates NaN, in one pass
            raise ValueError("the metric returned NaN; check the embeddings")
        take = min(self.k, keys.shape[1])
        kth = keys.topk(take, dim=1, largest=False, sorted=True).values[:, -1:]
        # Everything up to the k-th key (usually k items a row; more when it ties), in
        # row-major order, so that each row's candidates are in gallery order.
        rows, cols = (keys <= kth).nonzero(as_tuple=True)
        counts = torch.bincount(rows, minlength=len(keys))
        slots = torch.arange(len(rows)) - (torch.cumsum(counts, 0) - counts)[rows]
        width = int(counts.max())
        new_keys = torch.full((len(keys), width), float("nan"), dtype=keys.dtype)
        new_ids = torch.full((len(keys), width), -1, dtype=torch.int64)
        new_keys[rows, slots], new_ids[rows, slots] = keys[rows, cols], cols + first
        # Earlier blocks first, each in gallery order: a stable sort keeps ties by index; NaN
        # (padding) sorts last.
        keys_all = torch.cat([self.keys.to(keys.dtype), new_keys], 1)
        order = torch.sort(keys_all, dim=1, stable=True).indices[:, : self.k]
        self.keys = keys_all.gather(1, order)
        self.ids = torch.cat([self.ids, new_ids], 1).gather(1, order)

    def result(self) -> tuple[torch.Tensor, torch.Tensor]:
        missing = self.k - self.keys.shape[1]
        if missing > 0:
            self.keys = torch.cat([self.keys, torch.full((len(self.keys), missing), float("nan"), dtype=self.keys.dtype)], 1)
            self.ids = torch.cat([self.ids, torch.full((len(self.ids), missing), -1, dtype=torch.int64)], 1)
        return self.keys, self.ids
