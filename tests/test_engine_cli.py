"""`visim run|train|test` as a user runs them: run directory, exit codes, Ctrl+C, resume."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import yaml

from tests.test_engine import tiny_config
from visim.engine.checkpoint import load_checkpoint


def write_config(tmp_path, **train) -> str:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_config(tmp_path, **train)))
    return str(path)


def visim(*args, timeout=120):
    return subprocess.run(
        [sys.executable, "-m", "visim", *args], capture_output=True, text=True, timeout=timeout
    )


def only_run_dir(tmp_path):
    (run_dir,) = (tmp_path / "runs" / "tiny").iterdir()
    return run_dir


def test_run_writes_the_run_directory(tmp_path):
    done = visim("run", write_config(tmp_path, epochs=1), "--set", "test.topk_cmc=[1, 2]")
    assert done.returncode == 0, done.stderr
    run_dir = only_run_dir(tmp_path)
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["test"]["topk_cmc"] == [1, 2]
    assert (run_dir / "checkpoints" / "last.pt").is_file()
    assert (run_dir / "checkpoints" / "best.pt").is_file()
    assert set(json.loads((run_dir / "results.json").read_text())["cmc"]) == {"1", "2"}
    assert list(run_dir.glob("events.out.tfevents.*"))
    assert "Rank-1" in done.stdout and "mAP" in done.stdout
    assert "Rank-1" in (run_dir / "run.log").read_text()


def test_config_and_checkpoint_errors_exit_2_without_traceback(tmp_path):
    config = write_config(tmp_path)
    bad = visim("run", config, "--set", "train.epochs=0", "--set", "data.batch_size=x")
    assert bad.returncode == 2
    assert "2 problems" in bad.stderr and "$.train.epochs" in bad.stderr and "$.data.batch_size" in bad.stderr
    assert "Traceback" not in bad.stderr

    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00garbage")
    bad = visim("test", config, "--weights", str(junk))
    assert bad.returncode == 2 and "cannot read checkpoint" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_ctrl_c_saves_exits_130_and_resumes(tmp_path):
    config = write_config(tmp_path, epochs=50, eval_interval=50)
    proc = subprocess.Popen(
        [sys.executable, "-m", "visim", "train", config],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    for line in proc.stdout:  # wait until the first epoch is done, then interrupt the second
        if line.startswith("epoch 1/50") or time.monotonic() > deadline:
            break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    checkpoints = only_run_dir(tmp_path) / "checkpoints"
    # Stopped in epoch 2 or while saving epoch 1: either way the state is epoch 1's, whole.
    assert f"--resume continues from the end of epoch 1: {checkpoints / 'last.pt'}" in err
    assert load_checkpoint(checkpoints / "last.pt")["epoch"] == 1
    assert not (checkpoints / "interrupted.pt").exists()

    resumed = visim("train", config, "--resume", "auto", "--set", "train.epochs=2", "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    assert "epoch 2/2" in (only_run_dir(tmp_path) / "run.log").read_text()


def test_data_errors_exit_1_with_one_line_also_in_run_log(tmp_path):
    # Five training digits cannot fill batches of 32 / 4 = 8 identities.
    done = visim("train", write_config(tmp_path), "--set", "data.sampler.num_instances=4", "--quiet")
    assert done.returncode == 1
    assert "visim: error: DataError: identity sampler cannot fill one batch" in done.stderr
    assert "Traceback" not in done.stderr
    assert "identity sampler cannot fill one batch" in (only_run_dir(tmp_path) / "run.log").read_text()


def test_a_missing_checkpoint_is_refused_before_any_run_directory_is_made(tmp_path):
    config = write_config(tmp_path)
    for flag in ("--resume", "--weights"):
        done = visim("run", config, flag, str(tmp_path / "missing.pt"))
        assert done.returncode == 2 and "checkpoint not found" in done.stderr
    assert not (tmp_path / "runs").exists()
