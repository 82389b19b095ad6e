"""The gallery of ``visim index build``: an embeddings file, or a run directory's gallery."""

from __future__ import annotations

from pathlib import Path

from visim.errors import UsageError


class SourceError(UsageError, ValueError):
    """A source that holds no gallery embeddings visim can read."""


def gallery_of(source: str):
    """``(Embeddings, meta)`` of the gallery in ``source``."""
    path = Path(source)
    if path.is_dir():
        return embed_run_gallery(path)
    from visim.outputs.embeddings import EmbeddingsFileError, load_embeddings

    try:
        saved = load_embeddings(path)
    except EmbeddingsFileError as exc:
        raise SourceError(str(exc)) from None
    return saved.gallery, saved.meta


def embed_run_gallery(run_dir: Path):
    """Embed the gallery of a run directory's config with its best (else last) checkpoint."""
    config_path = run_dir / "config.yaml"
    checkpoints = [run_dir / "checkpoints" / name for name in ("best.pt", "last.pt")]
    weights = next((c for c in checkpoints if c.is_file()), None)
    if not config_path.is_file() or weights is None:
        raise SourceError(f"{run_dir}: not a run directory (needs config.yaml and checkpoints/best.pt or last.pt)")
    from visim.config.load import load_config
    from visim.engine.build import build_engine
    from visim.outputs.embeddings import engine_meta

    engine = build_engine(load_config(str(config_path), []), train=False, weights=weights, quiet=True)
    return engine.extract(engine.val_dl), engine_meta(engine)
