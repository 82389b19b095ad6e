"""Ranking evaluation: the original engine's CMC cases, an independent reference, options."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

import visim
from visim.evaluation import (
    AP_MODES,
    NO_POSITIVE,
    PROTOCOLS,
    NoPositiveError,
    evaluate,
    evaluate_embeddings,
)
from visim.evaluation.options import BYTES_PER_PAIR, SCRATCH_SHARE, EvalOptions

ORIGINAL_DISTMAT = torch.tensor([[0.1, 0.2, 0.3, 0.4, 0.5], [0.5, 0.1, 0.2, 0.4, 0.3]])


def reference(distmat, q_pids, g_pids, q_cams=None, g_cams=None, *, protocol, ap="standard",
              higher_is_better=False):
    """Per-query (AP, INP, first hit, #positives) by the definition: a stable argsort per row."""
    keys = -distmat if higher_is_better else distmat
    rows = []
    for i in range(len(q_pids)):
        order = np.argsort(keys[i], kind="stable")
        same = g_pids[order] == q_pids[i]
        if protocol == "market1501":
            valid = ~((same & (g_cams[order] == q_cams[i])) | (g_pids[order] == -1))
        elif protocol == "exclude_self":
            valid = order != i
        else:
            valid = np.ones(len(order), dtype=bool)
        ranks = np.flatnonzero(same[valid]) + 1
        if len(ranks) == 0:
            rows.append((0.0, 0.0, 0, 0))
            continue
        nth = np.arange(1, len(ranks) + 1)
        precision = nth / ranks
        if ap == "market_official":
            precision = (np.where(ranks > 1, (nth - 1) / np.maximum(ranks - 1, 1), 1.0) + precision) / 2
        rows.append((precision.mean(), len(ranks) / ranks[-1], ranks[0], len(ranks)))
    ap_, inp, first, count = (np.array(column) for column in zip(*rows))
    return ap_, inp, first, count


# Keys that stress the placement: infinities, signed zeros, float64 values that round to the
# same float32, huge magnitudes.
SPECIAL_KEYS = np.array([-np.inf, np.inf, -0.0, 0.0, 1.0, 1.0 + 1e-12, 1.0 - 1e-12, -1.0, 1e30, -1e30])


def random_case(rng, num_q, num_g, num_ids, num_cams=3, ties=False, junk=False):
    """``ties``: False (continuous keys), True (small integers) or "special" (SPECIAL_KEYS)."""
    if ties == "special":
        distmat = rng.choice(SPECIAL_KEYS, (num_q, num_g))
    elif ties:
        distmat = rng.integers(0, 6, (num_q, num_g)).astype(np.float64)
    else:
        distmat = rng.random((num_q, num_g))
    q_pids = rng.integers(0, num_ids, num_q)
    g_pids = rng.integers(-1 if junk else 0, num_ids, num_g)
    return distmat, q_pids, g_pids, rng.integers(0, num_cams, num_q), rng.integers(0, num_cams, num_g)


def budget_for(rows, num_gallery, itemsize=4):
    """The smallest memory budget whose chunks hold ``rows`` queries."""
    chunk = rows * num_gallery * BYTES_PER_PAIR * itemsize // 4
    return -(-chunk * SCRATCH_SHARE // (SCRATCH_SHARE - 1))


def assert_matches_reference(result, expected):
    ap, inp, first, count = expected
    np.testing.assert_array_equal(result.per_query.num_positives, count)
    np.testing.assert_array_equal(result.per_query.first_hit, first)
    np.testing.assert_allclose(result.per_query.ap, ap, rtol=1e-12)
    np.testing.assert_allclose(result.per_query.inp, inp, rtol=1e-12)


# The original engine's compute_cmc cases: protocol "none", every query has a match.
@pytest.mark.parametrize(
    ("q_pids", "g_pids", "expected"),
    [
        ([1, 4], [2, 3, 4, 0, 1], [0.0, 0.5, 0.5, 0.5, 1.0, 1.0]),
        ([[1], [4]], [[2.0, 3.0, 4.0, 0.0, 1.0]], [0.0, 0.5, 0.5, 0.5, 1.0, 1.0]),  # 2-D, float
        ([2, 0], [0, 1, 2, 2, 4], [0.0, 0.0, 0.5, 0.5, 1.0, 1.0]),  # gallery repeats an id
        ([2, 2], [0, 1, 3, 4, 2], [0.0, 0.0, 0.5, 0.5, 1.0, 1.0]),  # query repeats an id
        ([2, 2], [2, 1, 3, 4, 2], [0.5, 0.5, 1.0, 1.0, 1.0, 1.0]),  # both repeat it
        ([1, 2], [1, 2, 3, 4, 0], [1.0, 1.0, 1.0, 1.0, 1.0, 1.0]),  # top rank only
    ],
)
def test_original_engine_cmc_cases(q_pids, g_pids, expected):
    for no_positive in ("zero", "skip"):
        result = evaluate(ORIGINAL_DISTMAT, q_pids, g_pids, protocol="none",
                          no_positive=no_positive, topk=range(1, 7), max_rank=6)
        np.testing.assert_allclose(result.cmc, expected)
        assert result.as_dict()["cmc"] == {str(k): pytest.approx(v) for k, v in zip(range(1, 7), expected)}


def test_original_first_case_in_detail():
    result = evaluate(ORIGINAL_DISTMAT, [1, 4], [2, 3, 4, 0, 1], protocol="none", max_rank=6)
    np.testing.assert_array_equal(result.per_query.first_hit, [5, 2])
    assert result.mAP == pytest.approx((1 / 5 + 1 / 2) / 2)
    assert result.mINP == pytest.approx(result.mAP)  # one positive each: INP = AP = 1/rank


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("ap", AP_MODES)
@pytest.mark.parametrize("ties", [False, True, "special"])
def test_matches_reference_definition(protocol, ap, ties):
    rng = np.random.default_rng(hash((protocol, ap, ties)) % 2**32)
    for _ in range(3):
        size = int(rng.integers(1, 40))
        distmat, q_pids, g_pids, q_cams, g_cams = random_case(
            rng, size, size if protocol == "exclude_self" else int(rng.integers(1, 60)),
            int(rng.integers(1, 8)), ties=ties, junk=True,
        )
        # Everything at once, and chunks of 3 queries whose scratch holds a few candidates
        # at a time and sorts one tied row at a time.
        for budget, higher in ((1 << 30, False), (1 << 30, True), (budget_for(3, distmat.shape[1]), False)):
            result = evaluate(distmat, q_pids, g_pids, q_cams, g_cams, protocol=protocol, ap=ap,
                              no_positive="zero", memory_budget=budget, higher_is_better=higher)
            assert_matches_reference(result, reference(distmat, q_pids, g_pids, q_cams, g_cams,
                                                       protocol=protocol, ap=ap, higher_is_better=higher))


def test_ties_are_broken_by_gallery_index():
    # Query pid 1: the negative at index 0 ties the positive at index 1 -> the negative first.
    result = evaluate([[0.5, 0.5, 0.5]], [1], [0, 1, 0], protocol="none")
    assert result.per_query.first_hit.tolist() == [2]
    result = evaluate([[0.5, 0.5, 0.5]], [1], [1, 0, 0], protocol="none")
    assert result.per_query.first_hit.tolist() == [1]
    # -0.0 and 0.0 are equal keys, so the gallery order decides as well.
    result = evaluate([[0.0, -0.0]], [1], [0, 1], protocol="none")
    assert result.per_query.first_hit.tolist() == [2]


def test_float64_keys_that_collide_in_float32_stay_exact():
    distmat = np.array([[1.0 + 2e-12, 1.0 + 1e-12, 1.0, 1.0 + 3e-12]])
    result = evaluate(distmat, [7], [7, 0, 0, 7], protocol="none")
    assert result.per_query.first_hit.tolist() == [3]
    assert result.per_query.ap[0] == pytest.approx((1 / 3 + 2 / 4) / 2)


def test_similarities_rank_highest_first():
    rng = np.random.default_rng(1)
    distmat, q_pids, g_pids, q_cams, g_cams = random_case(rng, 20, 50, 5)
    as_distance = evaluate(distmat, q_pids, g_pids, q_cams, g_cams)
    as_similarity = evaluate(-distmat, q_pids, g_pids, q_cams, g_cams, higher_is_better=True)
    np.testing.assert_array_equal(as_similarity.per_query.first_hit, as_distance.per_query.first_hit)
    assert as_similarity.mAP == as_distance.mAP
    wrong_way = evaluate(-distmat, q_pids, g_pids, q_cams, g_cams)
    assert wrong_way.mAP < as_distance.mAP


@pytest.mark.parametrize("name", ["euclidean", "sqeuclidean", "cosine", "cosine_similarity",
                                  "dot", "manhattan", "negsoftmax_sqeuclidean"])
def test_evaluate_embeddings_equals_evaluate_on_the_full_matrix(name):
    rng = np.random.default_rng(2)
    q, g = rng.standard_normal((30, 8)), rng.standard_normal((70, 8))
    q_pids, g_pids = rng.integers(0, 6, 30), rng.integers(0, 6, 70)
    q_cams, g_cams = rng.integers(0, 3, 30), rng.integers(0, 3, 70)
    metric = visim.get_registry().metrics.get(name).build()
    full = evaluate(metric(q, g), q_pids, g_pids, q_cams, g_cams,
                    higher_is_better=getattr(metric, "higher_is_better", False))
    chunked = evaluate_embeddings(q, g, metric, q_pids, g_pids, q_cams, g_cams,
                                  memory_budget=budget_for(7, 70, itemsize=8))
    by_name = evaluate_embeddings(q, g, name, q_pids, g_pids, q_cams, g_cams)
    for result in (chunked, by_name):
        np.testing.assert_array_equal(result.per_query.first_hit, full.per_query.first_hit)
        np.testing.assert_array_equal(result.per_query.ap, full.per_query.ap)
        assert result.as_dict() == full.as_dict()


def test_chunks_respect_the_memory_budget():
    seen = []

    def metric(a, b):
        seen.append(a.shape[0])
        return torch.cdist(a, b)

    q, g = torch.randn(50, 4), torch.randn(40, 4)
    evaluate_embeddings(q, g, metric, torch.arange(50) % 5, torch.arange(40) % 5,
                        protocol="none", memory_budget=budget_for(6, 40))
    assert seen == [6] * 8 + [2]
    seen.clear()
    evaluate_embeddings(q, g, metric, torch.arange(50) % 5, torch.arange(40) % 5,
                        protocol="none", memory_budget=1)  # below one row: one row at a time
    assert seen == [1] * 50


def test_chunk_rows_are_the_most_that_fit_beside_the_scratch_share():
    for budget in (1 << 16, 10**6 + 7, 1 << 28, 1 << 30):
        options = EvalOptions(memory_budget=budget)
        room = budget - options.scratch_bytes
        assert options.scratch_bytes == budget // SCRATCH_SHARE
        for gallery, itemsize in ((40, 4), (15913, 4), (82161, 4), (700, 8)):
            rows = options.chunk_rows(gallery, itemsize)
            per_pair = BYTES_PER_PAIR * itemsize // 4
            assert rows * gallery * per_pair <= room or rows == 1
            assert (rows + 1) * gallery * per_pair > room
    assert budget_for(6, 40) // 4 * 3 >= 6 * 40 * BYTES_PER_PAIR


def test_a_gallery_of_one():
    result = evaluate([[0.3], [0.1]], [1, 2], [1], protocol="none", no_positive="zero")
    assert result.cmc[0] == 0.5 and result.cmc[-1] == 0.5
    assert result.per_query.first_hit.tolist() == [1, 0]
    assert result.mAP == 0.5 and result.mINP == 0.5


def test_queries_without_positives_under_each_policy():
    distmat = [[0.1, 0.2, 0.3], [0.3, 0.2, 0.1], [0.1, 0.3, 0.2]]
    q_pids, g_pids = [1, 9, 2], [2, 1, 2]
    skip = evaluate(distmat, q_pids, g_pids, protocol="none")
    assert skip.skipped.tolist() == [1] and skip.num_skipped == 1
    assert skip.num_valid_queries == 2 and skip.num_queries == 3
    assert skip.mAP == pytest.approx((1 / 2 + 1) / 2)
    zero = evaluate(distmat, q_pids, g_pids, protocol="none", no_positive="zero")
    assert zero.num_skipped == 0 and zero.num_valid_queries == 2
    assert zero.mAP == pytest.approx((1 / 2 + 1) / 3) and zero.cmc[-1] == pytest.approx(2 / 3)
    with pytest.raises(NoPositiveError, match=r"1 queries have no positive match .*indices 1\)"):
        evaluate(distmat, q_pids, g_pids, protocol="none", no_positive="error")
    with pytest.raises(NoPositiveError, match="none of the 2 queries"):
        evaluate(distmat[:2], [8, 9], g_pids, protocol="none")


def test_market_protocol_ignores_same_camera_and_junk():
    # Query pid 1 camera 0. Gallery: same id same camera (ignored), junk -1 (ignored),
    # a negative, then the only valid positive.
    result = evaluate([[0.1, 0.2, 0.3, 0.4]], [1], [1, -1, 5, 1], [0], [0, 1, 1, 2])
    assert result.per_query.first_hit.tolist() == [2]
    assert result.per_query.num_positives.tolist() == [1]
    unfiltered = evaluate([[0.1, 0.2, 0.3, 0.4]], [1], [1, -1, 5, 1], protocol="none")
    assert unfiltered.per_query.first_hit.tolist() == [1]


def test_exclude_self_for_a_query_set_that_is_the_gallery():
    embeddings = torch.tensor([[0.0], [0.1], [5.0], [5.2]])
    pids = [0, 0, 1, 1]
    result = evaluate_embeddings(embeddings, embeddings, "euclidean", pids, pids, protocol="exclude_self")
    assert result.mAP == 1.0 and result.per_query.num_positives.tolist() == [1, 1, 1, 1]
    with pytest.raises(ValueError, match="query set to be the gallery"):
        evaluate(torch.rand(2, 3), [0, 1], [0, 1, 0], protocol="exclude_self")


def test_keep_topk_lists_the_closest_valid_gallery_items():
    result = evaluate([[0.4, 0.1, 0.1, 0.3, 0.2]], [1], [1, 1, 2, 3, 4], [0], [1, 0, 0, 0, 0], keep_topk=3)
    # Gallery 1 (same id, same camera) is ignored although it ties gallery 2; 0 is last.
    assert result.topk_indices.tolist() == [[2, 4, 3]]
    padded = evaluate([[0.4, 0.1]], [1], [1, 2], [0], [0, 1], keep_topk=3, no_positive="zero")
    assert padded.topk_indices.tolist() == [[1, -1, -1]]
    ties = evaluate([[0.5, 0.5, 0.5, 0.5]], [1], [3, 2, 1, 0], protocol="none", keep_topk=2)
    assert ties.topk_indices.tolist() == [[0, 1]]


def test_keep_topk_matches_a_stable_sort():
    rng = np.random.default_rng(3)
    distmat, q_pids, g_pids, q_cams, g_cams = random_case(rng, 25, 40, 4, ties=True, junk=True)
    result = evaluate(distmat, q_pids, g_pids, q_cams, g_cams, keep_topk=10, no_positive="zero",
                      memory_budget=1)
    for i in range(25):
        order = np.argsort(distmat[i], kind="stable")
        junk = ((g_pids[order] == q_pids[i]) & (g_cams[order] == q_cams[i])) | (g_pids[order] == -1)
        expected = order[~junk][:10]
        assert result.topk_indices[i].tolist() == [*expected, *[-1] * (10 - len(expected))]


def test_result_as_dict_is_json_ready():
    result = evaluate(ORIGINAL_DISTMAT, [1, 4], [2, 3, 4, 0, 1], protocol="none", topk=(1, 3, 60),
                      max_rank=4)
    data = json.loads(json.dumps(result.as_dict()))
    assert set(data) >= {"cmc", "mAP", "mINP", "num_queries", "num_valid_queries", "num_skipped"}
    assert data["cmc"] == {"1": 0.0, "3": 0.5, "60": 1.0}  # topk may go beyond max_rank
    assert len(result.cmc) == 4 and result.rank(60) == 1.0 and result.rank(2) == 0.5
    with pytest.raises(KeyError, match="rank-9"):
        result.rank(9)
    no_topk = evaluate(ORIGINAL_DISTMAT, [1, 4], [2, 3, 4, 0, 1], protocol="none", topk=())
    assert no_topk.as_dict()["cmc"] == {} and no_topk.rank(5) == 1.0


def test_inputs_may_be_numpy_torch_or_lists_of_any_number_type():
    as_numpy = evaluate(ORIGINAL_DISTMAT.numpy(), np.array([1, 4]), np.array([2, 3, 4, 0, 1]), protocol="none")
    as_ints = evaluate(ORIGINAL_DISTMAT.double() * 10, torch.tensor([1, 4]), [2, 3, 4, 0, 1], protocol="none")
    as_int_matrix = evaluate((ORIGINAL_DISTMAT * 10).round().int(), [1, 4], [2, 3, 4, 0, 1], protocol="none")
    for other in (as_ints, as_int_matrix):
        assert other.as_dict() == as_numpy.as_dict()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"protocol": "cuhk03"}, re.escape(
            "must be one of ['market1501', 'none', 'exclude_self'] (got 'cuhk03') @ $.protocol")),
        ({"ap": "interpolated"}, re.escape(
            "must be one of ['standard', 'market_official'] (got 'interpolated') @ $.ap")),
        ({"no_positive": "ignore"}, re.escape(
            "must be one of ['skip', 'zero', 'error'] (got 'ignore') @ $.no_positive")),
        ({"topk": (1, 0)}, re.escape("must be >= 1 (got 0) @ $.topk[1]")),
        ({"topk": (1.5,)}, re.escape("must be an instance of int (got 1.5) @ $.topk[0]")),
        ({"max_rank": 0}, re.escape("must be >= 1 (got 0) @ $.max_rank")),
        ({"memory_budget": 0}, re.escape("must be >= 1 (got 0) @ $.memory_budget")),
        ({"protocol": "market1501"}, "needs q_camids and g_camids"),
        ({"q_pids": [1, 2, 3]}, r"q_pids must hold one label per row \(2\)"),
        ({"g_pids": [0.5, 1, 2, 3, 4]}, "g_pids must be integers"),
        ({"g_pids": ["a", "b", "c", "d", "e"]}, "g_pids must be integers"),
        ({"distmat": torch.rand(2, 5, 1)}, "distmat must be a 2-D"),
        ({"distmat": torch.rand(0, 5), "q_pids": []}, "nothing to rank: 0 queries"),
        ({"distmat": torch.tensor([[0.1, float("nan"), 0.3, 0.4, 0.5]] * 2)}, "contains NaN"),
    ],
)
def test_bad_arguments_are_clear_value_errors(kwargs, message):
    arguments = {"distmat": ORIGINAL_DISTMAT, "q_pids": [1, 4], "g_pids": [2, 3, 4, 0, 1],
                 "protocol": "none"}
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        evaluate(**arguments)


def test_options_object_and_keywords_are_one_thing():
    pids = dict(q_pids=[1, 4], g_pids=[2, 3, 4, 0, 1])
    options = EvalOptions(protocol="none", topk=(1, 3), max_rank=5)
    by_object = evaluate(ORIGINAL_DISTMAT, **pids, options=options)
    assert by_object.as_dict() == evaluate(ORIGINAL_DISTMAT, **pids, protocol="none", topk=(1, 3),
                                           max_rank=5).as_dict()
    # Keywords apply over the object; an unknown keyword is named, with a suggestion.
    assert evaluate(ORIGINAL_DISTMAT, **pids, options=options, topk=2).options.topk == (2,)
    with pytest.raises(TypeError, match="unknown evaluation option 'protocl'; did you mean 'protocol'"):
        evaluate(ORIGINAL_DISTMAT, **pids, protocl="none")


def test_options_without_a_direction_take_the_metrics():
    embeddings = torch.eye(4)
    pids = [0, 1, 2, 3]
    options = EvalOptions(protocol="none")
    assert options.higher_is_better is None
    similarity = evaluate_embeddings(embeddings, embeddings, "cosine_similarity", pids, pids, options=options)
    assert similarity.options.higher_is_better is True and similarity.mAP == 1.0
    told = evaluate_embeddings(embeddings, embeddings, "cosine_similarity", pids, pids, options=options,
                               higher_is_better=False)
    assert told.mAP < 1.0


def test_evaluate_embeddings_checks_the_metric_output():
    with pytest.raises(ValueError, match=r"returned shape \(3, 2\)"):
        evaluate_embeddings(torch.rand(3, 4), torch.rand(5, 4), lambda a, b: torch.rand(3, 2),
                            [0, 1, 2], [0, 1, 2, 3, 4], protocol="none")
    with pytest.raises(ValueError, match="embedding sizes differ"):
        evaluate_embeddings(torch.rand(3, 4), torch.rand(5, 2), "cosine", [0, 1, 2], [0] * 5,
                            protocol="none")
    with pytest.raises(TypeError, match="metric must be callable"):
        evaluate_embeddings(torch.rand(3, 4), torch.rand(5, 4), 3, [0, 1, 2], [0] * 5)


def test_the_config_takes_its_evaluation_choices_and_defaults_from_the_options():
    from visim.config import schema
    from visim.config.refs import MetricRef

    test = schema.TestConfig(metric=MetricRef.of("euclidean"))
    assert test.eval_options() == EvalOptions()
    custom = schema.TestConfig(metric=MetricRef.of("euclidean"), protocol="none", topk_cmc=(2,), max_rank=7)
    assert test.eval_options() != custom.eval_options() == EvalOptions(protocol="none", topk=(2,), max_rank=7)
    assert schema.PROTOCOLS is PROTOCOLS and schema.NO_POSITIVE is NO_POSITIVE and schema.AP_MODES is AP_MODES
