"""`visim predict` and `visim evaluate`: saved embeddings reproduce `test`, without the model."""

from __future__ import annotations

import gc
import json
import weakref

import numpy as np
import pytest
import torch
import yaml

from tests.helpers import tiny_config
from visim.cli import main
from visim.config.load import config_from_dict
from visim.engine.build import build_engine
from visim.engine.extract import Embeddings
from visim.evaluation import evaluate_embeddings
from visim.outputs.embeddings import (
    EmbeddingsFileError,
    load_embeddings,
    save_embeddings,
    write_embeddings,
)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A config, a checkpoint of its (untrained, seeded) model and that engine's test results."""
    tmp_path = tmp_path_factory.mktemp("predict")
    config = tiny_config(tmp_path)
    config["data"]["dataset"] = {"name": "digits", "max_per_digit": 20}
    config_file = tmp_path / "tiny.yaml"
    config_file.write_text(yaml.safe_dump(config))
    engine = build_engine(config_from_dict(config), train=False, run_dir=tmp_path / "run", quiet=True)
    checkpoint = engine.save_model(1, None)
    results = engine.test()
    return {"tmp": tmp_path, "config": str(config_file), "weights": str(checkpoint), "engine": engine, "results": results}


def predict(saved, out, *extra):
    return main(["predict", saved["config"], "--weights", saved["weights"], "--out", str(out), "--quiet", *extra])


@pytest.mark.parametrize("suffix", [".npz", ".pt"])
def test_predict_writes_what_the_engine_embeds(saved, suffix):
    out = saved["tmp"] / f"emb{suffix}"
    assert predict(saved, out) == 0
    loaded = load_embeddings(out)
    engine = saved["engine"]
    query, gallery = engine.last_query, engine.last_gallery
    torch.testing.assert_close(loaded.query.embeddings, engine.predict())
    torch.testing.assert_close(loaded.gallery.embeddings, gallery.embeddings)
    for ours, theirs in ((loaded.query, query), (loaded.gallery, gallery)):
        assert torch.equal(ours.pids, theirs.pids) and torch.equal(ours.camids, theirs.camids)
        assert ours.paths == theirs.paths and ours.paths[0].startswith("digits/")
    assert loaded.meta["metric"] == {"name": "euclidean"} and loaded.meta["topk_cmc"] == [1, 5]
    assert loaded.meta["weights"] == saved["weights"] and loaded.meta["epoch"] == 1


def test_evaluate_reproduces_test_and_options_override(saved, capsys):
    out = saved["tmp"] / "eval.npz"
    assert predict(saved, out) == 0
    capsys.readouterr()
    assert main(["evaluate", str(out), "--json"]) == 0
    same = json.loads(capsys.readouterr().out)
    expected = saved["results"]
    assert same["mAP"] == pytest.approx(expected["mAP"]) and same["cmc"] == pytest.approx(expected["cmc"])

    assert main(["evaluate", str(out)]) == 0
    table = capsys.readouterr().out
    assert "Rank-1" in table and f"{100 * expected['mAP']:.2f}" in table and "metric euclidean" in table

    assert main(["evaluate", str(out), "--metric", "cosine", "--protocol", "none", "--topk", "1", "3", "--json"]) == 0
    other = json.loads(capsys.readouterr().out)
    engine = saved["engine"]
    q, g = engine.last_query, engine.last_gallery
    direct = evaluate_embeddings(
        q.embeddings, g.embeddings, "cosine", q.pids, g.pids, q.camids, g.camids, topk=(1, 3), protocol="none"
    ).as_dict()
    assert set(other["cmc"]) == {"1", "3"} and other["protocol"] == "none"
    assert other["mAP"] == pytest.approx(direct["mAP"]) and other["mAP"] != pytest.approx(same["mAP"])


def test_bad_input_is_a_one_line_error(saved, tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "missing.npz")]) == 2
    assert "no such file" in capsys.readouterr().err

    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, x=np.zeros(3))
    assert main(["evaluate", str(foreign)]) == 2
    assert "not a visim embeddings file" in capsys.readouterr().err

    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00 not a torch file")
    assert main(["evaluate", str(garbage)]) == 2
    assert "cannot read embeddings" in capsys.readouterr().err

    out = saved["tmp"] / "errors.npz"
    assert predict(saved, out) == 0
    capsys.readouterr()
    assert main(["evaluate", str(out), "--metric", "cosin"]) == 2
    assert "did you mean 'cosine'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:  # argparse: usage error
        main(["evaluate", str(out), "--topk", "0"])
    assert exit_info.value.code == 2

    assert predict(saved, tmp_path / "emb.csv") == 2
    assert "use .npz or .pt" in capsys.readouterr().err
    assert not (tmp_path / "emb.csv").exists()


def test_npz_export_holds_one_split_at_a_time(tmp_path):
    def fake(n, offset):
        return Embeddings(torch.randn(n, 4), torch.arange(n) + offset, torch.zeros(n, dtype=torch.long), [f"img{i}" for i in range(n)])

    alive = {}

    def embed(split):
        if split == "gallery":
            gc.collect()
            alive["query at gallery time"] = alive["query"]() is not None
            return fake(5, 100)
        query = fake(3, 0)
        alive["query"] = weakref.ref(query)
        return query

    counts = write_embeddings(tmp_path / "e.npz", embed, {"note": "x"})
    assert counts == {"query": 3, "gallery": 5}
    assert alive["query at gallery time"] is False
    loaded = load_embeddings(tmp_path / "e.npz")
    assert loaded.gallery.pids.tolist() == [100, 101, 102, 103, 104] and loaded.meta == {"note": "x"}
    assert [p.name for p in tmp_path.iterdir()] == ["e.npz"]  # no temporary left behind


def test_inconsistent_file_is_rejected(tmp_path):
    bad = Embeddings(torch.zeros(3, 4), torch.zeros(2, dtype=torch.long), torch.zeros(3, dtype=torch.long), ["a", "b", "c"])
    good = Embeddings(torch.zeros(1, 4), torch.zeros(1, dtype=torch.long), torch.zeros(1, dtype=torch.long), ["a"])
    save_embeddings(tmp_path / "bad.pt", bad, good)
    with pytest.raises(EmbeddingsFileError, match="inconsistent query arrays"):
        load_embeddings(tmp_path / "bad.pt")
