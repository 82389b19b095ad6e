"""Builders shared by the test modules: the tiny config, a training run, stderr filters."""

from __future__ import annotations

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
