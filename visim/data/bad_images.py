"""Finding images that cannot be read, before a long run trips over them.

``find_bad_images(read=False)`` only checks that files exist (cheap: one stat per image);
``read=True`` decodes every image through the dataset's ``load_image`` (a thread pool keeps
that to seconds for tens of thousands of small crops).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

import attrs

from visim.data.records import SPLITS, Record, ReidData

READ_THREADS = 8


@attrs.frozen
class BadImage:
    split: str
    index: int
    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.split}[{self.index}] {self.path}: {self.reason}"


def read_problem(data: ReidData, record: Record) -> str | None:
    try:
        data.load_image(record)
    except (OSError, ValueError) as exc:  # missing, unidentified, truncated
        return f"{type(exc).__name__}: {exc}"
    return None


def existence_problem(data: ReidData, record: Record) -> str | None:
    if data.in_memory or os.path.isfile(record.path):
        return None
    return "file not found"


def find_bad_images(data: ReidData, splits: Iterable[str] = SPLITS, *, read: bool = True) -> list[BadImage]:
    bad = []
    with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:
        for split in splits:
            records = data.split(split)
            if read:
                reasons = pool.map(lambda r: read_problem(data, r), records)
            else:
                reasons = (existence_problem(data, r) for r in records)
            for index, reason in enumerate(reasons):
                if reason is not None:
                    bad.append(BadImage(split, index, records[index].path, reason))
    return bad


def missing_files_error(bad: list[BadImage], limit: int = 5) -> str:
    shown = "; ".join(str(b) for b in bad[:limit])
    more = f"; ... and {len(bad) - limit} more" if len(bad) > limit else ""
    return (
        f"{len(bad)} image file(s) not found: {shown}{more} "
        "(set data.on_bad_image: skip to train without them)"
    )
