"""build_loaders: the batch contract, bad images (error / skip), split checks, image_key."""

from __future__ import annotations

import warnings

import pytest
import torch

from tests.data_trees import (
    StandIns,
    experiment,
    make_image_folder,
    make_market,
    write_corrupt,
    write_image,
    write_manifest,
)
from visim.data.loaders import build_loaders
from visim.data.records import DataError, DataWarning


@pytest.fixture(autouse=True)
def stand_ins(register_plugin):
    register_plugin(StandIns(), "stand-ins")


def market_config(root, **data):
    data.setdefault("batch_size", 2)
    data.setdefault("image_size", [16, 8])
    return experiment({"name": "market1501", "root": str(root)}, train={"epochs": 1}, **data)


def test_digits_loaders_follow_the_batch_contract():
    config = experiment(
        {"name": "digits", "max_per_digit": 12},
        train={"epochs": 1},
        batch_size=8,
        eval_batch_size=5,
        image_size=[16, 12],
        sampler={"name": "identity", "num_instances": 4},
    )
    loaders = build_loaders(config)
    assert loaders.num_classes == 5 and loaders.data.name == "digits"
    batch = next(iter(loaders.train))
    assert set(batch) == {"image", "pid", "camid", "path", "class_id"}
    assert batch["image"].shape == (8, 3, 16, 12) and batch["image"].dtype == torch.float32
    assert batch["class_id"].tolist() == batch["pid"].tolist()  # digits 0-4 are their own classes
    assert len(set(batch["pid"].tolist())) == 2 and isinstance(batch["path"], list)
    assert len(loaders.train) == len(loaders.train.sampler) // 8 == 7  # 60 images: 15 chunks, P=2
    query = next(iter(loaders.query))
    assert set(query) == {"image", "pid", "camid", "path"} and query["image"].shape == (5, 3, 16, 12)
    assert [r.path for r in loaders.data.query[:5]] == query["path"]  # in order, not shuffled
    gallery_pids = torch.cat([b["pid"] for b in loaders.gallery])
    assert gallery_pids.tolist() == [r.pid for r in loaders.data.gallery]
    assert loaders.bad_images == () and loaders.bad_image_report() is None


def test_train_loader_is_seeded_and_reshuffles_with_set_epoch():
    config = experiment({"name": "digits", "max_per_digit": 8}, train={"epochs": 1}, batch_size=4, image_size=[8, 8])

    def first_paths(seed, epoch):
        loader = build_loaders(config, seed=seed).train
        loader.sampler.set_epoch(epoch)
        return [p for batch in loader for p in batch["path"]]

    assert first_paths(0, 0) == first_paths(0, 0)
    assert first_paths(0, 0) != first_paths(0, 1)
    assert first_paths(0, 0) != first_paths(1, 0)


def test_no_train_loader_without_train_section_or_when_asked():
    config = experiment("digits", image_size=[8, 8])
    loaders = build_loaders(config)
    assert loaders.train is None and len(loaders.query.dataset) == 181
    with_train = experiment({"name": "digits", "max_per_digit": 4}, train={"epochs": 1}, image_size=[8, 8])
    assert build_loaders(with_train, train=False).train is None


def test_market_tree_loads_with_configured_transforms_and_image_key(tmp_path):
    make_market(tmp_path)
    config = market_config(
        tmp_path,
        train_transforms=["resize", {"name": "random_erasing", "p": 1.0}, "normalize"],
        test_transforms=[{"name": "resize", "size": [10, 6]}],
        test={"image_key": "img"},
    )
    loaders = build_loaders(config)
    train_batch = next(iter(loaders.train))
    assert train_batch["img"].shape == (2, 3, 16, 8)
    query = next(iter(loaders.query))
    assert "image" not in query and query["img"].shape == (2, 3, 10, 6)
    assert 0.0 <= float(query["img"].min()) and float(query["img"].max()) <= 1.0  # no normalize


def test_missing_image_is_an_error_naming_file_and_index(tmp_path):
    # Only a list (here a manifest) can name a file that is not there.
    write_image(tmp_path / "q.png")
    write_image(tmp_path / "g.png")
    rows = [
        {"path": "q.png", "pid": 1, "camid": 0, "split": "query"},
        {"path": "g.png", "pid": 1, "camid": 1, "split": "gallery"},
        {"path": "gone.png", "pid": 2, "camid": 1, "split": "gallery"},
    ]
    dataset = {"name": "manifest", "path": str(write_manifest(tmp_path / "list.csv", rows, "csv"))}
    with pytest.raises(DataError, match=r"1 image file\(s\) not found: gallery\[1\] .*gone\.png: file not found"):
        build_loaders(experiment(dataset, image_size=[8, 4]))
    loaders = build_loaders(experiment(dataset, image_size=[8, 4], on_bad_image="skip"))
    assert [r.path for r in loaders.data.gallery] == [str(tmp_path / "g.png")]
    assert loaders.skipped == 1 and "skipped 1 unreadable image(s)" in loaders.bad_image_report()


def test_corrupt_image_errors_when_loaded_and_is_skipped_with_skip(tmp_path):
    data_dir = make_market(tmp_path, wrappers=())
    write_corrupt(data_dir / "bounding_box_train" / "0007_c2s1_009999_01.jpg")
    loaders = build_loaders(market_config(tmp_path, sampler="sequential"))
    with pytest.raises(DataError, match=r"0007_c2s1_009999_01\.jpg' \(index 3 of the train split\)"):
        list(loaders.train)  # the bad image is met while loading its batch

    loaders = build_loaders(market_config(tmp_path, sampler="sequential", on_bad_image="skip"))
    assert [str(b).split(" ")[0] for b in loaders.bad_images] == ["train[3]"]
    assert len(loaders.data.train) == 5 and sum(len(b["pid"]) for b in loaders.train) == 4
    assert loaders.num_classes == 2


def test_corrupt_image_in_a_worker_process_still_names_the_file(tmp_path):
    data_dir = make_market(tmp_path, wrappers=())
    write_corrupt(data_dir / "query" / "0011_c3s1_009999_00.jpg")
    loaders = build_loaders(market_config(tmp_path, num_workers=1), train=False)
    batches = iter(loaders.query)
    try:
        with pytest.raises(DataError, match=r"0011_c3s1_009999_00\.jpg' \(index 1 of the query split\)"):
            list(batches)
    finally:
        # Stop the worker now: left to the garbage collector, torch waits 5 s for it.
        batches._shutdown_workers()


def test_empty_splits_are_errors(tmp_path):
    make_image_folder(tmp_path, {"query": {"1": ["a.png"]}, "gallery": {"1": ["b.png"]}})
    config = experiment({"name": "image_folder", "root": str(tmp_path)}, train={"epochs": 1}, image_size=[8, 4])
    with pytest.raises(DataError, match="the train split of dataset 'image_folder' is empty"):
        build_loaders(config)
    assert build_loaders(config, train=False).train is None  # testing needs no train split
    make_image_folder(tmp_path / "no_gallery", {"query": {"1": ["a.png"]}})
    config = experiment({"name": "image_folder", "root": str(tmp_path / "no_gallery")}, image_size=[8, 4])
    with pytest.raises(DataError, match="gallery split of dataset 'image_folder' is empty"):
        build_loaders(config)


def test_train_split_too_small_for_one_batch(tmp_path):
    make_market(tmp_path)
    with pytest.raises(DataError, match="no full batch of 8"):
        build_loaders(market_config(tmp_path, batch_size=8))


def test_unmatched_queries_and_identity_overlap_warn(tmp_path):
    make_image_folder(
        tmp_path,
        {
            "train": {"1": ["a.png", "b.png"], "2": ["c.png", "d.png"]},
            "query": {"2": ["e.png"], "3": ["f.png"]},
            "gallery": {"2": ["g.png"], "4": ["h.png"]},
        },
    )
    config = experiment({"name": "image_folder", "root": str(tmp_path)}, train={"epochs": 1}, batch_size=2, image_size=[8, 4])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        build_loaders(config)
    messages = [str(w.message) for w in caught if issubclass(w.category, DataWarning)]
    assert any("1 query identities (1 queries) never appear in the gallery" in m and ": 3;" in m for m in messages)
    assert any("1 identities of dataset 'image_folder' are in both train and test: 2" in m for m in messages)
