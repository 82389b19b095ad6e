"""Saved embeddings: query and gallery with pid, camid and path, as ``.npz`` or ``.pt``.

``export_embeddings`` extracts one split at a time and writes it before the next is embedded,
so an ``.npz`` export holds at most one split's output in memory (a ``.pt`` file is written by
a single ``torch.save``, so it holds both). Files are written through
:func:`visim.outputs.atomic.atomic_write`, so an interrupted export never leaves a truncated file.

Layout (``<split>`` is ``query`` or ``gallery``)::

    .npz  <split>_embeddings [N, E] float32, <split>_pids / <split>_camids [N] int64,
          <split>_paths [N] unicode, meta: 0-d unicode array holding JSON
    .pt   {"format": "visim-embeddings", "version": 1, "meta": {...},
           "<split>": {"embeddings", "pids", "camids" (tensors), "paths" (list of str)}}

``meta`` records how the embeddings were made and how to rank them (metric, protocol, topk),
so ``visim evaluate`` reproduces ``visim test`` without options.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch

from visim.engine.extract import Embeddings
from visim.errors import EXIT_USAGE, VisimError
from visim.outputs.atomic import atomic_write

FORMAT = "visim-embeddings"
VERSION = 1
SUFFIXES = (".npz", ".pt")
SPLITS = ("query", "gallery")
FIELDS = ("embeddings", "pids", "camids", "paths")


class EmbeddingsFileError(VisimError, ValueError):
    """A file that is not (or no longer) readable as saved visim embeddings (exit 2)."""

    exit_code = EXIT_USAGE


@attrs.frozen
class SavedEmbeddings:
    query: Embeddings
    gallery: Embeddings
    meta: dict[str, Any]


def check_suffix(path: str | Path) -> Path:
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise EmbeddingsFileError(
            f"{path}: unknown embeddings format {path.suffix or '(no suffix)'!r}; use .npz or .pt"
        )
    return path


def engine_meta(engine) -> dict[str, Any]:
    """What a later ``visim evaluate`` needs to rank these embeddings as ``test`` would."""
    from visim import __version__
    from visim.config.converter import unstructure

    config = unstructure(engine.config)
    test = config["test"]
    return {
        "name": engine.config.name,
        "model": config["model"],
        "epoch": engine.epoch,
        "visim_version": __version__,
        **{key: test[key] for key in ("metric", "protocol", "topk_cmc", "no_positive", "ap", "max_rank")},
    }


def export_embeddings(engine, path: str | Path, meta: Mapping[str, Any] | None = None) -> dict[str, int]:
    """Embed query (``engine.query_loader``) and gallery (``engine.gallery_loader``) into ``path``.

    Returns the number of items written per split.
    """
    meta = {**engine_meta(engine), **(meta or {})}
    loaders = {"query": engine.query_loader, "gallery": engine.gallery_loader}
    return write_embeddings(path, lambda split: engine.extract(loaders[split]), meta)


def write_embeddings(path: str | Path, embed: Callable[[str], Embeddings], meta: Mapping[str, Any]) -> dict[str, int]:
    """Write ``embed("query")`` and ``embed("gallery")`` to ``path`` (.npz or .pt), atomically."""
    path = check_suffix(path)
    counts: dict[str, int] = {}
    with atomic_write(path) as handle:
        if path.suffix.lower() == ".npz":
            with zipfile.ZipFile(handle, "w", allowZip64=True) as archive:
                for split in SPLITS:
                    item = embed(split)  # one split in memory at a time
                    counts[split] = len(item)
                    for name, array in split_arrays(item).items():
                        add_array(archive, f"{split}_{name}", array)
                    del item
                add_array(archive, "meta", np.asarray(json.dumps(dict(meta))))
        else:
            state: dict[str, Any] = {"format": FORMAT, "version": VERSION, "meta": dict(meta)}
            for split in SPLITS:
                item = embed(split)
                counts[split] = len(item)
                state[split] = {
                    "embeddings": item.embeddings,
                    "pids": item.pids,
                    "camids": item.camids,
                    "paths": list(item.paths),
                }
            torch.save(state, handle)
    return counts


def save_embeddings(path: str | Path, query: Embeddings, gallery: Embeddings, meta: Mapping[str, Any] | None = None) -> None:
    """Write already extracted embeddings (see :func:`export_embeddings` for the layout)."""
    splits = {"query": query, "gallery": gallery}
    write_embeddings(path, splits.__getitem__, meta or {})


def split_arrays(item: Embeddings) -> dict[str, np.ndarray]:
    return {
        "embeddings": item.embeddings.numpy().astype(np.float32, copy=False),
        "pids": item.pids.numpy().astype(np.int64, copy=False),
        "camids": item.camids.numpy().astype(np.int64, copy=False),
        # Fixed-width unicode needs no pickle, so loading stays safe (allow_pickle=False).
        "paths": np.asarray(list(item.paths), dtype=str) if len(item.paths) else np.zeros(0, dtype="<U1"),
    }


def add_array(archive: zipfile.ZipFile, name: str, array: np.ndarray) -> None:
    with archive.open(f"{name}.npy", "w", force_zip64=True) as handle:
        np.lib.format.write_array(handle, array, allow_pickle=False)


def load_embeddings(path: str | Path) -> SavedEmbeddings:
    """Read a file written by :func:`export_embeddings`; clear errors for anything else."""
    path = check_suffix(path)
    if not path.is_file():
        raise EmbeddingsFileError(f"{path}: no such file")
    try:
        if path.suffix.lower() == ".npz":
            splits, meta = read_npz(path)
        else:
            splits, meta = read_pt(path)
        check_consistent(path, splits, meta)
    except EmbeddingsFileError:
        raise
    except Exception as exc:  # zip, pickle and numpy errors all mean: not our file
        raise EmbeddingsFileError(f"{path}: cannot read embeddings ({type(exc).__name__}: {exc})") from None
    return SavedEmbeddings(splits["query"], splits["gallery"], meta)


def read_npz(path: Path) -> tuple[dict[str, Embeddings], dict]:
    with np.load(path, allow_pickle=False) as archive:
        missing = [f"{s}_{f}" for s in SPLITS for f in FIELDS if f"{s}_{f}" not in archive.files]
        if missing or "meta" not in archive.files:
            raise EmbeddingsFileError(f"{path}: not a visim embeddings file (missing {', '.join(missing) or 'meta'})")
        splits = {
            split: as_embeddings(
                path,
                split,
                torch.from_numpy(archive[f"{split}_embeddings"]),
                torch.from_numpy(archive[f"{split}_pids"]),
                torch.from_numpy(archive[f"{split}_camids"]),
                [str(p) for p in archive[f"{split}_paths"].tolist()],
            )
            for split in SPLITS
        }
        meta = json.loads(str(archive["meta"]))
    return splits, meta


def check_consistent(path: Path, splits: dict[str, Embeddings], meta: Any) -> None:
    """What ranking needs of a file that may have been written by anyone."""
    if not isinstance(meta, dict):
        raise EmbeddingsFileError(f"{path}: not a visim embeddings file (meta is {type(meta).__name__}, not a mapping)")
    query, gallery = splits["query"].embeddings, splits["gallery"].embeddings
    if query.shape[1] != gallery.shape[1]:
        raise EmbeddingsFileError(
            f"{path}: query embeddings have {query.shape[1]} dimensions, gallery embeddings {gallery.shape[1]}"
        )
    for split, embeddings in splits.items():
        if len(embeddings.pids) == 0:
            raise EmbeddingsFileError(f"{path}: the {split} split is empty")
        if not torch.isfinite(embeddings.embeddings).all():
            raise EmbeddingsFileError(f"{path}: the {split} embeddings contain NaN or infinite values")


def read_pt(path: Path) -> tuple[dict[str, Embeddings], dict]:
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise EmbeddingsFileError(f"{path}: not a visim embeddings file")
    if state.get("version") != VERSION:
        raise EmbeddingsFileError(f"{path}: embeddings file version {state.get('version')!r} is not supported")
    splits = {}
    for split in SPLITS:
        data = state.get(split)
        if not isinstance(data, dict) or any(f not in data for f in FIELDS):
            raise EmbeddingsFileError(f"{path}: not a visim embeddings file (bad {split!r} entry)")
        splits[split] = as_embeddings(path, split, data["embeddings"], data["pids"], data["camids"], list(data["paths"]))
    return splits, dict(state.get("meta") or {})


def as_embeddings(path: Path, split: str, embeddings, pids, camids, paths: list[str]) -> Embeddings:
    n = embeddings.shape[0] if embeddings.ndim == 2 else -1
    if n < 0 or pids.shape != (n,) or camids.shape != (n,) or len(paths) != n:
        raise EmbeddingsFileError(
            f"{path}: inconsistent {split} arrays (embeddings {tuple(embeddings.shape)}, "
            f"pids {tuple(pids.shape)}, camids {tuple(camids.shape)}, {len(paths)} paths)"
        )
    if not embeddings.is_floating_point():
        raise EmbeddingsFileError(f"{path}: {split} embeddings are {embeddings.dtype}, not floating point")
    for name, labels in (("pids", pids), ("camids", camids)):
        if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
            raise EmbeddingsFileError(f"{path}: {split} {name} are {labels.dtype}, not integers")
    return Embeddings(embeddings.float(), pids.long(), camids.long(), paths)
