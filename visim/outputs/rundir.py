"""The run directory: ``<log_dir>/<name>/<run_id>/`` with config, checkpoints, events, results."""

from __future__ import annotations

import re
import time
from pathlib import Path

CHECKPOINTS = "checkpoints"


def safe_name(name: str) -> str:
    """A name usable in file paths: spaces and odd characters become underscores."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name.strip())
    return safe if safe.strip(".") else "run"  # "" or ".." must not leave log_dir


def create_run_dir(log_dir: str | Path, name: str) -> Path:
    """A new, unique run directory named after the current time."""
    parent = Path(log_dir) / safe_name(name)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in range(1000):
        candidate = parent / (stamp if n == 0 else f"{stamp}-{n}")
        try:
            candidate.mkdir(parents=True)
            return candidate
        except FileExistsError:
            continue
    raise RuntimeError(f"cannot create a run directory under {parent}")


def latest_checkpoint(log_dir: str | Path, name: str) -> Path | None:
    """``last.pt`` of the most recent run of this experiment (for ``--resume auto``)."""
    candidates = sorted(
        (Path(log_dir) / safe_name(name)).glob(f"*/{CHECKPOINTS}/last.pt"),
        key=lambda p: p.stat().st_mtime,
    )
    return candidates[-1] if candidates else None


def run_dir_of(checkpoint: Path) -> Path | None:
    """The run directory a checkpoint belongs to, if it sits in one."""
    checkpoint = Path(checkpoint).resolve()
    return checkpoint.parent.parent if checkpoint.parent.name == CHECKPOINTS else None
