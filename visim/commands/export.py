"""``visim export CONFIG|RUN_DIR --out FILE``: an ONNX or TorchScript model for deployment.

The file takes uint8 RGB images ``[B, H, W, 3]`` and returns the embeddings ``visim predict``
computes; it is kept only when the parity check against PyTorch passes. ``--check FILE``
re-runs that check on an existing export.
"""

from __future__ import annotations

import sys
from pathlib import Path

HELP = "export the model to ONNX or TorchScript (preprocessing inside), checked against PyTorch"
FORMATS = ("onnx", "torchscript")
SUFFIXES = {".onnx": "onnx", ".pt": "torchscript", ".ts": "torchscript", ".torchscript": "torchscript"}


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("export", help=HELP, description=HELP)
    parser.add_argument("config", metavar="CONFIG|RUN_DIR", help="the YAML experiment config, or a run directory (its config.yaml and checkpoints/best.pt)")
    parser.add_argument("--weights", metavar="PATH", help="model weights (a visim checkpoint); default: a run directory's best.pt, else untrained")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--out", metavar="FILE", help="the export to write (.onnx, or .pt / .ts for TorchScript)")
    target.add_argument("--check", metavar="FILE", help="re-run the parity check on an existing export instead")
    parser.add_argument("--format", choices=FORMATS, help="default: from the suffix of --out")
    parser.add_argument("--set", action="append", default=[], metavar="KEY.PATH=VALUE", help="override a config value (repeatable)")
    parser.add_argument("--quiet", "-q", action="store_true", help="no console output but errors")
    parser.set_defaults(handler=handle)


def fail(message: str, code: int) -> int:
    print(f"visim: error: {message}", file=sys.stderr)
    return code


def resolve_source(args) -> tuple[str | None, str | None, str | None]:
    """(config file, weights, error): a run directory gives both of its own."""
    source = Path(args.config)
    if not source.is_dir():
        return args.config, args.weights, None
    config, best = source / "config.yaml", source / "checkpoints" / "best.pt"
    if not config.is_file():
        return None, None, f"{source} is not a run directory: it has no config.yaml"
    if args.weights is None and not best.is_file():
        return None, None, f"{source} has no checkpoints/best.pt; name the checkpoint with --weights"
    return str(config), args.weights or str(best), None


def resolve_format(args) -> tuple[str | None, str | None]:
    if args.format or args.out is None:
        return args.format, None
    fmt = SUFFIXES.get(Path(args.out).suffix.lower())
    if fmt is None:
        return None, f"--out: cannot tell the format of {args.out!r} from its suffix; give --format onnx or torchscript"
    return fmt, None


def handle(args) -> int:
    from visim.config.load import load_config

    fmt, problem = resolve_format(args)
    if problem:
        return fail(problem, 2)
    config_file, weights, problem = resolve_source(args)
    if problem:
        return fail(problem, 2)
    args.config = config_file  # cli.main names the file in config errors
    config = load_config(config_file, args.set)
    if weights is None and not args.quiet:
        print("visim: warning: no --weights given; exporting an untrained model", file=sys.stderr)
    return run(config, weights, fmt, args)


def run(config, weights, fmt, args) -> int:
    from visim.config.errors import ConfigError
    from visim.deploy.errors import ExportError
    from visim.deploy.export import ParityError, check_export, export_model
    from visim.engine.checkpoint import CheckpointError

    try:
        if args.check:
            checked = check_export(config, weights, args.check, quiet=args.quiet)
        else:
            checked = export_model(config, weights, fmt, args.out, quiet=args.quiet)
    except ConfigError:
        raise  # cli.main reports it with exit code 2
    except CheckpointError as exc:
        return fail(str(exc), 2)
    except ParityError as exc:
        if not args.quiet:
            print(exc.report.summary(), file=sys.stderr)
        kept = "" if args.check else f"; nothing was written to {args.out}"
        return fail(f"{exc}{kept}", 1)
    except ExportError as exc:
        return fail(str(exc), 1)
    except (OSError, ValueError, RuntimeError) as exc:  # bad data, unwritable output
        return fail(f"{type(exc).__name__}: {exc}", 1)
    if not args.quiet:
        meta = checked.metadata
        shape = ", ".join(map(str, meta["input"]["shape"]))
        verb = "checked" if args.check else "wrote"
        print(f"{verb} {checked.path} ({checked.format}: uint8 [{shape}] -> float32 [batch, {meta['embedding_dim']}])")
        print(checked.report.summary())
    return 0
