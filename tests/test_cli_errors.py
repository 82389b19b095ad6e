"""visim's errors carry their exit codes; cli.main alone turns them into stderr and a code."""

from __future__ import annotations

import logging

import pytest
import yaml

from tests.helpers import tiny_config
from visim.cli import main
from visim.config.errors import ConfigError
from visim.distributed.group import DistributedError
from visim.engine.checkpoint import CheckpointError
from visim.errors import JobFailed, UsageError, VisimError, job_failures
from visim.outputs.embeddings import EmbeddingsFileError
from visim.outputs.runlog import recorded_in
from visim.plugins import PluginError
from visim.registry import UnknownComponentError


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ConfigError("bad"), 2),
        (UnknownComponentError("unknown metric 'cosin'"), 2),
        (PluginError("broken"), 2),
        (CheckpointError("corrupt"), 2),
        (DistributedError("no GPU"), 2),
        (EmbeddingsFileError("not ours"), 2),
        (UsageError("no train section"), 2),
        (JobFailed("OSError: disk full"), 1),
    ],
)
def test_errors_carry_their_exit_code(error, code):
    assert isinstance(error, VisimError) and error.exit_code == code


def test_job_failures_name_foreign_errors_and_pass_visim_errors():
    with pytest.raises(JobFailed, match=r"^ValueError: nan loss$") as info:
        with job_failures():
            raise ValueError("nan loss")
    assert info.value.exit_code == 1 and isinstance(info.value.__cause__, ValueError)
    with pytest.raises(CheckpointError):
        with job_failures():
            raise CheckpointError("corrupt")
    with pytest.raises(KeyboardInterrupt):
        with job_failures():
            raise KeyboardInterrupt


def test_the_error_that_ends_a_run_is_in_run_log(tmp_path):
    with pytest.raises(JobFailed):
        with recorded_in(tmp_path):
            logging.getLogger("visim.test").info("before")
            raise JobFailed("OSError: disk full")
    lines = (tmp_path / "run.log").read_text().splitlines()
    assert lines[:2] == ["INFO visim.test: before", "INFO visim.run: error: OSError: disk full"]
    assert lines[2] == "Traceback (most recent call last):"  # a failed job keeps its traceback
    assert lines[-1] == "visim.errors.JobFailed: OSError: disk full"


def test_a_usage_error_in_run_log_has_no_traceback(tmp_path):
    with pytest.raises(UsageError):
        with recorded_in(tmp_path):
            raise UsageError("the config has no train section")
    assert (tmp_path / "run.log").read_text() == "INFO visim.run: error: the config has no train section\n"


def test_main_reports_a_usage_error_in_one_line_with_exit_2(tmp_path, capsys):
    config = tiny_config(tmp_path)
    del config["train"]
    path = tmp_path / "test-only.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["train", str(path)]) == 2
    assert capsys.readouterr().err == "visim: error: the config has no train section\n"
    assert not (tmp_path / "runs").exists()


def test_main_reports_a_config_error_under_the_config_name(tmp_path, capsys):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_config(tmp_path)))
    assert main(["predict", str(path), "--out", str(tmp_path / "e.npz"), "--set", "seed=x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{path}: 1 problem\n") and err.count("\n") == 2
