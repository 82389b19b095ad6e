"""A manifest: one row per image with path, pid, camid, split and an optional role.

CSV (with a header row) or JSON Lines. ``split`` is train, query or gallery; or ``test``
with ``role`` query or gallery. Relative paths are relative to ``root`` (default: the
manifest's folder). pids and camids may be integers or names (names are numbered in sorted
order); pid -1 is junk, dropped and counted. ``camid`` may be left out of every row: then the
query images are camera 0 and all others camera 1, so a same-camera protocol filters nothing.
"""

from __future__ import annotations

import codecs
import csv
import json
import os
from collections import Counter
from collections.abc import Iterator

from visim.data.formats.labels import number_labels
from visim.data.records import SPLITS, DataError, Record, ReidData
from visim.evaluation.options import JUNK_PID

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
DEFAULT_CAMERA = {"train": 1, "query": 0, "gallery": 1}


def manifest_format(path: str, fmt: str) -> str:
    if fmt != "auto":
        return fmt
    extension = os.path.splitext(path)[1].lower()
    if extension not in FORMATS:
        raise DataError(f"cannot tell the format of manifest {path!r} from its extension; set format: csv or jsonl")
    return FORMATS[extension]


# What spreadsheets and editors write: UTF-8 (with or without Excel's byte-order mark),
# UTF-16 with a byte-order mark (Excel's "Unicode text"), and Windows-1252 (Excel's "CSV").
BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def encoding_of(path: str) -> str:
    with open(path, "rb") as handle:
        data = handle.read()
    for bom, encoding in BOMS:
        if data.startswith(bom):
            return encoding
    for encoding in ("utf-8", "cp1252"):
        try:
            data.decode(encoding)
        except UnicodeDecodeError:
            continue
        return encoding
    raise DataError(f"manifest {path!r} is neither UTF-8, UTF-16 nor Windows-1252 text; save it as UTF-8")


def read_rows(path: str, fmt: str) -> Iterator[tuple[int, dict]]:
    """(line number, row) pairs; values are strings or JSON scalars."""
    with open(path, encoding=encoding_of(path), newline="") as handle:
        if fmt == "csv":
            reader = csv.DictReader(handle)
            for row in reader:
                yield reader.line_num, {k.strip(): v for k, v in row.items() if k is not None}
            return
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{number}: invalid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise DataError(f"{path}:{number}: expected a JSON object per line")
            yield number, row


def text(value) -> str:
    return "" if value is None else str(value).strip()


def check_label(value, column: str, where: str) -> None:
    """An identity or camera is an integer or a name: not a fraction, a flag or a structure."""
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return
    if isinstance(value, str):
        label = value.strip()
        if label.lstrip("+-").isdigit() or not any(c.isdigit() for c in label):
            return  # an integer, or a name ("nan" and "inf" too, however odd)
        try:
            float(label)
        except ValueError:
            return  # a name with digits: "person_007"
    raise DataError(f"{where}: {column} must be an integer or a name (got {value!r})")


def split_of(row: dict, where: str) -> str:
    split, role = text(row.get("split")).lower(), text(row.get("role")).lower()
    if split == "test":
        if role not in ("query", "gallery"):
            raise DataError(f"{where}: split 'test' needs role query or gallery (got {role!r})")
        return role
    if split not in SPLITS:
        raise DataError(f"{where}: split must be train, query, gallery or test (got {split!r})")
    if role and role != split:
        raise DataError(f"{where}: role {role!r} contradicts split {split!r}")
    return split


def load_manifest(path: str, *, root: str | None = None, fmt: str = "auto") -> ReidData:
    path = os.path.abspath(os.path.expanduser(path))
    if not os.path.isfile(path):
        raise DataError(f"manifest {path!r} does not exist")
    base = os.path.abspath(os.path.expanduser(root)) if root else os.path.dirname(path)
    rows = []
    for number, row in read_rows(path, manifest_format(path, fmt)):
        where = f"{path}:{number}"
        for column in ("path", "pid", "split"):
            if not text(row.get(column)):
                raise DataError(f"{where}: missing {column!r}")
        for column in ("pid", "camid"):
            check_label(row.get(column), column, where)
        rows.append((where, split_of(row, where), row))
    if not rows:
        raise DataError(f"manifest {path!r} has no rows")
    with_camera = [text(row.get("camid")) != "" for _, _, row in rows]
    if any(with_camera) and not all(with_camera):
        where = rows[with_camera.index(False)][0]
        raise DataError(f"{where}: missing 'camid' (give it in every row or in none)")
    pid_names = {text(row["pid"]) for _, _, row in rows} - {str(JUNK_PID)}
    pids = number_labels(pid_names, "pid")
    cameras = number_labels({text(row.get("camid")) for _, _, row in rows}, "camid") if all(with_camera) else {}
    dropped: Counter = Counter()
    splits: dict[str, list[Record]] = {split: [] for split in SPLITS}
    for _, split, row in rows:
        if text(row["pid"]) == str(JUNK_PID):
            dropped["junk images (pid -1)"] += 1
            continue
        camid = cameras[text(row["camid"])] if cameras else DEFAULT_CAMERA[split]
        image = os.path.join(base, os.path.expanduser(text(row["path"])))
        splits[split].append(Record(os.path.normpath(image), pids[text(row["pid"])], camid))
    return ReidData(**splits, name="manifest", root=base, dropped=dropped)
