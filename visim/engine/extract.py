"""Embedding extraction: batches under inference mode into one preallocated output.

The model runs under ``torch.inference_mode``; the output is an ordinary tensor, so callers
may cache on it or modify it.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
import torch
from tqdm import tqdm


@attrs.frozen
class Embeddings:
    """Embeddings of one split with their identities, cameras and image paths."""

    embeddings: torch.Tensor  # [N, E] float32 on the CPU
    pids: torch.Tensor
    camids: torch.Tensor
    paths: list[str]

    def __len__(self) -> int:
        return self.embeddings.shape[0]


def as_long(values) -> torch.Tensor:
    return values.long().cpu() if isinstance(values, torch.Tensor) else torch.as_tensor(values, dtype=torch.long)


@torch.no_grad()
def extract(model, loader, get_data: Callable, device, autocast: Callable, quiet: bool = True) -> Embeddings:
    """Embed every item of ``loader``; memory holds only the output, filled batch by batch."""
    was_training = model.training
    model.eval()
    out: torch.Tensor | None = None
    total = len(loader.dataset) if hasattr(loader, "dataset") else None
    pids, camids, paths, filled = [], [], [], 0
    try:
        for batch in tqdm(loader, desc="extract", leave=False, disable=quiet):
            with torch.inference_mode(), autocast():  # the model runs without autograd records
                features = model(get_data(batch))
            features = features.float().cpu()
            n = features.shape[0]
            if out is None or filled + n > out.shape[0]:  # first batch, or a loader longer than said
                grown = torch.empty((max(total or 0, filled + n), features.shape[1]), dtype=torch.float32)
                if out is not None:
                    grown[:filled] = out[:filled]
                out = grown
            out[filled : filled + n] = features
            filled += n
            pids.append(as_long(batch["pid"]))
            camids.append(as_long(batch["camid"]))
            paths.extend(batch.get("path", [""] * n))
    finally:
        model.train(was_training)
    if out is None:
        raise ValueError("the loader yielded no batch: is the split empty?")
    return Embeddings(out[:filled], torch.cat(pids), torch.cat(camids), list(paths))
