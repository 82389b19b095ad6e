"""Signals, kill -9 and concurrent runs against separate ``visim`` processes.

Each stop happens at an exact point (after optimizer step N, or inside the write of one
checkpoint file) through tests/visim_signalled.py, which sends the signal from inside the
process: no sleeping, no timing luck. The processes are forked from this one (tests/helpers.py
``Forked``): each has its own pid, signal handling and exit status, without a start-up of torch. Every interrupted run, once resumed, must equal a
straight run bit for bit, and leave a consistent checkpoint set: ``best.pt`` holds the epoch
``best_metric`` names, no temporary file, no lock.

The config trains 2 epochs of 6 steps (tiny digits, convnet); its test mAP improves in the
second epoch, so ``best.pt`` is written after both.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from pathlib import Path

import pytest
import torch
import yaml

from tests.helpers import Forked, forked_ranks, run_forked, tiny_config
from tests.visim_signalled import main as signalled_main
from visim.config.load import config_from_dict
from visim.engine.build import build_engine
from visim.engine.checkpoint import load_checkpoint

STEPS_PER_EPOCH = 6


def experiment(folder: Path) -> dict:
    # lr 0.01: epoch 2 beats epoch 1, so best.pt is rewritten in epoch 2 (the kill tests need it)
    config = tiny_config(folder, epochs=2, scheduler=None, optimizer={"name": "sgd", "lr": 0.01})
    config["data"]["dataset"]["max_per_digit"] = 40
    return config


def write_config(folder: Path) -> str:
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump(experiment(folder)))
    return str(path)


def resume_in_this_process(config: str, capsys) -> str:
    """``visim train CONFIG --resume auto`` here (no second start-up of torch): its stderr."""
    from visim.cli import main

    capsys.readouterr()
    assert main(["train", config, "--resume", "auto", "-q"]) == 0, capsys.readouterr().err
    return capsys.readouterr().err


def signalled(when: str, action: str, *args: str) -> Forked:
    """``visim ARGS`` in a forked process that does ``action`` to itself ``when``; finished.
    It inherits this process's one torch thread: its floats equal an in-process run's."""
    return run_forked(signalled_main, [when, action, *args])


def run_dir_of(folder: Path) -> Path:
    (run_dir,) = (folder / "runs" / "tiny").iterdir()
    return run_dir


def names(run_dir: Path) -> set[str]:
    return {p.name for p in (run_dir / "checkpoints").iterdir()}


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def temporaries(run_dir: Path) -> list[Path]:
    return [p for p in run_dir.rglob("*") if p.name.endswith(".tmp")]


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """The same 2 epochs trained without a stop, in this process (as ``visim train`` does)."""
    folder = tmp_path_factory.mktemp("straight")
    engine = build_engine(config_from_dict(experiment(folder)), run_dir=folder / "run", quiet=True)
    engine.train_model()
    engine.close()
    checkpoints = folder / "run" / "checkpoints"
    best = load_checkpoint(checkpoints / "best.pt")
    assert [h["test"]["mAP"] for h in engine.history][1] > [h["test"]["mAP"] for h in engine.history][0]
    return {
        "last": load_checkpoint(checkpoints / "last.pt"),
        "best_epoch": best["epoch"],
        "results": json.loads((folder / "run" / "results.json").read_text()),
    }


def assert_equals_straight(run_dir: Path, straight: dict) -> None:
    last = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    expected = straight["last"]
    assert (last["epoch"], last["global_step"]) == (2, 2 * STEPS_PER_EPOCH)
    assert last["model"].keys() == expected["model"].keys()
    for name, weight in expected["model"].items():
        assert torch.equal(last["model"][name], weight), name
    for a, b in zip(last["optimizer"]["state"].values(), expected["optimizer"]["state"].values()):
        assert torch.equal(a["momentum_buffer"], b["momentum_buffer"])
    assert json.loads((run_dir / "results.json").read_text()) == straight["results"]
    # The checkpoint set is consistent: best.pt is the epoch best_metric names.
    best = load_checkpoint(run_dir / "checkpoints" / "best.pt")
    assert best["epoch"] == straight["best_epoch"] == 2
    assert best["best_metric"] == last["best_metric"] == expected["best_metric"]
    assert names(run_dir) == {"best.pt", "epoch-001.pt", "epoch-002.pt", "last.pt"}
    assert not temporaries(run_dir) and not (run_dir / ".lock").exists()


@pytest.mark.slow
def test_sigterm_mid_epoch_keeps_the_last_epoch_and_a_resume_equals_a_straight_run(tmp_path, straight, capsys):
    config = write_config(tmp_path)
    stopped = signalled(f"step={STEPS_PER_EPOCH + 2}", "SIGTERM", "train", config, "-q")
    run_dir = run_dir_of(tmp_path)
    last = run_dir / "checkpoints" / "last.pt"
    assert stopped.returncode == 143, stopped.stderr
    assert lines(stopped.stderr) == [
        "visim: SIGTERM in epoch 2 of 2: this incomplete epoch is not saved; "
        f"--resume continues from the end of epoch 1: {last}"
    ]
    assert "SIGTERM in epoch 2 of 2" in (run_dir / "run.log").read_text()
    # Nothing mid-epoch was written: the set is epoch 1's, honestly labelled.
    assert names(run_dir) == {"best.pt", "epoch-001.pt", "last.pt"}
    state = load_checkpoint(last)
    assert (state["epoch"], state["global_step"]) == (1, STEPS_PER_EPOCH)
    assert not (run_dir / ".lock").exists()

    resume_in_this_process(config, capsys)
    assert_equals_straight(run_dir, straight)


@pytest.mark.slow
def test_sigint_mid_epoch_exits_130_and_leaves_the_epoch_checkpoint_as_it_was(tmp_path):
    stopped = signalled(f"step={STEPS_PER_EPOCH + 3}", "SIGINT", "train", write_config(tmp_path), "-q")
    run_dir = run_dir_of(tmp_path)
    assert stopped.returncode == 130, stopped.stderr
    (line,) = lines(stopped.stderr)
    assert line.startswith("visim: SIGINT in epoch 2 of 2: this incomplete epoch is not saved; --resume continues")
    checkpoints = run_dir / "checkpoints"
    assert (checkpoints / "last.pt").read_bytes() == (checkpoints / "epoch-001.pt").read_bytes()


@pytest.mark.slow
def test_sigusr1_in_the_first_epoch_exits_138_with_nothing_to_resume(tmp_path):
    stopped = signalled("step=2", "SIGUSR1", "train", write_config(tmp_path), "-q")
    assert stopped.returncode == 138, stopped.stderr
    assert lines(stopped.stderr) == [
        "visim: SIGUSR1 in epoch 1 of 2: this incomplete epoch is not saved; "
        "no epoch of this run is saved yet, so there is nothing to resume"
    ]
    run_dir = run_dir_of(tmp_path)
    assert not (run_dir / "checkpoints").exists() and not (run_dir / ".lock").exists()


@pytest.mark.slow
@pytest.mark.parametrize("write", ["best.pt#2", "epoch-002.pt#1", "last.pt#2"])
def test_kill_9_during_a_checkpoint_write_then_resume_equals_a_straight_run(tmp_path, straight, write, capsys):
    config = write_config(tmp_path)
    killed = signalled(f"write={write}", "SIGKILL", "train", config, "-q")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    run_dir = run_dir_of(tmp_path)
    (orphan,) = temporaries(run_dir)  # the killed write's full-size temporary
    assert orphan.name.startswith(f".{write.split('#')[0]}.") and orphan.stat().st_size > 0
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["epoch"] == 1  # last.pt is written last
    assert (run_dir / ".lock").exists()  # the dead process's

    err = resume_in_this_process(config, capsys)
    assert "taking over the stale lock" in err
    assert f"removed 1 temporary file(s) a killed run left in {run_dir}" in err
    assert_equals_straight(run_dir, straight)


@pytest.mark.slow
def test_ctrl_c_during_a_checkpoint_write_completes_the_set_then_exits_130(tmp_path):
    stopped = signalled("write=best.pt#1", "SIGINT", "train", write_config(tmp_path), "-q")
    run_dir = run_dir_of(tmp_path)
    last = run_dir / "checkpoints" / "last.pt"
    assert stopped.returncode == 130, stopped.stderr
    assert lines(stopped.stderr) == [f"visim: SIGINT after epoch 1 of 2; --resume continues from the end of epoch 1: {last}"]
    assert names(run_dir) == {"best.pt", "epoch-001.pt", "last.pt"}
    assert {load_checkpoint(p)["epoch"] for p in (run_dir / "checkpoints").iterdir()} == {1}
    assert not temporaries(run_dir) and not (run_dir / ".lock").exists()


@pytest.mark.slow
def test_a_second_ctrl_c_aborts_the_write_and_a_resume_equals_a_straight_run(tmp_path, straight, capsys):
    config = write_config(tmp_path)
    aborted = signalled("write=last.pt#2", "SIGINT,SIGINT", "train", config, "-q")
    run_dir = run_dir_of(tmp_path)
    assert aborted.returncode == 130, aborted.stderr
    assert lines(aborted.stderr) == ["visim: aborted by a second Ctrl+C; the checkpoints written before are kept"]
    assert not temporaries(run_dir) and not (run_dir / ".lock").exists()
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["epoch"] == 1  # the aborted write
    assert load_checkpoint(run_dir / "checkpoints" / "best.pt")["epoch"] == 2  # written before it

    resume_in_this_process(config, capsys)
    assert_equals_straight(run_dir, straight)


@pytest.mark.slow
def test_a_second_resume_auto_of_a_running_run_is_refused_with_exit_2(tmp_path, capsys):
    from visim.cli import main

    config = write_config(tmp_path)
    go = tmp_path / "go"
    # The first waits in epoch 2, its run directory holding epoch 1's last.pt.
    first = Forked(signalled_main, [f"step={STEPS_PER_EPOCH + 1}", f"wait:{go}", "train", config, "--resume", "auto", "-q"])
    try:
        deadline = time.monotonic() + 300
        while not Path(f"{go}.ready").exists():
            assert first.poll() is None and time.monotonic() < deadline, first.stderr
            time.sleep(0.01)
        run_dir = run_dir_of(tmp_path)
        capsys.readouterr()
        assert main(["train", config, "--resume", "auto", "-q"]) == 2  # this process is the second
        assert lines(capsys.readouterr().err) == [
            f"visim: error: run directory {run_dir} is in use by pid {first.pid} on {socket.gethostname()} "
            f"(since {time.ctime(json.loads((run_dir / '.lock').read_text())['started'])}); wait for it to "
            f"finish, or delete {run_dir / '.lock'} if that process no longer exists"
        ]
    finally:
        go.touch()
        first.wait()
    assert first.returncode == 0, first.stderr
    assert [p.name for p in (tmp_path / "runs" / "tiny").iterdir()] == [run_dir.name]
    log = (run_dir / "run.log").read_text()
    assert log.count("epoch 1/2") == log.count("epoch 2/2") == 1
    assert len(list(run_dir.glob("events.out.tfevents.*"))) == 1
    assert not (run_dir / ".lock").exists()  # released at the end


@pytest.mark.slow
def test_under_torchrun_a_signal_to_one_rank_stops_every_rank_after_the_same_step(tmp_path):
    steps_per_rank = STEPS_PER_EPOCH // 2  # the two ranks share each epoch's batches
    argv = [f"step={steps_per_rank + 1}", "SIGTERM@1", "train", write_config(tmp_path), "-q"]
    rank0, rank1 = forked_ranks(2, signalled_main, argv)
    run_dir = run_dir_of(tmp_path)
    last = run_dir / "checkpoints" / "last.pt"
    # Rank 1 got the signal, rank 0 learned it at the same step's check: both stop cleanly,
    # with the signal's exit status, and rank 0 alone reports the saved state.
    assert (rank0.returncode, rank1.returncode) == (143, 143), rank0.stderr + rank1.stderr
    assert lines(rank0.stderr) == [
        f"visim: SIGTERM in epoch 2 of 2: this incomplete epoch is not saved; --resume continues from the end of epoch 1: {last}"
    ]
    assert lines(rank1.stderr) == ["visim: SIGTERM in epoch 2 of 2: stopped with every rank; rank 0 reports the saved state"]
    assert load_checkpoint(last)["epoch"] == 1 and not (run_dir / ".lock").exists()


@pytest.mark.parametrize(("name", "code"), [("SIGTERM", 143), ("SIGUSR1", 138)])
def test_a_stop_signal_outside_training_ends_any_command_with_its_code_and_one_line(monkeypatch, capsys, name, code):
    import visim.commands.plugins as plugins_command
    from visim.cli import main

    def handle(args):
        os.kill(os.getpid(), getattr(signal, name))
        raise AssertionError(f"{name} did not stop the command")

    monkeypatch.setattr(plugins_command, "handle", handle)
    before = signal.getsignal(signal.SIGTERM)
    assert main(["plugins"]) == code
    assert lines(capsys.readouterr().err) == [f"visim: stopped by {name}"]
    assert signal.getsignal(signal.SIGTERM) is before  # the process's own handling is back
