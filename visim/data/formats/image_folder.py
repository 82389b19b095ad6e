"""root/<split>/<identity>/<image>: one folder per identity, in train, query and gallery.

Identity folders named by integers keep that pid; otherwise every identity name (across all
splits, so query and gallery agree) gets a pid in sorted-name order. A folder named -1 holds
junk images, dropped and counted. Cameras come from ``camera_regex`` applied to the file name
(its first group, or the group named ``cam``); the distinct values, in sorted order, become
cameras 0..N-1. Without a regex the query images are camera 0 and all others camera 1, so a
same-camera protocol filters nothing.
"""

from __future__ import annotations

import os
import re
from collections import Counter

from visim.data.formats.bounding_box import IMAGE_EXTENSIONS
from visim.data.formats.labels import number_labels, sorted_numerically
from visim.data.records import SPLITS, DataError, Record, ReidData
from visim.evaluation.options import JUNK_PID

DEFAULT_CAMERA = {"train": 1, "query": 0, "gallery": 1}


def list_split(folder: str) -> list[tuple[str, str]]:
    """(identity folder name, image path) for every image of one split folder."""
    found = []
    for identity in sorted(os.listdir(folder)):
        identity_dir = os.path.join(folder, identity)
        if not os.path.isdir(identity_dir):
            continue
        for name in sorted(os.listdir(identity_dir)):
            if name.lower().endswith(IMAGE_EXTENSIONS):
                found.append((identity, os.path.join(identity_dir, name)))
    return found


def camera_of(pattern: re.Pattern, path: str) -> str:
    match = pattern.search(os.path.basename(path))
    if not match:
        raise DataError(f"camera_regex {pattern.pattern!r} does not match file name {path!r}")
    value = match.group("cam") if "cam" in pattern.groupindex else match.group(1)
    return value or ""  # an optional group that did not take part


def load_image_folder(
    root: str, *, split_dirs: dict[str, str], camera_regex: str | None = None
) -> ReidData:
    root = os.path.abspath(os.path.expanduser(root))
    if not os.path.isdir(root):
        raise DataError(f"image_folder root {root!r} does not exist")
    listed = {
        split: list_split(os.path.join(root, split_dirs[split]))
        if os.path.isdir(os.path.join(root, split_dirs[split]))
        else []
        for split in SPLITS
    }
    if not any(listed.values()):
        folders = ", ".join(f"{d}/" for d in split_dirs.values())
        raise DataError(f"no images under {root!r}: expected {folders} each with one folder per identity")
    pids = number_labels({identity for items in listed.values() for identity, _ in items} - {"-1"})
    pattern = re.compile(camera_regex) if camera_regex else None
    cameras: dict[str, int] = {}
    if pattern:
        names = {camera_of(pattern, path) for items in listed.values() for _, path in items}
        cameras = {value: index for index, value in enumerate(sorted_numerically(names))}
    dropped: Counter = Counter()
    splits = {}
    for split, items in listed.items():
        records = []
        for identity, path in items:
            if identity == str(JUNK_PID):
                dropped["junk images (pid -1)"] += 1
                continue
            camid = cameras[camera_of(pattern, path)] if pattern else DEFAULT_CAMERA[split]
            records.append(Record(path, pids[identity], camid))
        splits[split] = records
    return ReidData(**splits, name="image_folder", root=root, dropped=dropped)
