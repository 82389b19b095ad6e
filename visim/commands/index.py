"""``visim index build|eval``: store a gallery with an index; measure an index against exact search."""

from __future__ import annotations

import json

from visim.errors import UsageError

HELP = "build a gallery index (visim index build) or measure one against exact search (visim index eval)"


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("index", help=HELP, description=HELP)
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    build = actions.add_parser("build", help="store gallery embeddings and build an index over them")
    build.add_argument("source", metavar="EMB.npz|RUN_DIR",
                       help="an embeddings file (its gallery split) or a run directory (embeds its gallery)")
    build.add_argument("--out", required=True, metavar="INDEX_DIR", help="the index folder to create")
    build.add_argument("--index", default="exact", metavar="NAME_OR_YAML",
                       help="a registered index, or a YAML mapping: '{name: faiss.ivf, nlist: 1024}' (default: exact)")
    build.add_argument("--dtype", choices=("float16", "float32"), default="float32", help="stored embeddings (default: float32)")
    build.add_argument("--metric", metavar="NAME_OR_YAML", help="the metric (default: the source's)")
    build.set_defaults(handler=handle_build)
    evaluate = actions.add_parser("eval", help="recall@k against exact search, queries/s, top-K re-id figures")
    evaluate.add_argument("index_dir", metavar="INDEX_DIR")
    evaluate.add_argument("--query", required=True, metavar="EMB.npz", help="query embeddings (with pids and camids)")
    evaluate.add_argument("--top", type=int, default=10, metavar="K", help="hits per query (default: 10)")
    evaluate.add_argument("--protocol", choices=("market1501", "none", "exclude_self"), default="market1501")
    evaluate.add_argument("--json", action="store_true", help="print JSON")
    evaluate.set_defaults(handler=handle_eval)


def handle_build(args) -> int:
    from visim.commands.evaluate import build_metric, parse_metric
    from visim.errors import job_failures
    from visim.index.service import build_index
    from visim.index.sources import gallery_of

    with job_failures():  # a run directory's gallery image that cannot be read: exit 1, naming it
        gallery, meta = gallery_of(args.source)  # bad sources, metrics and indexes: exit 2, one line
    metric_ref = parse_metric(args.metric) if args.metric else meta.get("metric", "euclidean")
    metric = build_metric(metric_ref)
    written = build_index(args.out, gallery.embeddings.numpy(), gallery.pids.numpy(), gallery.camids.numpy(),
                          gallery.paths, metric_ref=metric_ref, metric=metric,
                          index_ref=parse_metric(args.index), dtype=args.dtype)
    kind = "approximate" if written["approximate"] else "exact"
    print(f"{args.out}: {written['count']} x {written['dim']} {written['dtype']} gallery, "
          f"index {label(written['index'])} ({kind}), metric {label(written['metric'])}")
    return 0


def label(ref) -> str:
    """A component reference as a user writes it: ``euclidean``, ``minkowski(p=3)``."""
    if not isinstance(ref, dict):
        return str(ref)
    params = ", ".join(f"{key}={value}" for key, value in ref.items() if key != "name")
    return f"{ref['name']}({params})" if params else str(ref["name"])


def handle_eval(args) -> int:
    from visim.index.exact import ExactIndex
    from visim.index.service import check_queries, open_index, timed_search
    from visim.index.topk_eval import topk_figures
    from visim.outputs.embeddings import load_embeddings

    if args.top < 1:
        raise UsageError(f"--top must be >= 1 (got {args.top})")
    stored, index, metric = open_index(args.index_dir)  # bad index or queries: exit 2, one line
    query = load_embeddings(args.query).query
    queries = check_queries(query.embeddings.numpy(), stored)
    exact = ExactIndex(metric, stored.meta["dim"])
    exact.load(None, stored.gallery)
    k = args.top
    _, found, seconds = timed_search(index, queries, k)
    _, truth, exact_seconds = timed_search(exact, queries, k)
    recall = {f"recall@{c}": recall_at(found, truth, c) for c in sorted({1, min(10, k), k})}
    report = {
        "index": stored.meta["index"],
        "approximate": bool(stored.meta.get("approximate")),
        "queries": len(queries),
        "gallery": len(stored.gallery),
        **recall,
        "queries_per_s": len(queries) / max(seconds, 1e-9),
        "exact_queries_per_s": len(queries) / max(exact_seconds, 1e-9),
    }
    try:
        report["topk"] = topk_figures(found, query.pids.numpy(), query.camids.numpy(), stored.pids, stored.camids,
                                      k=k, protocol=args.protocol)
    except ValueError as exc:
        report["topk"] = {"note": str(exc)}
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    kind = "APPROXIMATE index" if report["approximate"] else "exact index"
    print(f"{args.index_dir}: {kind} {label(report['index'])}, {report['gallery']} gallery items, {report['queries']} queries")
    print("  " + "  ".join(f"{name} {value:.4f}" for name, value in recall.items()) + "  (against exact search)")
    print(f"  {report['queries_per_s']:.1f} queries/s (exact search: {report['exact_queries_per_s']:.1f} queries/s)")
    figures = report["topk"]
    print("  top-K figures: " + "  ".join(f"{name} {value:.4f}" for name, value in figures.items()
                                          if isinstance(value, float)) + f"  ({figures['note']})")
    return 0


def recall_at(found, truth, k: int) -> float:
    """The share of each query's k true nearest neighbours found among its k hits, averaged."""
    import numpy as np

    total = 0
    for got, want in zip(found[:, :k], truth[:, :k]):
        want = want[want >= 0]
        total += len(np.intersect1d(got[got >= 0], want)) / max(1, len(want))
    return total / max(1, len(found))
