"""Dataset formats parsed from generated trees; Market/Duke/MSMT17 records equal torchreid's."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import pytest

from tests.data_trees import (
    MARKET,
    make_duke,
    make_image_folder,
    make_market,
    make_msmt17,
    write_image,
    write_manifest,
)
from visim.config.errors import ConfigError
from visim.data.records import DataError, Record, assign_class_ids
from visim.plugins import get_registry


def build(name: str, **params):
    return get_registry().datasets.get(name).build(params)


def as_tuples(records, train: bool = False):
    """(normalised path, pid or class id, camid), sorted: torchreid keeps file-system order."""
    rows = [(os.path.normpath(r.path), r.class_id if train else r.pid, r.camid) for r in records]
    return sorted(rows)


def torchreid_tuples(items):
    return sorted((os.path.normpath(path), pid, camid) for path, pid, camid, *_ in items)


def assert_torchreid_parity(ours, theirs):
    assert as_tuples(ours.train, train=True) == torchreid_tuples(theirs.train)
    assert as_tuples(ours.query) == torchreid_tuples(theirs.query)
    assert as_tuples(ours.gallery) == torchreid_tuples(theirs.gallery)


# -- Market-1501 ----------------------------------------------------------------------------


def test_market1501_matches_torchreid(tmp_path):
    from torchreid.reid.data.datasets.image.market1501 import Market1501

    make_market(tmp_path)
    ours = build("market1501", root=str(tmp_path))
    theirs = Market1501(root=str(tmp_path), verbose=False)
    assert_torchreid_parity(ours, theirs)
    assert len(ours.train) == 5 and len(ours.query) == 2 and len(ours.gallery) == 4


def test_market1501_without_archive_folder_matches_torchreid(tmp_path):
    from torchreid.reid.data.datasets.image.market1501 import Market1501

    make_market(tmp_path, wrappers=("market1501",))
    ours = build("market1501", root=str(tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchreid warns that this layout is deprecated
        theirs = Market1501(root=str(tmp_path), verbose=False)
    assert_torchreid_parity(ours, theirs)


def test_market1501_junk_dropped_and_counted_distractors_kept(tmp_path):
    data_dir = make_market(tmp_path, wrappers=())
    data = build("market1501", root=str(tmp_path))
    assert data.root == str(data_dir)
    junk = sum(name.startswith("-1") for names in MARKET.values() for name in names)
    assert data.dropped == {"junk images (pid -1)": junk} and junk == 3
    assert all(r.pid != -1 for split in ("train", "query", "gallery") for r in data.split(split))
    distractors = [r for r in data.gallery if r.pid == 0]
    assert [os.path.basename(r.path) for r in distractors] == ["0000_c3s1_001601_01.jpg"]
    assert distractors[0].camid == 2  # c3 -> camera 2
    assert {r.pid: r.class_id for r in data.train} == {2: 0, 7: 1}
    assert data.num_train_classes == 2
    assert all(r.class_id is None for r in data.query + data.gallery)


@pytest.mark.parametrize("wrappers", [(), ("Market-1501-v15.09.15",), ("market1501",)])
def test_market1501_root_may_point_at_any_wrapper_level(tmp_path, wrappers):
    data_dir = make_market(tmp_path, wrappers=("market1501", "Market-1501-v15.09.15"))
    root = data_dir
    for _ in wrappers:
        root = root.parent
    assert build("market1501", root=str(root)).root == str(data_dir)


def test_market1501_missing_root_and_wrong_layout(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        build("market1501", root=str(tmp_path / "nowhere"))
    (tmp_path / "query").mkdir()
    with pytest.raises(DataError, match="expected folders query/ and bounding_box_test/"):
        build("market1501", root=str(tmp_path))


def test_market1501_bad_file_name_is_named(tmp_path):
    data_dir = make_market(tmp_path, wrappers=())
    write_image(data_dir / "query" / "holiday.jpg")
    with pytest.raises(DataError, match=r"holiday\.jpg.*<pid>_c<camera>"):
        build("market1501", root=str(tmp_path))


def test_market1501_without_train_folder_gives_empty_train(tmp_path):
    data_dir = make_market(tmp_path, wrappers=())
    for path in (data_dir / "bounding_box_train").iterdir():
        path.unlink()
    (data_dir / "bounding_box_train").rmdir()
    data = build("Market1501", root=str(tmp_path))  # the original engine's spelling
    assert data.train == () and len(data.query) == 2


# -- DukeMTMC-reID --------------------------------------------------------------------------


def test_dukemtmc_matches_torchreid(tmp_path):
    from torchreid.reid.data.datasets.image.dukemtmcreid import DukeMTMCreID

    make_duke(tmp_path)
    ours = build("dukemtmc", root=str(tmp_path))
    assert_torchreid_parity(ours, DukeMTMCreID(root=str(tmp_path), verbose=False))
    assert {r.camid for r in ours.gallery} == {2, 5, 6, 3}
    assert ours.dropped == {}


# -- MSMT17 ---------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["MSMT17_V1", "MSMT17_V2"])
def test_msmt17_matches_torchreid(tmp_path, version):
    from torchreid.reid.data.datasets.image.msmt17 import MSMT17

    make_msmt17(tmp_path, version)
    ours = build("msmt17", root=str(tmp_path))
    assert_torchreid_parity(ours, MSMT17(root=str(tmp_path), verbose=False))
    assert len(ours.train) == 3


def test_msmt17_include_val_matches_torchreid_combineall(tmp_path):
    from torchreid.reid.data.datasets.image.msmt17 import MSMT17

    release = make_msmt17(tmp_path)
    ours = build("msmt17", root=str(release), include_val=True)  # root may be the release itself
    theirs = MSMT17(root=str(tmp_path), verbose=False, combineall=True)
    # torchreid's combineall also folds query/gallery into train; its val part is what we add.
    val_part = [item for item in theirs.train if "_001_03_" in item[0]]
    assert len(ours.train) == 4 and ("_001_03_" in ours.train[-1].path)
    assert as_tuples(ours.train[-1:]) == torchreid_tuples(val_part)


def test_msmt17_test_pids_are_not_train_identities(tmp_path):
    make_msmt17(tmp_path)
    data = build("msmt17", root=str(tmp_path))
    assert data.separate_test_pids
    assert {r.pid for r in data.train} & {r.pid for r in data.query} == {0}


def test_msmt17_malformed_list_line_is_named(tmp_path):
    release = make_msmt17(tmp_path)
    (release / "list_query.txt").write_text("0000/0000_000_02_x.jpg 0\nno-pid-here\n")
    with pytest.raises(DataError, match=r"list_query\.txt:2: expected '<path> <pid>'"):
        build("msmt17", root=str(tmp_path))


def test_msmt17_missing_release(tmp_path):
    with pytest.raises(DataError, match="MSMT17_V1/ or MSMT17_V2/"):
        build("msmt17", root=str(tmp_path))


# -- image_folder ---------------------------------------------------------------------------


def test_image_folder_numeric_identities_and_camera_regex(tmp_path):
    make_image_folder(
        tmp_path,
        {
            "train": {"3": ["a_cam2.png", "b_cam1.jpg"], "8": ["c_cam1.png"], "-1": ["junk_cam1.png"]},
            "query": {"20": ["q_cam10.png"]},
            "gallery": {"20": ["g_cam2.png", "h_cam10.jpg"], "21": ["i_cam1.png"]},
        },
    )
    data = build("image_folder", root=str(tmp_path), camera_regex=r"cam(\d+)")
    # Distinct camera values 1, 2, 10 in numeric order -> 0, 1, 2.
    assert [(os.path.basename(r.path), r.pid, r.camid, r.class_id) for r in data.train] == [
        ("a_cam2.png", 3, 1, 0),
        ("b_cam1.jpg", 3, 0, 0),
        ("c_cam1.png", 8, 0, 1),
    ]
    assert [(r.pid, r.camid) for r in data.query] == [(20, 2)]
    assert [(r.pid, r.camid) for r in data.gallery] == [(20, 1), (20, 2), (21, 0)]
    assert data.dropped == {"junk images (pid -1)": 1}


def test_image_folder_named_identities_share_pids_across_splits(tmp_path):
    make_image_folder(
        tmp_path,
        {
            "train": {"zoe": ["1.png"]},
            "q": {"bob": ["2.png"]},
            "g": {"bob": ["3.png"], "ann": ["4.png"]},
        },
    )
    data = build("image_folder", root=str(tmp_path), query_dir="q", gallery_dir="g", camera_regex="(?P<cam>x)?")
    names = {"ann": 0, "bob": 1, "zoe": 2}
    assert [r.pid for r in data.train] == [names["zoe"]]
    assert [r.pid for r in data.query] == [names["bob"]]
    assert sorted(r.pid for r in data.gallery) == [names["ann"], names["bob"]]


def test_image_folder_default_cameras_keep_market_protocol_harmless(tmp_path):
    make_image_folder(tmp_path, {"query": {"1": ["a.png"]}, "gallery": {"1": ["b.png"]}})
    data = build("image_folder", root=str(tmp_path))
    assert [r.camid for r in data.query] == [0] and [r.camid for r in data.gallery] == [1]


def test_image_folder_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        build("image_folder", root=str(tmp_path / "nope"))
    with pytest.raises(DataError, match="no images under"):
        build("image_folder", root=str(tmp_path))
    make_image_folder(tmp_path, {"query": {"1": ["a_c1.png", "plain.png"]}})
    with pytest.raises(DataError, match=r"does not match file name .*plain\.png"):
        build("image_folder", root=str(tmp_path), camera_regex=r"_c(\d)")
    make_image_folder(tmp_path, {"gallery": {"01": ["x_c1.png"]}})
    with pytest.raises(DataError, match=r"\['01', '1'\] are the same number"):
        build("image_folder", root=str(tmp_path), camera_regex=r"_c(\d)")


def test_image_folder_regex_is_validated_as_config(tmp_path):
    with pytest.raises(ConfigError) as info:
        build("image_folder", root=str(tmp_path), camera_regex="cam(")
    assert str(info.value) == (
        "must be a regular expression with a group capturing the camera (got 'cam('); "
        "missing ), unterminated subpattern at position 3 @ $.camera_regex"
    )
    with pytest.raises(ConfigError) as info:
        build("image_folder", root=str(tmp_path), camera_regex="cam")
    assert str(info.value) == (
        "must be a regular expression with a group capturing the camera (got 'cam'); "
        "it has no group @ $.camera_regex"
    )


# -- manifest -------------------------------------------------------------------------------

MANIFEST_ROWS = [
    {"path": "img/t1.png", "pid": 4, "camid": 0, "split": "train"},
    {"path": "img/t2.png", "pid": 9, "camid": 1, "split": "train"},
    {"path": "img/junk.png", "pid": -1, "camid": 1, "split": "train"},
    {"path": "img/q1.png", "pid": 30, "camid": 0, "split": "test", "role": "query"},
    {"path": "img/g1.png", "pid": 30, "camid": 1, "split": "test", "role": "gallery"},
    {"path": "img/g2.png", "pid": 31, "camid": 2, "split": "gallery"},
]


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_manifest_csv_and_jsonl_read_the_same(tmp_path, fmt):
    path = write_manifest(tmp_path / f"data.{fmt}", MANIFEST_ROWS, fmt)
    data = build("manifest", path=str(path))
    img = tmp_path / "img"
    assert data.train == (
        Record(str(img / "t1.png"), 4, 0, class_id=0),
        Record(str(img / "t2.png"), 9, 1, class_id=1),
    )
    assert data.query == (Record(str(img / "q1.png"), 30, 0),)
    assert data.gallery == (Record(str(img / "g1.png"), 30, 1), Record(str(img / "g2.png"), 31, 2))
    assert data.dropped == {"junk images (pid -1)": 1}


def test_manifest_root_names_and_missing_cameras(tmp_path):
    rows = [
        {"path": "a.png", "pid": "alice", "split": "query"},
        {"path": "b.png", "pid": "alice", "split": "gallery"},
        {"path": "c.png", "pid": "bob", "split": "gallery"},
    ]
    path = write_manifest(tmp_path / "lists" / "m.txt", rows, "jsonl")
    data = build("manifest", path=str(path), root=str(tmp_path / "images"), format="jsonl")
    assert data.query == (Record(str(tmp_path / "images" / "a.png"), 0, 0),)
    assert [(r.pid, r.camid) for r in data.gallery] == [(0, 1), (1, 1)]


@pytest.mark.parametrize(
    "row, message",
    [
        ({"path": "x.png", "camid": 0, "split": "train"}, r"m\.csv:3: missing 'pid'"),
        ({"path": "x.png", "pid": 1, "camid": 0, "split": "valid"}, r"m\.csv:3: split must be train"),
        ({"path": "x.png", "pid": 1, "camid": 0, "split": "test"}, r"m\.csv:3: split 'test' needs role"),
        ({"path": "x.png", "pid": 1, "camid": 0, "split": "query", "role": "gallery"}, "contradicts"),
        ({"path": "x.png", "pid": 1, "split": "query"}, r"m\.csv:3: missing 'camid' \(give it in every row"),
    ],
)
def test_manifest_row_errors_name_the_line(tmp_path, row, message):
    good = {"path": "ok.png", "pid": 1, "camid": 0, "split": "gallery", "role": ""}
    path = write_manifest(tmp_path / "m.csv", [good, row], "csv")
    with pytest.raises(DataError, match=message):
        build("manifest", path=str(path))


def test_manifest_file_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        build("manifest", path=str(tmp_path / "none.csv"))
    (tmp_path / "m.tsv").write_text("path\tpid\n")
    with pytest.raises(DataError, match="set format: csv or jsonl"):
        build("manifest", path=str(tmp_path / "m.tsv"))
    (tmp_path / "m.jsonl").write_text('{"path": "a.png"}\n[1, 2]\n')
    with pytest.raises(DataError, match=r"m\.jsonl:1: missing 'pid'"):
        build("manifest", path=str(tmp_path / "m.jsonl"))
    (tmp_path / "bad.jsonl").write_text("{not json\n")
    with pytest.raises(DataError, match=r"bad\.jsonl:1: invalid JSON"):
        build("manifest", path=str(tmp_path / "bad.jsonl"))
    (tmp_path / "empty.csv").write_text("path,pid,camid,split\n")
    with pytest.raises(DataError, match="has no rows"):
        build("manifest", path=str(tmp_path / "empty.csv"))


# -- digits and records ---------------------------------------------------------------------


def test_digits_identities_cameras_and_images():
    data = build("digits", max_per_digit=20)
    assert {r.pid for r in data.train} == {0, 1, 2, 3, 4} and data.num_train_classes == 5
    assert {r.pid for r in data.query} == {r.pid for r in data.gallery} == {5, 6, 7, 8, 9}
    assert len(data.train) == 100 and len(data.query) == 5 * 4 and len(data.gallery) == 5 * 16
    # Query cameras vary, and each query has gallery positives on its own and other cameras.
    assert {r.camid for r in data.query} == {0, 1, 2}
    for q in data.query:
        cams = {g.camid for g in data.gallery if g.pid == q.pid}
        assert q.camid in cams and cams - {q.camid}
    image = data.load_image(data.query[0])
    assert image.mode == "RGB" and image.size == (8, 8)
    assert image.getextrema()[0][1] > 200  # grey levels 0-16 scaled to 0-255
    assert data.in_memory
    again = build("digits", max_per_digit=20)
    assert again.query == data.query and again.gallery == data.gallery


@pytest.mark.parametrize("shipped_file", [True, False], ids=["read-directly", "through-sklearn"])
def test_digits_pixels_and_targets_are_scikit_learns(monkeypatch, shipped_file):
    from sklearn.datasets import load_digits

    from visim.data.formats import digits

    if not shipped_file:  # a scikit-learn that keeps its data elsewhere
        monkeypatch.setattr(digits, "digits_file", lambda: None)
    images, targets = digits.read_digits()
    reference = load_digits()
    assert images.shape == (1797, 8, 8) and (images == reference.images).all()
    assert targets.dtype.kind == "i" and (targets == reference.target).all()


def test_class_ids_follow_sorted_pids():
    records = [Record("c", 40, 0), Record("a", 7, 1), Record("b", 40, 2), Record("d", 12, 0)]
    assert [r.class_id for r in assign_class_ids(records)] == [2, 0, 2, 1]


def test_registering_and_parsing_import_no_heavy_modules(tmp_path):
    make_market(tmp_path)
    code = (
        "import sys\n"
        "from visim.plugins import get_registry\n"
        f"data = get_registry().datasets.get('market1501').build({{'root': {str(tmp_path)!r}}})\n"
        "assert len(data.gallery) == 4\n"
        "print(sorted(m for m in ('torch', 'torchvision', 'numpy', 'sklearn') if m in sys.modules))\n"
        "get_registry().datasets.get('digits').build({'max_per_digit': 2})\n"
        "print('sklearn' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["[]", "False"]  # the demo data is read without scikit-learn
