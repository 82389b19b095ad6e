"""``visim run|train|test CONFIG``: the main jobs, writing a run directory."""

from __future__ import annotations

import sys
from pathlib import Path

JOBS = {
    "run": "train (when the config has a train section), then test",
    "train": "train, evaluating every train.eval_interval epochs and after the last",
    "test": "embed query and gallery, rank, report CMC / mAP / mINP",
}


def add_common(parser) -> None:
    parser.add_argument("config", help="the YAML experiment config")
    parser.add_argument("--set", action="append", default=[], metavar="KEY.PATH=VALUE", help="override a config value (repeatable)")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bars or console output")


def add_parser(subparsers) -> None:
    for job, help_text in JOBS.items():
        parser = subparsers.add_parser(job, help=help_text, description=help_text)
        add_common(parser)
        if job != "test":
            parser.add_argument("--resume", metavar="PATH|auto", help="continue from a checkpoint, or the latest run's last.pt")
        parser.add_argument("--weights", metavar="PATH", help="start from (or evaluate) these model weights")
        parser.set_defaults(handler=handle, job=job)


def resolve_resume(resume: str | None, config) -> Path | None:
    from visim.engine.rundir import latest_checkpoint

    if resume is None:
        return None
    if resume == "auto":
        found = latest_checkpoint(config.log_dir, config.name)
        if found is None:
            print(f"visim: no checkpoint of {config.name!r} under {config.log_dir}; starting afresh", file=sys.stderr)
        return found
    return Path(resume)


def prepare_run_dir(config, resume: Path | None) -> Path:
    from visim.config.load import dump_config
    from visim.engine.rundir import create_run_dir, run_dir_of

    run_dir = (run_dir_of(resume) if resume else None) or create_run_dir(config.log_dir, config.name)
    (run_dir / "config.yaml").write_text(dump_config(config))
    return run_dir


def handle(args) -> int:
    from visim.config.errors import ConfigError
    from visim.config.load import load_config
    from visim.engine.build import build_engine
    from visim.engine.checkpoint import CheckpointError

    config = load_config(args.config, args.set)
    resume = resolve_resume(getattr(args, "resume", None), config)
    run_dir = prepare_run_dir(config, resume)
    try:
        engine = build_engine(
            config, train=args.job != "test", run_dir=run_dir, resume=resume, weights=args.weights, quiet=args.quiet
        )
        try:
            if args.job == "run":
                engine.run()
            elif args.job == "train":
                if config.train is None:
                    print("visim: error: the config has no train section", file=sys.stderr)
                    return 2
                engine.train_model()
            else:
                engine.test()
        finally:
            engine.close()
    except ConfigError:
        raise  # cli.main reports it with exit code 2
    except CheckpointError as exc:
        print(f"visim: error: {exc}", file=sys.stderr)
        return 2
    except (OSError, ValueError, RuntimeError) as exc:  # bad data, missing files, diverging loss
        print(f"visim: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if not args.quiet:
        print(f"run directory: {run_dir}")
    return 0
