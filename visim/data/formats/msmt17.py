"""MSMT17 (V1 or V2): images listed with their pid in list_train/val/query/gallery.txt.

Each list line is ``<relative path> <pid>``; the camera is the third ``_``-separated field of
the file name (``0000_000_01_0303morning_0015_0.jpg`` is camera 01, record camid 0), as in
torchreid. Train pids are already 0..C-1 in the lists, so class ids equal them; test pids are
numbered from 0 too, apart from train pids (pid 5 in train and in query are different people).
"""

from __future__ import annotations

import os

from visim.data.records import DataError, Record, ReidData

# Folder names of the two releases, in torchreid's order of preference.
VERSIONS = {"MSMT17_V1": ("train", "test"), "MSMT17_V2": ("mask_train_v2", "mask_test_v2")}


def find_release(root: str) -> tuple[str, str, str]:
    """(release dir, train images dir, test images dir) under root, root/msmt17 or root itself."""
    root = os.path.abspath(os.path.expanduser(root))
    for base in (os.path.join(root, "msmt17"), root):
        for version, (train_dir, test_dir) in VERSIONS.items():
            release = os.path.join(base, version)
            if os.path.isdir(release):
                return release, os.path.join(release, train_dir), os.path.join(release, test_dir)
    for train_dir, test_dir in VERSIONS.values():  # root is the release folder itself
        if os.path.isdir(os.path.join(root, test_dir)):
            return root, os.path.join(root, train_dir), os.path.join(root, test_dir)
    if not os.path.isdir(root):
        raise DataError(f"MSMT17 root {root!r} does not exist")
    raise DataError(
        f"no MSMT17 release under {root!r}: expected MSMT17_V1/ or MSMT17_V2/ "
        "(optionally inside msmt17/) with list_*.txt files"
    )


def read_list(list_path: str, images_dir: str, *, required: bool) -> list[Record]:
    if not os.path.isfile(list_path):
        if required:
            raise DataError(f"MSMT17 list file {list_path!r} is missing")
        return []
    records = []
    with open(list_path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            fields = line.split()
            try:
                relative, pid = fields[0], int(fields[1])
                camid = int(os.path.basename(relative).split("_")[2]) - 1
            except (IndexError, ValueError):
                raise DataError(
                    f"{list_path}:{number}: expected '<path> <pid>' with a file name like "
                    f"0000_000_01_..., got {line.strip()!r}"
                ) from None
            records.append(Record(os.path.join(images_dir, relative), pid, camid))
    return records


def load_msmt17(root: str, *, include_val: bool = False) -> ReidData:
    release, train_dir, test_dir = find_release(root)

    def listed(name: str, images_dir: str, required: bool = True) -> list[Record]:
        return read_list(os.path.join(release, f"list_{name}.txt"), images_dir, required=required)

    train = listed("train", train_dir, required=False)
    if include_val:  # torchreid's combineall: published results train without val
        train += listed("val", train_dir)
    return ReidData(
        train,
        listed("query", test_dir),
        listed("gallery", test_dir),
        name="msmt17",
        root=release,
        separate_test_pids=True,
    )
