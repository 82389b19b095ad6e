"""Component contracts: factory context, checks at the boundary, learnable losses.

A learnable loss under DDP: tests/test_distributed.py trains one in its two processes."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
import yaml

import visim
from tests import contract_plugin
from tests.helpers import errors, tiny_config, train_run, write_config
from visim.cli import main
from visim.config.load import config_from_dict
from visim.contract_checks import ContractError
from visim.engine.build import build_engine
from visim.engine.checkpoint import load_checkpoint

LEARNABLE_SUM = {"name": "sum", "terms": [{"loss": "cosine_softmax"}, {"loss": "triplet"}]}


@pytest.fixture
def plugin(register_plugin, clean_plugin_env):
    return register_plugin(contract_plugin, name="contract-plugin")


def learnable_weight(engine) -> torch.Tensor:
    return engine.loss.terms[0].weight.detach().clone()


def test_a_learnable_loss_inside_sum_trains_saves_and_resumes_exactly(plugin, tmp_path):
    config = tiny_config(tmp_path, loss=LEARNABLE_SUM)
    initial = learnable_weight(build_engine(config_from_dict(config), quiet=True))
    straight, straight_results = train_run(config, tmp_path / "a")

    train_run(tiny_config(tmp_path, loss=LEARNABLE_SUM, epochs=1), tmp_path / "b")
    resumed, resumed_results = train_run(config, tmp_path / "b", resume=tmp_path / "b" / "checkpoints" / "last.pt")

    trained = learnable_weight(straight)
    assert trained.shape == (5, 16)  # num_classes x the convnet's embedding_dim
    assert not torch.equal(trained, initial)  # the optimizer trained it
    assert torch.equal(learnable_weight(resumed), trained)
    for (name, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
    assert (resumed_results["mAP"], resumed_results["cmc"]) == (straight_results["mAP"], straight_results["cmc"])
    assert len(straight.optimizer.param_groups) == 2  # the model's group, the loss's group
    assert straight.optimizer.param_groups[1]["lr"] == straight.optimizer.param_groups[0]["lr"]
    saved = load_checkpoint(tmp_path / "a" / "checkpoints" / "epoch-001.pt")["loss"]
    assert set(saved) == {"terms.0.weight"}
    assert torch.equal(load_checkpoint(tmp_path / "a" / "checkpoints" / "last.pt")["loss"]["terms.0.weight"], trained)

    fresh = build_engine(config_from_dict(config), weights=tmp_path / "a" / "checkpoints" / "last.pt", quiet=True)
    assert torch.equal(learnable_weight(fresh), trained)  # --weights restores the loss too


def test_a_loss_may_set_its_own_learning_rate(plugin, tmp_path):
    loss = {"name": "sum", "terms": [{"loss": {"name": "cosine_softmax", "lr": 0.5}}, {"loss": "cross_entropy"}]}
    engine = build_engine(config_from_dict(tiny_config(tmp_path, loss=loss)), quiet=True)
    engine.initialize_optimizer()
    model_group, loss_group = engine.optimizer.param_groups
    assert (model_group["lr"], loss_group["lr"]) == (0.05, 0.5)
    assert loss_group["params"] == [engine.loss.terms[0].weight]


def test_a_model_without_embedding_dim_is_measured_once_for_the_loss(plugin, tmp_path):
    config = tiny_config(tmp_path, loss="cosine_softmax", epochs=1)
    config["model"] = "headless"  # registered without a params class
    engine, results = train_run(config, None)
    assert engine.embedding_dim == 12 and engine.loss.weight.shape == (5, 12)
    assert 0.0 <= results["mAP"] <= 1.0
    # After the first batches nothing is checked any more: the hooks are gone.
    assert not engine.model._forward_hooks and not engine.loss._forward_hooks


ACME = """
import torch
import visim
from torch import nn


class Net(nn.Module):
    embedding_dim = 24

    def __init__(self, num_classes):
        super().__init__()
        self.fc = nn.Linear(3, 24)

    def forward(self, images):
        return self.fc(images.mean(dim=(2, 3)))  # embeddings only, even in training mode


class NotALoss:
    def __call__(self, logits, embeddings, targets):
        return logits.sum()


@visim.hookimpl
def register_models(register):
    register("acme.net", lambda params, num_classes: Net(num_classes))


@visim.hookimpl
def register_losses(register):
    register("acme.old", lambda params, num_classes: None)  # predates embedding_dim
    register("acme.plain", lambda params, **context: NotALoss())
"""


@pytest.fixture
def acme(fake_dists):
    fake_dists.add("visim-acme", {"acme": "acme_plugin"}, {"acme_plugin": ACME}, version="0.1.0")


def run_cli(tmp_path, capsys, *overrides: str):
    code = main(["run", write_config(tmp_path, epochs=1), "--quiet", *[arg for o in overrides for arg in ("--set", o)]])
    return code, errors(capsys.readouterr().err)


def test_a_model_breaking_the_contract_exits_1_with_one_line_naming_it(acme, tmp_path, capsys):
    code, lines = run_cli(tmp_path, capsys, "model=acme.net")
    assert code == 1
    assert lines == [
        "visim: error: model 'acme.net' (visim-acme 0.1.0) must return (logits, embeddings) "
        "in training mode, got Tensor[32, 24]"
    ]
    (run_dir,) = (tmp_path / "runs" / "tiny").iterdir()
    log = (run_dir / "run.log").read_text()
    assert "Traceback" in log and "must return (logits, embeddings)" in log


@pytest.mark.parametrize(
    ("loss", "message"),
    [
        ("acme.old", "loss 'acme.old' (visim-acme 0.1.0) failed to build: TypeError: "),
        ("acme.plain", "loss 'acme.plain' (visim-acme 0.1.0) must be a torch.nn.Module, got NotALoss"),
    ],
)
def test_a_loss_factory_that_raises_or_returns_the_wrong_type_is_named(acme, tmp_path, capsys, loss, message):
    code, lines = run_cli(tmp_path, capsys, f"train.loss={loss}")
    assert code == 1
    (line,) = lines
    assert line.startswith(f"visim: error: {message}")


def test_first_use_checks_name_the_loss_and_the_metric(plugin, tmp_path):
    engine = build_engine(config_from_dict(tiny_config(tmp_path, loss="cross_entropy")), quiet=True)
    targets = torch.zeros(4, dtype=torch.long)
    with pytest.raises(ContractError, match=r"^loss 'cross_entropy' \(visim 0\.1\.0\) must return a finite value on the first batch, got nan$"):
        engine.loss(torch.full((4, 5), float("nan"), requires_grad=True), torch.zeros(4, 16), targets)

    engine.metric = lambda a, b: a @ b.T[:, :3]  # not [N, M]
    with pytest.raises(ContractError, match=r"^metric function \(not built from the registry\) must return a \["):
        engine.test()


def test_a_dataset_returning_something_else_is_named(register_plugin, clean_plugin_env, tmp_path, capsys):
    class Plugin:
        @visim.hookimpl
        def register_datasets(self, register):
            register("loose", lambda params: {"train": [], "query": [], "gallery": []})

    register_plugin(Plugin(), name="loose-plugin")
    config = tiny_config(tmp_path)
    config["data"]["dataset"] = "loose"
    path = tmp_path / "loose.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["data", "check", str(path)]) == 1
    assert errors(capsys.readouterr().err) == [
        "visim: error: dataset 'loose' (plugin 'loose-plugin') must return a visim.data.ReidData, got dict"
    ]


def test_the_contracts_import_no_torch():
    code = "import sys, visim.contracts, visim.contract_checks, visim.data; print(any(m.startswith('torch') for m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False", done.stderr


def test_the_first_eval_batch_is_checked_then_the_hook_is_gone():
    from torch import nn

    from visim.contract_checks import watch_model

    class TwoOutputs(nn.Module):
        def forward(self, images):
            return images.flatten(1), images.flatten(1)

    model = TwoOutputs().eval()
    watch_model(model, num_classes=3, embedding_dim=12, modes=("eval",))
    with pytest.raises(ContractError) as err:
        model(torch.zeros(2, 3, 2, 2))
    assert str(err.value) == (
        "model TwoOutputs (not built from the registry) must return embeddings (batch, embedding_dim) "
        "in eval mode, got tuple(Tensor[2, 12], Tensor[2, 12])"
    )
    assert not model._forward_hooks
    model(torch.zeros(2, 3, 2, 2))  # checked once only
