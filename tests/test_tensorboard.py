"""TensorBoard output read back with tensorboard's own EventAccumulator, plus write_results."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import metadata as hparams_metadata

from tests.helpers import tiny_config
from visim.config.load import config_from_dict
from visim.engine.build import build_engine
from visim.outputs import ranked
from visim.outputs.tensorboard import TensorBoardWarning, hparam_value, subsample, write_results

MAX_EMBEDS = 50


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Two epochs, tested after each, with the projector on for both splits."""
    tmp_path = tmp_path_factory.mktemp("tb")
    config = tiny_config(tmp_path)
    config["data"]["dataset"] = {"name": "digits", "max_per_digit": 40}
    config["test"].update(write_embeds=[True, True], max_embeds=MAX_EMBEDS)
    engine = build_engine(config_from_dict(config), run_dir=tmp_path / "run", quiet=True)
    results = engine.run()
    engine.close()
    events = EventAccumulator(str(tmp_path / "run"), size_guidance={"scalars": 0, "images": 0, "histograms": 0, "tensors": 0})
    events.Reload()
    return engine, results, events


def test_scalars_per_epoch_with_monotonic_steps(run):
    engine, results, events = run
    expected = {"Train/loss", "Train/acc@1", "Train/lr", "Test/rank-1", "Test/rank-5", "Test/mAP", "Test/mINP"}
    assert expected <= set(events.Tags()["scalars"])
    for tag in expected:
        assert [e.step for e in events.Scalars(tag)] == [1, 2], tag
    assert events.Scalars("Test/mAP")[-1].value == pytest.approx(results["mAP"])
    assert events.Scalars("Test/rank-5")[-1].value == pytest.approx(results["cmc"]["5"])
    assert [e.value for e in events.Scalars("Train/lr")] == pytest.approx([0.05, 0.025])
    # The evaluation options are hparams, not per-epoch results; the query counts are results.
    assert "Test/protocol" not in events.Tags()["tensors"]
    assert events.Scalars("Test/num_valid_queries")[-1].value == results["num_valid_queries"]


def test_hparams_session_holds_the_config(run):
    _, _, events = run
    content = events.PluginTagToContent("hparams")
    assert hparams_metadata.SESSION_START_INFO_TAG in content
    # No experiment record: TensorBoard unions the sessions of all runs (see tensorboard.py).
    assert hparams_metadata.EXPERIMENT_TAG not in content
    start = hparams_metadata.parse_session_start_info_plugin_data(content[hparams_metadata.SESSION_START_INFO_TAG])
    assert start.hparams["train.optimizer.lr"].number_value == pytest.approx(0.05)
    assert start.hparams["test.metric.name"].string_value == "euclidean"
    assert start.hparams["train.grad_clip"].string_value == "None"


def test_distance_histograms_count_the_protocol_pairs(run):
    engine, _, events = run
    query, gallery = engine.last_query, engine.last_gallery
    same = query.pids[:, None] == gallery.pids[None, :]
    same_camera = query.camids[:, None] == gallery.camids[None, :]
    positive = events.Histograms("Test/distances/positive")
    negative = events.Histograms("Test/distances/negative")
    assert [e.step for e in positive] == [1, 2] and [e.step for e in negative] == [1, 2]
    assert positive[-1].histogram_value.num == int((same & ~same_camera).sum())
    assert negative[-1].histogram_value.num == int((~same).sum())
    distances = torch.cdist(query.embeddings, gallery.embeddings)
    assert positive[-1].histogram_value.sum == pytest.approx(float(distances[same & ~same_camera].sum()), rel=1e-4)
    assert positive[-1].histogram_value.sum / positive[-1].histogram_value.num < (
        negative[-1].histogram_value.sum / negative[-1].histogram_value.num
    )


def test_ranked_results_grid(run):
    engine, _, events = run
    png = Image.open(engine.run_dir / "ranked_results.png")
    # 3 worst + 3 best queries, 1 + 10 cells of 128 x 128 (16 x 16 images) plus borders.
    columns, rows = 11, 6
    width = 2 * 8 + columns * (128 + 2 * 4) + (columns - 1) * 4 + 16
    height = 2 * 8 + rows * (128 + 2 * 4 + 26) + (rows - 1) * 4
    assert png.size == (width, height) == (1568, 1008)
    images = events.Images("Test/ranked_results")
    assert [e.step for e in images] == [1, 2]
    assert (images[-1].width, images[-1].height) == png.size
    # TensorBoard holds the very PNG the run directory has (the last test's): encoded once.
    assert images[-1].encoded_image_string == (engine.run_dir / "ranked_results.png").read_bytes()

    # Row r's first result is green exactly when the query's nearest valid gallery item shares
    # its identity (computed here by brute force), red otherwise.
    query, gallery = engine.last_query, engine.last_gallery
    ap = engine.last_result.per_query.ap
    worst = np.argsort(ap, kind="stable")[:3].tolist()
    chosen = worst + [q for q in np.argsort(-ap, kind="stable").tolist() if q not in worst][:3]
    pixels = np.asarray(png.convert("RGB"))
    first_cell_left = 8 + (128 + 8) + 4 + 16
    for r, q in enumerate(chosen):
        top = 8 + r * (128 + 8 + 26 + 4)
        distances = torch.cdist(query.embeddings[q : q + 1], gallery.embeddings)[0]
        ignored = (gallery.pids == query.pids[q]) & (gallery.camids == query.camids[q])
        nearest = int(torch.where(ignored, math.inf, distances).argmin())
        expected = ranked.COLOURS["correct" if gallery.pids[nearest] == query.pids[q] else "wrong"]
        assert tuple(pixels[top + 1, first_cell_left + 1]) == expected, r
        assert tuple(pixels[top + 1, 8 + 1]) == ranked.COLOURS["query"]


def test_projector_files_subsampled_with_metadata(run):
    engine, _, _ = run
    run_dir = engine.run_dir
    config = (run_dir / "projector_config.pbtxt").read_text()
    for step in ("00001", "00002"):
        for split in ("query", "gallery"):
            assert f'tensor_name: "{split}:{step}"' in config
    n_gallery = len(engine.last_gallery)
    assert n_gallery > MAX_EMBEDS
    folder = run_dir / "00002" / "gallery"
    lines = (folder / "metadata.tsv").read_text().splitlines()
    assert lines[0] == "pid\tcamid\tpath" and len(lines) == 1 + MAX_EMBEDS
    kept = subsample(n_gallery, MAX_EMBEDS)
    assert lines[1].split("\t") == [str(int(engine.last_gallery.pids[kept[0]])), str(int(engine.last_gallery.camids[kept[0]])), engine.last_gallery.paths[kept[0]]]
    assert {line.split("\t")[0] for line in lines[1:]} == {"5", "6", "7", "8", "9"}
    assert len((folder / "tensors.tsv").read_text().splitlines()) == MAX_EMBEDS
    assert Image.open(folder / "sprite.png").size == (8 * 32, 8 * 32)  # ceil(sqrt(50)) thumbnails a side
    assert len((run_dir / "00002" / "query" / "metadata.tsv").read_text().splitlines()) == 1 + len(engine.last_query)


class RecordingWriter:
    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        if name.startswith("add_"):
            return lambda tag, value, step, **kw: self.calls.append((name, tag, value, step, kw))
        raise AttributeError(name)

    def flush(self):
        self.calls.append(("flush",))

    def written(self):
        return {(c[0], c[1]) for c in self.calls if c[0] != "flush"}


def test_write_results_drops_nothing_silently():
    writer = RecordingWriter()
    results = {
        "epoch": 3,
        "cmc": {"1": 0.5, "5": 0.75},
        "mAP": np.float32(0.25),
        "flag": True,
        "losses": {"ce": 1.5, "triplet": torch.tensor(0.3)},
        "curve": [0.1, 0.2],
        "per_query_ap": list(np.linspace(0, 1, 100)),
        "names": ["a", "b"],
        "note": "text",
        "missing": None,
        "picture": Image.new("RGB", (4, 2)),
        "chw": torch.zeros(3, 5, 6),
        "batch": np.zeros((2, 5, 6, 3), dtype=np.uint8),
        "protocol": "market1501",
        "odd": object(),
    }
    with pytest.warns(TensorBoardWarning, match="Test/odd"):
        write_results(writer, results, "Test", step=3)
    assert writer.written() == {
        ("add_scalar", "Test/rank-1"),
        ("add_scalar", "Test/rank-5"),
        ("add_scalar", "Test/mAP"),
        ("add_scalar", "Test/flag"),
        ("add_scalar", "Test/losses/ce"),
        ("add_scalar", "Test/losses/triplet"),
        ("add_scalar", "Test/curve/0"),
        ("add_scalar", "Test/curve/1"),
        ("add_histogram", "Test/per_query_ap"),
        ("add_text", "Test/names"),
        ("add_text", "Test/note"),
        ("add_text", "Test/missing"),
        ("add_image", "Test/picture"),
        ("add_image", "Test/chw"),
        ("add_images", "Test/batch"),
        ("add_text", "Test/odd"),
    }
    formats = {c[1]: c[4].get("dataformats") for c in writer.calls if c[0] in ("add_image", "add_images")}
    assert formats == {"Test/picture": "HWC", "Test/chw": "CHW", "Test/batch": "NHWC"}
    assert all(c[3] == 3 for c in writer.calls if c[0] != "flush") and writer.calls[-1] == ("flush",)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # everything known: no warning
        write_results(RecordingWriter(), {"loss": 1.0, "acc@1": 0.5}, "Train", step=1)


def test_hparam_values_keep_one_type_per_column():
    assert hparam_value(0.1) == 0.1 and hparam_value(True) is True and hparam_value("sgd") == "sgd"
    assert hparam_value(None) == "None" and hparam_value(math.nan) == "nan" and hparam_value([1, 5]) == "[1, 5]"


def test_select_queries_worst_then_best():
    ap = [0.5, 0.1, 0.9, 0.1, 1.0, 0.7, 0.0]
    valid = [True, True, True, True, True, True, False]  # the last has no positive
    assert ranked.select_queries(ap, valid, 2) == [1, 3, 4, 2]
    assert ranked.select_queries(ap, valid, 3) == [1, 3, 0, 4, 2, 5]
    assert ranked.select_queries(ap[:3], valid[:3], 2) == [1, 0, 2]  # fewer than 2 x count
    assert ranked.select_queries([0.5] * 4, [True] * 4, 2) == [0, 1, 2, 3]  # ties: never twice
    assert ranked.select_queries(ap, valid, 0) == []
