"""The one way a run writes a file: all of it or nothing.

Checkpoints, ``results.json``, ``config.yaml``, saved embeddings and pictures are written to a
temporary file in the target's folder, flushed to disk, then renamed over the target. A crash,
a full disk or Ctrl+C mid-write leaves the previous file as it was and no temporary behind.
(TensorBoard event files and ``run.log`` are append-only streams, written by their libraries.)
Only kill -9 (or a power cut) can leave a temporary file behind: :func:`remove_orphans`
deletes those when the next run starts in that directory.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

# The name atomic_write gives its temporary file: ``.<target name>.<pid>.<8 hex digits>.tmp``.
TEMPORARY = re.compile(r"\..+\.\d+\.[0-9a-f]{8}\.tmp")


@contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """An open temporary file that becomes ``path`` when the block ends without an exception.

    ``mode`` is ``"wb"`` (binary) or ``"w"`` (UTF-8 text). Missing parent folders are created.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"mode must be 'wb' or 'w' (got {mode!r})")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")  # see TEMPORARY
    # Mode 0o666 under the umask, as a plain open() would make it (mkstemp's 0o600 would not).
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, mode, encoding="utf-8" if mode == "w" else None) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    sync_folder(path.parent)


def publish(temporary: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Rename a finished, checked ``temporary`` (a file or a folder, beside ``path``) to ``path``.

    For outputs that are written whole and verified before they may exist under their name:
    an export that must pass its parity check, an index folder, a scaffolded package.
    """
    os.replace(temporary, path)
    sync_folder(Path(path).parent)
    return Path(path)


def sync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """``text`` into ``path`` (UTF-8), atomically."""
    with atomic_write(path, "w") as handle:
        handle.write(text)
    return Path(path)


def remove_orphans(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files a killed :func:`atomic_write` left under ``folder``.

    Call it only while no other process writes there (e.g. holding the run directory's lock):
    any temporary found is then an orphan, possibly as large as a checkpoint.
    """
    removed = []
    for path in Path(folder).rglob(".*.tmp"):
        if TEMPORARY.fullmatch(path.name) and path.is_file():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed
