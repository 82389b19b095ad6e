"""A chunk of queries against the gallery, computed in fixed blocks of gallery columns.

A matrix product's floats may depend on the shapes it is called with (BLAS kernels split work
by the number of rows and columns), so a key computed for ``metric(q, gallery)`` need not equal
the same pair's key in ``metric(q, gallery[a:b])``. Evaluation therefore always calls the
metric on the same blocks, ``GALLERY_BLOCK`` columns starting at multiples of it, whether one
process holds the whole gallery or a process holds a shard of whole blocks: the keys, hence the
rankings and every float reported, do not depend on the number of processes.

Metrics that normalise over the whole gallery row (``whole_gallery = True``, e.g. the
negative-softmax similarities) are called on the whole gallery, and cannot be sharded.
"""

from __future__ import annotations

import torch

GALLERY_BLOCK = 4096


def whole_gallery(metric) -> bool:
    """Whether ``metric``'s values for a pair depend on the rest of the gallery row."""
    return bool(getattr(metric, "whole_gallery", False))


def metric_block(metric, queries: torch.Tensor, gallery: torch.Tensor, block: int | None = None) -> torch.Tensor:
    """``metric(queries, gallery)``, ``block`` (default ``GALLERY_BLOCK``) gallery rows at a
    time; ``gallery`` must start at a multiple of ``block`` of the whole gallery."""
    block = block or GALLERY_BLOCK
    if gallery.shape[0] <= block or whole_gallery(metric):
        return torch.as_tensor(metric(queries, gallery))
    out = None
    for start in range(0, gallery.shape[0], block):
        part = torch.as_tensor(metric(queries, gallery[start : start + block]))
        if out is None:
            out = torch.empty((part.shape[0], gallery.shape[0]), dtype=part.dtype, device=part.device)
        out[:, start : start + part.shape[1]] = part
    return out
