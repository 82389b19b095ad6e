"""``run.log``: what a run printed, its warnings and visim's log records, through ``logging``.

Everything reaches the file through one path: a :class:`logging.FileHandler` on the ``visim``
logger (and on :data:`CONSOLE`, which does not propagate), opened once per run directory
however many holders ask for it (the CLI for the whole command, the engine for its lifetime).
What the engine prints (epoch lines, results tables) is a record of :data:`CONSOLE`, written
as printed; any other record as ``LEVEL logger: message``.
"""

from __future__ import annotations

import logging
import os
import sys
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from visim.errors import VisimError

RUN_LOG = "run.log"
CONSOLE = logging.getLogger("visim.console")  # the lines a run printed, one record each
VISIM = logging.getLogger("visim")
# Console lines are printed already: they go to run logs only, never to the application's
# own handlers (a user's logging.basicConfig would show each twice).
CONSOLE.propagate = False
CONSOLE.setLevel(logging.INFO)


class RunLogFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return record.getMessage() if record.name == CONSOLE.name else super().format(record)


class RunLogHandler(logging.FileHandler):
    """``run_dir/run.log``. A record tagged with a run directory (``extra={"run_dir": ...}``,
    as the engine tags its lines; None for an engine without one) is written only to that
    run's log: two engines in one process never write into each other's."""

    def __init__(self, run_dir: Path) -> None:
        super().__init__(run_dir / RUN_LOG, encoding="utf-8", delay=True)  # no record, no file
        self.run_dir = run_dir
        self.holders = 0
        self.setFormatter(RunLogFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        if self.stream is None:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        super().emit(record)

    def filter(self, record: logging.LogRecord) -> bool:
        tag = getattr(record, "run_dir", self.run_dir)
        return tag is not None and absolute(tag) == self.run_dir and super().filter(record)


def absolute(run_dir: str | os.PathLike) -> Path:
    return Path(os.path.abspath(run_dir))


_open: dict[Path, RunLogHandler] = {}
_visim_level: list[int] = []  # the ``visim`` logger's level before the first run log opened


def open_run_log(run_dir: str | os.PathLike) -> Path:
    """Start (or join) recording ``visim.*`` records into ``run_dir/run.log``; INFO and above."""
    run_dir = absolute(run_dir)
    handler = _open.get(run_dir)
    if handler is None:
        if not _open:
            _visim_level.append(VISIM.level)
            VISIM.setLevel(logging.INFO)
        handler = _open[run_dir] = RunLogHandler(run_dir)
        VISIM.addHandler(handler)
        CONSOLE.addHandler(handler)
    handler.holders += 1
    return run_dir


def close_run_log(run_dir: str | os.PathLike) -> None:
    """Leave a recording :func:`open_run_log` started; the last holder closes the file."""
    handler = _open.get(absolute(run_dir))
    if handler is None:
        return
    handler.holders -= 1
    if handler.holders > 0:
        return
    del _open[handler.run_dir]
    VISIM.removeHandler(handler)
    CONSOLE.removeHandler(handler)
    handler.close()
    if not _open:
        VISIM.setLevel(_visim_level.pop())


def hold_run_log(owner: object, run_dir: str | os.PathLike) -> weakref.finalize:
    """Record into ``run_dir/run.log`` until the returned finalizer is called or ``owner`` is
    garbage collected (an engine a library user never closes must not keep the file open)."""
    return weakref.finalize(owner, close_run_log, open_run_log(run_dir))


@contextmanager
def recorded_in(run_dir: Path | None) -> Iterator[None]:
    """Record ``visim.*`` records and Python warnings in ``run_dir/run.log`` (the whole command),
    and the visim error or stop signal that ends it (``INFO visim.run: error: ...``, the line
    stderr shows).

    Warnings still reach stderr as usual.
    """
    if run_dir is None:
        yield
        return
    file_handler = _open[open_run_log(run_dir)]
    warnings_logger = logging.getLogger("py.warnings")
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(logging.Formatter("%(message)s"))
    logging.captureWarnings(True)
    warnings_logger.addHandler(file_handler)
    warnings_logger.addHandler(console)
    try:
        yield
    except VisimError as exc:
        # A job that failed on its way (a broken component, bad data) keeps its traceback in
        # run.log, for whoever debugs it; the console shows the one line.
        logging.getLogger("visim.run").info("error: %s", exc, exc_info=exc if exc.log_traceback else None)
        raise
    except KeyboardInterrupt as exc:  # a stop signal: the line saying where the state is
        logging.getLogger("visim.run").info("%s", str(exc) or "interrupted")
        raise
    finally:
        logging.captureWarnings(False)
        warnings_logger.removeHandler(file_handler)
        warnings_logger.removeHandler(console)
        close_run_log(run_dir)
