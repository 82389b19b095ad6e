"""The Market-1501 / DukeMTMC-reID layout: bounding_box_train, query, bounding_box_test.

File names start ``<pid>_c<camera>`` (``0002_c1s1_000451_03.jpg``, ``0001_c2_f0046182.jpg``).
pid -1 marks junk images, dropped here and counted; pid 0 marks Market's distractors, kept.
Cameras are 1-based in file names and 0-based in records. Records come sorted by path (torchreid
keeps glob order, which is the file system's); their contents are torchreid's.
"""

from __future__ import annotations

import os
import re
from collections import Counter

from visim.data.records import DataError, Record, ReidData
from visim.evaluation.options import JUNK_PID

NAME_RE = re.compile(r"^(-?\d+)_c(\d+)")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
SPLIT_DIRS = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}


def find_data_dir(root: str, wrappers: tuple[str, ...], what: str) -> str:
    """The first of root and root/<wrapper>/... that holds query/ and bounding_box_test/.

    ``wrappers`` are the optional folders around the layout, outermost first, e.g. torchreid's
    ``market1501`` and the archive's ``Market-1501-v15.09.15``.
    """
    root = os.path.abspath(os.path.expanduser(root))
    candidates = [root]
    for wrapper in wrappers:
        candidates = [os.path.join(c, wrapper) for c in candidates] + candidates
    for candidate in candidates:
        if all(os.path.isdir(os.path.join(candidate, SPLIT_DIRS[s])) for s in ("query", "gallery")):
            return candidate
    if not os.path.isdir(root):
        raise DataError(f"{what} root {root!r} does not exist")
    raise DataError(
        f"no {what} layout under {root!r}: expected folders query/ and bounding_box_test/ "
        f"(and bounding_box_train/ for training), optionally inside {'/'.join(wrappers)}/"
    )


def parse_name(path: str) -> tuple[int, int]:
    match = NAME_RE.match(os.path.basename(path))
    if not match:
        raise DataError(f"cannot read pid and camera from file name {path!r} (expected <pid>_c<camera>...)")
    pid, camera = int(match.group(1)), int(match.group(2))
    if camera < 1:
        raise DataError(f"camera numbers start at 1 in file name {path!r}")
    return pid, camera - 1


def read_split(folder: str, dropped: Counter) -> list[Record]:
    if not os.path.isdir(folder):
        return []
    records = []
    for name in sorted(os.listdir(folder)):
        if not name.lower().endswith(IMAGE_EXTENSIONS):
            continue  # Market ships a Thumbs.db among its images
        path = os.path.join(folder, name)
        pid, camid = parse_name(path)
        if pid == JUNK_PID:
            dropped["junk images (pid -1)"] += 1
            continue
        records.append(Record(path, pid, camid))
    return records


def load_bounding_box(root: str, *, name: str, wrappers: tuple[str, ...], what: str) -> ReidData:
    data_dir = find_data_dir(root, wrappers, what)
    dropped: Counter = Counter()
    splits = {s: read_split(os.path.join(data_dir, d), dropped) for s, d in SPLIT_DIRS.items()}
    return ReidData(**splits, name=name, root=data_dir, dropped=dropped)


def load_market1501(root: str) -> ReidData:
    return load_bounding_box(
        root, name="market1501", wrappers=("market1501", "Market-1501-v15.09.15"), what="Market-1501"
    )


def load_dukemtmc(root: str) -> ReidData:
    return load_bounding_box(
        root, name="dukemtmc", wrappers=("dukemtmc-reid", "DukeMTMC-reID"), what="DukeMTMC-reID"
    )
