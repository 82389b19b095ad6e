"""The index directory: gallery embeddings in shards, labels, the metric and the index's files.

::

    INDEX_DIR/
      index.json            format, version, index and metric references, dim, dtype, count, shards
      gallery-00000.npy     [rows, dim] float16/float32, memory-mapped on load
      pids.npy camids.npy   int64
      paths.json            the gallery image paths
      component/            what the index component saves (nothing for ``exact``)

:func:`write_index_dir` builds into a temporary sibling folder and renames it into place, so an
interrupted build leaves no half index. :func:`open_index_dir` checks every shard's header,
shape and size against ``index.json``: a truncated or corrupt shard is an :class:`IndexFileError`.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from visim.errors import UsageError
from visim.outputs.atomic import publish, write_text

FORMAT, VERSION = "visim-index", 1
SHARD_ROWS = 1 << 20
DTYPES = ("float16", "float32")


class IndexFileError(UsageError, ValueError):
    """An index directory that is missing, incomplete, corrupt or of another format."""


@attrs.frozen
class StoredIndex:
    folder: Path
    meta: dict[str, Any]
    gallery: Any  # ShardedArray
    pids: np.ndarray
    camids: np.ndarray
    paths: list[str]


class ShardedArray:
    """Memory-mapped shards read as one ``[G, D]`` array: ``len`` and row slices."""

    def __init__(self, shards: list[np.ndarray]) -> None:
        self.shards = shards
        self.starts = np.cumsum([0] + [len(s) for s in shards])
        self.shape = (int(self.starts[-1]), shards[0].shape[1] if shards else 0)
        self.dtype = shards[0].dtype if shards else np.dtype("float32")

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows: slice) -> np.ndarray:
        start, stop, step = rows.indices(len(self))
        if step != 1:
            raise IndexError("only contiguous row slices are supported")
        parts = []
        for shard, first in zip(self.shards, self.starts[:-1]):
            lo, hi = max(start - first, 0), min(stop - first, len(shard))
            if lo < hi:
                parts.append(shard[lo:hi])
        if len(parts) == 1:
            return parts[0]
        return np.concatenate(parts) if parts else np.empty((0, self.shape[1]), self.dtype)

    def take(self, indices, axis: int = 0) -> np.ndarray:
        """Rows at sorted ``indices`` (as ``ndarray.take`` with ``axis=0``), shard by shard."""
        if axis != 0:
            raise ValueError("only rows can be taken")
        indices = np.asarray(indices)
        bounds = np.searchsorted(indices, self.starts)
        return np.concatenate([shard[indices[lo:hi] - first] for shard, first, lo, hi
                               in zip(self.shards, self.starts[:-1], bounds[:-1], bounds[1:])])

    def __array__(self, dtype=None, copy=None):
        whole = self[0 : len(self)]
        return whole.astype(dtype) if dtype is not None else np.asarray(whole)


def write_index_dir(out: str | Path, gallery, pids, camids, paths, *, metric: Any, index_ref: Any,
                    dtype: str, build_component, shard_rows: int = SHARD_ROWS) -> dict[str, Any]:
    """Store the gallery and build the index into ``out`` (which must not exist), atomically.

    ``build_component(gallery_view)`` builds the index over the stored (memory-mapped) gallery
    and returns it; its ``save`` writes into ``component/``.
    """
    out = Path(out)
    if out.exists():
        raise IndexFileError(f"{out}: already exists; choose a new --out folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        shards = []
        for number, start in enumerate(range(0, max(len(gallery), 1), shard_rows)):
            rows = np.asarray(gallery[start : start + shard_rows], dtype=dtype)
            name = f"gallery-{number:05d}.npy"
            np.save(temporary / name, rows)
            shards.append({"file": name, "rows": len(rows)})
        np.save(temporary / "pids.npy", np.asarray(pids, dtype=np.int64))
        np.save(temporary / "camids.npy", np.asarray(camids, dtype=np.int64))
        write_text(temporary / "paths.json", json.dumps(list(paths)))
        meta = {"format": FORMAT, "version": VERSION, "index": index_ref, "metric": metric,
                "dim": int(gallery.shape[1]), "dtype": dtype, "count": int(len(gallery)), "shards": shards}
        stored = load_gallery(temporary, meta)
        component = build_component(stored)
        meta["approximate"] = bool(getattr(component, "approximate", False))
        (temporary / "component").mkdir()
        component.save(temporary / "component")
        write_text(temporary / "index.json", json.dumps(meta, indent=2) + "\n")
        publish(temporary, out)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return meta


def read_meta(folder: Path) -> dict[str, Any]:
    path = folder / "index.json"
    if not path.is_file():
        raise IndexFileError(f"{folder}: not a visim index (no index.json)")
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise IndexFileError(f"{path}: unreadable ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise IndexFileError(f"{folder}: not a visim index")
    if meta.get("version") != VERSION:
        raise IndexFileError(f"{folder}: index format version {meta.get('version')!r} is not supported")
    return meta


def load_gallery(folder: Path, meta: dict[str, Any]) -> ShardedArray:
    shards = []
    for shard in meta["shards"]:
        path = folder / shard["file"]
        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:  # missing, truncated, bad header
            raise IndexFileError(f"{path}: corrupt or truncated shard ({exc})") from None
        if array.shape != (shard["rows"], meta["dim"]) or array.dtype != np.dtype(meta["dtype"]):
            raise IndexFileError(
                f"{path}: corrupt shard (shape {array.shape} {array.dtype}, expected "
                f"({shard['rows']}, {meta['dim']}) {meta['dtype']})"
            )
        shards.append(array)
    return ShardedArray(shards)


def open_index_dir(folder: str | Path) -> StoredIndex:
    folder = Path(folder)
    meta = read_meta(folder)
    try:
        gallery = load_gallery(folder, meta)
        pids = np.load(folder / "pids.npy", allow_pickle=False)
        camids = np.load(folder / "camids.npy", allow_pickle=False)
        paths = json.loads((folder / "paths.json").read_text())
    except IndexFileError:
        raise
    except (OSError, ValueError, KeyError, EOFError) as exc:
        raise IndexFileError(f"{folder}: incomplete index ({type(exc).__name__}: {exc})") from None
    if not (len(gallery) == len(pids) == len(camids) == len(paths) == meta["count"]):
        raise IndexFileError(f"{folder}: gallery, pids, camids and paths disagree in length")
    return StoredIndex(folder, meta, gallery, pids, camids, paths)
