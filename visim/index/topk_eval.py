"""Re-id figures from each query's top-K hits only: what an approximate index can give.

With the hits of a query filtered by the protocol (same identity and camera, identity -1 and,
under "exclude_self", the query itself are ignored), ``CMC@k`` (k <= K) is the share of queries
with a positive among their first k valid hits and ``mAP@K`` is the mean over queries of
``(1 / min(R, K)) * sum_i P(i) rel(i)`` over the first K valid hits, R being the query's valid
positives in the whole gallery. Both are named with their K: they are not the exact mAP.
"""

from __future__ import annotations

import numpy as np


def topk_figures(ids, q_pids, q_cams, g_pids, g_cams, *, k: int, protocol: str, topk=(1, 5, 10)) -> dict:
    g_pids, g_cams = np.asarray(g_pids), np.asarray(g_cams)
    pid_counts: dict[tuple, int] = {}
    cmc_hits = {c: 0 for c in topk if c <= k}
    ap_sum, counted = 0.0, 0
    for q, row in enumerate(np.asarray(ids)):
        pid, cam = int(q_pids[q]), int(q_cams[q])
        positives_total = pid_counts.get((pid, cam))
        if positives_total is None:
            same = g_pids == pid
            if protocol == "market1501":
                same &= (g_cams != cam) & (pid != -1)
            positives_total = pid_counts[(pid, cam)] = int(same.sum())
        if protocol == "exclude_self" and 0 <= q < len(g_pids) and g_pids[q] == pid:
            positives_total -= 1
        if positives_total <= 0:
            continue  # no positive anywhere: skipped, as in exact evaluation
        row = row[row >= 0]
        valid = np.ones(len(row), dtype=bool)
        if protocol == "market1501":
            valid = ~(((g_pids[row] == pid) & (g_cams[row] == cam)) | (g_pids[row] == -1))
        elif protocol == "exclude_self":
            valid = row != q
        relevant = (g_pids[row[valid]] == pid)[:k]
        counted += 1
        if relevant.any():
            first = int(np.argmax(relevant)) + 1
            for c in cmc_hits:
                cmc_hits[c] += first <= c
            precision = np.cumsum(relevant) / np.arange(1, len(relevant) + 1)
            ap_sum += float((precision * relevant).sum()) / min(positives_total, k)
    if counted == 0:
        raise ValueError("no query has a positive match in the gallery: nothing to evaluate")
    return {
        **{f"CMC@{c}": cmc_hits[c] / counted for c in cmc_hits},
        f"mAP@{k}": ap_sum / counted,
        "num_valid_queries": counted,
        "note": f"from the top-{k} hits of each query; not exact mAP",
    }
