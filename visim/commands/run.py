"""``visim run|train|test CONFIG``: the main jobs, writing a run directory."""

from __future__ import annotations

import logging
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
        if job == "run":
            parser.add_argument(
                "--baseline", action="store_true", help="test the model before training too, and compare"
            )
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


def prepare_job(args, config) -> tuple[Path | None, Path]:
    """The checkpoint to resume and the run directory (a resumed run keeps its own)."""
    from visim.engine.checkpoint import CheckpointError
    from visim.engine.rundir import create_run_dir, run_dir_of

    resume = resolve_resume(getattr(args, "resume", None), config)
    for path in (resume, args.weights):  # before any directory is made for a doomed run
        if path is not None and not Path(path).is_file():
            raise CheckpointError(f"checkpoint not found: {path}")
    return resume, (run_dir_of(resume) if resume else None) or create_run_dir(config.log_dir, config.name)


def handle(args) -> int:
    """The job, as one process or as one of torchrun's (then rank 0 alone writes)."""
    from visim.engine import distributed

    try:
        return run_job(args)
    except distributed.DistributedError as exc:
        print(f"visim: error: {exc}", file=sys.stderr)
        return 2
    finally:
        distributed.teardown()


def run_job(args) -> int:
    from visim.config.load import load_config
    from visim.engine import distributed
    from visim.engine.checkpoint import CheckpointError
    from visim.engine.runlog import recorded_in

    config = load_config(args.config, args.set)
    if args.job == "train" and config.train is None:
        print("visim: error: the config has no train section", file=sys.stderr)
        return 2
    distributed.setup(config.device)
    # Rank 0 alone picks the checkpoint and creates the run directory; every rank learns both.
    try:
        resume, run_dir = distributed.on_main_process(lambda: prepare_job(args, config))
    except CheckpointError as exc:
        return report_error(str(exc), 2)
    except OSError as exc:
        return report_error(f"cannot create the run directory under {config.log_dir!r}: {exc}", 1)
    main = distributed.is_main_process()
    with recorded_in(run_dir if main else None):
        return run_engine(args, config, run_dir, resume, main)


def run_engine(args, config, run_dir, resume, main: bool) -> int:
    from visim.config.errors import ConfigError
    from visim.config.load import dump_config
    from visim.contract_checks import ContractError
    from visim.engine.build import build_engine
    from visim.engine.checkpoint import CheckpointError

    try:
        engine = build_engine(
            config,
            train=args.job != "test",
            run_dir=run_dir if main else None,
            resume=resume,
            weights=args.weights,
            quiet=args.quiet,
        )
        if main:  # only once the config and any checkpoint proved to fit
            (run_dir / "config.yaml").write_text(dump_config(config))
        try:
            if args.job == "run" and args.baseline:
                run_with_baseline(engine)
            elif args.job == "run":
                engine.run()
            elif args.job == "train":
                engine.train_model()
            else:
                engine.test()
        finally:
            engine.close()
            report = engine.loaders.bad_image_report()
            if report:
                engine.log(f"visim: {report}")
    except ConfigError:
        raise  # cli.main reports it with exit code 2
    except CheckpointError as exc:
        return report_error(str(exc), 2)
    except ContractError as exc:  # whose code to look at: one line; the traceback in run.log
        logging.getLogger("visim.run").info("contract breach", exc_info=exc)
        return report_error(str(exc), exc.exit_code)
    except (OSError, ValueError, RuntimeError) as exc:  # bad data, missing files, diverging loss
        return report_error(f"{type(exc).__name__}: {exc}", 1)
    if not args.quiet and main:
        print(f"run directory: {run_dir}")
    return 0


def report_error(message: str, code: int) -> int:
    """One line on stderr, and (as an INFO record of ``visim``) in the run's run.log."""
    print(f"visim: error: {message}", file=sys.stderr)
    logging.getLogger("visim.run").info("error: %s", message)
    return code


def run_with_baseline(engine) -> dict:
    """Test the untrained (or ``--weights``) model first: the table says what training gained."""
    before = engine.test() if engine.config.train is not None else None
    after = engine.run()
    if before is not None:
        k = next(iter(after["cmc"]))
        engine.log(
            f"before training -> after: mAP {100 * before['mAP']:.2f} -> {100 * after['mAP']:.2f}, "
            f"Rank-{k} {100 * before['cmc'][k]:.2f} -> {100 * after['cmc'][k]:.2f}"
        )
    return after
