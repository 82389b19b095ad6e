"""``visim search INDEX_DIR --query EMB.npz|IMAGE_DIR``: each query's best gallery matches."""

from __future__ import annotations

import json
import sys

from visim.errors import UsageError

HELP = "search an index (from `visim index build`) with query embeddings or images; JSON lines out"


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("search", help=HELP, description=HELP)
    parser.add_argument("index_dir", metavar="INDEX_DIR")
    parser.add_argument("--query", required=True, metavar="EMB.npz|IMAGE_DIR",
                        help="an embeddings file (its query split) or a folder of images")
    parser.add_argument("--config", metavar="CONFIG", help="the model config, to embed an IMAGE_DIR")
    parser.add_argument("--weights", metavar="PATH", help="the model weights, to embed an IMAGE_DIR")
    parser.add_argument("--top", type=int, default=10, metavar="K", help="hits per query (default: 10)")
    parser.add_argument("--threshold", type=float, metavar="T",
                        help="drop hits beyond T (distance above / similarity below): no hit = not in the gallery")
    parser.add_argument("--out", metavar="FILE", help="write the JSON lines here instead of stdout")
    parser.set_defaults(handler=handle)


def handle(args) -> int:
    from visim.commands.index import label
    from visim.errors import job_failures
    from visim.index.queries import load_queries
    from visim.index.service import check_queries, hits, open_index

    if args.top < 1:
        raise UsageError(f"--top must be >= 1 (got {args.top})")
    stored, index, metric = open_index(args.index_dir)  # bad index or queries: exit 2, one line
    with job_failures():  # an image that cannot be read: exit 1, naming it
        queries, paths = load_queries(args.query, args.config, args.weights)
    queries = check_queries(queries, stored)
    scores, ids = index.search(queries, args.top)
    if stored.meta.get("approximate"):
        print(f"visim: note: {label(stored.meta['index'])} is an approximate index: hits may miss true neighbours",
              file=sys.stderr)
    records = hits(stored, scores, ids, higher_is_better=bool(getattr(metric, "higher_is_better", False)),
                   threshold=args.threshold, query_paths=paths)
    lines = (json.dumps(record) + "\n" for record in records)
    if args.out:
        from visim.outputs.atomic import write_text

        write_text(args.out, "".join(lines))
    else:
        sys.stdout.writelines(lines)
    return 0
