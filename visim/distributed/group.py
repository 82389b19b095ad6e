"""torch.distributed under torchrun: one process per device, rank 0 writes.

``torchrun`` starts N copies of ``visim`` and gives each ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``. :func:`setup` joins the process group they
describe (gloo for CPU tensors, plus nccl for CUDA tensors when the run uses GPUs); without
those variables, or with ``WORLD_SIZE=1``, everything here is a no-op and visim runs as one
process. Everything that writes (run directory, logs, checkpoints, TensorBoard, results) asks
:func:`is_main_process` first.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from typing import TypeVar

import torch
import torch.distributed as dist
from torch import nn

from visim.errors import EXIT_USAGE, VisimError

T = TypeVar("T")


class DistributedError(VisimError, RuntimeError):
    """The torchrun environment is incomplete or does not fit the machine (exit 2)."""

    exit_code = EXIT_USAGE


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    if value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise DistributedError(f"environment variable {name}={value!r} is not an integer") from None


def initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    """Processes in the group (1 without one)."""
    return dist.get_world_size() if initialized() else 1


def rank() -> int:
    """This process's global rank in the group (0 without one)."""
    return dist.get_rank() if initialized() else 0


def local_rank() -> int:
    """This process's index on its node: the GPU it drives."""
    return env_int("LOCAL_RANK", 0)


def is_main_process() -> bool:
    """Whether this process may write. Under torchrun without a process group (a library user
    who never called :func:`setup`) only ``RANK`` 0 is, so N copies never write N run dirs."""
    return (dist.get_rank() if initialized() else env_int("RANK", 0)) == 0


def wants_cuda(device: str) -> bool:
    return device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())


def setup(device: str = "auto") -> bool:
    """Join the process group torchrun describes; False when this is a single process.

    ``device`` is the config's: CUDA runs pin each process to GPU ``LOCAL_RANK`` and add nccl
    for CUDA tensors, keeping gloo for the small CPU-side exchanges (objects, statistics).
    """
    if initialized():
        return True
    size = env_int("WORLD_SIZE", 1)
    if size <= 1:
        return False
    missing = [name for name in ("RANK", "MASTER_ADDR", "MASTER_PORT") if not os.environ.get(name)]
    if missing:
        raise DistributedError(
            f"WORLD_SIZE={size} but {', '.join(missing)} not set: launch with torchrun"
        )
    backend = "gloo"
    if wants_cuda(device):
        if not torch.cuda.is_available():
            raise DistributedError(f"device {device!r} requested but CUDA is not available")
        count, local = torch.cuda.device_count(), local_rank()
        if local >= count:
            raise DistributedError(
                f"LOCAL_RANK {local} has no GPU: this node has {count}; "
                f"use --nproc_per_node={count} or fewer"
            )
        torch.cuda.set_device(local)
        backend = "cpu:gloo,cuda:nccl"
    dist.init_process_group(backend=backend, init_method="env://", rank=env_int("RANK", 0), world_size=size)
    return True


def teardown() -> None:
    if initialized():
        dist.destroy_process_group()


def device_for_rank(device: str) -> str:
    """The device this process uses: under DDP every CUDA device name means GPU ``LOCAL_RANK``."""
    if world_size() > 1 and wants_cuda(device):
        return f"cuda:{local_rank()}"
    return device


def shard_of_this_rank() -> dict[str, int]:
    """Keyword arguments that shard a training sampler (``build_loaders``) for this rank."""
    return {"num_replicas": world_size(), "rank": rank()}


def wrap_model(module: nn.Module, device: torch.device) -> nn.Module:
    """DistributedDataParallel around ``module`` in a process group, else ``module`` itself.

    ``static_graph``: the graph is the same every step, so parameters a model never uses are
    found once instead of searched for every step (outputs a loss ignores: see tie_outputs).
    """
    if world_size() <= 1 or not any(p.requires_grad for p in module.parameters()):
        return module
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [device.index if device.index is not None else local_rank()] if device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=device_ids, static_graph=True)


def broadcast_buffers(module: nn.Module, src: int = 0) -> None:
    """Every rank takes rank ``src``'s buffers, in place.

    DDP keeps the parameters equal (identical all-reduced gradients, identical steps), but each
    rank's last training forward updates its own BatchNorm running statistics. Evaluating with
    rank 0's, the ones its checkpoint holds, makes every shard come from one and the same model.
    """
    if world_size() <= 1:
        return
    with torch.no_grad():
        for buffer in module.buffers():
            dist.broadcast(buffer, src)


def tie_outputs(loss: torch.Tensor, *outputs: torch.Tensor) -> torch.Tensor:
    """``loss`` plus zero times every forward output, under DDP only.

    DDP waits for a gradient of every parameter that produced an output; a loss that ignores
    one (triplet alone ignores the logits) leaves the classifier's pending and the next step
    fails. The zero-weighted term makes those gradients exact zeros; the loss value is unchanged.
    """
    if world_size() <= 1:
        return loss
    return loss + sum(output.sum() * 0.0 for output in outputs if output.requires_grad)


def picklable(exc: BaseException) -> BaseException:
    try:
        return pickle.loads(pickle.dumps(exc))
    except Exception:  # an exception class whose constructor pickle cannot replay
        return RuntimeError(f"{type(exc).__name__}: {exc}")


def on_main_process(fn: Callable[[], T]) -> T:
    """Run ``fn`` on rank 0 only (e.g. create the run directory) and give every rank its result.

    An exception on rank 0 is raised on every rank, so none waits for a result that never comes.
    """
    if world_size() <= 1:
        return fn()
    box: list = [None]
    error: BaseException | None = None
    if rank() == 0:
        try:
            box[0] = (True, fn())
        except Exception as exc:
            error = exc
            box[0] = (False, picklable(exc))
    dist.broadcast_object_list(box, src=0)
    ok, value = box[0]
    if error is not None:
        raise error
    if not ok:
        raise value
    return value


def average_over_ranks(values: dict[str, float]) -> dict[str, float]:
    """The mean of each value over all ranks (every rank holds equally many samples)."""
    if world_size() <= 1 or not values:
        return values
    keys = sorted(values)  # the same order on every rank
    totals = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64)
    dist.all_reduce(totals)  # CPU tensor: gloo, present in every group setup() makes
    return dict(zip(keys, (totals / world_size()).tolist()))


def communicator():
    """The process group as evaluation's communicator (None for a single process)."""
    if world_size() <= 1:
        return None
    from visim.evaluation.distributed import TorchCommunicator

    return TorchCommunicator()


def max_over_ranks(value: int) -> int:
    """The largest of each rank's ``value`` (e.g. "did any rank get a stop signal?")."""
    if world_size() <= 1:
        return value
    total = torch.tensor([value], dtype=torch.int64)
    dist.all_reduce(total, op=dist.ReduceOp.MAX)  # CPU tensor: gloo, as average_over_ranks
    return int(total.item())
