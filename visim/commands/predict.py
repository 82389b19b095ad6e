"""``visim predict CONFIG --out FILE``: embed query and gallery into a file for later ranking."""

from __future__ import annotations

import sys

from visim.commands._args import add_config_arguments, add_quiet_argument

HELP = "embed the query and gallery data and save them (.npz or .pt) with pid, camid and path"


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("predict", help=HELP, description=HELP)
    add_config_arguments(parser)
    parser.add_argument("--weights", metavar="PATH", help="model weights (a visim checkpoint); default: untrained")
    parser.add_argument("--out", required=True, metavar="FILE", help="output file: .npz (numpy) or .pt (torch)")
    add_quiet_argument(parser)
    parser.set_defaults(handler=handle)


def handle(args) -> int:
    from visim.config.load import load_config
    from visim.errors import UsageError
    from visim.outputs.embeddings import EmbeddingsFileError, check_suffix

    try:
        check_suffix(args.out)  # before the slow part: a typo in --out is found at once
    except EmbeddingsFileError as exc:
        raise UsageError(f"--out: {exc}") from None
    config = load_config(args.config, args.set)
    if args.weights is None and not args.quiet:
        print("visim: warning: no --weights given; embedding with an untrained model", file=sys.stderr)
    return predict(config, args)


def predict(config, args) -> int:
    from visim.engine.build import build_engine
    from visim.errors import job_failures
    from visim.outputs.embeddings import export_embeddings

    with job_failures():  # bad data, unwritable output
        engine = build_engine(config, train=False, weights=args.weights, quiet=args.quiet)
        meta = {"weights": str(args.weights) if args.weights else None}
        counts = export_embeddings(engine, args.out, meta)
    if not args.quiet:
        print(f"wrote {counts['query']} query and {counts['gallery']} gallery embeddings to {args.out}")
    return 0
