"""Identities, cameras and the protocol: which gallery items are positives, which are ignored.

:meth:`Labels.relevance` applies the protocols defined in :mod:`visim.evaluation.options`;
the fast ranking path, the exact fallback and the top-k helper all ask it.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch

from visim.evaluation.options import JUNK_PID, protocol_named


def as_label_tensor(values: Any, what: str, length: int) -> torch.Tensor:
    """Integer labels as a 1-D int64 tensor; ``[N, 1]`` / ``[1, N]`` shapes are flattened."""
    if isinstance(values, torch.Tensor):
        array = values.detach().cpu().numpy()
    else:
        array = np.asarray(values)
    array = array.reshape(-1) if array.size == length and array.ndim <= 2 else array
    if array.ndim != 1 or array.shape[0] != length:
        raise ValueError(f"{what} must hold one label per row ({length}), got shape {array.shape}")
    if array.dtype.kind == "f":
        if not np.all(np.isfinite(array)) or not np.all(array == np.round(array)):
            raise ValueError(f"{what} must be integers, got non-integral values")
    elif array.dtype.kind not in "iub":
        raise ValueError(f"{what} must be integers, got dtype {array.dtype}")
    return torch.from_numpy(array.astype(np.int64, copy=False))


class Labels:
    """Query and gallery identities (and cameras) under one protocol, on one device."""

    def __init__(self, q_pids, g_pids, q_camids, g_camids, *, protocol: str, shape) -> None:
        num_q, num_g = shape
        if num_q == 0 or num_g == 0:
            raise ValueError(f"nothing to rank: {num_q} queries and {num_g} gallery items")
        self.protocol = protocol
        self.ignores = protocol_named(protocol)
        self.q_pids = as_label_tensor(q_pids, "q_pids", num_q)
        self.g_pids = as_label_tensor(g_pids, "g_pids", num_g)
        self.q_cams = self.g_cams = None
        if self.ignores.same_camera:
            if q_camids is None or g_camids is None:
                raise ValueError(
                    "protocol 'market1501' ignores same-camera matches and needs q_camids and "
                    "g_camids; pass protocol='none' to rank without camera filtering"
                )
            self.q_cams = as_label_tensor(q_camids, "q_camids", num_q)
            self.g_cams = as_label_tensor(g_camids, "g_camids", num_g)
        if self.ignores.itself and num_q != num_g:
            raise ValueError(
                f"protocol 'exclude_self' needs the query set to be the gallery "
                f"(got {num_q} queries and {num_g} gallery items)"
            )
        self.groups = IdentityGroups.of(self.g_pids)

    def to(self, device: torch.device) -> Labels:
        for name in ("q_pids", "g_pids", "q_cams", "g_cams"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, value.to(device))
        self.groups = self.groups.to(device)
        return self

    def relevance(self, q: torch.Tensor, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(positive, valid)`` masks for (query index, gallery index) pairs, broadcast.

        ``valid`` is False for the gallery items the protocol ignores (see
        :class:`~visim.evaluation.options.Protocol`).
        """
        g_pid = self.g_pids[g]
        same = g_pid == self.q_pids[q]
        ignored = []
        if self.ignores.same_camera:
            ignored.append(same & (self.g_cams[g] == self.q_cams[q]))
        if self.ignores.junk:
            ignored.append(g_pid == JUNK_PID)
        if self.ignores.itself:
            ignored.append(g == q)
        if not ignored:
            return same, torch.ones_like(same)
        valid = ~functools.reduce(torch.logical_or, ignored)
        return same & valid, valid


class IdentityGroups:
    """The gallery indices of each identity: a query's positives are gathered directly
    instead of being found by scanning its whole gallery row."""

    def __init__(self, order: torch.Tensor, pids: torch.Tensor, starts, counts) -> None:
        self.order, self.pids, self.starts, self.counts = order, pids, starts, counts

    @classmethod
    def of(cls, g_pids: torch.Tensor) -> IdentityGroups:
        order = torch.sort(g_pids, stable=True).indices
        pids, counts = torch.unique_consecutive(g_pids[order], return_counts=True)
        return cls(order, pids, torch.cumsum(counts, 0) - counts, counts)

    def to(self, device: torch.device) -> IdentityGroups:
        return IdentityGroups(*(t.to(device) for t in (self.order, self.pids, self.starts, self.counts)))

    def members(self, pids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``[c, P]`` gallery indices sharing each query's identity, and which of them are real.

        Rows are padded to the largest group (with index 0, marked False).
        """
        where = torch.searchsorted(self.pids, pids).clamp_(max=len(self.pids) - 1)
        counts = torch.where(self.pids[where] == pids, self.counts[where], 0)
        width = int(counts.max()) if len(counts) else 0
        offsets = torch.arange(width, device=pids.device)
        real = offsets < counts.unsqueeze(1)
        slots = torch.where(real, self.starts[where].unsqueeze(1) + offsets, 0)
        return self.order[slots], real
