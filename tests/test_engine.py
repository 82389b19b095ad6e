"""The engine end to end on the embedded digits data with a tiny CNN."""

from __future__ import annotations

import json

import pytest
import torch

from tests.helpers import tiny_config, train_run
from visim.config.load import config_from_dict
from visim.engine.build import build_engine
from visim.engine.checkpoint import CheckpointError, atomic_save, load_checkpoint
from visim.engine.engine import topk_correct
from visim.engine.interrupt import GracefulInterrupt


def test_two_epochs_equal_one_then_resume_then_one(tmp_path, trained_run):
    straight, straight_results = train_run(tiny_config(tmp_path), tmp_path / "a")

    # trained_run is tiny_config(epochs=1): the first epoch, trained in a run of its own.
    resumed, resumed_results = train_run(tiny_config(tmp_path), tmp_path / "b", resume=trained_run.checkpoint)

    assert resumed.epoch == straight.epoch == 2
    assert resumed.global_step == straight.global_step
    for (name, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
    assert resumed_results["mAP"] == straight_results["mAP"]
    assert resumed_results["cmc"] == straight_results["cmc"]
    assert resumed.optimizer.param_groups[0]["lr"] == straight.optimizer.param_groups[0]["lr"] == 0.0125


@pytest.mark.slow
def test_training_learns_and_writes_the_run_directory(tmp_path):
    config = tiny_config(tmp_path, epochs=3, optimizer={"name": "adam", "lr": 0.01}, scheduler=None)
    config["data"]["dataset"]["max_per_digit"] = 80  # enough batches to learn from
    engine, results = train_run(config, tmp_path / "run")

    first, last = engine.history[0], engine.history[-1]
    assert last["loss"] < first["loss"] and last["acc@1"] > first["acc@1"] + 0.1
    checkpoints = tmp_path / "run" / "checkpoints"
    assert {p.name for p in checkpoints.iterdir()} >= {"last.pt", "best.pt", "epoch-001.pt", "epoch-003.pt"}
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert set(saved["cmc"]) == {"1", "5"}
    assert saved["mAP"] == pytest.approx(results["mAP"])
    assert saved["num_valid_queries"] + saved["num_skipped"] == saved["num_queries"]
    state = load_checkpoint(checkpoints / "last.pt")
    assert state["epoch"] == 3 and state["config"]["name"] == "tiny"
    assert state["best_metric"] == pytest.approx(max(engine.best_metric, results["mAP"]))
    assert not any(k.startswith("module.") for k in state["model"])


def test_test_only_loads_weights(tmp_path, trained_run):
    evaluator = build_engine(config_from_dict(tiny_config(tmp_path)), train=False, weights=trained_run.checkpoint, quiet=True)
    assert evaluator.test()["mAP"] == pytest.approx(trained_run.results["mAP"])
    assert evaluator.predict().shape == (len(evaluator.test_dl.dataset), 16)


def test_corrupt_and_foreign_checkpoints_are_clear_errors(tmp_path):
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_checkpoint(corrupt)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {"w": torch.zeros(1)}}, foreign)
    with pytest.raises(CheckpointError, match="not a visim checkpoint"):
        load_checkpoint(foreign)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")


def test_atomic_save_leaves_no_partial_file(tmp_path):
    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("boom")

    target = tmp_path / "ckpt.pt"
    atomic_save({"ok": 1}, target)
    with pytest.raises(RuntimeError, match="boom"):
        atomic_save({"bad": Unpicklable()}, target)
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]
    assert torch.load(target, weights_only=True) == {"ok": 1}


def test_topk_correct_counts_hits():
    logits = torch.tensor([[0.1, 0.9, 0.0], [0.8, 0.15, 0.05], [0.2, 0.3, 0.5]])
    targets = torch.tensor([1, 1, 0])
    assert topk_correct(logits, targets, (1, 2, 3)) == {1: 1, 2: 2, 3: 3}


def test_second_interrupt_aborts_at_once():
    interrupt = GracefulInterrupt()
    interrupt._handle(2, None)
    assert interrupt.requested
    with pytest.raises(KeyboardInterrupt):
        interrupt._handle(2, None)


def test_ctrl_c_during_evaluation_stops_after_the_whole_epoch(tmp_path):
    from visim.engine.interrupt import TrainingInterrupted

    engine = build_engine(config_from_dict(tiny_config(tmp_path, epochs=3)), run_dir=tmp_path / "run", quiet=True)
    evaluate = engine.test

    def test_then_interrupt():
        results = evaluate()
        engine._interrupt.requested = True  # as the SIGINT handler does
        return results

    engine.test = test_then_interrupt
    checkpoints = tmp_path / "run" / "checkpoints"
    with pytest.raises(TrainingInterrupted, match=f"after epoch 1 of 3; --resume continues from the end of epoch 1: {checkpoints}") as stop:
        engine.train_model()
    assert stop.value.exit_code == 130
    assert {p.name for p in checkpoints.iterdir()} == {"last.pt", "best.pt", "epoch-001.pt"}  # no interrupted.pt
    assert {load_checkpoint(p)["epoch"] for p in checkpoints.iterdir()} == {1}


def test_a_stop_mid_epoch_saves_nothing(tmp_path):
    """Epoch 1's checkpoints stay as they were (the resume that equals a straight run:
    tests/test_reliability_signals.py)."""
    from visim.engine.interrupt import TrainingInterrupted

    engine = build_engine(config_from_dict(tiny_config(tmp_path)), run_dir=tmp_path / "run", quiet=True)
    step, per_epoch = engine.backward_step, len(engine.train_dl)
    assert per_epoch >= 3

    def step_then_sigterm(loss):
        step(loss)
        if engine.global_step == per_epoch + 1:  # the 2nd step of epoch 2 (counted after this call)
            engine._interrupt.signum = 15  # as the SIGTERM handler does

    engine.backward_step = step_then_sigterm
    checkpoints = tmp_path / "run" / "checkpoints"
    with pytest.raises(TrainingInterrupted, match="SIGTERM in epoch 2 of 2: this incomplete epoch is not saved") as stop:
        engine.train_model()
    assert stop.value.exit_code == 143 and engine.global_step == per_epoch + 2
    assert {p.name for p in checkpoints.iterdir()} == {"last.pt", "best.pt", "epoch-001.pt"}
    saved = load_checkpoint(checkpoints / "last.pt")
    assert (saved["epoch"], saved["global_step"]) == (1, per_epoch)  # epoch 1's, not mid-epoch weights


def test_best_is_written_before_last(tmp_path, monkeypatch):
    """A kill between the two then leaves last.pt's best_metric naming a best.pt that exists."""
    import visim.engine.checkpoint as checkpoint

    written = []
    save = checkpoint.atomic_save
    monkeypatch.setattr(checkpoint, "atomic_save", lambda state, path: written.append(path.name) or save(state, path))
    train_run(tiny_config(tmp_path, epochs=1), tmp_path / "run")
    assert written == ["best.pt", "epoch-001.pt", "last.pt"]
