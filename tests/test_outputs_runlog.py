"""run.log through logging: one handler per run directory, shared, closed by its last holder."""

from __future__ import annotations

import logging
import warnings

from visim.outputs import runlog
from visim.outputs.runlog import CONSOLE, close_run_log, open_run_log, recorded_in


def test_records_tagged_with_a_run_go_to_that_run_only(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    open_run_log(a)
    open_run_log(b)
    CONSOLE.info("table\nrow", extra={"run_dir": a})  # written as printed
    CONSOLE.info("epoch b", extra={"run_dir": b})
    CONSOLE.info("no run directory", extra={"run_dir": None})
    logging.getLogger("visim.models").info("loaded weights")  # untagged: every open run log
    close_run_log(a)
    close_run_log(b)
    assert (a / "run.log").read_text() == "table\nrow\nINFO visim.models: loaded weights\n"
    assert (b / "run.log").read_text() == "epoch b\nINFO visim.models: loaded weights\n"


def test_holders_share_one_handler_and_the_last_closes_it(tmp_path):
    level = logging.getLogger("visim").level
    with recorded_in(tmp_path):
        open_run_log(tmp_path)  # e.g. the engine, inside the CLI's recording
        warnings.warn("careful", stacklevel=1)
        close_run_log(tmp_path)
        CONSOLE.info("after the engine closed", extra={"run_dir": tmp_path})
    assert runlog._open == {} and logging.getLogger("visim").level == level
    CONSOLE.info("after the command", extra={"run_dir": tmp_path})
    text = (tmp_path / "run.log").read_text()
    assert text.count("WARNING py.warnings:") == 1 and "UserWarning: careful" in text
    assert text.endswith("after the engine closed\n")


def test_console_lines_never_reach_the_applications_handlers(tmp_path):
    class Seen(logging.Handler):
        def __init__(self):
            super().__init__()
            self.messages = []

        def emit(self, record):
            self.messages.append(record.getMessage())

    seen, root = Seen(), logging.getLogger()
    root.addHandler(seen)  # as a user's logging.basicConfig(level=INFO) would
    level = root.level
    root.setLevel(logging.INFO)
    try:
        with recorded_in(tmp_path):
            CONSOLE.info("epoch 1/1", extra={"run_dir": tmp_path})
            logging.getLogger("visim.models").info("loaded weights")
    finally:
        root.removeHandler(seen)
        root.setLevel(level)
    assert seen.messages == ["loaded weights"]  # the engine printed the epoch line already
    assert (tmp_path / "run.log").read_text() == "epoch 1/1\nINFO visim.models: loaded weights\n"
