"""Odd and hostile input: each is one clear problem, never a traceback or a late failure."""

from __future__ import annotations

import math

import pytest

from tests.helpers import run_forked
from visim.config.errors import ConfigError
from visim.config.load import load_config

DEMO = "configs/demo.yaml"


def yaml_override(key, value):
    return f"{key}={value!r}".replace("inf", ".inf").replace("nan", ".nan")


MINKOWSKI = "test.metric={name: minkowski, p: 3}"


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
@pytest.mark.parametrize("key", ["train.optimizer.lr", "train.grad_clip", "test.metric.p"])
def test_numeric_fields_reject_nan_and_inf_at_validate_time(key, value):
    if key == "test.metric.p" and math.isinf(value):
        return  # minkowski's p says it takes inf (the Chebyshev distance): tested below
    overrides = [yaml_override(key, value)]
    if key == "test.metric.p":
        overrides.insert(0, MINKOWSKI)
    with pytest.raises(ConfigError) as caught:
        load_config(DEMO, overrides)
    [problem] = caught.value.problems
    assert problem.path == f"$.{key}"
    assert str(problem.message).startswith("must be a finite number (got ")


def test_a_field_that_means_something_by_infinity_takes_it():
    config = load_config(DEMO, [MINKOWSKI, yaml_override("test.metric.p", math.inf)])
    assert config.test.metric.params.p == math.inf


# -- images -----------------------------------------------------------------------------------

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from visim.data.records import DataError, read_image_file  # noqa: E402


@pytest.mark.parametrize(
    ("array", "expected"),
    [
        (np.array([[0, 257, 65535]], dtype=np.uint16), [0, 1, 255]),  # 16-bit: scaled, not clipped
        (np.array([[0.0, 0.5, 1.0]], dtype=np.float32), [0, 128, 255]),  # float in [0, 1]
        (np.array([[0, 128, 255]], dtype=np.uint8), [0, 128, 255]),
    ],
)
def test_high_bit_depth_images_are_scaled_to_8_bits(tmp_path, array, expected):
    path = tmp_path / ("image.tiff" if array.dtype == np.float32 else "image.png")
    Image.fromarray(array).save(path)
    image = read_image_file(str(path))
    assert image.mode == "RGB"
    assert np.asarray(image)[0, :, 0].tolist() == expected
    assert np.asarray(image)[0, :, 2].tolist() == expected


@pytest.mark.parametrize("mode", ["P", "LA", "RGBA", "CMYK", "1", "I;16"])
def test_every_pil_mode_reads_as_rgb(tmp_path, mode):
    path = tmp_path / ("image.tiff" if mode == "CMYK" else "image.png")
    Image.new(mode, (5, 3)).save(path)
    image = read_image_file(str(path))
    assert (image.mode, image.size) == ("RGB", (5, 3))


def test_a_decompression_bomb_is_a_bad_image(tmp_path, monkeypatch):
    path = tmp_path / "bomb.png"
    Image.new("L", (64, 64)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # above the limit: only a warning in PIL
    with pytest.raises(ValueError, match="decompression bomb"):
        read_image_file(str(path))


def test_a_data_loader_worker_error_is_one_line():
    """torch re-raises a worker's exception with the worker's traceback in its message."""
    worker = DataError("Caught DataError in DataLoader worker process 0.\nOriginal Traceback "
                       "(most recent call last):\n  File \"x.py\", line 1\nvisim.data.records."
                       "DataError: cannot read image 'a.png' (index 3 of the query split)\n")
    assert str(worker) == "cannot read image 'a.png' (index 3 of the query split)"


def test_a_corrupt_image_read_in_a_worker_process_names_its_file(tmp_path):
    from tests.data_trees import write_corrupt, write_image, write_manifest
    from visim.data.formats.manifest import load_manifest

    write_image(tmp_path / "good.png")
    write_corrupt(tmp_path / "bad.png")
    rows = [{"path": "good.png", "pid": 1, "camid": 0, "split": "query"},
            {"path": "bad.png", "pid": 1, "camid": 1, "split": "gallery"}]
    data = load_manifest(str(write_manifest(tmp_path / "m.csv", rows, "csv")))
    # In a child process: torch takes 5 s to shut down a worker whose item failed, once the
    # failed iterator is freed (not at exit); the child exits without freeing it.
    child = run_forked(read_with_one_worker, data.torch_dataset("gallery"))
    message = child.stdout.removesuffix("\n")
    assert child.returncode == 0 and "\n" not in message, child.stderr
    assert message.startswith(f"cannot read image {str(tmp_path / 'bad.png')!r} (index 0")


def read_with_one_worker(dataset) -> int:
    """Print the DataError that reading ``dataset`` in a DataLoader worker raises; 0 if raised."""
    import torch.utils.data

    try:
        list(torch.utils.data.DataLoader(dataset, num_workers=1))
    except DataError as error:
        print(error)
        return 0
    return 1


# -- manifests ----------------------------------------------------------------------------------

ROWS = "path,pid,camid,split\ncafé.png,7,0,query\nb.png,élodie,1,gallery\n"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "cp1252"])
def test_manifests_in_the_encodings_spreadsheets_write(tmp_path, encoding):
    from visim.data.formats.manifest import load_manifest

    path = tmp_path / "m.csv"
    path.write_bytes(ROWS.encode(encoding))
    data = load_manifest(str(path))
    assert data.query[0].path == str(tmp_path / "café.png")
    assert len(data.gallery) == 1


@pytest.mark.parametrize("pid", [3.5, True, [1], {"id": 1}, "1.0", "2e3"])
def test_labels_that_are_not_integers_or_names_are_rejected_with_file_and_line(tmp_path, pid):
    import json

    from visim.data.formats.manifest import load_manifest

    path = tmp_path / "m.jsonl"
    rows = [{"path": "a.png", "pid": 1, "camid": 0, "split": "query"},
            {"path": "b.png", "pid": pid, "camid": 0, "split": "gallery"}]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    with pytest.raises(DataError) as caught:
        load_manifest(str(path))
    assert str(caught.value) == f"{path}:2: pid must be an integer or a name (got {pid!r})"


@pytest.mark.parametrize("pid", ["person_007", "nan", "-1", "+3", " 12 "])
def test_names_and_integers_are_labels(tmp_path, pid):
    from visim.data.formats.manifest import check_label

    check_label(pid, "pid", "m.csv:2")


# -- hostile configs ----------------------------------------------------------------------------

LAUGHS = "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 9) if prev else ', '.join(['lol'] * 9)}]\n"
    for prev, name in zip([None, *"abcdefgh"], "abcdefghi")
) + "model: convnet\ndata: {dataset: digits}\ntest: {metric: cosine, topk_cmc: *i}\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (LAUGHS, "expands to more than 100000 values"),  # 9**9 values once expanded
        ("a: " + "[" * 50_000 + "]" * 50_000 + "\n", "nested too deeply"),
        ("".join(f"{'  ' * depth}k:\n" for depth in range(150)), "to be a config (more than 100 levels)"),
        ("# padding\n" * 120_000, "larger than 1 MiB"),
    ],
)
def test_hostile_configs_are_refused_quickly_in_one_line(tmp_path, text, message):
    import time

    path = tmp_path / "hostile.yaml"
    path.write_text(text)
    started = time.perf_counter()
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert time.perf_counter() - started < 10
    [problem] = caught.value.problems
    assert message in str(problem.message)


# -- crafted embeddings files -------------------------------------------------------------------


def write_embeddings(path, **changes):
    import json

    arrays = {
        "query_embeddings": np.eye(3, 4, dtype=np.float32), "query_pids": np.array([0, 1, 2]),
        "query_camids": np.zeros(3, dtype=np.int64), "query_paths": np.array(["a", "b", "c"]),
        "gallery_embeddings": np.eye(5, 4, dtype=np.float32), "gallery_pids": np.array([0, 1, 2, 0, 1]),
        "gallery_camids": np.ones(5, dtype=np.int64), "gallery_paths": np.array(list("defgh")),
        "meta": np.array(json.dumps({"metric": "cosine"})),
    }
    arrays.update(changes)
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"gallery_embeddings": np.eye(5, 3, dtype=np.float32)}, "query embeddings have 4 dimensions, gallery embeddings 3"),
        ({"gallery_embeddings": np.full((5, 4), np.nan, np.float32)}, "gallery embeddings contain NaN or infinite"),
        ({"query_pids": np.array([0.5, 1.0, 2.0])}, "query pids are torch.float64, not integers"),
        ({"query_embeddings": np.eye(3, 4, dtype=np.int64)}, "query embeddings are torch.int64, not floating point"),
        ({"meta": np.array("[1, 2]")}, "meta is list, not a mapping"),
        ({"query_pids": np.array([0, 1])}, "inconsistent query arrays"),
        ({"query_embeddings": np.zeros((0, 4), np.float32), "query_pids": np.zeros(0, np.int64),
          "query_camids": np.zeros(0, np.int64), "query_paths": np.array([], dtype=str)}, "the query split is empty"),
    ],
)
def test_crafted_embeddings_files_are_one_line_exit_2(tmp_path, capsys, changes, message):
    from visim.cli import main

    path = write_embeddings(tmp_path / "emb.npz", **changes)
    assert main(["evaluate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err


def test_a_sound_embeddings_file_evaluates(tmp_path, capsys):
    from visim.cli import main

    assert main(["evaluate", str(write_embeddings(tmp_path / "emb.npz"))]) == 0
    assert "mAP" in capsys.readouterr().out
