"""``visim predict CONFIG --out FILE``: embed query and gallery into a file for later ranking."""

from __future__ import annotations

import sys

HELP = "embed the query and gallery data and save them (.npz or .pt) with pid, camid and path"


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("predict", help=HELP, description=HELP)
    parser.add_argument("config", help="the YAML experiment config")
    parser.add_argument("--weights", metavar="PATH", help="model weights (a visim checkpoint); default: untrained")
    parser.add_argument("--out", required=True, metavar="FILE", help="output file: .npz (numpy) or .pt (torch)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY.PATH=VALUE", help="override a config value (repeatable)")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bars or console output")
    parser.set_defaults(handler=handle)


def handle(args) -> int:
    from visim.config.load import load_config
    from visim.outputs.embeddings import EmbeddingsFileError, check_suffix

    try:
        check_suffix(args.out)  # before the slow part: a typo in --out is found at once
    except EmbeddingsFileError as exc:
        print(f"visim: error: --out: {exc}", file=sys.stderr)
        return 2
    config = load_config(args.config, args.set)
    if args.weights is None and not args.quiet:
        print("visim: warning: no --weights given; embedding with an untrained model", file=sys.stderr)
    return predict(config, args)


def predict(config, args) -> int:
    from visim.config.errors import ConfigError
    from visim.engine.build import build_engine
    from visim.engine.checkpoint import CheckpointError
    from visim.outputs.embeddings import export_embeddings

    try:
        engine = build_engine(config, train=False, weights=args.weights, quiet=args.quiet)
        meta = {"weights": str(args.weights) if args.weights else None}
        counts = export_embeddings(engine, args.out, meta)
    except ConfigError:
        raise  # cli.main reports it with exit code 2
    except CheckpointError as exc:
        print(f"visim: error: {exc}", file=sys.stderr)
        return 2
    except (OSError, ValueError, RuntimeError) as exc:  # bad data, unwritable output
        print(f"visim: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if not args.quiet:
        print(f"wrote {counts['query']} query and {counts['gallery']} gallery embeddings to {args.out}")
    return 0
