"""Extraction split across ranks and gathered back into the single-process order.

Batch ``b`` of the sequential query/gallery loader goes to rank ``b mod W``: every rank embeds
whole batches exactly as one process would (same images, same shapes, same kernels), so the
gathered embeddings equal the single-process ones bit for bit, and no item is duplicated or
padded into the result. Every rank ends with the full, ordered embeddings, and evaluates them.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, SequentialSampler, Subset

from visim.distributed.group import broadcast_buffers, rank, world_size
from visim.engine.extract import Embeddings, extract

# Bytes of embeddings in flight per all_gather round (summed over ranks).
GATHER_CHUNK_BYTES = 256 << 20
# A rank's share of each query/gallery loader, kept so that persistent workers persist.
_shards: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def shard_indices(num_items: int, batch_size: int, num_replicas: int, rank: int) -> list[int]:
    """Dataset indices of the batches ``rank``, ``rank + W``, ``rank + 2W``, ... in order."""
    stride = num_replicas * batch_size
    return [
        i
        for start in range(rank * batch_size, num_items, stride)
        for i in range(start, min(start + batch_size, num_items))
    ]


def shardable(loader) -> bool:
    """A plain in-order DataLoader: one whose batches we can deal out and reassemble."""
    return (
        isinstance(loader, DataLoader)
        and isinstance(loader.sampler, SequentialSampler)
        and loader.batch_size is not None
    )


def shard_loader(loader: DataLoader, num_replicas: int, rank: int) -> DataLoader:
    """``loader`` restricted to this rank's whole batches, batching them the same way."""
    key = (len(loader.dataset), loader.batch_size, num_replicas, rank)
    cached = _shards.get(loader)
    if cached is not None and cached[0] == key:
        return cached[1]
    shard = DataLoader(
        Subset(loader.dataset, shard_indices(*key)),
        batch_size=loader.batch_size,
        shuffle=False,
        num_workers=loader.num_workers,
        collate_fn=loader.collate_fn,
        pin_memory=loader.pin_memory,
        worker_init_fn=loader.worker_init_fn,
        multiprocessing_context=loader.multiprocessing_context,
        persistent_workers=loader.persistent_workers,
    )
    _shards[loader] = (key, shard)
    return shard


def extract_sharded(
    model, loader, get_data: Callable, device: torch.device, autocast: Callable, quiet: bool = True
) -> Embeddings:
    """:func:`~visim.engine.extract.extract`, each rank embedding its share of ``loader``.

    ``model`` must be the bare module, not DistributedDataParallel: shares differ in length by
    up to a batch, and DDP's forward may synchronise. A loader that is not a plain in-order
    DataLoader is embedded whole on every rank (correct, only slower).
    """
    size = world_size()
    if size > 1:
        broadcast_buffers(model)  # one model on every rank, BatchNorm statistics included
    if size <= 1 or not shardable(loader):
        return extract(model, loader, get_data, device, autocast, quiet)
    total = len(loader.dataset)
    plans = [shard_indices(total, loader.batch_size, size, r) for r in range(size)]
    mine = plans[rank()]
    local = None
    if mine:
        local = extract(model, shard_loader(loader, size, rank()), get_data, device, autocast, quiet)
    if local is not None and len(local) != len(mine):
        raise RuntimeError(f"rank {rank()} embedded {len(local)} items of its {len(mine)}")
    return gather_embeddings(local, plans, device)


def gather_embeddings(local: Embeddings | None, plans: list[list[int]], device: torch.device) -> Embeddings:
    """Every rank's share, placed at its dataset indices, on every rank."""
    labels = (local.pids, local.camids, local.paths) if local is not None else None
    dim = local.embeddings.shape[1] if local is not None else None
    shares: list = [None] * len(plans)
    dist.all_gather_object(shares, (dim, labels))
    dims = {d for d, _ in shares if d is not None}
    if not dims:
        raise ValueError("the loader yielded no batch: is the split empty?")
    if len(dims) > 1:
        raise RuntimeError(f"ranks produced embeddings of different sizes: {sorted(dims)}")
    dim = dims.pop()
    total = sum(len(plan) for plan in plans)
    indices = [torch.tensor(plan, dtype=torch.long) for plan in plans]
    pids = torch.empty(total, dtype=torch.long)
    camids = torch.empty(total, dtype=torch.long)
    paths = [""] * total
    for index, (_, share) in zip(indices, shares):
        if share is not None:
            pids[index], camids[index] = share[0], share[1]
            for i, path in zip(index.tolist(), share[2]):
                paths[i] = path
    rows = local.embeddings if local is not None else torch.empty((0, dim))
    embeddings = torch.empty((total, dim), dtype=torch.float32)
    gather_rows(rows, indices, embeddings, device)
    return Embeddings(embeddings, pids, camids, paths)


def gather_rows(rows: torch.Tensor, indices: list[torch.Tensor], out: torch.Tensor, device: torch.device) -> None:
    """All ranks' ``rows`` into ``out[indices[r]]``, in rounds of bounded size.

    all_gather wants equal shapes: each round sends the same number of rows from every rank,
    padding a share that has run out. CUDA runs exchange on the GPU (nccl), others on the CPU.
    """
    size, dim = len(indices), out.shape[1]
    backend = str(dist.get_backend())
    comm = device if device.type == "cuda" and "nccl" in backend else torch.device("cpu")
    longest = max(len(index) for index in indices)
    step = max(1, GATHER_CHUNK_BYTES // (size * max(dim, 1) * 4))
    for start in range(0, longest, step):
        stop = min(start + step, longest)
        block = torch.zeros((stop - start, dim), dtype=torch.float32, device=comm)
        part = rows[start:stop]
        block[: part.shape[0]] = part.to(comm)
        received = [torch.empty_like(block) for _ in range(size)]
        dist.all_gather(received, block)
        for index, got in zip(indices, received):
            valid = index[start:stop]
            if valid.numel():
                out[valid] = got[: valid.numel()].cpu()
