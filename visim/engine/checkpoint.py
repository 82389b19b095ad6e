"""Checkpoints: written atomically, read back with ``torch.load(weights_only=True)``.

A checkpoint holds only tensors and plain data (no pickled objects), so loading one never runs
foreign code. RNG states are stored as tensors and lists for the same reason.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from visim.errors import EXIT_USAGE, VisimError
from visim.outputs.atomic import atomic_write

FORMAT = "visim-checkpoint"
FORMAT_VERSION = 1


class CheckpointError(VisimError, ValueError):
    """A checkpoint that cannot be read: corrupt, foreign, incompatible or missing (exit 2)."""

    exit_code = EXIT_USAGE


def rng_state() -> dict[str, Any]:
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, python_gauss = random.getstate()
    state = {
        "python": [version, list(internal), python_gauss],
        "numpy": [name, torch.from_numpy(keys.copy()), pos, has_gauss, gauss],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        # This process's GPU only: reading every GPU's state would open a CUDA context on each
        # from every DDP process.
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, python_gauss = state["python"]
    random.setstate((version, tuple(internal), python_gauss))
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, keys.numpy(), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` through :func:`visim.outputs.atomic.atomic_write`: all or nothing."""
    with atomic_write(path) as handle:
        torch.save(obj, handle)
    return Path(path)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a visim checkpoint; a clear :class:`CheckpointError` for anything else."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, pickle refusing foreign objects, ...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"cannot read checkpoint {path}: {first}") from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a visim checkpoint (no '{FORMAT}' marker)")
    if checkpoint.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(f"{path} was written by a newer visim (format {checkpoint['format_version']})")
    return checkpoint


def make_checkpoint(**fields: Any) -> dict[str, Any]:
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "rng": rng_state(), **fields}


def strip_module_prefix(state_dict: dict[str, Any]) -> dict[str, Any]:
    """DistributedDataParallel/DataParallel prefix keys with ``module.``; checkpoints never do."""
    return {key.removeprefix("module."): value for key, value in state_dict.items()}
