"""Everything a run says goes to ``run.log`` too: warnings and visim's own log records."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def recorded_in(run_dir: Path | None) -> Iterator[None]:
    """Copy Python warnings and ``visim.*`` log records into ``run_dir/run.log``.

    Warnings still reach stderr as usual; log records of level INFO and above are kept.
    """
    if run_dir is None:
        yield
        return
    handler = logging.FileHandler(run_dir / "run.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(logging.Formatter("%(message)s"))
    warnings_logger, visim_logger = logging.getLogger("py.warnings"), logging.getLogger("visim")
    level = visim_logger.level
    visim_logger.setLevel(logging.INFO)
    logging.captureWarnings(True)
    for logger in (warnings_logger, visim_logger):
        logger.addHandler(handler)
    warnings_logger.addHandler(console)
    try:
        yield
    finally:
        logging.captureWarnings(False)
        for logger in (warnings_logger, visim_logger):
            logger.removeHandler(handler)
        warnings_logger.removeHandler(console)
        visim_logger.setLevel(level)
        handler.close()
