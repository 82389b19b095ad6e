"""The `indexes` kind, the exact index, `visim index build|eval` and `visim search`."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from visim.cli import main
from visim.config.load import config_from_dict
from visim.engine.build import build_engine
from visim.engine.extract import Embeddings
from visim.index.exact import ExactIndex, UnsupportedMetricError
from visim.index.store import open_index_dir
from visim.outputs.embeddings import save_embeddings
from visim.plugins import get_registry


def clustered(seed: int, n: int, cam: int, dim: int = 16, ids: int = 30):
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(0).normal(size=(ids, dim)).astype(np.float32)
    pids = rng.integers(0, ids, n)
    emb = centres[pids] + 0.7 * rng.normal(size=(n, dim)).astype(np.float32)
    return Embeddings(torch.from_numpy(emb), torch.from_numpy(pids), torch.full((n,), cam), [f"c{cam}/{i}.jpg" for i in range(n)])


@pytest.fixture(scope="module")
def embeddings_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("emb") / "emb.npz"
    save_embeddings(path, clustered(1, 40, 0), clustered(2, 700, 1), {"metric": "euclidean"})
    return path


def brute_force_topk(queries, gallery, metric, k):
    values = metric(torch.as_tensor(queries), torch.as_tensor(gallery)).numpy().astype(np.float64)
    keys = -values if metric.higher_is_better else values
    order = np.lexsort((np.broadcast_to(np.arange(gallery.shape[0]), keys.shape), keys), axis=1)[:, :k]
    return order


@pytest.mark.parametrize("name", ["euclidean", "dot", "manhattan", "chebyshev"])
def test_exact_index_top10_equals_brute_force_with_ties(name):
    """Integer embeddings: these metrics compute them exactly, so ties are exact ties."""
    rng = np.random.default_rng(5)
    gallery = rng.integers(-2, 3, (500, 6)).astype(np.float32)  # many exact ties
    queries = rng.integers(-2, 3, (33, 6)).astype(np.float32)
    metric = get_registry().metrics.get(name).build()
    index = ExactIndex(metric, 6, memory_budget=1 << 20)  # many gallery blocks: merged top-k
    index.build(gallery)
    scores, ids = index.search(queries, 10)
    assert np.array_equal(ids, brute_force_topk(queries, gallery, metric, 10))
    expected = metric(torch.as_tensor(queries), torch.as_tensor(gallery)).numpy()
    assert np.allclose(scores, np.take_along_axis(expected, ids, 1))


@pytest.mark.parametrize("name", ["cosine", "cosine_similarity"])
def test_exact_index_top10_equals_brute_force_on_random_embeddings(name):
    rng = np.random.default_rng(6)
    gallery = rng.normal(size=(3000, 32)).astype(np.float32)
    queries = rng.normal(size=(20, 32)).astype(np.float32)
    metric = get_registry().metrics.get(name).build()
    index = ExactIndex(metric, 32, memory_budget=1 << 20)
    index.build(gallery)
    _, ids = index.search(queries, 10)
    assert np.array_equal(ids, brute_force_topk(queries, gallery, metric, 10))


def test_exact_index_pads_when_the_gallery_is_smaller_than_k():
    index = ExactIndex(get_registry().metrics.get("euclidean").build(), 2)
    index.build(np.eye(2, dtype=np.float32))
    scores, ids = index.search(np.zeros((1, 2), np.float32), 4)
    assert ids.tolist() == [[0, 1, -1, -1]] and np.isnan(scores[0, 2:]).all()


def test_whole_row_metrics_are_refused():
    with pytest.raises(UnsupportedMetricError, match="normalises over the whole gallery"):
        ExactIndex(get_registry().metrics.get("negsoftmax_euclidean").build(), 4)


def test_build_search_eval_round_trip(tmp_path, embeddings_file, capsys):
    out = tmp_path / "index"
    assert main(["index", "build", str(embeddings_file), "--out", str(out), "--dtype", "float16"]) == 0
    meta = json.loads((out / "index.json").read_text())
    assert (meta["count"], meta["dim"], meta["dtype"], meta["approximate"]) == (700, 16, "float16", False)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    capsys.readouterr()
    hits_file = tmp_path / "hits.jsonl"
    assert main(["search", str(out), "--query", str(embeddings_file), "--top", "5", "--out", str(hits_file)]) == 0
    records = [json.loads(line) for line in hits_file.read_text().splitlines()]
    assert [r["query"] for r in records] == list(range(40))
    first = records[0]
    assert first["path"] == "c0/0.jpg" and len(first["hits"]) == 5
    scores = [h["score"] for h in first["hits"]]
    assert scores == sorted(scores)
    stored = np.load(out / "gallery-00000.npy").astype(np.float32)
    query = clustered(1, 40, 0).embeddings.numpy()
    euclidean = get_registry().metrics.get("euclidean").build()
    assert [h["gallery"] for h in first["hits"]] == brute_force_topk(query[:1], stored, euclidean, 5)[0].tolist()
    # Open set: a threshold below every score leaves the query with no hit.
    assert main(["search", str(out), "--query", str(embeddings_file), "--top", "5", "--threshold", str(min(scores) - 1e-3)]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[0])["hits"] == []
    assert main(["index", "eval", str(out), "--query", str(embeddings_file), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["recall@10"] == 1.0 and report["approximate"] is False
    assert set(report["topk"]) >= {"CMC@1", "CMC@10", "mAP@10"} and 0 < report["topk"]["mAP@10"] <= 1


def test_bad_inputs_are_one_line_exit_2(tmp_path, embeddings_file, capsys):
    out = tmp_path / "index"
    assert main(["index", "build", str(embeddings_file), "--out", str(out)]) == 0
    other = tmp_path / "other.npz"
    save_embeddings(other, clustered(1, 4, 0, dim=8), clustered(2, 10, 1, dim=8), {})
    capsys.readouterr()
    cases = {
        "have size 8 but the index holds 16-d": ["search", str(out), "--query", str(other)],
        "already exists": ["index", "build", str(embeddings_file), "--out", str(out)],
        "normalises over the whole gallery": ["index", "build", str(embeddings_file), "--out", str(tmp_path / "x"), "--metric", "negsoftmax_euclidean"],
        "unknown index": ["index", "build", str(embeddings_file), "--out", str(tmp_path / "y"), "--index", "exakt"],
        "not a visim index": ["search", str(tmp_path), "--query", str(other)],
    }
    for expected, argv in cases.items():
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert expected in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
    shard = out / "gallery-00000.npy"
    shard.write_bytes(shard.read_bytes()[:-100])  # truncated
    assert main(["search", str(out), "--query", str(embeddings_file)]) == 2
    assert "corrupt or truncated shard" in capsys.readouterr().err


@pytest.fixture(scope="module")
def run_index(trained_run, tmp_path_factory):
    """``visim index build RUN_DIR`` of the session's trained run, and that run's model."""
    out = tmp_path_factory.mktemp("run_index") / "index"
    with pytest.MonkeyPatch.context() as patch:
        printed = io.StringIO()
        patch.setattr(sys, "stdout", printed)
        assert main(["index", "build", str(trained_run.run_dir), "--out", str(out)]) == 0
    assert printed.getvalue() == f"{out}: 95 x 16 float32 gallery, index exact (exact), metric euclidean\n"
    best = trained_run.run_dir / "checkpoints" / "best.pt"
    engine = build_engine(config_from_dict(trained_run.config), train=False, weights=best, quiet=True)
    return out, engine, best


def test_a_run_directory_is_indexed_with_the_gallery_its_best_checkpoint_embeds(run_index):
    out, engine, _ = run_index
    gallery = engine.extract(engine.val_dl)
    stored = open_index_dir(out)
    assert np.array_equal(np.asarray(stored.gallery), gallery.embeddings.numpy())
    assert np.array_equal(stored.pids, gallery.pids.numpy()) and np.array_equal(stored.camids, gallery.camids.numpy())
    assert stored.paths == list(gallery.paths) and stored.meta["metric"] == {"name": "euclidean"}  # the config's


def test_image_files_are_embedded_and_find_the_gallery_item_they_show(run_index, trained_run, tmp_path, capsys):
    out, engine, best = run_index
    data, gallery = engine.val_dl.dataset.data, engine.val_dl.dataset.records
    picks = [0, 7, 30]  # written losslessly: the same pixels as these gallery items
    folder = tmp_path / "queries"
    (folder / "sub").mkdir(parents=True)  # image folders are searched recursively
    for i in picks:
        data.load_image(gallery[i]).save(folder / ("sub" if i == 30 else "") / f"g{i:03d}.png")
    (folder / "notes.txt").write_text("not an image")
    capsys.readouterr()
    argv = ["search", str(out), "--query", str(folder), "--config", trained_run.config_file, "--weights", str(best), "--top", "3"]
    assert main(argv) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    expected = [folder / "g000.png", folder / "g007.png", folder / "sub" / "g030.png"]
    assert [r["path"] for r in records] == [str(p.resolve()) for p in expected]
    for record, i in zip(records, picks):
        best_hit = record["hits"][0]
        assert (best_hit["gallery"], best_hit["path"], best_hit["pid"]) == (i, gallery[i].path, gallery[i].pid)
        assert best_hit["score"] < 1e-4 < record["hits"][1]["score"]


def test_an_image_folder_that_cannot_be_embedded_is_one_line(run_index, trained_run, tmp_path, capsys):
    out, _, _ = run_index
    (tmp_path / "empty").mkdir()
    cases = {
        "is a folder of images: --config (and --weights) are needed": ["--query", str(tmp_path)],
        "no images (.jpg": ["--query", str(tmp_path / "empty"), "--config", trained_run.config_file],
    }
    for expected, argv in cases.items():
        assert main(["search", str(out), *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert expected in err and len(err.splitlines()) == 1, err
    # An image that cannot be read is a failed job (exit 1), named in one line.
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "broken.png").write_bytes(b"not a png")
    argv = ["--query", str(tmp_path / "bad"), "--config", trained_run.config_file]
    assert main(["search", str(out), *argv]) == 1
    err = capsys.readouterr().err.strip()
    assert f"cannot read image '{tmp_path / 'bad' / 'broken.png'}'" in err and len(err.splitlines()) == 1, err


def test_listing_indexes_imports_no_torch():
    code = "import sys; from visim.cli import main; main(['components', 'indexes']); assert 'torch' not in sys.modules"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "exact" in done.stdout
