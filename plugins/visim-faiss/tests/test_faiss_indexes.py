"""visim-faiss, installed: found through its entry point, faiss imported lazily, recall measured."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from visim.cli import main
from visim.engine.extract import Embeddings
from visim.outputs.embeddings import save_embeddings
from visim.plugins import get_registry


def clustered(seed, n, cam, dim=16, ids=50):
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(0).normal(size=(ids, dim)).astype(np.float32)
    pids = rng.integers(0, ids, n)
    emb = centres[pids] + 0.5 * rng.normal(size=(n, dim)).astype(np.float32)
    return Embeddings(torch.from_numpy(emb), torch.from_numpy(pids), torch.full((n,), cam), [f"{cam}/{i}.jpg" for i in range(n)])


@pytest.fixture(scope="module")
def embeddings_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("emb") / "emb.npz"
    save_embeddings(path, clustered(1, 100, 0), clustered(2, 4000, 1), {"metric": "euclidean"})
    return path


def test_registered_through_the_entry_point_without_importing_faiss():
    code = ("import sys; from visim.plugins import get_registry; r = get_registry().indexes; "
            "print(r.get('faiss.ivf').distribution, sorted(r.names())); assert 'faiss' not in sys.modules")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "visim-faiss" in done.stdout and "faiss.hnsw" in done.stdout


@pytest.mark.parametrize("metric", ["euclidean", "cosine", "dot", "cosine_similarity"])
def test_flat_equals_visims_exact_index(metric):
    rng = np.random.default_rng(3)
    gallery, queries = rng.normal(size=(2000, 16)).astype(np.float32), rng.normal(size=(30, 16)).astype(np.float32)
    built = get_registry().metrics.get(metric).build()
    scores, ids = {}, {}
    for name in ("faiss.flat", "exact"):
        index = get_registry().indexes.get(name).build(None, metric=built, dim=16)
        index.build(gallery)
        scores[name], ids[name] = index.search(queries, 10)
    assert np.array_equal(ids["faiss.flat"], ids["exact"])
    assert np.allclose(scores["faiss.flat"], scores["exact"], atol=1e-4)


@pytest.mark.parametrize("spec", ["faiss.flat", "{name: faiss.ivf, nlist: 16, nprobe: 4}", "{name: faiss.hnsw, M: 8}"])
def test_cosine_indexes_build_from_the_memory_mapped_shards(tmp_path, spec, capsys):
    """Cosine normalises the vectors: never in the read-only memory map of the stored gallery
    (a crash) nor in the caller's array."""
    path = tmp_path / "emb.npz"
    save_embeddings(path, clustered(1, 20, 0), clustered(2, 500, 1), {"metric": "cosine"})
    out = tmp_path / "index"
    assert main(["index", "build", str(path), "--out", str(out), "--index", spec]) == 0
    capsys.readouterr()
    assert main(["search", str(out), "--query", str(path), "--top", "1"]) == 0
    hits = [json.loads(line)["hits"][0] for line in capsys.readouterr().out.splitlines()]
    assert len(hits) == 20 and all(0 <= hit["score"] <= 2 for hit in hits)


def test_the_callers_gallery_is_not_normalised_in_place():
    from visim_faiss import FlatParams
    from visim_faiss.index import FaissIndex

    gallery = clustered(2, 100, 1).embeddings.numpy()
    before = gallery.copy()
    FaissIndex("flat", FlatParams(), get_registry().metrics.get("cosine").build(), 16).build(gallery)
    assert np.array_equal(gallery, before)


def test_unsupported_metric_and_bad_params_exit_2(tmp_path, embeddings_file, capsys):
    assert main(["index", "build", str(embeddings_file), "--out", str(tmp_path / "a"), "--index", "faiss.flat", "--metric", "manhattan"]) == 2
    assert "faiss indexes support euclidean" in capsys.readouterr().err
    assert main(["index", "build", str(embeddings_file), "--out", str(tmp_path / "b"), "--index", "{name: faiss.ivf, nlist: 4, nprobe: 8}"]) == 2
    assert "nprobe (8) cannot exceed nlist (4)" in capsys.readouterr().err
    assert main(["index", "build", str(embeddings_file), "--out", str(tmp_path / "c"), "--index", "{name: faiss.ivf, storage: pq, pq_m: 5}"]) == 2
    assert "pq_m=5 must divide the embedding size 16" in capsys.readouterr().err
    assert not any((tmp_path / name).exists() for name in "abc")


def recall_at_10(ids, truth) -> float:
    return float(np.mean([len(np.intersect1d(a, b)) / 10 for a, b in zip(ids, truth)]))


def test_refine_restores_the_ranking_the_product_quantiser_loses():
    from visim_faiss import IVFParams
    from visim_faiss.index import FaissIndex

    gallery, queries = clustered(2, 4000, 1).embeddings.numpy(), clustered(1, 100, 0).embeddings.numpy()
    euclidean = get_registry().metrics.get("euclidean").build()
    found = {}
    for storage, refine in (("flat", 1), ("pq", 1), ("pq", 8)):
        index = FaissIndex("ivf", IVFParams(nlist=64, nprobe=16, storage=storage, refine=refine), euclidean, 16)
        index.build(gallery)
        found[storage, refine] = index.search(queries, 10)[1]
    # The same cells are probed: re-ranking PQ's 80 best by their vectors finds what the exact
    # scan of those cells finds, which 4-bit codes alone do not.
    assert recall_at_10(found["pq", 8], found["flat", 1]) >= 0.99
    assert recall_at_10(found["pq", 1], found["flat", 1]) < 0.9


@pytest.mark.parametrize("spec", [
    "{name: faiss.ivf, nlist: 64, nprobe: 16}",
    "{name: faiss.ivf, nlist: 64, nprobe: 16, storage: pq, refine: 8}",
    "{name: faiss.hnsw, M: 16, ef_search: 64}",
])
def test_approximate_indexes_say_so_and_reach_their_recall(tmp_path, embeddings_file, capsys, spec):
    out = tmp_path / "index"
    assert main(["index", "build", str(embeddings_file), "--out", str(out), "--index", spec]) == 0
    assert "(approximate)" in capsys.readouterr().out
    assert main(["search", str(out), "--query", str(embeddings_file), "--top", "3"]) == 0
    captured = capsys.readouterr()
    records = [json.loads(line) for line in captured.out.splitlines()]
    assert len(records) == 100 and all(r["approximate"] is True and len(r["hits"]) == 3 for r in records)
    assert "approximate index" in captured.err
    assert main(["index", "eval", str(out), "--query", str(embeddings_file), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["approximate"] is True and report["recall@10"] >= 0.95
    assert "mAP@10" in report["topk"] and "mAP" not in report["topk"]
    assert "not exact mAP" in report["topk"]["note"]
    assert main(["index", "eval", str(out), "--query", str(embeddings_file)]) == 0
    assert "APPROXIMATE index" in capsys.readouterr().out


def test_a_corrupt_faiss_file_is_one_line_exit_2(tmp_path, embeddings_file, capsys):
    out = tmp_path / "index"
    assert main(["index", "build", str(embeddings_file), "--out", str(out), "--index", "faiss.flat"]) == 0
    (out / "component" / "faiss.index").write_bytes(b"garbage")
    capsys.readouterr()
    assert main(["search", str(out), "--query", str(embeddings_file)]) == 2
    err = capsys.readouterr().err.strip()
    assert "unreadable faiss index" in err and len(err.splitlines()) == 1
