"""Ranking evaluation, side by side: visim against torchreid (Python and compiled Cython).

    python benchmarks/eval_bench.py [--sizes market,msmt17] [--repeats 3] [--budget-mib 256]

Each measurement runs in a fresh subprocess that loads the embeddings, times only the
evaluation (distances + ranking + scores, wall and CPU time) and reports its peak resident
memory (``VmHWM``, which includes the interpreter, torch and the embeddings). Times and
memory are medians over ``--repeats`` runs. The CMC curves and mAPs of all methods are
compared and must agree. ``--threads 1`` pins torch to one thread in every method (numpy's
argsort and torchreid's Cython loops are single-threaded anyway), which keeps the comparison
stable on a shared machine.

The compiled torchreid ranking comes from ``pyppbox-torchreid``, which ships a built
``rank_cy`` extension. It is a benchmark-only install, never a visim dependency:

    pip install --no-deps --target /tmp/bench-site pyppbox-torchreid

and is picked up from ``--bench-site`` (default /tmp/bench-site) when present.

The embeddings are synthetic float32, shaped like the real test splits (identities, cameras,
distractors) and clustered by identity with noise chosen so the ranking quality resembles
published models (see SIZES): how deep the last positive ranks is what visim's exact ranking
cost depends on.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

SIZES = {
    # name: queries, gallery, identities, cameras, share of gallery distractors (pid 0), noise
    # (the noise makes rank-1 / mAP resemble published models: ~0.99 / 0.85 on Market-1501,
    # ~0.98 / 0.6 on MSMT17)
    "market": (3368, 15913, 750, 6, 0.18, 1.4),
    "msmt17": (11659, 82161, 3060, 15, 0.0, 2.0),
    "tiny": (300, 1500, 60, 4, 0.1, 1.4),  # a smoke test of this script
}
DIM = 512
MAX_RANK = 50
PYPPBOX_HINT = "pip install --no-deps --target {site} pyppbox-torchreid"
MSMT_BLOCK = 1000  # query rows per torchreid call at MSMT17 size


# -- data -----------------------------------------------------------------------------------
def synthetic_split(size: str, seed: int = 0) -> dict[str, np.ndarray]:
    num_q, num_g, num_ids, num_cams, distractors, noise_scale = SIZES[size]
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((num_ids + 1, DIM)) / np.sqrt(DIM)
    centers[0] = 0  # distractors share no identity direction
    camera_bias = rng.standard_normal((num_cams, DIM)) * 0.3 / np.sqrt(DIM)
    num_distractors = int(num_g * distractors)
    q_pids = rng.integers(1, num_ids + 1, num_q)
    g_pids = np.concatenate([np.zeros(num_distractors, np.int64),
                             rng.integers(1, num_ids + 1, num_g - num_distractors)])
    q_cams, g_cams = rng.integers(0, num_cams, num_q), rng.integers(0, num_cams, num_g)

    def embed(pids, cams):
        noise = rng.standard_normal((len(pids), DIM)) * noise_scale / np.sqrt(DIM)
        # float32, as a model's embeddings are (numpy would promote to float64 above)
        return (centers[pids] + camera_bias[cams] + noise).astype(np.float32)

    return {"q": embed(q_pids, q_cams), "g": embed(g_pids, g_cams), "q_pids": q_pids,
            "g_pids": g_pids, "q_cams": q_cams, "g_cams": g_cams}


# -- methods (run inside the worker subprocess) -----------------------------------------------
def visim_runner(data, budget):
    """Imports first, so the timed call is the evaluation alone (as for torchreid)."""
    from visim.evaluation import evaluate_embeddings
    from visim.metrics.distances import SquaredEuclidean

    def run():
        result = evaluate_embeddings(data["q"], data["g"], SquaredEuclidean(), data["q_pids"],
                                     data["g_pids"], data["q_cams"], data["g_cams"],
                                     max_rank=MAX_RANK, memory_budget=budget)
        return result.cmc, result.mAP, result.mINP

    return run


def valid_query_counts(data) -> np.ndarray:
    """1 for each query with a gallery positive (same identity, other camera), else 0."""
    g_pairs = data["g_pids"] * 1000 + data["g_cams"]
    ids, per_id = np.unique(data["g_pids"], return_counts=True)
    pairs, per_pair = np.unique(g_pairs, return_counts=True)
    def lookup(keys, values, query):
        at = np.clip(np.searchsorted(keys, query), 0, len(keys) - 1)
        return np.where(keys[at] == query, values[at], 0)
    same_id = lookup(ids, per_id, data["q_pids"])
    same_camera = lookup(pairs, per_pair, data["q_pids"] * 1000 + data["q_cams"])
    return (same_id > same_camera).astype(np.int64)


def run_torchreid(rank_module, use_cython, data, block, valid):
    """torchreid's distance + ranking; query blocks (``block`` > 0) are combined by their
    numbers of valid queries, which is exactly how torchreid averages within one call."""
    import torch
    from torchreid.reid.metrics.distance import compute_distance_matrix

    num_q = len(data["q_pids"])
    block = block or num_q
    gallery = torch.from_numpy(data["g"])
    cmc_sum, ap_sum = np.zeros(MAX_RANK), 0.0
    for start in range(0, num_q, block):
        rows = slice(start, start + block)
        distmat = compute_distance_matrix(torch.from_numpy(data["q"][rows]), gallery).numpy()
        cmc, mAP = rank_module.evaluate_rank(
            distmat, data["q_pids"][rows], data["g_pids"], data["q_cams"][rows], data["g_cams"],
            max_rank=MAX_RANK, use_metric_cuhk03=False, use_cython=use_cython)
        count = int(valid[rows].sum())
        cmc_sum += np.asarray(cmc, np.float64) * count
        ap_sum += float(mAP) * count
        del distmat
    return cmc_sum / valid.sum(), ap_sum / valid.sum(), None


def load_rank_module(kind, site):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind == "python":
            from torchreid.reid.metrics import rank
            return rank
        sys.path.append(site)
        from pyppbox_torchreid.metrics import rank
        assert rank.IS_CYTHON_AVAI, "pyppbox-torchreid's compiled rank_cy did not load"
        return rank


def peak_rss_mib() -> float:
    """This process's peak resident memory. ``VmHWM`` belongs to the address space; the
    ``ru_maxrss`` of a child started by fork/exec also carries the parent's high-water mark."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (this benchmark measures memory on Linux)")


def worker(args) -> None:
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    data = {path.stem: np.load(path) for path in Path(args.data).glob("*.npy")}
    if args.worker == "visim":
        run = visim_runner(data, args.budget_mib << 20)
    else:
        kind = args.worker.split("-")[1]
        rank_module = load_rank_module(kind, args.bench_site)
        valid = valid_query_counts(data)
        run = lambda: run_torchreid(rank_module, kind == "cython", data, args.block, valid)  # noqa: E731
    baseline = peak_rss_mib()
    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    cmc, mAP, mINP = run()
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "peak_mib": peak_rss_mib(),
                      "baseline_mib": baseline, "cmc": list(map(float, cmc)),
                      "mAP": mAP, "mINP": mINP}))


# -- orchestration ----------------------------------------------------------------------------
def measure(method, data_path, args, block=0, budget_mib=None):
    command = [sys.executable, __file__, "--worker", method, "--data", str(data_path),
               "--bench-site", args.bench_site, "--block", str(block),
               "--budget-mib", str(budget_mib or args.budget_mib), "--threads", str(args.threads)]
    runs = []
    for _ in range(args.repeats):
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode:
            raise SystemExit(f"{method} failed:\n{done.stderr[-3000:]}")
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return {
        "seconds": statistics.median(r["seconds"] for r in runs),
        "cpu_seconds": statistics.median(r["cpu_seconds"] for r in runs),
        "peak_mib": statistics.median(r["peak_mib"] for r in runs),
        "baseline_mib": statistics.median(r["baseline_mib"] for r in runs),
        "cmc": runs[0]["cmc"], "mAP": runs[0]["mAP"], "mINP": runs[0]["mINP"],
        "all_seconds": [r["seconds"] for r in runs],
    }


def plan(size, args, have_cython):
    """(label, method, block, budget MiB, why-skipped) rows for one size."""
    rows = [(f"visim evaluate_embeddings ({args.budget_mib} MiB budget)", "visim", 0, args.budget_mib, None),
            ("visim evaluate_embeddings (default 1 GiB budget)", "visim", 0, 1024, None)]
    block = MSMT_BLOCK if size == "msmt17" else 0
    blocked = f", {MSMT_BLOCK}-query blocks" if block else ""
    cython_skip = None if have_cython else "pyppbox-torchreid not installed: " + PYPPBOX_HINT.format(site=args.bench_site)
    rows.append((f"torchreid distance + Cython evaluate_rank{blocked}", "torchreid-cython", block, None, cython_skip))
    python_skip = ("skipped: the full matrix plus argsort buffers need ~16 GB, more than this "
                   "machine can spare, and the per-query Python loop takes tens of minutes") if size == "msmt17" else None
    rows.append(("torchreid distance + Python evaluate_rank", "torchreid-python", 0, None, python_skip))
    return rows


def check_identical(reference, other, label):
    cmc_gap = float(np.max(np.abs(np.asarray(reference["cmc"]) - np.asarray(other["cmc"]))))
    map_gap = abs(reference["mAP"] - other["mAP"])
    # CMC values are counts / valid queries (a step is >= 1e-5 here); mAP differs only by the
    # float32 accumulation of torchreid's Cython code.
    assert cmc_gap < 1e-6 and map_gap < 2e-6, f"{label}: CMC gap {cmc_gap:.2e}, mAP gap {map_gap:.2e}"
    return cmc_gap, map_gap


def machine() -> str:
    import torch

    cpuinfo = Path("/proc/cpuinfo")
    names = [line for line in cpuinfo.read_text().splitlines() if line.startswith("model name")] if cpuinfo.is_file() else []
    cpu = names[0].split(":", 1)[1].strip() if names else (platform.processor() or "cpu")
    return (f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads), "
            f"numpy {np.__version__}, Python {platform.python_version()}")


def render(results) -> str:
    """The results as an RST table; times relative to visim at the benchmark's budget."""
    lines = [".. list-table::", "   :header-rows: 1", "   :widths: 9 35 8 8 12 9 11", "",
             "   * - size", "     - method", "     - wall (s)", "     - CPU (s)",
             "     - time / visim's (wall, CPU)", "     - peak RSS (MiB)", "     - rank-1 / mAP"]
    for size, rows in results.items():
        visim = rows[0]
        for row in rows:
            lines += [f"   * - {size}", f"     - {row['label']}"]
            if "skipped" in row:
                lines += ["     - n/a"] * 4 + [f"     - {row['skipped']}"]
                continue
            relative = f"{row['seconds'] / visim['seconds']:.1f}x, {row['cpu_seconds'] / visim['cpu_seconds']:.1f}x"
            lines += [f"     - {row['seconds']:.2f}", f"     - {row['cpu_seconds']:.2f}", f"     - {relative}",
                      f"     - {row['peak_mib']:.0f}", f"     - {row['cmc'][0]:.4f} / {row['mAP']:.4f}"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="market,msmt17")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--budget-mib", type=int, default=256)
    parser.add_argument("--bench-site", default="/tmp/bench-site")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads in every method (default: torch's choice)")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--render", metavar="JSON", help="only print the table of a saved run")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--block", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    if args.render:
        print(render(json.loads(Path(args.render).read_text())))
        return
    have_cython = (Path(args.bench_site) / "pyppbox_torchreid").is_dir()
    if not have_cython:
        print("torchreid's compiled ranking is measured from pyppbox-torchreid; install it with\n  "
              + PYPPBOX_HINT.format(site=args.bench_site), file=sys.stderr)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    print(f"machine: {machine()}", flush=True)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes.split(","):
            data_path = Path(tmp) / size
            data_path.mkdir()
            for key, array in synthetic_split(size).items():
                np.save(data_path / f"{key}.npy", array)  # read back without an extra copy
            rows = []
            for label, method, block, budget, skipped in plan(size, args, have_cython):
                if skipped:
                    rows.append({"label": label, "method": method, "skipped": skipped})
                    continue
                row = {"label": label, "method": method, **measure(method, data_path, args, block, budget)}
                print(f"{size:7s} {label:55s} {row['seconds']:8.2f} s {row['cpu_seconds']:8.2f} s CPU "
                      f"{row['peak_mib']:8.0f} MiB "
                      f"(runs {', '.join(f'{s:.2f}' for s in row['all_seconds'])})", flush=True)
                rows.append(row)
            for row in rows[1:]:
                if "seconds" in row:
                    gaps = check_identical(rows[0], row, f"{size}: {row['label']}")
                    print(f"{size:7s} identical to visim: {row['label']} (CMC gap {gaps[0]:.1e}, "
                          f"mAP gap {gaps[1]:.1e})", flush=True)
            results[size] = rows
    print(render(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
