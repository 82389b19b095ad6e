"""DDP on the CPU: 2 processes over gloo, forked by torch.multiprocessing or started as torchrun
starts its workers (tests/helpers.py ``forked_ranks``: the same environment variables)."""

from __future__ import annotations

import json
import os
import shutil
import time

import pytest
import torch
import yaml
from torch import nn

from tests import contract_plugin
from tests.helpers import (
    TORCHRUN_ENV,
    forked_ranks,
    free_port,
    start_forked_processes,
    tiny_config,
    write_config,
)
from visim.cli import main
from visim.config.load import config_from_dict
from visim.distributed import group as distributed
from visim.distributed.sharded_extract import shard_indices
from visim.engine.build import build_engine
from visim.engine.checkpoint import load_checkpoint
from visim.engine.engine import unwrap
from visim.plugins import plugin_registered

LEARNABLE_SUM = {"name": "sum", "terms": [{"loss": "cosine_softmax"}, {"loss": "triplet"}]}


@pytest.fixture
def single_process(monkeypatch):
    for name in TORCHRUN_ENV:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


# -- without a process group ------------------------------------------------------------------
@pytest.mark.parametrize("num_items", [0, 1, 32, 33, 181])
@pytest.mark.parametrize("batch_size", [1, 8, 32])
@pytest.mark.parametrize("replicas", [1, 2, 5])
def test_shards_are_whole_single_process_batches_covering_everything_once(num_items, batch_size, replicas):
    batches = [list(range(s, min(s + batch_size, num_items))) for s in range(0, num_items, batch_size)]
    shards = [shard_indices(num_items, batch_size, replicas, r) for r in range(replicas)]
    assert sorted(i for shard in shards for i in shard) == list(range(num_items))
    for r, shard in enumerate(shards):
        assert shard == [i for batch in batches[r::replicas] for i in batch]


def test_a_single_process_is_its_own_main_and_needs_no_group(single_process):
    model = nn.Linear(2, 2)
    assert distributed.setup("cpu") is False
    assert (distributed.world_size(), distributed.rank(), distributed.is_main_process()) == (1, 0, True)
    assert distributed.wrap_model(model, torch.device("cpu")) is model
    assert distributed.on_main_process(lambda: "made") == "made"
    assert distributed.average_over_ranks({"loss": 0.5}) == {"loss": 0.5}
    assert distributed.device_for_rank("cuda:1") == "cuda:1"
    assert distributed.shard_of_this_rank() == {"num_replicas": 1, "rank": 0}


def test_torchrun_environment_errors_are_clear(single_process):
    single_process.setenv("RANK", "1")
    assert not distributed.is_main_process()  # a copy started by torchrun never writes alone
    single_process.setenv("WORLD_SIZE", "2")
    with pytest.raises(distributed.DistributedError, match="MASTER_ADDR, MASTER_PORT not set: launch with torchrun"):
        distributed.setup("cpu")
    single_process.setenv("WORLD_SIZE", "two")
    with pytest.raises(distributed.DistributedError, match="WORLD_SIZE='two' is not an integer"):
        distributed.setup("cpu")


def test_a_cli_job_outside_torchrun_with_world_size_set_exits_2(tmp_path, single_process, capsys):
    single_process.setenv("WORLD_SIZE", "2")
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_config(tmp_path)))
    assert main(["test", str(config)]) == 2
    assert "launch with torchrun" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_under_ddp_each_process_drives_the_gpu_of_its_local_rank(single_process):
    single_process.setattr(distributed, "world_size", lambda: 2)
    single_process.setenv("LOCAL_RANK", "1")
    assert distributed.device_for_rank("cuda") == distributed.device_for_rank("cuda:0") == "cuda:1"
    assert distributed.device_for_rank("cpu") == "cpu"
    single_process.setattr(torch.cuda, "is_available", lambda: False)
    assert distributed.device_for_rank("auto") == "auto"  # resolves to the CPU
    single_process.setenv("WORLD_SIZE", "2")
    single_process.setenv("RANK", "1")
    single_process.setenv("MASTER_ADDR", "127.0.0.1")
    single_process.setenv("MASTER_PORT", "29500")
    with pytest.raises(distributed.DistributedError, match="CUDA is not available"):
        distributed.setup("cuda")


def test_loaders_pin_memory_for_cuda_runs_only(tmp_path, single_process):
    from visim.data.loaders import build_loaders

    single_process.setattr(torch.cuda, "is_available", lambda: True)  # no CUDA is touched
    pinned = {}
    for device in ("cuda", "cpu"):
        config = config_from_dict({**tiny_config(tmp_path), "device": device})
        loaders = build_loaders(config, train=False)
        pinned[device] = loaders.query.pin_memory, loaders.gallery.pin_memory
    assert pinned == {"cuda": (True, True), "cpu": (False, False)}


def test_bfloat16_autocast_runs_the_model_in_bfloat16_on_cpu(tmp_path, single_process):
    config = tiny_config(tmp_path, epochs=1)
    config["precision"] = "bfloat16"
    engine = build_engine(config_from_dict(config), quiet=True)
    images = engine.get_data(next(iter(engine.train_dl)))
    with engine.autocast():
        logits, embeddings = engine.model(images)
    assert logits.dtype == embeddings.dtype == torch.bfloat16
    engine.initialize_optimizer()
    assert engine.scaler is None  # GradScaler is for float16 on CUDA only
    assert engine.extract(engine.test_dl).embeddings.dtype == torch.float32


# -- a checkpoint from one process, then two processes -----------------------------------------
@pytest.fixture(scope="module")
def single_run(trained_run):
    """One epoch trained in this process: the checkpoint the DDP runs start from."""
    return trained_run.run_dir


def ddp_worker(rank: int, config: dict, cli_args: list[str], port: int, out_dir: str) -> None:
    """One of two processes set up as torchrun sets them up.

    It trains an epoch under DDP, extracts and tests, then runs ``visim CLI_ARGS`` in the same
    process group.
    """
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2")
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    try:
        assert distributed.setup("cpu")
        with plugin_registered(contract_plugin, name="contract-plugin"):  # the learnable loss
            engine = build_engine(config_from_dict(config), quiet=True)
            sampler = engine.train_dl.sampler
            sampler.set_epoch(1)
            drawn, plan = list(sampler), sampler.epoch_batches()  # this rank's share; every rank's
            initial_loss = unwrap(engine.loss).terms[0].weight.detach().clone()
            engine.train_model()
            query = engine.extract(engine.test_dl)
            results = engine.test()
        outcome = {
            "wrapped": type(engine.model).__name__,
            "loss_wrapped": type(engine.loss).__name__,
            "loss_initial": initial_loss,
            "loss_trained": unwrap(engine.loss).terms[0].weight.detach().clone(),
            "main": engine.is_main_process,
            "drawn": drawn,
            "plan": plan,
            "state": unwrap(engine.model).state_dict(),
            "query": query.embeddings,
            "pids": query.pids,
            "paths": query.paths,
            "results": results,
            "cli": main(cli_args),
        }
        torch.save(outcome, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        distributed.teardown()


@pytest.fixture(scope="module")
def spawned(tmp_path_factory, single_run):
    """Two processes: DDP training with a learnable loss, then ``visim test`` of single_run."""
    folder = tmp_path_factory.mktemp("spawned")
    # The classifier takes no part in this loss, which DDP alone would reject; the loss's own
    # class weights are trained beside the model's.
    config = tiny_config(folder, epochs=1, loss=LEARNABLE_SUM, scheduler=None)
    cli_args = ["test", write_config(folder), "--weights", str(single_run / "checkpoints" / "last.pt"), "-q"]
    context = start_forked_processes(ddp_worker, (config, cli_args, free_port(), str(folder)), nprocs=2, join=False)
    deadline = time.monotonic() + 300
    while not context.join(timeout=1):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail("the two DDP processes did not finish within 300s")
    ranks = [torch.load(folder / f"rank{r}.pt", weights_only=False) for r in range(2)]
    return config, folder, ranks


@pytest.mark.slow
def test_ddp_training_keeps_ranks_equal_on_disjoint_sampler_shares(spawned):
    config, _, (rank0, rank1) = spawned
    assert rank0["wrapped"] == rank1["wrapped"] == "DistributedDataParallel"
    assert (rank0["main"], rank1["main"]) == (True, False)
    assert rank0["plan"] == rank1["plan"]  # one plan, seeded per epoch
    size = config["data"]["batch_size"]
    shares = [{tuple(r["drawn"][i : i + size]) for i in range(0, len(r["drawn"]), size)} for r in (rank0, rank1)]
    assert len(rank0["drawn"]) == len(rank1["drawn"]) == len(shares[0]) * size > 0
    assert shares[0] | shares[1] <= {tuple(batch) for batch in rank0["plan"]}
    assert not shares[0] & shares[1]  # every batch of the plan goes to one rank
    for name, weight in rank0["state"].items():
        assert torch.equal(weight, rank1["state"][name]), name


@pytest.mark.slow
def test_under_ddp_the_loss_parameters_are_all_reduced(spawned):
    _, _, (rank0, rank1) = spawned
    assert rank0["loss_wrapped"] == rank1["loss_wrapped"] == "DistributedDataParallel"
    assert torch.equal(rank0["loss_initial"], rank1["loss_initial"])  # rank 0's, broadcast
    assert not torch.equal(rank0["loss_trained"], rank0["loss_initial"])
    assert torch.equal(rank0["loss_trained"], rank1["loss_trained"])  # different batches, one all-reduced gradient


@pytest.mark.slow
def test_gathered_embeddings_and_results_equal_one_process(spawned, single_process, register_plugin):
    register_plugin(contract_plugin, name="contract-plugin")
    config, _, ranks = spawned
    single = build_engine(config_from_dict(config), train=False, quiet=True)
    single.model.load_state_dict(ranks[0]["state"])
    expected = single.extract(single.test_dl)
    results = single.test()
    for gathered in ranks:
        assert torch.equal(gathered["query"], expected.embeddings)
        assert torch.equal(gathered["pids"], expected.pids)
        assert gathered["paths"] == expected.paths
        assert (gathered["results"]["mAP"], gathered["results"]["cmc"]) == (results["mAP"], results["cmc"])


@pytest.mark.slow
def test_visim_test_under_ddp_writes_one_run_directory(spawned, single_run):
    _, folder, ranks = spawned
    assert [r["cli"] for r in ranks] == [0, 0]
    (run_dir,) = (folder / "runs" / "tiny").iterdir()
    assert len(list(run_dir.glob("events.out.tfevents.*"))) == 1
    saved = json.loads((run_dir / "results.json").read_text())
    expected = json.loads((single_run / "results.json").read_text())
    assert (saved["mAP"], saved["cmc"]) == (expected["mAP"], expected["cmc"])


# -- as torchrun starts them ----------------------------------------------------------------
@pytest.fixture(scope="module")
def torchrun_resumed(tmp_path_factory, single_run):
    """``visim run --resume`` of a copy of single_run's checkpoint in 2 processes with torchrun's
    environment (``torchrun --nproc_per_node=2 -m visim run ...``)."""
    folder = tmp_path_factory.mktemp("torchrun")
    checkpoint = folder / "run" / "checkpoints" / "last.pt"
    checkpoint.parent.mkdir(parents=True)
    shutil.copy(single_run / "checkpoints" / "last.pt", checkpoint)
    argv = ["run", write_config(folder, epochs=2), "--resume", str(checkpoint), "-q"]
    ranks = forked_ranks(2, main, argv)
    assert [rank.returncode for rank in ranks] == [0, 0], [rank.stderr for rank in ranks]
    return folder


@pytest.mark.slow
def test_torchrun_resumes_a_single_process_checkpoint_writing_from_rank_0(torchrun_resumed):
    run_dir = torchrun_resumed / "run"
    log = (run_dir / "run.log").read_text()
    assert log.count("epoch 2/2") == 1 and "epoch 1/" not in log
    assert not (torchrun_resumed / "runs").exists()  # no other rank made a run directory
    assert len(list(run_dir.glob("events.out.tfevents.*"))) == 1
    assert json.loads((run_dir / "results.json").read_text())["epoch"] == 2
    state = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert state["epoch"] == 2
    assert state["model"] and not any(key.startswith("module.") for key in state["model"])


@pytest.mark.slow
def test_ddp_checkpoint_evaluates_and_resumes_in_one_process(torchrun_resumed, single_process):
    run_dir = torchrun_resumed / "run"
    last = run_dir / "checkpoints" / "last.pt"
    config = tiny_config(torchrun_resumed, epochs=3)
    evaluator = build_engine(config_from_dict(config), train=False, weights=last, quiet=True)
    results = evaluator.test()
    saved = json.loads((run_dir / "results.json").read_text())
    assert (results["mAP"], results["cmc"]) == (saved["mAP"], saved["cmc"])

    resumed = build_engine(config_from_dict(config), run_dir=torchrun_resumed / "single", resume=last, quiet=True)
    resumed.train_model()
    resumed.close()
    log = (torchrun_resumed / "single" / "run.log").read_text()
    assert resumed.epoch == 3 and "epoch 3/3" in log and "epoch 2/3" not in log
