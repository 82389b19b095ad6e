"""Query embeddings for ``visim search``: an embeddings file, or images embedded by a model."""

from __future__ import annotations

from pathlib import Path

from visim.errors import UsageError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


class QueryError(UsageError, ValueError):
    """Queries that cannot be read or embedded."""


def load_queries(source: str, config: str | None = None, weights: str | None = None):
    """``(embeddings [Q, D], paths)`` of ``source``: an embeddings file's query split, or the
    images of a folder embedded with ``config``'s model and ``weights``."""
    path = Path(source)
    if path.is_dir():
        return embed_folder(path, config, weights)
    from visim.outputs.embeddings import EmbeddingsFileError, load_embeddings

    try:
        saved = load_embeddings(path)
    except EmbeddingsFileError as exc:
        raise QueryError(str(exc)) from None
    return saved.query.embeddings.numpy(), list(saved.query.paths)


def embed_folder(folder: Path, config: str | None, weights: str | None):
    if config is None:
        raise QueryError(f"{folder} is a folder of images: --config (and --weights) are needed to embed them")
    images = sorted(str(p.resolve()) for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise QueryError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)})")
    from torch.utils.data import DataLoader

    from visim.config.load import load_config
    from visim.data.image_dataset import ImageDataset
    from visim.data.records import Record, ReidData
    from visim.engine.build import build_engine

    engine = build_engine(load_config(config, []), train=False, weights=weights, quiet=True)
    template = engine.test_dl
    # The files themselves, read as any image file is (not through the config's dataset, which
    # may hold its images in memory), with the config's test transform.
    files = ReidData((), [Record(path, -1, -1) for path in images], (), name=str(folder))
    dataset = ImageDataset(files, "query", transform=template.dataset.transform, image_key=template.dataset.image_key)
    loader = DataLoader(dataset, batch_size=template.batch_size, shuffle=False, collate_fn=template.collate_fn)
    return engine.extract(loader).embeddings.numpy(), images
