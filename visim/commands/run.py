"""``visim run|train|test CONFIG``: the main jobs, writing a run directory."""

from __future__ import annotations

import sys
from contextlib import ExitStack
from pathlib import Path

from visim.commands._args import add_config_arguments, add_quiet_argument

JOBS = {
    "run": "train (when the config has a train section), then test",
    "train": "train, evaluating every train.eval_interval epochs and after the last",
    "test": "embed query and gallery, rank, report CMC / mAP / mINP",
}


def add_parser(subparsers) -> None:
    for job, help_text in JOBS.items():
        parser = subparsers.add_parser(job, help=help_text, description=help_text)
        add_config_arguments(parser)
        add_quiet_argument(parser)
        if job != "test":
            parser.add_argument("--resume", metavar="PATH|auto", help="continue from a checkpoint, or the latest run's last.pt")
        parser.add_argument("--weights", metavar="PATH", help="start from (or evaluate) these model weights")
        if job == "run":
            parser.add_argument(
                "--baseline", action="store_true", help="test the model before training too, and compare"
            )
        parser.set_defaults(handler=handle, job=job)


def resolve_resume(resume: str | None, config) -> Path | None:
    from visim.outputs.rundir import latest_checkpoint

    if resume is None:
        return None
    if resume == "auto":
        found = latest_checkpoint(config.log_dir, config.name)
        if found is None:
            print(f"visim: no checkpoint of {config.name!r} under {config.log_dir}; starting afresh", file=sys.stderr)
        return found
    return Path(resume)


def prepare_job(args, config, holds: ExitStack) -> tuple[Path | None, Path]:
    """The checkpoint to resume and the run directory (a resumed run keeps its own).

    The directory is locked for this process until ``holds`` closes (another live process
    holding it: RunLockedError, exit 2), and rid of the temporaries a killed run left there.
    """
    from visim.engine.checkpoint import CheckpointError
    from visim.outputs.atomic import remove_orphans
    from visim.outputs.rundir import create_run_dir, run_dir_of
    from visim.outputs.runlock import RunLock

    resume = resolve_resume(getattr(args, "resume", None), config)
    for path in (resume, args.weights):  # before any directory is made for a doomed run
        if path is not None and not Path(path).is_file():
            raise CheckpointError(f"checkpoint not found: {path}")
    run_dir = (run_dir_of(resume) if resume else None) or create_run_dir(config.log_dir, config.name)
    holds.enter_context(RunLock(run_dir))
    orphans = remove_orphans(run_dir)
    if orphans:
        print(f"visim: removed {len(orphans)} temporary file(s) a killed run left in {run_dir}", file=sys.stderr)
    return resume, run_dir


def handle(args) -> int:
    """The job, as one process or as one of torchrun's (then rank 0 alone writes)."""
    from visim.distributed import group as distributed

    try:
        return run_job(args)
    finally:
        distributed.teardown()


def run_job(args) -> int:
    from visim.config.load import load_config
    from visim.distributed import group as distributed
    from visim.errors import JobFailed, UsageError
    from visim.outputs.runlog import recorded_in

    config = load_config(args.config, args.set)
    if args.job == "train" and config.train is None:
        raise UsageError("the config has no train section")
    distributed.setup(config.device)
    with ExitStack() as holds:  # rank 0's lock on the run directory, released when the job ends
        # Rank 0 alone picks the checkpoint and creates (and locks) the run directory; every
        # rank learns both, or rank 0's error.
        try:
            resume, run_dir = distributed.on_main_process(lambda: prepare_job(args, config, holds))
        except OSError as exc:
            raise JobFailed(f"cannot create the run directory under {config.log_dir!r}: {exc}") from exc
        main = distributed.is_main_process()
        with recorded_in(run_dir if main else None):  # also records the error that ends the run
            return run_engine(args, config, run_dir, resume, main)


def run_engine(args, config, run_dir, resume, main: bool) -> int:
    from visim.config.load import dump_config
    from visim.engine.build import build_engine
    from visim.errors import job_failures
    from visim.outputs.atomic import write_text

    with job_failures():  # bad data, missing files, diverging loss
        engine = build_engine(
            config,
            train=args.job != "test",
            run_dir=run_dir if main else None,
            resume=resume,
            weights=args.weights,
            quiet=args.quiet,
        )
        if main:  # only once the config and any checkpoint proved to fit
            write_text(run_dir / "config.yaml", dump_config(config))
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
    if not args.quiet and main:
        print(f"run directory: {run_dir}")
    return 0


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
