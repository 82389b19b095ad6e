"""What every dataset component returns: image records split into train, query and gallery.

Nothing here imports torch, so datasets can be parsed (and checked) without it.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

SPLITS = ("train", "query", "gallery")


class DataError(ValueError):
    """A dataset that cannot be used as configured: a missing folder, a bad file, an empty split.

    ``path``: the config setting the problem is about (``$.data.batch_size``), if known;
    ``visim validate`` reports the error there.
    """

    def __init__(self, *args: object, path: str | None = None) -> None:
        super().__init__(*args)
        self.path = path

    def __str__(self) -> str:
        text = super().__str__()
        # A DataLoader worker's error comes back as DataError("Caught DataError in DataLoader
        # worker process 0.\nOriginal Traceback ...\n...DataError: <message>"): the message is
        # its last line, and a user wants that one line, not the worker's traceback.
        if "Original Traceback" in text:
            last = text.rstrip().splitlines()[-1]
            return last.split("DataError: ", 1)[-1]
        return text


class DataWarning(UserWarning):
    """Data that works but is probably not what was meant (identity overlap, unmatched queries)."""


@attrs.frozen
class Record:
    """One image of a dataset.

    ``path``: where :meth:`ReidData.load_image` finds it (a file path, or any key a subclass
    understands); ``pid``: the identity, an int (-1: junk, ignored by evaluation); ``camid``: the
    camera, an int (the default protocol ignores gallery images of the query's identity taken
    by the query's camera). ``class_id`` is set by :class:`ReidData` on train records only: the
    pid relabelled 0..C-1, the class a model's classifier learns. Leave it None.
    """

    path: str
    pid: int
    camid: int
    class_id: int | None = None


def assign_class_ids(records: Iterable[Record]) -> tuple[Record, ...]:
    """Relabel pids to 0..C-1 in sorted pid order (the class index a classifier head learns)."""
    records = tuple(records)
    labels = {pid: label for label, pid in enumerate(sorted({r.pid for r in records}))}
    return tuple(attrs.evolve(r, class_id=labels[r.pid]) for r in records)


def read_image_file(path: str):
    """Open an image file as an RGB PIL image, fully decoded (so corrupt files fail here).

    High-bit-depth images (16-bit and 32-bit integer, float) are scaled to 8 bits: PIL's own
    conversion clips them, so a 16-bit photo would come out white. Images above PIL's
    decompression-bomb limit (``PIL.Image.MAX_IMAGE_PIXELS``) are refused, as a ValueError.
    """
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                return eight_bit(image).convert("RGB")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ValueError(f"refused as a possible decompression bomb: {exc}") from None


def eight_bit(image):
    """``image`` with 8-bit channels: integer modes scaled from their bit depth, float from [0, 1]."""
    if image.mode not in ("I", "F") and not image.mode.startswith("I;16"):
        return image
    import numpy as np
    from PIL import Image

    values = np.asarray(image, dtype=np.float64)
    if image.mode == "F":
        full = 1.0 if values.size and values.max() <= 1.0 else 255.0
    else:  # "I" holds 16-bit PNGs in some PIL versions, 32-bit TIFFs in others
        full = 65535.0 if image.mode.startswith("I;16") or values.max(initial=0) > 255 else 255.0
    scaled = np.clip(np.rint(values * (255.0 / full)), 0, 255).astype(np.uint8)
    return Image.fromarray(scaled)  # uint8 [H, W]: mode "L"


class ReidData:
    """The records of one dataset plus how to load their images: what a dataset factory returns.

    ``train``, ``query`` and ``gallery`` are sequences of :class:`Record` (stored as tuples;
    train records get their ``class_id``). ``name`` appears in messages and ``visim data
    check``; ``root`` is the folder the data came from, if any. ``dropped`` counts what the
    parser left out on purpose, by reason (e.g. ``{"junk": 3}``), so ``visim data check`` can
    say so. ``separate_test_pids``: test pids are numbered apart from train pids (equal numbers
    are different people), so train/test overlap is not reported.

    Images are loaded by :meth:`load_image` (an RGB PIL image from ``record.path``).
    Subclasses that keep images in memory or fetch them elsewhere override it (and set
    ``in_memory``). Train needs all three splits; a test run needs query and gallery.
    """

    in_memory = False

    def __init__(
        self,
        train: Sequence[Record],
        query: Sequence[Record],
        gallery: Sequence[Record],
        *,
        name: str = "",
        root: str | None = None,
        dropped: Mapping[str, int] | None = None,
        separate_test_pids: bool = False,
    ) -> None:
        self.train = assign_class_ids(train)
        self.query = tuple(query)
        self.gallery = tuple(gallery)
        self.name = name
        self.root = root
        self.dropped = {reason: n for reason, n in (dropped or {}).items() if n}
        # True where test pids are numbered apart from train pids (MSMT17: both start at 0),
        # so equal numbers are different people and overlap cannot be checked.
        self.separate_test_pids = separate_test_pids

    @property
    def num_train_classes(self) -> int:
        return len({r.pid for r in self.train})

    def split(self, name: str) -> tuple[Record, ...]:
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; choose one of {', '.join(SPLITS)}")
        return getattr(self, name)

    def without(self, bad: Iterable[tuple[str, int]]) -> ReidData:
        """A copy without the records at the given (split, index) pairs; class ids recomputed."""
        bad = set(bad)
        kept = copy.copy(self)
        for split in SPLITS:
            records = [r for i, r in enumerate(self.split(split)) if (split, i) not in bad]
            setattr(kept, split, assign_class_ids(records) if split == "train" else tuple(records))
        return kept

    def load_image(self, record: Record):
        """The record's image as an RGB ``PIL.Image.Image``."""
        return read_image_file(record.path)

    def torch_dataset(self, split: str, transform: Any = None, image_key: str = "image"):
        """A ``torch.utils.data.Dataset`` over one split, yielding the batch-contract dicts."""
        from visim.data.image_dataset import ImageDataset

        return ImageDataset(self, split, transform=transform, image_key=image_key)

    def __repr__(self) -> str:
        sizes = ", ".join(f"{s}={len(self.split(s))}" for s in SPLITS)
        return f"<ReidData {self.name or '?'}: {sizes}>"


def split_problems(data: ReidData, *, train: bool) -> list[str]:
    """Empty splits that make the data unusable (train only matters when training)."""
    needed = SPLITS if train else ("query", "gallery")
    return [f"the {s} split of dataset {data.name!r} is empty" for s in needed if not data.split(s)]


def identity_warnings(data: ReidData) -> list[str]:
    """Suspicious but usable identity layouts: overlap of train and test, unmatched queries."""
    messages = []
    gallery_pids = {r.pid for r in data.gallery}
    unmatched = {r.pid for r in data.query} - gallery_pids
    missing = sorted(unmatched)
    if missing:
        n_queries = sum(r.pid in unmatched for r in data.query)
        messages.append(
            f"{len(missing)} query identities ({n_queries} queries) never appear in the gallery "
            f"of dataset {data.name!r}: {preview(missing)}; those queries have no positive"
        )
    overlap = train_test_overlap(data)
    if overlap:
        messages.append(
            f"{len(overlap)} identities of dataset {data.name!r} are in both train and test: "
            f"{preview(overlap)}; test results will be optimistic"
        )
    return messages


def train_test_overlap(data: ReidData) -> list[int]:
    """Identities in train and in query or gallery (none where test pids are numbered apart)."""
    if data.separate_test_pids:
        return []
    test_pids = {r.pid for r in data.query} | {r.pid for r in data.gallery}
    return sorted({r.pid for r in data.train} & test_pids)


def validate_splits(data: ReidData, *, train: bool) -> None:
    """Raise :class:`DataError` for empty splits; warn (:class:`DataWarning`) about identities."""
    problems = split_problems(data, train=train)
    if problems:
        raise DataError("; ".join(problems))
    for message in identity_warnings(data):
        warnings.warn(message, DataWarning, stacklevel=2)


def preview(items: Sequence[Any], limit: int = 10) -> str:
    shown = ", ".join(str(i) for i in items[:limit])
    return shown + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")
