"""``visim export CONFIG|RUN_DIR --out FILE``: an ONNX or TorchScript model for deployment.

The file takes uint8 RGB images ``[B, H, W, 3]`` and returns the embeddings ``visim predict``
computes; it is kept only when the parity check against PyTorch passes. ``--check FILE``
re-runs that check on an existing export.
"""

from __future__ import annotations

import sys
from pathlib import Path

from visim.commands._args import add_config_arguments, add_quiet_argument
from visim.errors import UsageError

HELP = "export the model to ONNX or TorchScript (preprocessing inside), checked against PyTorch"
FORMATS = ("onnx", "torchscript")
SUFFIXES = {".onnx": "onnx", ".pt": "torchscript", ".ts": "torchscript", ".torchscript": "torchscript"}


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("export", help=HELP, description=HELP)
    add_config_arguments(
        parser,
        metavar="CONFIG|RUN_DIR",
        help="the YAML experiment config, or a run directory (its config.yaml and checkpoints/best.pt)",
    )
    parser.add_argument("--weights", metavar="PATH", help="model weights (a visim checkpoint); default: a run directory's best.pt, else untrained")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--out", metavar="FILE", help="the export to write (.onnx, or .pt / .ts for TorchScript)")
    target.add_argument("--check", metavar="FILE", help="re-run the parity check on an existing export instead")
    parser.add_argument("--format", choices=FORMATS, help="default: from the suffix of --out")
    add_quiet_argument(parser)
    parser.set_defaults(handler=handle)


def resolve_source(args) -> tuple[str, str | None]:
    """The config file and weights: a run directory gives both of its own."""
    source = Path(args.config)
    if not source.is_dir():
        return args.config, args.weights
    config, best = source / "config.yaml", source / "checkpoints" / "best.pt"
    if not config.is_file():
        raise UsageError(f"{source} is not a run directory: it has no config.yaml")
    if args.weights is None and not best.is_file():
        raise UsageError(f"{source} has no checkpoints/best.pt; name the checkpoint with --weights")
    return str(config), args.weights or str(best)


def resolve_format(args) -> str | None:
    if args.format or args.out is None:
        return args.format
    fmt = SUFFIXES.get(Path(args.out).suffix.lower())
    if fmt is None:
        raise UsageError(f"--out: cannot tell the format of {args.out!r} from its suffix; give --format onnx or torchscript")
    return fmt


def handle(args) -> int:
    from visim.config.load import load_config

    fmt = resolve_format(args)
    args.config, weights = resolve_source(args)  # cli.main names the config file in its reports
    config = load_config(args.config, args.set)
    if weights is None and not args.quiet:
        print("visim: warning: no --weights given; exporting an untrained model", file=sys.stderr)
    return run(config, weights, fmt, args)


def run(config, weights, fmt, args) -> int:
    from visim.deploy.export import ParityError, check_export, export_model
    from visim.errors import job_failures

    try:
        with job_failures():  # bad data, an unwritable output
            if args.check:
                checked = check_export(config, weights, args.check, quiet=args.quiet)
            else:
                checked = export_model(config, weights, fmt, args.out, quiet=args.quiet)
    except ParityError as exc:
        if not args.quiet:  # the figures first, then cli.main's one line
            print(exc.parity.summary(), file=sys.stderr)
        if not args.check:
            exc.args = (f"{exc}; nothing was written to {args.out}",)
        raise
    if not args.quiet:
        meta = checked.metadata
        shape = ", ".join(map(str, meta["input"]["shape"]))
        verb = "checked" if args.check else "wrote"
        print(f"{verb} {checked.path} ({checked.format}: uint8 [{shape}] -> float32 [batch, {meta['embedding_dim']}])")
        print(checked.report.summary())
    return 0
