"""Rerankers: k_reciprocal against torchreid's own re_ranking, query expansion and DBA against
dense references written here from their definitions, chains, edge cases, configs."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from torchreid.reid.utils.rerank import re_ranking

import visim
from visim.evaluation import evaluate, evaluate_embeddings
from visim.rerank.base import describe_chain
from visim.rerank.neighbours import smallest_k

SMALL_BUDGET = 1 << 19  # forces many chunks and sliced inverted-index passes


def reranker(name, **params):
    return visim.get_registry().rerankers.get(name).build(params)


def clustered(seed, num_q=40, num_g=200, dim=16, num_ids=25, noise=1.0):
    """Embeddings around identity centres, with cameras: several true matches per query."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(num_ids, dim))
    q_pids, g_pids = rng.integers(0, num_ids, num_q), rng.integers(0, num_ids, num_g)
    q = (centres[q_pids] + noise * rng.normal(size=(num_q, dim))).astype(np.float32)
    g = (centres[g_pids] + noise * rng.normal(size=(num_g, dim))).astype(np.float32)
    return q, g, q_pids, g_pids, rng.integers(0, 3, num_q), rng.integers(0, 3, num_g)


def torchreid_distances(metric, q, g, **params):
    build = visim.get_registry().metrics.get(metric).build()
    pairs = (build(q, g).numpy(), build(q, q).numpy(), build(g, g).numpy())
    return re_ranking(*pairs, **params)


@pytest.mark.parametrize(
    "seed, params",
    [
        (0, {"k1": 20, "k2": 6, "lambda_value": 0.3}),
        (1, {"k1": 5, "k2": 1, "lambda_value": 0.0}),  # k1/2 = 2.5 rounds to 2, as numpy
        (2, {"k1": 9, "k2": 3, "lambda_value": 0.7}),
        (3, {"k1": 14, "k2": 14, "lambda_value": 1.0}),
    ],
)
@pytest.mark.parametrize("budget", [1 << 30, SMALL_BUDGET])
def test_k_reciprocal_matches_torchreid(seed, params, budget):
    q, g, q_pids, g_pids, q_cams, g_cams = clustered(seed)
    expected = evaluate(torchreid_distances("euclidean", q, g, **params), q_pids, g_pids, q_cams, g_cams)
    got = evaluate_embeddings(
        q, g, "euclidean", q_pids, g_pids, q_cams, g_cams,
        rerank=reranker("k_reciprocal", **params), memory_budget=budget,
    )
    assert got.mAP == pytest.approx(expected.mAP, abs=5e-4)
    assert got.cmc_at == expected.cmc_at
    np.testing.assert_allclose(got.per_query.ap, expected.per_query.ap, atol=1e-3)


def test_k_reciprocal_distances_equal_torchreid_up_to_float32_rounding():
    q, g, *_ = clustered(4)
    expected = torchreid_distances("cosine", q, g)
    distance = visim.get_registry().metrics.get("cosine").build()
    blocks = reranker("k_reciprocal").distances(torch.from_numpy(q), torch.from_numpy(g), distance, SMALL_BUDGET)
    got = torch.cat([block for _, block in blocks]).numpy()
    np.testing.assert_allclose(got, expected, atol=2e-6)


def test_rerank_helps_on_clustered_data():
    q, g, *labels = clustered(5)
    plain = evaluate_embeddings(q, g, "euclidean", *labels)
    reranked = evaluate_embeddings(q, g, "euclidean", *labels, rerank=reranker("k_reciprocal"))
    assert reranked.mAP > plain.mAP + 0.1


def unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def dense_alpha_qe(q, g, k, alpha):
    """fast-reid's aqe, from its definition: pooled items, k most cosine-similar (itself
    included), mean of similarity**alpha * raw embedding."""
    items = np.concatenate([q, g]).astype(np.float64)
    sims = unit(items) @ unit(items).T
    out = np.empty_like(items)
    for i, row in enumerate(sims):
        nearest = np.argsort(-row, kind="stable")[:k]
        out[i] = np.mean(items[nearest] * row[nearest, None] ** alpha, axis=0)
    return out[: len(q)], out[len(q) :]


def dense_dba(g, k):
    sims = unit(g) @ unit(g).T
    return np.stack([g[np.argsort(-row, kind="stable")[:k]].mean(0) for row in sims])


@pytest.mark.parametrize("k, alpha", [(5, 3.0), (3, 0.0), (1, 3.0)])
def test_query_expansion_matches_dense_definition(k, alpha):
    q, g, *_ = clustered(6, num_q=10, num_g=50)
    got_q, got_g = reranker("query_expansion", k=k, alpha=alpha).expand(
        torch.from_numpy(q), torch.from_numpy(g), SMALL_BUDGET
    )
    want_q, want_g = dense_alpha_qe(q, g, k, alpha)
    np.testing.assert_allclose(got_q.numpy(), want_q, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got_g.numpy(), want_g, rtol=1e-4, atol=1e-5)


def test_dba_averages_gallery_neighbours_and_keeps_queries():
    q, g, *_ = clustered(7, num_q=10, num_g=50)
    got_q, got_g = reranker("dba", k=4).expand(torch.from_numpy(q), torch.from_numpy(g), SMALL_BUDGET)
    assert torch.equal(got_q, torch.from_numpy(q))
    np.testing.assert_allclose(got_g.numpy(), dense_dba(g, 4), rtol=1e-5, atol=1e-6)


def test_chain_query_expansion_then_k_reciprocal():
    q, g, q_pids, g_pids, q_cams, g_cams = clustered(8)
    exp_q, exp_g = (x.astype(np.float32) for x in dense_alpha_qe(q, g, 5, 3.0))
    expected = evaluate(torchreid_distances("euclidean", exp_q, exp_g), q_pids, g_pids, q_cams, g_cams)
    chain = [reranker("query_expansion"), reranker("k_reciprocal")]
    got = evaluate_embeddings(q, g, "euclidean", q_pids, g_pids, q_cams, g_cams, rerank=chain)
    assert got.mAP == pytest.approx(expected.mAP, abs=5e-4)
    assert describe_chain(chain) == "query_expansion(k=5, alpha=3.0) -> k_reciprocal(k1=20, k2=6, lambda_value=0.3)"


def test_distance_reranker_must_come_last():
    q, g, *labels = clustered(9, num_q=5, num_g=20)
    with pytest.raises(ValueError, match="k_reciprocal replaces the distances, so it must come last"):
        evaluate_embeddings(q, g, "euclidean", *labels, rerank=[reranker("k_reciprocal"), reranker("dba")])
    with pytest.raises(TypeError, match="rerank takes rerankers"):
        evaluate_embeddings(q, g, "euclidean", *labels, rerank="k_reciprocal")


def test_fewer_items_than_k1_clips_with_a_warning_and_matches_torchreid():
    q, g, q_pids, g_pids, q_cams, g_cams = clustered(10, num_q=3, num_g=9, num_ids=3)
    expected = evaluate(torchreid_distances("euclidean", q, g), q_pids, g_pids, q_cams, g_cams)
    with pytest.warns(UserWarning, match=r"k1 \+ 1=21 asks for more neighbours than the 12 items"):
        got = evaluate_embeddings(q, g, "euclidean", q_pids, g_pids, q_cams, g_cams, rerank=reranker("k_reciprocal"))
    assert got.mAP == pytest.approx(expected.mAP, abs=5e-4)


def test_junk_identities_unmatched_and_single_queries():
    q, g, q_pids, g_pids, q_cams, g_cams = clustered(11, num_q=12, num_g=80)
    g_pids[:10] = -1  # junk: ignored by the protocol, still part of the neighbourhoods
    q_pids[0] = 999  # no positive anywhere: skipped and counted
    expected = evaluate(torchreid_distances("euclidean", q, g), q_pids, g_pids, q_cams, g_cams)
    got = evaluate_embeddings(q, g, "euclidean", q_pids, g_pids, q_cams, g_cams, rerank=reranker("k_reciprocal"))
    assert 0 in got.skipped and got.skipped.tolist() == expected.skipped.tolist()
    assert got.mAP == pytest.approx(expected.mAP, abs=5e-4)
    one = evaluate_embeddings(q[1:2], g, "euclidean", q_pids[1:2], g_pids, q_cams[1:2], g_cams, rerank=reranker("k_reciprocal"))
    single = evaluate(torchreid_distances("euclidean", q[1:2], g), q_pids[1:2], g_pids, q_cams[1:2], g_cams)
    assert one.num_queries == 1 and one.mAP == pytest.approx(single.mAP, abs=5e-4)


def test_ties_are_broken_by_index():
    keys = torch.tensor([[3.0, 1.0, 1.0, 0.0, 1.0], [2.0, 2.0, 2.0, 2.0, 2.0]])
    assert smallest_k(keys, 3).tolist() == [[3, 1, 2], [0, 1, 2]]
    with pytest.raises(ValueError, match="NaN"):
        smallest_k(torch.tensor([[0.0, float("nan")]]), 1)


def test_duplicate_embeddings_rank_deterministically():
    q, g, *labels = clustered(12, num_q=8, num_g=40)
    g[20:] = g[:20]  # every gallery item twice: exact ties everywhere
    runs = [evaluate_embeddings(q, g, "euclidean", *labels, rerank=reranker("k_reciprocal"), keep_topk=5) for _ in range(2)]
    assert np.array_equal(runs[0].topk_indices, runs[1].topk_indices)
    assert runs[0].mAP == runs[1].mAP


def test_similarity_metric_becomes_one_minus_similarity():
    q, g, *labels = clustered(13)
    as_distance = evaluate_embeddings(q, g, "cosine", *labels, rerank=reranker("k_reciprocal"))
    as_similarity = evaluate_embeddings(q, g, "cosine_similarity", *labels, rerank=reranker("k_reciprocal"))
    assert as_similarity.mAP == pytest.approx(as_distance.mAP, abs=5e-4)
    with pytest.raises(ValueError, match=r"needs s <= 1 .*use a distance metric"):
        evaluate_embeddings(q * 10, g * 10, "dot", *labels, rerank=reranker("k_reciprocal"))


def test_params_are_validated():
    from visim.config.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        visim.get_registry().rerankers.get("k_reciprocal").build({"k1": 0, "lambda_value": 2.0})
    messages = sorted(f"{p.message} @ {p.path}" for p in info.value.problems)
    assert any(m.endswith("@ $.k1") for m in messages) and any(m.endswith("@ $.lambda_value") for m in messages)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert repr(reranker("dba", k=3)) == "dba(k=3)"


@pytest.fixture
def embeddings_file(tmp_path):
    from visim.engine.extract import Embeddings
    from visim.outputs.embeddings import save_embeddings

    q, g, q_pids, g_pids, q_cams, g_cams = clustered(14)

    def split(x, pids, cams, name):
        return Embeddings(torch.from_numpy(x), torch.from_numpy(pids), torch.from_numpy(cams), [f"{name}/{i}.png" for i in range(len(x))])

    path = tmp_path / "emb.npz"
    save_embeddings(path, split(q, q_pids, q_cams, "q"), split(g, g_pids, g_cams, "g"), {"metric": "euclidean"})
    expected = evaluate(torchreid_distances("euclidean", q, g, k1=10), q_pids, g_pids, q_cams, g_cams)
    return path, expected


def test_cli_evaluate_rerank(embeddings_file, capsys):
    from visim.cli import main

    path, expected = embeddings_file
    assert main(["evaluate", str(path), "--rerank", "{name: k_reciprocal, k1: 10}", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert results["rerank"] == "k_reciprocal(k1=10, k2=6, lambda_value=0.3)"
    assert results["mAP"] == pytest.approx(expected.mAP, abs=5e-4)
    assert results["plain"]["mAP"] < results["mAP"]
    assert main(["evaluate", str(path), "--rerank", "[qe, k_reciprocal]"]) == 0
    table = capsys.readouterr().out
    assert "without re-ranking" in table and "re-ranked by query_expansion(k=5, alpha=3.0) -> k_reciprocal(" in table


@pytest.mark.parametrize(
    "value, message",
    [
        ("kreciprocal", "unknown reranker 'kreciprocal'; did you mean 'k_reciprocal'?"),
        ("{name: k_reciprocal, k1: 0}", "must be >= 1 (got 0) @ --rerank.k1"),
        ("[dba, {name: qe, alpha: -1.0}]", "must be >= 0.0 (got -1.0) @ --rerank[1].alpha"),
    ],
)
def test_cli_evaluate_bad_rerank_is_one_line_exit_2(embeddings_file, capsys, value, message):
    from visim.cli import main

    assert main(["evaluate", str(embeddings_file[0]), "--rerank", value]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err


def test_config_rerank_single_or_list_with_paths():
    from visim.config.converter import structure
    from visim.config.errors import ConfigError
    from visim.config.schema import TestConfig

    single = structure({"metric": "euclidean", "rerank": "k_reciprocal"}, TestConfig)
    assert single.rerank.name == "k_reciprocal" and single.rerank.params.k1 == 20
    chain = structure({"metric": "euclidean", "rerank": ["aqe", {"name": "k_reciprocal", "k2": 3}]}, TestConfig)
    assert [ref.name for ref in chain.rerank] == ["query_expansion", "k_reciprocal"]
    assert structure({"metric": "euclidean"}, TestConfig).rerank is None
    with pytest.raises(ConfigError) as info:
        structure({"metric": "euclidean", "rerank": [{"name": "k_reciprocal", "k2": 0.5}, 3]}, TestConfig)
    assert sorted(f"{p.message} @ {p.path}" for p in info.value.problems) == [
        "expected a reranker name or a mapping with 'name', got int 3 @ $.rerank[1]",
        "expected int, got float 0.5 @ $.rerank[0].k2",
    ]
    with pytest.raises(ConfigError, match=r"k_reciprocal replaces the distances, so it must come last in a rerank chain @ \$\.rerank"):
        structure({"metric": "euclidean", "rerank": ["k_reciprocal", "dba"]}, TestConfig)


def test_engine_test_reports_reranked_and_plain_results(tmp_path):
    from tests.helpers import tiny_config
    from visim.config.load import config_from_dict
    from visim.engine.build import build_engine

    config = tiny_config(tmp_path)
    config["data"]["dataset"] = {"name": "digits", "max_per_digit": 20}
    config["test"]["rerank"] = ["dba", {"name": "k_reciprocal", "k1": 8, "k2": 3}]
    (tmp_path / "run").mkdir()
    engine = build_engine(config_from_dict(config), train=False, run_dir=tmp_path / "run", quiet=True)
    results = engine.test()
    engine.close()
    query, gallery = engine.last_query, engine.last_gallery
    labels = (query.pids, gallery.pids, query.camids, gallery.camids)
    plain = evaluate_embeddings(query.embeddings, gallery.embeddings, "euclidean", *labels, topk=(1, 5))
    chain = [reranker("dba"), reranker("k_reciprocal", k1=8, k2=3)]
    reranked = evaluate_embeddings(query.embeddings, gallery.embeddings, "euclidean", *labels, topk=(1, 5), rerank=chain)
    assert results["rerank"] == "dba(k=5) -> k_reciprocal(k1=8, k2=3, lambda_value=0.3)"
    assert results["plain"] == {"cmc": {"1": plain.cmc_at[1], "5": plain.cmc_at[5]}, "mAP": plain.mAP, "mINP": plain.mINP}
    assert results["mAP"] == reranked.mAP
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["rerank"] == results["rerank"] and saved["plain"]["mAP"] == plain.mAP
