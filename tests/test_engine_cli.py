"""`visim run|train|test` as a user runs them: run directory, exit codes, Ctrl+C, resume.

In-process through ``visim.cli.main``, but for Ctrl+C: a signal needs a process of its own
(forked from this one, tests/helpers.py ``Forked``).
"""

from __future__ import annotations

import json
import os
import signal
import time

import yaml

from tests.helpers import Forked, only_run_dir, write_config
from visim.cli import main
from visim.engine.checkpoint import load_checkpoint


def test_run_writes_the_run_directory(tmp_path, capsys):
    assert main(["run", write_config(tmp_path, epochs=1), "--set", "test.topk_cmc=[1, 2]"]) == 0
    out = capsys.readouterr().out
    run_dir = only_run_dir(tmp_path)
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["test"]["topk_cmc"] == [1, 2]
    assert (run_dir / "checkpoints" / "last.pt").is_file()
    assert (run_dir / "checkpoints" / "best.pt").is_file()
    assert set(json.loads((run_dir / "results.json").read_text())["cmc"]) == {"1", "2"}
    assert list(run_dir.glob("events.out.tfevents.*"))
    assert "Rank-1" in out and "mAP" in out
    assert "Rank-1" in (run_dir / "run.log").read_text()


def test_config_and_checkpoint_errors_exit_2_without_traceback(tmp_path, capsys):
    config = write_config(tmp_path)
    assert main(["run", config, "--set", "train.epochs=0", "--set", "data.batch_size=x"]) == 2
    err = capsys.readouterr().err
    assert "2 problems" in err and "$.train.epochs" in err and "$.data.batch_size" in err
    assert "Traceback" not in err

    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00garbage")
    assert main(["test", config, "--weights", str(junk)]) == 2
    err = capsys.readouterr().err
    assert "cannot read checkpoint" in err and "Traceback" not in err


def test_ctrl_c_saves_exits_130_and_resumes(tmp_path, capsys):
    config = write_config(tmp_path, epochs=50, eval_interval=50)
    proc = Forked(main, ["train", config])  # a separate process, forked: no start-up of torch
    deadline = time.monotonic() + 120
    # Wait until the first epoch is done, then interrupt the second.
    while proc.poll() is None and time.monotonic() < deadline:
        logs = list((tmp_path / "runs" / "tiny").glob("*/run.log"))
        if logs and "epoch 1/50" in logs[0].read_text():
            break
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGINT)
    proc.wait(120)
    err = proc.stderr
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    checkpoints = only_run_dir(tmp_path) / "checkpoints"
    # Stopped in epoch 2 or while saving epoch 1: either way the state is epoch 1's, whole.
    assert f"--resume continues from the end of epoch 1: {checkpoints / 'last.pt'}" in err
    assert load_checkpoint(checkpoints / "last.pt")["epoch"] == 1
    assert not (checkpoints / "interrupted.pt").exists()

    assert main(["train", config, "--resume", "auto", "--set", "train.epochs=2", "--quiet"]) == 0, capsys.readouterr().err
    assert "epoch 2/2" in (only_run_dir(tmp_path) / "run.log").read_text()


def test_data_errors_exit_1_with_one_line_also_in_run_log(tmp_path, capsys):
    # Five training digits cannot fill batches of 32 / 4 = 8 identities.
    assert main(["train", write_config(tmp_path), "--set", "data.sampler.num_instances=4", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "visim: error: DataError: identity sampler cannot fill one batch" in err
    assert "Traceback" not in err
    assert "identity sampler cannot fill one batch" in (only_run_dir(tmp_path) / "run.log").read_text()


def test_a_missing_checkpoint_is_refused_before_any_run_directory_is_made(tmp_path, capsys):
    config = write_config(tmp_path)
    for flag in ("--resume", "--weights"):
        assert main(["run", config, flag, str(tmp_path / "missing.pt")]) == 2
        assert "checkpoint not found" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()
