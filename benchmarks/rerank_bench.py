"""k-reciprocal re-ranking, side by side: visim's bounded-memory reranker against torchreid's.

    python benchmarks/rerank_bench.py [--sizes half,market,msmt17] [--repeats 1] [--threads 1]

Each measurement runs in a fresh subprocess that loads the embeddings and times re-ranking
plus ranking (wall and CPU time), and reports its peak resident memory (``VmHWM``: it includes
the interpreter, torch and the embeddings). torchreid's side is what its engine does with
``rerank=True``: the query-gallery, query-query and gallery-gallery distance matrices of
``compute_distance_matrix`` (squared Euclidean), ``re_ranking(qg, qq, gg, 20, 6, 0.3)`` and
``evaluate_rank``. visim's side is ``evaluate_embeddings(..., metric="sqeuclidean",
rerank=k_reciprocal)`` with the given ``--budget-mib``. mAP before re-ranking comes from the
plain ranking, measured separately. torchreid is not run at MSMT17 size: its dense
(Q+G) x (Q+G) matrices need about 200 GiB there.

The embeddings are eval_bench.py's synthetic ones (clustered by identity, cameras,
distractors), 512-d float32; ``half`` is Market-1501 with half the queries and gallery.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from eval_bench import SIZES, machine, peak_rss_mib, synthetic_split  # noqa: E402

SIZES["half"] = (1684, 7956, 750, 6, 0.18, 1.4)  # Market-1501 with half the queries and gallery
K1, K2, LAMBDA = 20, 6, 0.3
MAX_RANK = 50


def run_visim(data, budget, rerank=True):
    import visim
    from visim.evaluation import evaluate_embeddings

    reranker = visim.get_registry().rerankers.get("k_reciprocal").build({"k1": K1, "k2": K2, "lambda_value": LAMBDA})

    def run():
        result = evaluate_embeddings(data["q"], data["g"], "sqeuclidean", data["q_pids"], data["g_pids"],
                                     data["q_cams"], data["g_cams"], max_rank=MAX_RANK, memory_budget=budget,
                                     rerank=reranker if rerank else None)
        return result.cmc, result.mAP

    return run


def run_torchreid(data):
    import torch
    from torchreid.reid.metrics.distance import compute_distance_matrix
    from torchreid.reid.utils.rerank import re_ranking

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Cython evaluation is unavailable"
        from torchreid.reid.metrics import rank

    def run():
        q, g = torch.from_numpy(data["q"]), torch.from_numpy(data["g"])
        qg, qq, gg = (compute_distance_matrix(a, b).numpy() for a, b in ((q, g), (q, q), (g, g)))
        distmat = re_ranking(qg, qq, gg, k1=K1, k2=K2, lambda_value=LAMBDA)
        cmc, mAP = rank.evaluate_rank(distmat, data["q_pids"], data["g_pids"], data["q_cams"], data["g_cams"],
                                      max_rank=MAX_RANK, use_cython=False)
        return cmc, mAP

    return run


def worker(args) -> None:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    data = {path.stem: np.load(path) for path in Path(args.data).glob("*.npy")}
    budget = args.budget_mib << 20
    run = {"visim": lambda: run_visim(data, budget), "plain": lambda: run_visim(data, budget, rerank=False),
           "torchreid": lambda: run_torchreid(data)}[args.worker]()
    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    cmc, mAP = run()
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "peak_mib": peak_rss_mib(),
                      "rank1": float(cmc[0]), "mAP": float(mAP)}))


def measure(method, data_path, args):
    command = [sys.executable, __file__, "--worker", method, "--data", str(data_path),
               "--budget-mib", str(args.budget_mib), "--threads", str(args.threads)]
    runs = []
    for _ in range(args.repeats):
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode:
            raise SystemExit(f"{method} failed:\n{done.stderr[-3000:]}")
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return {key: statistics.median(r[key] for r in runs) for key in runs[0]} | {
        "all_seconds": [r["seconds"] for r in runs]}


LABELS = {
    "plain": "visim, no re-ranking (mAP before)",
    "torchreid": "torchreid distances + re_ranking + evaluate_rank",
    "visim": "visim evaluate_embeddings(rerank=k_reciprocal)",
}


def render(results, budget_mib) -> str:
    lines = [".. list-table::", "   :header-rows: 1", "   :widths: 10 36 9 9 10 11 15", "",
             "   * - size (Q x G)", "     - method", "     - wall (s)", "     - CPU (s)",
             "     - torchreid / visim (wall, CPU)", "     - peak RSS (MiB)", "     - rank-1 / mAP"]
    for size, rows in results.items():
        num_q, num_g = SIZES[size][:2]
        visim = next(r for r in rows if r["method"] == "visim")
        for row in rows:
            label = LABELS[row["method"]] + (f" ({budget_mib} MiB budget)" if row["method"] == "visim" else "")
            ratio = (f"{row['seconds'] / visim['seconds']:.1f}x, {row['cpu_seconds'] / visim['cpu_seconds']:.1f}x"
                     if row["method"] == "torchreid" else "")
            lines += [f"   * - {size} ({num_q} x {num_g})", f"     - {label}", f"     - {row['seconds']:.1f}",
                      f"     - {row['cpu_seconds']:.1f}", f"     - {ratio}", f"     - {row['peak_mib']:.0f}",
                      f"     - {row['rank1']:.4f} / {row['mAP']:.4f}"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="half,market,msmt17")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--budget-mib", type=int, default=512)
    parser.add_argument("--threads", type=int, default=1, help="torch threads in every method")
    parser.add_argument("--no-torchreid", default="msmt17", help="sizes where torchreid is not run")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--render", metavar="JSON", help="only print the table of a saved run")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    if args.render:
        print(render(json.loads(Path(args.render).read_text()), args.budget_mib))
        return
    import torch

    torch.set_num_threads(args.threads)
    print(f"machine: {machine()}", flush=True)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes.split(","):
            data_path = Path(tmp) / size
            data_path.mkdir()
            for key, array in synthetic_split(size).items():
                np.save(data_path / f"{key}.npy", array)
            methods = ["plain", "visim"] + ([] if size in args.no_torchreid.split(",") else ["torchreid"])
            rows = []
            for method in methods:
                row = {"method": method, **measure(method, data_path, args)}
                print(f"{size:7s} {LABELS[method]:50s} {row['seconds']:8.1f} s {row['cpu_seconds']:8.1f} s CPU "
                      f"{row['peak_mib']:8.0f} MiB  rank-1 {row['rank1']:.4f} mAP {row['mAP']:.4f}", flush=True)
                rows.append(row)
            by = {r["method"]: r for r in rows}
            if "torchreid" in by:
                gap = abs(by["torchreid"]["mAP"] - by["visim"]["mAP"])
                print(f"{size:7s} mAP gap visim vs torchreid: {gap:.1e}", flush=True)
                assert gap < 5e-4, f"{size}: visim and torchreid disagree (mAP gap {gap:.1e})"
            results[size] = rows
            if args.json:
                Path(args.json).write_text(json.dumps(results, indent=1))
    print(render(results, args.budget_mib))


if __name__ == "__main__":
    main()
