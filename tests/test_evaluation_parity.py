"""Exact parity with the reference implementations the re-id community reports with.

* torchreid's own ``evaluate_rank`` (Python path, market protocol) and
  ``compute_distance_matrix``: CMC and mAP to 1e-6;
* fast-reid's mINP, transcribed from its ``eval_market1501``;
* the official Market-1501 ``compute_AP.m`` (trapezoid rule), transcribed line by line.

Random cases are continuous, so rankings have no ties (the torchreid path uses an unstable
argsort whose tie order is unspecified).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # "Cython evaluation is unavailable": we test the Python path
    from torchreid.reid.metrics.distance import compute_distance_matrix
    from torchreid.reid.metrics.rank import evaluate_rank

import visim
from visim.evaluation import evaluate, evaluate_embeddings

SEEDS = (0, 1, 2)


def make_case(seed, num_q=40, num_g=300, num_ids=20, num_cams=4, dim=16):
    """Embeddings clustered by identity, so rankings are informative, and a few queries whose
    identity is absent from the gallery (skipped by both implementations)."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((num_ids + 5, dim))
    q_pids = rng.integers(0, num_ids + 5, num_q)
    g_pids = rng.integers(0, num_ids, num_g)
    q = centers[q_pids] + rng.standard_normal((num_q, dim)) * 0.9
    g = centers[g_pids] + rng.standard_normal((num_g, dim)) * 0.9
    q_cams, g_cams = rng.integers(0, num_cams, num_q), rng.integers(0, num_cams, num_g)
    as_tensor = lambda x: torch.from_numpy(x).float()  # noqa: E731
    return as_tensor(q), as_tensor(g), q_pids, g_pids, q_cams, g_cams


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("torchreid_metric", "visim_metric"), [("euclidean", "sqeuclidean"),
                                                                ("cosine", "cosine")])
def test_cmc_and_map_equal_torchreid(seed, torchreid_metric, visim_metric):
    q, g, q_pids, g_pids, q_cams, g_cams = make_case(seed)
    distmat = compute_distance_matrix(q, g, metric=torchreid_metric).numpy()
    cmc, mAP = evaluate_rank(distmat, q_pids, g_pids, q_cams, g_cams, max_rank=50,
                             use_metric_cuhk03=False, use_cython=False)
    from_matrix = evaluate(distmat, q_pids, g_pids, q_cams, g_cams, max_rank=50)
    from_embeddings = evaluate_embeddings(q, g, visim_metric, q_pids, g_pids, q_cams, g_cams,
                                          max_rank=50, memory_budget=1 << 16)
    for result in (from_matrix, from_embeddings):
        assert result.num_skipped > 0  # the case exercises torchreid's skipping
        np.testing.assert_allclose(result.cmc, cmc, atol=1e-6)
        assert result.mAP == pytest.approx(mAP, abs=1e-6)


def test_small_gallery_matches_torchreid_truncated_cmc():
    q, g, q_pids, g_pids, q_cams, g_cams = make_case(3, num_q=12, num_g=20, num_ids=4)
    # No same-camera matches: torchreid's Python path fails on ragged rows when max_rank is
    # cut to a gallery size that junk removal then shortens.
    q_cams, g_cams = np.zeros_like(q_cams), g_cams + 1
    distmat = compute_distance_matrix(q, g).numpy()
    cmc, mAP = evaluate_rank(distmat, q_pids, g_pids, q_cams, g_cams, max_rank=50, use_cython=False)
    result = evaluate(distmat, q_pids, g_pids, q_cams, g_cams, max_rank=50)
    assert len(cmc) == 20 and len(result.cmc) == 50  # torchreid cuts max_rank to the gallery size
    np.testing.assert_allclose(result.cmc[:20], cmc, atol=1e-6)
    np.testing.assert_allclose(result.cmc[20:], cmc[-1], atol=1e-6)
    assert result.mAP == pytest.approx(mAP, abs=1e-6)


@pytest.mark.parametrize(("torchreid_metric", "visim_metric"), [("euclidean", "sqeuclidean"),
                                                                ("cosine", "cosine")])
def test_distances_equal_torchreid(torchreid_metric, visim_metric):
    q, g, *_ = make_case(4)
    ours = visim.get_registry().metrics.get(visim_metric).build()(q, g)
    np.testing.assert_allclose(ours.numpy(), compute_distance_matrix(q, g, torchreid_metric).numpy(),
                               rtol=1e-5, atol=1e-5)


def fastreid_minp(distmat, q_pids, g_pids, q_camids, g_camids):
    """fast-reid's mINP (``fastreid/evaluation/rank.py``, ``eval_market1501``)."""
    indices = np.argsort(distmat, axis=1)
    matches = (g_pids[indices] == q_pids[:, np.newaxis]).astype(np.int32)
    all_inp = []
    for q_idx in range(distmat.shape[0]):
        order = indices[q_idx]
        remove = (g_pids[order] == q_pids[q_idx]) & (g_camids[order] == q_camids[q_idx])
        raw_cmc = matches[q_idx][np.invert(remove)]
        if not np.any(raw_cmc):
            continue
        cmc = raw_cmc.cumsum()
        max_pos_idx = np.max(np.where(raw_cmc == 1))
        all_inp.append(cmc[max_pos_idx] / (max_pos_idx + 1.0))
    return np.mean(all_inp)


@pytest.mark.parametrize("seed", SEEDS)
def test_minp_equals_fastreid(seed):
    q, g, q_pids, g_pids, q_cams, g_cams = make_case(seed)
    distmat = compute_distance_matrix(q, g).numpy()
    result = evaluate(distmat, q_pids, g_pids, q_cams, g_cams)
    assert result.mINP == pytest.approx(fastreid_minp(distmat, q_pids, g_pids, q_cams, g_cams), abs=1e-12)
    assert 0 < result.mINP < result.mAP < 1


def official_market_ap(good, junk, index):
    """Market-1501's ``compute_AP.m``, line by line (``index``: gallery sorted by distance)."""
    good, junk = set(good), set(junk)
    ngood, old_recall, old_precision, ap = len(good), 0.0, 1.0, 0.0
    intersect_size, j, good_now = 0, 0, 0
    for n in index:
        flag = n in good
        if flag:
            good_now += 1
        if n in junk:
            continue
        if flag:
            intersect_size += 1
        recall = intersect_size / ngood
        precision = intersect_size / (j + 1)
        ap += (recall - old_recall) * ((old_precision + precision) / 2)
        old_recall, old_precision = recall, precision
        j += 1
        if good_now == ngood:
            return ap
    return ap


@pytest.mark.parametrize("seed", SEEDS)
def test_market_official_ap_equals_the_official_code(seed):
    q, g, q_pids, g_pids, q_cams, g_cams = make_case(seed)
    g_pids = np.where(np.arange(len(g_pids)) % 17 == 0, -1, g_pids)  # some junk identities
    distmat = compute_distance_matrix(q, g).numpy()
    result = evaluate(distmat, q_pids, g_pids, q_cams, g_cams, ap="market_official", no_positive="zero")
    for i in range(len(q_pids)):
        same = g_pids == q_pids[i]
        good = np.flatnonzero(same & (g_cams != q_cams[i]))
        junk = np.flatnonzero((same & (g_cams == q_cams[i])) | (g_pids == -1))
        expected = official_market_ap(good, junk, np.argsort(distmat[i])) if len(good) else 0.0
        assert result.per_query.ap[i] == pytest.approx(expected, abs=1e-12)
    standard = evaluate(distmat, q_pids, g_pids, q_cams, g_cams, no_positive="zero")
    # The trapezoid averages in the precision just before each hit, (m-1)/(r-1) <= m/r.
    assert result.mAP < standard.mAP


def test_identity_minus_one_is_junk_in_visim_but_a_negative_in_torchreid():
    """torchreid's ``evaluate_rank`` ranks gallery identity -1 as an ordinary negative (its
    Market-1501 loader drops junk images instead); visim's market1501 protocol ignores it, as
    the official Market-1501 code does. So visim == torchreid on the gallery without -1."""
    q, g, q_pids, g_pids, q_cams, g_cams = make_case(0)
    g_pids = g_pids.copy()
    g_pids[::7] = -1  # junk scattered through the gallery
    distmat = compute_distance_matrix(q, g, metric="euclidean").numpy()
    visim_result = evaluate(distmat, q_pids, g_pids, q_cams, g_cams, max_rank=50)

    _, map_with_junk = evaluate_rank(distmat, q_pids, g_pids, q_cams, g_cams, max_rank=50,
                                     use_metric_cuhk03=False, use_cython=False)
    keep = g_pids != -1
    cmc, map_without_junk = evaluate_rank(distmat[:, keep], q_pids, g_pids[keep], q_cams,
                                          g_cams[keep], max_rank=50, use_metric_cuhk03=False,
                                          use_cython=False)
    assert visim_result.mAP == pytest.approx(map_without_junk, abs=1e-6)
    np.testing.assert_allclose(visim_result.cmc, cmc, atol=1e-6)
    assert visim_result.mAP > map_with_junk + 1e-3  # torchreid counts the junk as misses
