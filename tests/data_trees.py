"""Generated dataset trees of tiny images for the data tests (every on-disk format visim reads)."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import attrs
from PIL import Image

from visim.hookspecs import hookimpl

IMAGE_SIZE = (6, 12)  # width, height: tall like a person crop, and tiny


def write_image(path: Path, seed: int = 0) -> Path:
    """A tiny image whose colour depends on ``seed``; PNG or JPEG after the suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    colour = tuple((seed * k) % 251 for k in (37, 91, 173))
    Image.new("RGB", IMAGE_SIZE, colour).save(path)
    return path


def write_corrupt(path: Path) -> Path:
    """A file with an image suffix that is not an image."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"this is not an image")
    return path


def write_images(folder: Path, names: list[str]) -> list[Path]:
    return [write_image(folder / name, zlib.crc32(name.encode())) for name in names]


# Market-1501: train pids 2 and 7, test pids 11 and 15; junk (-1) in train and gallery,
# a distractor (0000) in the gallery, and Market's stray Thumbs.db.
MARKET = {
    "bounding_box_train": [
        "0002_c1s1_000451_03.jpg", "0002_c2s1_000551_01.jpg", "0007_c1s1_001051_02.jpg",
        "0007_c3s1_001151_01.jpg", "0007_c3s2_001251_01.jpg", "-1_c1s1_000000_00.jpg",
    ],
    "query": ["0011_c1s1_001251_00.jpg", "0015_c2s1_001351_00.jpg"],
    "bounding_box_test": [
        "0011_c2s1_001301_01.jpg", "0011_c1s1_001401_02.jpg", "0015_c1s1_001501_01.jpg",
        "0000_c3s1_001601_01.jpg", "-1_c2s1_001701_01.jpg", "-1_c4s1_001801_01.jpg",
    ],
}


def make_market(root: Path, wrappers: tuple[str, ...] = ("market1501", "Market-1501-v15.09.15")) -> Path:
    """The tree under ``root``; returns the folder holding the split folders."""
    data_dir = root.joinpath(*wrappers)
    for folder, names in MARKET.items():
        write_images(data_dir / folder, names)
    (data_dir / "bounding_box_test" / "Thumbs.db").write_bytes(b"\0")
    return data_dir


# DukeMTMC-reID: 8 cameras, names like 0001_c2_f0046182.jpg.
DUKE = {
    "bounding_box_train": ["0001_c2_f0046182.jpg", "0001_c5_f0051341.jpg", "0003_c8_f0047003.jpg"],
    "query": ["0005_c1_f0049021.jpg", "0009_c7_f0050031.jpg"],
    "bounding_box_test": ["0005_c3_f0049521.jpg", "0009_c6_f0051031.jpg", "0009_c7_f0052031.jpg", "0012_c4_f0052041.jpg"],
}


def make_duke(root: Path) -> Path:
    data_dir = root / "dukemtmc-reid" / "DukeMTMC-reID"
    for folder, names in DUKE.items():
        write_images(data_dir / folder, names)
    return data_dir


# MSMT17: list files of "<relative path> <pid>"; train pids already 0..C-1.
MSMT = {
    "train": [("0000/0000_000_01_0303morning_0015_0.jpg", 0), ("0000/0000_001_05_0303morning_0016_0.jpg", 0),
              ("0001/0001_000_12_0303noon_0020_1.jpg", 1)],
    "val": [("0001/0001_001_03_0303noon_0021_0.jpg", 1)],
    "query": [("0000/0000_000_02_0303afternoon_0030_0.jpg", 0), ("0003/0003_000_15_0303afternoon_0031_0.jpg", 3)],
    "gallery": [("0000/0000_001_04_0303afternoon_0032_0.jpg", 0), ("0003/0003_001_15_0303afternoon_0033_0.jpg", 3),
                ("0003/0003_002_09_0303afternoon_0034_0.jpg", 3)],
}


def make_msmt17(root: Path, version: str = "MSMT17_V1") -> Path:
    release = root / "msmt17" / version
    train_dir, test_dir = ("train", "test") if version == "MSMT17_V1" else ("mask_train_v2", "mask_test_v2")
    for split, items in MSMT.items():
        images = release / (train_dir if split in ("train", "val") else test_dir)
        write_images(images, [path for path, _ in items])
        (release / f"list_{split}.txt").write_text("".join(f"{path} {pid}\n" for path, pid in items))
    return release


def make_image_folder(root: Path, layout: dict[str, dict[str, list[str]]]) -> Path:
    """``layout``: split -> identity folder -> image file names."""
    for split, identities in layout.items():
        for identity, names in identities.items():
            write_images(root / split / identity, names)
    return root


def write_manifest(path: Path, rows: list[dict], fmt: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "jsonl":
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    else:
        columns = list(dict.fromkeys(key for row in rows for key in row))
        lines = [",".join(columns)] + [",".join(str(row.get(c, "")) for c in columns) for row in rows]
        path.write_text("\n".join(lines) + "\n")
    return path


# -- configs for the loader and check tests -------------------------------------------------


@attrs.frozen
class NoParams:
    """The stand-in components take no parameters."""


class StandIns:
    """A model and a metric to name in test configs, independent of the real ones."""

    @staticmethod
    @hookimpl
    def register_models(register):
        register("stand_in_model", lambda params, num_classes=1: None, params=NoParams)

    @staticmethod
    @hookimpl
    def register_metrics(register):
        register("stand_in_metric", lambda params: None, params=NoParams)


def experiment(dataset, *, train: dict | None = None, test: dict | None = None, **data):
    """An Experiment for ``dataset`` (a name or {name: ..., params}); needs StandIns registered."""
    from visim.config.converter import structure
    from visim.config.schema import Experiment

    config = {
        "data": {"dataset": dataset, **data},
        "model": "stand_in_model",
        "test": {"metric": "stand_in_metric", **(test or {})},
    }
    if train is not None:
        config["train"] = train
    return structure(config, Experiment)
