"""Builders shared by the test modules: the tiny config, a training run, stderr filters."""

from __future__ import annotations

import os
import signal
import socket
import sys
import tempfile
import time
import traceback
import uuid
from pathlib import Path

import yaml

TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def tiny_config(tmp_path, **train_overrides) -> dict:
    """The convnet on 24 images per digit at 16x16: 3 training batches an epoch, 2 epochs.

    ``train_overrides`` replace keys of the train section (``epochs=1``, ``loss="triplet"``).
    """
    train = {
        "epochs": 2,
        "loss": {"name": "sum", "terms": [{"loss": "cross_entropy"}, {"loss": "triplet"}]},
        "optimizer": {"name": "sgd", "lr": 0.05},
        "scheduler": {"name": "step", "step_size": 1, "gamma": 0.5},
        "save_interval": 1,
    }
    train.update(train_overrides)
    return {
        "name": "tiny",
        "seed": 3,
        "device": "cpu",
        "log_dir": str(Path(tmp_path) / "runs"),
        "data": {
            "dataset": {"name": "digits", "max_per_digit": 24},
            "batch_size": 32,
            "image_size": [16, 16],
            "sampler": {"name": "identity", "num_instances": 8},
        },
        "model": {"name": "convnet", "width": 4, "embedding_dim": 16},
        "train": train,
        "test": {"metric": "euclidean", "topk_cmc": [1, 5]},
    }


def train_run(config: dict, run_dir, resume=None):
    """Build the engine of ``config``, train and test it in this process: ``(engine, results)``."""
    from visim.config.load import config_from_dict
    from visim.engine.build import build_engine

    engine = build_engine(config_from_dict(config), run_dir=run_dir, resume=resume, quiet=True)
    results = engine.run()
    engine.close()
    return engine, results


def write_config(folder, config: dict | None = None, name: str = "tiny.yaml", **train) -> str:
    """``config`` (default: ``tiny_config(folder, **train)``) as YAML in ``folder``; its path."""
    path = Path(folder) / name
    path.write_text(yaml.safe_dump(config if config is not None else tiny_config(folder, **train)))
    return str(path)


def only_run_dir(tmp_path) -> Path:
    """The one run directory of the tiny config's runs under ``tmp_path``."""
    (run_dir,) = (Path(tmp_path) / "runs" / "tiny").iterdir()
    return run_dir


def errors(err: str) -> list[str]:
    """stderr's lines less the warnings about other plugins installed beside the tests."""
    return [line for line in err.splitlines() if not line.startswith("visim: warning: plugin")]


class Forked:
    """``target(*args)`` in a child forked from this test process: a separate ``visim``
    process (its own pid, signals, exit status, files), without a second start-up of torch,
    which costs seconds here.

    The child's stdout and stderr go to files of its own. Its exit status is what ``target``
    returns or raises as SystemExit, 1 after another exception (printed to its stderr), -N
    when signal N kills it. Forking is safe here: the test process runs torch with one thread
    (conftest.py), so no torch worker thread holds a lock the child would inherit; the child
    must keep that one thread (libgomp does not promise a larger team after a fork), and the
    parent collects its garbage before every fork (conftest.py).
    """

    def __init__(self, target, *args, env: dict[str, str] | None = None, unset: tuple[str, ...] = ()) -> None:
        self._out, self._err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
        self.returncode: int | None = None
        sys.stdout.flush()
        sys.stderr.flush()
        self.pid = os.fork()
        if self.pid == 0:  # the child never returns into pytest
            code = 1
            try:
                code = self._child(target, args, env or {}, unset)
            finally:
                os._exit(code)

    def _child(self, target, args, env, unset) -> int:
        os.dup2(self._out.fileno(), 1)
        os.dup2(self._err.fileno(), 2)
        sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115 - flushed and dropped with the process
        sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
        for name in unset:
            os.environ.pop(name, None)
        os.environ.update(env)
        try:
            code = target(*args)
        except SystemExit as stop:
            code = stop.code
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        return code if isinstance(code, int) else 0 if code is None else 1

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float = 300) -> int:
        deadline = time.monotonic() + timeout
        while self.poll() is None:
            if time.monotonic() > deadline:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
                raise TimeoutError(f"forked child {self.pid} still running after {timeout} s")
            time.sleep(0.01)
        return self.returncode

    @property
    def stdout(self) -> str:
        return self._read(self._out)

    @property
    def stderr(self) -> str:
        return self._read(self._err)

    @staticmethod
    def _read(file) -> str:
        file.seek(0)
        return file.read().decode()


def run_forked(target, *args, env: dict[str, str] | None = None, unset: tuple[str, ...] = (), timeout: float = 300) -> Forked:
    """:class:`Forked` ``target(*args)``, waited for: ``.returncode``, ``.stdout``, ``.stderr``.

    ``env`` is set and the variables named in ``unset`` removed in the child only."""
    child = Forked(target, *args, env=env, unset=unset)
    child.wait(timeout)
    return child


def forked_ranks(world_size: int, target, *args, timeout: float = 300) -> list[Forked]:
    """``target(*args)`` in ``world_size`` forked processes with the environment torchrun
    gives its workers (RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT), waited for."""
    port = free_port()
    ranks = [
        Forked(target, *args, env={"RANK": str(r), "LOCAL_RANK": str(r), "WORLD_SIZE": str(world_size),
                                    "LOCAL_WORLD_SIZE": str(world_size), "MASTER_ADDR": "127.0.0.1",
                                    "MASTER_PORT": str(port)})
        for r in range(world_size)
    ]
    for rank in ranks:
        rank.wait(timeout)
    return ranks


def start_forked_processes(target, args: tuple, nprocs: int, join: bool = True):
    """``torch.multiprocessing.start_processes`` with the fork start method (the children
    start with torch imported; spawning would import it again, seconds each)."""
    import torch.multiprocessing as mp

    return mp.start_processes(target, args=args, nprocs=nprocs, join=join, start_method="fork")


def torchrun_forked(nproc: int, target, *args) -> int:
    """``target(*args)`` launched the way torchrun launches it (its elastic agent, c10d
    rendezvous and worker environment: ``torchrun --standalone --nproc_per_node=nproc``), the
    workers forked from this process instead of started as new interpreters, which costs
    seconds of torch start-up each. Returns the highest exit status of the workers."""
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=str(uuid.uuid4()),
                          rdzv_backend="c10d", rdzv_endpoint="localhost:0", start_method="fork",
                          monitor_interval=0.1)
    returned = elastic_launch(config, target)(*args)
    assert sorted(returned) == list(range(nproc)), returned
    return max(returned.values())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
