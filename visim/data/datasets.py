"""The built-in dataset components: params classes (their config schema) and factories.

Every factory returns a :class:`visim.data.records.ReidData`. Relative paths in params are
relative to the working directory.
"""

from __future__ import annotations

import re

import attrs

from visim.config import rules
from visim.data.formats.bounding_box import load_dukemtmc, load_market1501
from visim.data.formats.image_folder import load_image_folder
from visim.data.formats.manifest import load_manifest
from visim.data.formats.msmt17 import load_msmt17
from visim.data.records import ReidData


def camera_pattern_problem(value: str) -> str:
    """What is wrong with a camera regex, or "" when nothing is."""
    try:
        return "" if re.compile(value).groups else "; it has no group"
    except (re.error, TypeError) as exc:
        return f"; {exc}"


camera_regex = rules.optional(
    rules.custom(
        lambda value: not camera_pattern_problem(value),
        "be a regular expression with a group capturing the camera",
        hint=camera_pattern_problem,
    )
)
non_empty = rules.longer_eq(1)


@attrs.frozen
class Market1501Params:
    """``root`` holds query/, bounding_box_test/ and bounding_box_train/ (or wraps them in
    ``market1501/`` and/or ``Market-1501-v15.09.15/``)."""

    root: str = attrs.field(validator=non_empty)


@attrs.frozen
class DukeMTMCParams:
    """``root`` holds the layout, optionally inside ``dukemtmc-reid/`` and/or ``DukeMTMC-reID/``."""

    root: str = attrs.field(validator=non_empty)


@attrs.frozen
class MSMT17Params:
    """``root`` holds MSMT17_V1/ or MSMT17_V2/ (optionally inside msmt17/), or is one of them."""

    root: str = attrs.field(validator=non_empty)
    include_val: bool = False


@attrs.frozen
class ImageFolderParams:
    root: str = attrs.field(validator=non_empty)
    train_dir: str = attrs.field(default="train", validator=non_empty)
    query_dir: str = attrs.field(default="query", validator=non_empty)
    gallery_dir: str = attrs.field(default="gallery", validator=non_empty)
    # Applied to file names; its group named "cam" (or first group) is the camera.
    camera_regex: str | None = attrs.field(default=None, validator=camera_regex)


@attrs.frozen
class ManifestParams:
    path: str = attrs.field(validator=non_empty)
    # Base of relative image paths; default: the manifest's folder.
    root: str | None = None
    format: str = attrs.field(default="auto", validator=rules.in_(("auto", "csv", "jsonl")))


@attrs.frozen
class DigitsParams:
    query_every: int = attrs.field(default=5, validator=rules.gte(2))
    num_cameras: int = attrs.field(default=3, validator=rules.gte(1))
    # Fewer images per digit for quicker demos; None keeps all (~180 per digit).
    max_per_digit: int | None = attrs.field(default=None, validator=rules.optional(rules.gte(2)))


def build_market1501(params: Market1501Params) -> ReidData:
    """Market-1501: bounding_box_train / query / bounding_box_test, junk (pid -1) dropped."""
    return load_market1501(params.root)


def build_dukemtmc(params: DukeMTMCParams) -> ReidData:
    """DukeMTMC-reID: the Market-1501 folder layout with 8 cameras."""
    return load_dukemtmc(params.root)


def build_msmt17(params: MSMT17Params) -> ReidData:
    """MSMT17 (V1 or V2) from its list_*.txt files, as torchreid reads it."""
    return load_msmt17(params.root, include_val=params.include_val)


def build_image_folder(params: ImageFolderParams) -> ReidData:
    """root/<split>/<identity>/<image>, the camera from an optional file-name regex."""
    dirs = {"train": params.train_dir, "query": params.query_dir, "gallery": params.gallery_dir}
    return load_image_folder(params.root, split_dirs=dirs, camera_regex=params.camera_regex)


def build_manifest(params: ManifestParams) -> ReidData:
    """A CSV or JSON Lines file listing path, pid, camid, split (and role) per image."""
    return load_manifest(params.path, root=params.root, fmt=params.format)


def build_digits(params: DigitsParams) -> ReidData:
    """scikit-learn's bundled 8x8 digits: 0-4 train, 5-9 query/gallery (no download)."""
    from visim.data.formats.digits import load_digits_data

    return load_digits_data(
        query_every=params.query_every,
        num_cameras=params.num_cameras,
        max_per_digit=params.max_per_digit,
    )
