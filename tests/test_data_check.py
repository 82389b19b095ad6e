"""``visim data check``: per-split counts, unreadable images, queries without positives, overlap."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.data_trees import (
    StandIns,
    experiment,
    make_image_folder,
    make_market,
    write_corrupt,
)
from visim.cli import main
from visim.data.check import (
    JUNK,
    NOT_IN_GALLERY,
    ONLY_ITSELF,
    SAME_CAMERA,
    SplitStats,
    check_data,
    queries_without_positive,
)
from visim.data.records import Record


@pytest.fixture
def stand_ins(register_plugin):
    register_plugin(StandIns(), "stand-ins")


def reasons(query, gallery, protocol):
    return [(p.index, p.reason) for p in queries_without_positive(query, gallery, protocol)]


def test_queries_without_positive_per_protocol():
    query = [Record("q0", 1, 0), Record("q1", 2, 0), Record("q2", 3, 1)]
    gallery = [Record("g0", 1, 0), Record("g1", 2, 0), Record("g2", 2, 1), Record("g3", 1, 0)]
    assert reasons(query, gallery, "market1501") == [(0, SAME_CAMERA), (2, NOT_IN_GALLERY)]
    assert reasons(query, gallery, "none") == [(2, NOT_IN_GALLERY)]
    # exclude_self: the query set is the gallery; q0's only other positive is g3.
    same = [Record("a", 1, 0), Record("b", 2, 0), Record("c", 1, 1)]
    assert reasons(same, same, "exclude_self") == [(1, ONLY_ITSELF)]


def test_data_check_and_evaluation_agree_on_junk_queries():
    # Under market1501 junk gallery items are ignored, so a junk query has no valid positive:
    # data check says so, and the evaluation skips it.
    from visim.evaluation import evaluate

    query, gallery = [Record("q0", -1, 0), Record("q1", 1, 0)], [Record("g0", -1, 1), Record("g1", 1, 1)]
    assert reasons(query, gallery, "market1501") == [(0, JUNK)]
    assert reasons(query, gallery, "none") == []
    result = evaluate([[0.1, 0.2], [0.2, 0.1]], [-1, 1], [-1, 1], [0, 0], [1, 1])
    assert result.as_dict()["num_skipped"] == 1


def test_clean_market_tree(tmp_path, stand_ins):
    make_market(tmp_path)
    report = check_data(experiment({"name": "market1501", "root": str(tmp_path)}, train={"epochs": 1}))
    assert report.clean and report.problem_count == 0
    assert report.stats == {
        "train": SplitStats(images=5, identities=2, cameras=3),
        "query": SplitStats(images=2, identities=2, cameras=2),
        "gallery": SplitStats(images=4, identities=3, cameras=3),
    }
    text = report.format()
    assert "dropped at load: 3 junk images (pid -1)" in text and text.endswith("data check: clean")
    assert "  gallery         4           3        3" in text


def test_every_problem_is_reported(tmp_path, stand_ins):
    make_image_folder(
        tmp_path,
        {
            "train": {"1": ["a_c1.png"], "2": ["b_c1.png"]},
            "query": {"2": ["q_c1.png"], "5": ["r_c1.png"], "6": ["s_c2.png"]},
            "gallery": {"2": ["g_c2.png"], "5": ["h_c1.png"], "7": ["i_c1.png"]},
        },
    )
    write_corrupt(tmp_path / "gallery" / "7" / "j_c2.png")
    config = experiment({"name": "image_folder", "root": str(tmp_path), "camera_regex": r"_c(\d)"}, train={"epochs": 1})
    report = check_data(config)
    assert [(b.split, b.index) for b in report.bad_images] == [("gallery", 3)]
    assert [(p.record.pid, p.reason) for p in report.no_positive] == [(5, SAME_CAMERA), (6, NOT_IN_GALLERY)]
    assert report.overlap == [2]
    assert report.problem_count == 4 and not report.clean
    text = report.format(limit=1)
    assert "problem: 1 unreadable image(s):\n  gallery[3] " in text and "j_c2.png: UnidentifiedImageError" in text
    assert "problem: 2 queries without a valid positive (protocol market1501):" in text
    assert "(pid 5, camera 0): every positive shares its camera\n  ... and 1 more" in text
    assert "problem: 1 identities are in both train and test: 2" in text
    assert text.endswith("data check: 4 problems")
    assert check_data(config, read_images=False).bad_images == []  # the file exists


def test_empty_split_is_a_problem_only_where_needed(tmp_path, stand_ins):
    make_image_folder(tmp_path, {"query": {"1": ["a.png"]}, "gallery": {"1": ["b.png"]}})
    dataset = {"name": "image_folder", "root": str(tmp_path)}
    assert check_data(experiment(dataset)).clean
    report = check_data(experiment(dataset, train={"epochs": 1}))
    assert report.empty_splits == ["the train split of dataset 'image_folder' is empty"]


def write_config(path, dataset_root, protocol="market1501"):
    path.write_text(
        "data:\n"
        f"  dataset: {{name: market1501, root: '{dataset_root}'}}\n"
        "model: stand_in_model\n"
        f"test: {{metric: stand_in_metric, protocol: {protocol}}}\n"
    )
    return path


def test_cli_exit_codes_and_output(tmp_path, stand_ins, capsys):
    data_dir = make_market(tmp_path / "data", wrappers=())
    config = write_config(tmp_path / "c.yaml", tmp_path / "data")
    assert main(["data", "check", str(config)]) == 0
    out = capsys.readouterr().out
    assert "dataset market1501 at" in out and "data check: clean" in out

    (data_dir / "bounding_box_test" / "0011_c2s1_001301_01.jpg").unlink()  # query 11's other-camera positive
    assert main(["data", "check", str(config)]) == 1
    assert "every positive shares its camera" in capsys.readouterr().out
    assert main(["data", "check", str(config), "--set", "test.protocol=none"]) == 0
    capsys.readouterr()

    assert main(["data", "check", str(config), "--set", f"data.dataset.root={tmp_path / 'nowhere'}"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("visim data check: error: Market-1501 root") and err.count("\n") == 1

    assert main(["data", "check", str(config), "--set", "data.dataset.rooot=x"]) == 2
    assert "did you mean 'root'" in capsys.readouterr().err
    assert main(["data"]) == 2


STAND_IN_PLUGIN = """
import attrs
from visim import hookimpl

@attrs.frozen
class NoParams:
    '''No parameters.'''

@hookimpl
def register_models(register):
    register("stand_in_model", lambda params, num_classes=1: None, params=NoParams)

@hookimpl
def register_metrics(register):
    register("stand_in_metric", lambda params: None, params=NoParams)
"""


def test_cli_in_a_subprocess_without_traceback(tmp_path, fake_dists):
    # The stand-ins come from an installed-looking distribution, as a real plugin would.
    fake_dists.add("visim-stand-ins", {"stand-ins": "visim_stand_ins"}, {"visim_stand_ins": STAND_IN_PLUGIN})
    data_dir = make_market(tmp_path / "data", wrappers=())
    write_corrupt(data_dir / "query" / "0015_c3s1_009999_00.jpg")
    config = write_config(tmp_path / "c.yaml", tmp_path / "data")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(fake_dists.root), *sys.path])}
    result = subprocess.run(
        [sys.executable, "-m", "visim", "data", "check", str(config)], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 1, result.stderr
    assert "problem: 1 unreadable image(s):\n  query[2] " in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stdout.endswith("data check: 1 problem\n")
