"""Gallery search and distributed evaluation at scale, on synthetic clustered embeddings.

    python benchmarks/search_bench.py --workdir /tmp/visim-bench [--gallery 10000000] [--hnsw-subset 500000]
        [--nlist 4096] [--nprobe 64,128,192,256,384] [--ivf fp16,pq:16]

1. A clustered gallery (``--gallery`` x 128, float16) is written as a visim index directory
   (sharded ``.npy`` files, memory-mapped when searched).
2. Exact search (visim's ``exact`` index) for 1,000 queries: time and peak RSS, in a fresh
   process so that the RSS is the search's own.
3. faiss IVF on the whole gallery, once per ``--ivf`` storage (``STORAGE[:REFINE]``: ``fp16``
   lists, and ``pq`` fast-scan codes re-ranked by float16 vectors), sweeping ``--nprobe``; faiss
   HNSW on the first ``--hnsw-subset`` rows: build time, queries/s, recall@1 and @10 against
   exact search of the same rows.
4. Distributed exact evaluation at MSMT17's size (11,659 queries x 82,161 gallery, 128-d):
   ``visim evaluate`` as one process and under ``torchrun --nproc_per_node=2``; the printed
   results must be identical.

Every phase prints one JSON line; the last line is the whole report.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import attrs
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from eval_bench import peak_rss_mib  # noqa: E402

DIM, CLUSTERS, QUERIES = 128, 20_000, 1_000
# Like embeddings of a trained model: identities are clusters whose spread (pose, light,
# background) has a few directions (LATENT of them, scale SPREAD), plus a little isotropic noise.
LATENT, SPREAD, NOISE = 16, 0.5, 0.05
EF_SEARCH = (32, 64, 128, 256)


class SyntheticGallery:
    """Rows ``i`` of a clustered gallery, generated on demand (deterministic per 2**20 rows)."""

    block = 1 << 20

    def __init__(self, size: int) -> None:
        self.shape = (size, DIM)
        self.centres = np.random.default_rng(0).normal(size=(CLUSTERS, DIM)).astype(np.float32)
        self.basis = np.random.default_rng(7).normal(scale=SPREAD, size=(LATENT, DIM)).astype(np.float32)

    def variation(self, rng, n: int) -> np.ndarray:
        latent = rng.normal(size=(n, LATENT)).astype(np.float32)
        return latent @ self.basis + rng.normal(scale=NOISE, size=(n, DIM)).astype(np.float32)

    def __len__(self) -> int:
        return self.shape[0]

    def labels(self, start: int, stop: int) -> np.ndarray:
        return np.concatenate([np.random.default_rng([1, b]).integers(0, CLUSTERS, self.block)
                               for b in range(start // self.block, -(-stop // self.block))])[
            start % self.block : start % self.block + stop - start]

    def __getitem__(self, rows: slice) -> np.ndarray:
        start, stop, _ = rows.indices(len(self))
        assert start % self.block == 0, "generated in whole blocks"
        parts = []
        for b in range(start // self.block, -(-stop // self.block)):
            n = min(self.block, stop - b * self.block)
            pids = self.labels(b * self.block, b * self.block + n)
            parts.append((self.centres[pids] + self.variation(np.random.default_rng([2, b]), n)).astype(np.float16))
        return np.concatenate(parts)


def queries(gallery: SyntheticGallery) -> np.ndarray:
    rng = np.random.default_rng(3)
    pids = rng.integers(0, CLUSTERS, QUERIES)
    return gallery.centres[pids] + gallery.variation(rng, QUERIES)


def peak_rss_gib() -> float:
    return peak_rss_mib() / 1024


def make_gallery(workdir: Path, size: int) -> dict:
    from visim.index.exact import ExactIndex
    from visim.index.store import write_index_dir
    from visim.metrics.distances import Euclidean

    out = workdir / "gallery"
    if (out / "index.json").is_file():
        return {"phase": "gallery", "reused": str(out)}
    gallery = SyntheticGallery(size)
    start = time.perf_counter()
    write_index_dir(out, gallery, np.zeros(size, np.int64), np.zeros(size, np.int64), [""] * size,
                    metric="euclidean", index_ref="exact", dtype="float16",
                    build_component=lambda g: (lambda i: (i.build(g), i)[1])(ExactIndex(Euclidean(), DIM)),
                    shard_rows=SyntheticGallery.block)
    size_gib = sum(f.stat().st_size for f in out.glob("gallery-*.npy")) / 2**30
    return {"phase": "gallery", "rows": size, "dim": DIM, "dtype": "float16", "on_disk_gib": round(size_gib, 3),
            "write_s": round(time.perf_counter() - start, 1)}


def stored_gallery(workdir: Path, rows: int | None = None):
    from visim.index.store import load_gallery, read_meta

    folder = workdir / "gallery"
    gallery = load_gallery(folder, read_meta(folder))
    return gallery if rows is None else np.asarray(gallery[0:rows])


def phase_exact(workdir: Path, rows: int | None) -> dict:
    """Exact top-10 of the 1,000 queries; saves the ids as the recall reference."""
    from visim.index.exact import ExactIndex
    from visim.metrics.distances import Euclidean

    gallery = stored_gallery(workdir)
    if rows is not None:
        from visim.index.store import ShardedArray

        gallery = ShardedArray([s for s in gallery.shards])  # same files, first rows only
        gallery.shape = (rows, DIM)
    q = queries(SyntheticGallery(len(gallery)))
    index = ExactIndex(Euclidean(), DIM)
    index.build(gallery)
    start = time.perf_counter()
    _, ids = index.search(q, 10)
    seconds = time.perf_counter() - start
    np.save(workdir / f"exact-{len(gallery)}.npy", ids)
    return {"phase": "exact", "gallery": len(gallery), "queries": QUERIES, "search_s": round(seconds, 1),
            "queries_per_s": round(QUERIES / seconds, 1), "peak_rss_gib": round(peak_rss_gib(), 2)}


def phase_faiss(workdir: Path, kind: str, rows: int | None, params: dict, sweep_values) -> dict:
    from visim_faiss import HNSWParams, IVFParams
    from visim_faiss.index import FaissIndex

    from visim.metrics.distances import Euclidean

    gallery = stored_gallery(workdir, rows)
    q = queries(SyntheticGallery(len(gallery)))
    index = FaissIndex(kind, (IVFParams if kind == "ivf" else HNSWParams)(**params), Euclidean(), DIM)
    start = time.perf_counter()
    index.build(gallery)
    build_s = time.perf_counter() - start
    truth = np.load(workdir / f"exact-{len(gallery)}.npy")
    sweep = []
    knob = "nprobe" if kind == "ivf" else "ef_search"
    for value in sweep_values:
        index.params = attrs.evolve(index.params, **{knob: value})
        index.configure()  # as a saved index with these params is loaded
        start = time.perf_counter()
        _, ids = index.search(q, 10)
        seconds = time.perf_counter() - start
        recall = {k: float(np.mean([len(np.intersect1d(a[:k], b[:k])) / k for a, b in zip(ids, truth)])) for k in (1, 10)}
        sweep.append({knob: value, "queries_per_s": round(QUERIES / seconds, 1),
                      "recall@1": round(recall[1], 4), "recall@10": round(recall[10], 4)})
    return {"phase": f"faiss.{kind}", "gallery": len(gallery), "params": params, "build_s": round(build_s, 1),
            "sweep": sweep, "peak_rss_gib": round(peak_rss_gib(), 2)}


def phase_distributed(workdir: Path) -> dict:
    import torch

    from visim.engine.extract import Embeddings
    from visim.outputs.embeddings import save_embeddings

    path = workdir / "msmt17-size.npz"
    rng = np.random.default_rng(4)
    centres = rng.normal(size=(3060, 128)).astype(np.float32)

    def split(n, seed):
        r = np.random.default_rng(seed)
        pids = r.integers(0, 3060, n)
        emb = centres[pids] + r.normal(scale=0.9, size=(n, 128)).astype(np.float32)
        return Embeddings(torch.from_numpy(emb), torch.from_numpy(pids), torch.from_numpy(r.integers(0, 15, n)), [""] * n)

    save_embeddings(path, split(11659, 5), split(82161, 6), {"metric": "euclidean"})
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    runs = {}
    for name, threads, prefix in (("1 process", "2", []),
                                  ("2 processes", "1", ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"])):
        command = [sys.executable, *prefix, "-m", "visim", "evaluate", str(path)]
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env={**env, "OMP_NUM_THREADS": threads})
        if done.returncode:
            raise SystemExit(done.stderr)
        runs[name] = (round(time.perf_counter() - start, 1), done.stdout)
    (one_s, one), (two_s, two) = runs["1 process"], runs["2 processes"]
    return {"phase": "distributed", "queries": 11659, "gallery": 82161, "dim": 128, "one_process_s": one_s,
            "two_processes_s": two_s, "identical_output": one == two, "output": one}


def child(args: list[str]) -> dict:
    """A phase in a fresh process, so that its peak RSS is its own."""
    done = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(done.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1])


def rst_search_tables(phases: list[dict]) -> str:
    """docs/benchmarks.rst's list-tables: per gallery size, exact search and the faiss phases
    measured on it (``ratio`` to exact search's queries/s)."""
    tables = []
    for exact in (p for p in phases if p["phase"] == "exact"):
        rows = [["visim ``exact`` (memory_budget 1 GiB)", f"none ({exact['search_s']} s)", exact["queries_per_s"], "1x",
                 1, 1, f"{exact['peak_rss_gib']} GiB"]]
        for phase in (p for p in phases if p["phase"].startswith("faiss.") and p["gallery"] == exact["gallery"]):
            params, knob = phase["params"], "nprobe" if phase["phase"] == "faiss.ivf" else "ef_search"
            name = (f"``faiss.ivf`` nlist {params['nlist']}, {params['storage']}"
                    + (f", refine {params['refine']}" if params.get("refine", 1) > 1 else "")
                    if knob == "nprobe" else f"``faiss.hnsw`` M {params['M']}, ef_construction {params['ef_construction']}")
            for i, point in enumerate(phase["sweep"]):
                rows.append([f"{name}, {knob} {point[knob]}", f"{phase['build_s']} s" if i == 0 else "(same index)",
                             point["queries_per_s"], f"{point['queries_per_s'] / exact['queries_per_s']:.1f}x",
                             point["recall@1"], point["recall@10"], f"{phase['peak_rss_gib']} GiB" if i == 0 else ""])
        header = ["Search", "Build", "Queries/s", "vs exact", "Recall@1", "Recall@10", "Peak RSS"]
        lines = [f".. list-table:: {exact['gallery']:,} x {DIM} float16, {exact['queries']:,} queries, top-10, Euclidean",
                 "   :header-rows: 1", ""]
        for row in [header, *rows]:
            lines += [f"   * - {row[0]}"] + [f"     - {cell}" if cell != "" else "     -" for cell in row[1:]]
        tables.append("\n".join(lines))
    return "\n\n".join(tables)


def read_phases(paths: list[Path]) -> list[dict]:
    """The phases in the last line of each output: a whole report (a list) or one phase."""
    phases = []
    for path in paths:
        last = json.loads(path.read_text().strip().splitlines()[-1])
        phases += last if isinstance(last, list) else [last]
    return phases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/visim-bench"))
    parser.add_argument("--gallery", type=int, default=10_000_000)
    parser.add_argument("--hnsw-subset", type=int, default=500_000)
    parser.add_argument("--nlist", type=int, default=4096)
    parser.add_argument("--nprobe", default="64,128,192,256,384", help="IVF nprobe values to sweep")
    parser.add_argument("--ivf", default="fp16,pq:16", help="IVF storages to measure, STORAGE[:REFINE] each")
    parser.add_argument("--table", type=Path, nargs="+", metavar="OUTPUT",
                        help="print the docs tables of saved outputs (a whole run's, or of single phases)")
    parser.add_argument("--phase", choices=("exact", "ivf", "hnsw"),
                        help="run one phase only, on the gallery (and exact reference) already in --workdir")
    parser.add_argument("--rows", type=int, help="with --phase: the first ROWS of the gallery only")
    args = parser.parse_args()
    if args.table:
        print(rst_search_tables(read_phases(args.table)))
        return
    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.phase == "exact":
        print(json.dumps(phase_exact(args.workdir, args.rows)))
        return
    if args.phase in ("ivf", "hnsw"):
        nprobes = [int(n) for n in args.nprobe.split(",")]
        storage, _, refine = args.ivf.partition(":")
        params = ({"nlist": args.nlist, "nprobe": nprobes[0], "storage": storage, "refine": int(refine or 1), "train_size": 64}
                  if args.phase == "ivf" else {"M": 16, "ef_search": 64, "ef_construction": 40})
        print(json.dumps(phase_faiss(args.workdir, args.phase, args.rows, params,
                                     nprobes if args.phase == "ivf" else EF_SEARCH)))
        return
    common = ["--workdir", str(args.workdir), "--nlist", str(args.nlist), "--nprobe", args.nprobe]
    report = [make_gallery(args.workdir, args.gallery)]
    print(json.dumps(report[-1]), flush=True)
    plan = [["--phase", "exact"], *(["--phase", "ivf", "--ivf", ivf] for ivf in args.ivf.split(",")),
            ["--phase", "exact", "--rows", str(args.hnsw_subset)], ["--phase", "hnsw", "--rows", str(args.hnsw_subset)]]
    for phase in plan:
        report.append(child([*phase, *common]))
        print(json.dumps(report[-1]), flush=True)
    report.append(phase_distributed(args.workdir))
    print(json.dumps(report[-1]), flush=True)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
