"""The embedded demo data: scikit-learn's bundled 8x8 handwritten digits, as a re-id dataset.

Each digit is an identity: 0-4 train, 5-9 test, so test identities are never seen in
training. Within each digit (in scikit-learn's order) image ``i`` is camera
``i % num_cameras``; a test image is a query when ``i % query_every == 0`` and gallery
otherwise. Queries therefore have positives on their own camera (ignored by the market
protocol) and on the others. Images are 8x8 grey levels 0-16, served as RGB PIL images; the
resize transform upscales them to the configured ``image_size``.

The pixels are read from the file scikit-learn ships (``sklearn/datasets/data/digits.csv.gz``,
what ``load_digits`` parses) without importing scikit-learn: its import pulls in scipy.stats
and costs about a second, more than the rest of a run's start-up. Where the file is not at
that place, ``sklearn.datasets.load_digits`` is called.
"""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

from visim.data.records import Record, ReidData

TRAIN_DIGITS = (0, 1, 2, 3, 4)
PATH_PREFIX = "digits/"


class DigitsData(ReidData):
    """Records whose ``path`` is ``digits/<index>``: the image is held in memory."""

    in_memory = True

    def __init__(self, images, **kwargs) -> None:
        super().__init__(**kwargs)
        self.images = images  # uint8 array [N, 8, 8]

    def load_image(self, record: Record):
        from PIL import Image

        index = int(record.path[len(PATH_PREFIX) :])
        return Image.fromarray(self.images[index]).convert("RGB")


def digits_file() -> Path | None:
    """scikit-learn's digits.csv.gz, found without importing scikit-learn; None if absent."""
    spec = importlib.util.find_spec("sklearn")
    folders = spec.submodule_search_locations if spec else None
    for folder in folders or ():
        path = Path(folder) / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            return path
    return None


def read_digits():
    """(images [N, 8, 8] float 0..16, targets [N] int), as ``sklearn.datasets.load_digits``."""
    import numpy as np

    path = digits_file()
    if path is None:
        from sklearn.datasets import load_digits

        bunch = load_digits()
        return bunch.images, bunch.target
    with gzip.open(path, "rt") as rows:
        data = np.loadtxt(rows, delimiter=",")  # 64 pixels then the digit, one image per row
    return data[:, :-1].reshape(-1, 8, 8), data[:, -1].astype(int)


def load_digits_data(*, query_every: int = 5, num_cameras: int = 3, max_per_digit: int | None = None) -> DigitsData:
    import numpy as np

    grey, targets = read_digits()
    # 0..16 grey levels -> 0..255 so the usual normalisation applies.
    images = np.clip(np.rint(grey * (255.0 / 16.0)), 0, 255).astype(np.uint8)
    splits: dict[str, list[Record]] = {"train": [], "query": [], "gallery": []}
    for digit in range(10):
        indices = np.flatnonzero(targets == digit)[:max_per_digit]
        for position, index in enumerate(indices.tolist()):
            record = Record(f"{PATH_PREFIX}{index:04d}", digit, position % num_cameras)
            if digit in TRAIN_DIGITS:
                splits["train"].append(record)
            else:
                splits["query" if position % query_every == 0 else "gallery"].append(record)
    return DigitsData(images, **splits, name="digits", root=None)
