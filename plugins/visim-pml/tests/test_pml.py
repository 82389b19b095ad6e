"""visim-pml, installed: found through its entry point, PML's defaults, every loss trains, DDP."""

from __future__ import annotations

import gc
import inspect
import json
import socket
import subprocess
import sys
from importlib import metadata

import attrs
import pytest
import torch
import torch.multiprocessing as mp
import visim_pml
import yaml
from visim_pml.choices import MINERS

import visim
from visim.cli import main as visim_main
from visim.config.errors import ConfigError
from visim.config.load import config_from_dict
from visim.config.refs import LossRef
from visim.engine.build import build_engine

NAMES = sorted(visim_pml.LOSSES)
WEIGHTED = sorted(name for name, loss in visim_pml.LOSSES.items() if loss.per_class_weights)


def pml_default(cls: type, argument: str):
    """The default of ``argument`` in ``cls.__init__`` or, through ``**kwargs``, a base class's."""
    for klass in cls.__mro__:
        parameter = inspect.signature(klass.__init__).parameters.get(argument)
        if parameter is not None and parameter.default is not inspect.Parameter.empty:
            return parameter.default
    raise AssertionError(f"{cls.__name__} has no argument {argument!r}")


def config(tmp_path, loss, model=None, epochs=1) -> dict:
    return {
        "name": "pml",
        "seed": 0,
        "device": "cpu",
        "log_dir": str(tmp_path / "runs"),
        "data": {
            "dataset": {"name": "digits", "max_per_digit": 40},
            "batch_size": 32,
            "image_size": [16, 16],
            "sampler": {"name": "identity", "num_instances": 8},
        },
        "model": model or {"name": "convnet", "width": 4, "embedding_dim": 16},
        "train": {"epochs": epochs, "loss": loss, "optimizer": {"name": "adam", "lr": 0.01}, "save_interval": 1},
        "test": {"metric": "cosine", "topk_cmc": [1]},
    }


def run(tmp_path, loss, *extra, epochs=1):
    path = tmp_path / "pml.yaml"
    path.write_text(yaml.safe_dump(config(tmp_path, loss, epochs=epochs)))
    code = visim_main(["run", str(path), "--quiet", *extra])
    (run_dir,) = (tmp_path / "runs" / "pml").iterdir()
    return code, run_dir


# -- discovery and params --------------------------------------------------------------------
def test_found_through_its_real_entry_point_with_its_version():
    (entry,) = [ep for ep in metadata.entry_points(group="visim") if ep.name == "pml"]
    assert entry.dist.name == "visim-pml" and entry.load() is visim_pml
    registered = {c.name: c for c in visim.get_registry().losses if c.distribution == "visim-pml"}
    assert set(registered) == {f"pml.{name}" for name in NAMES}
    assert len(registered) >= 13
    assert {c.version for c in registered.values()} == {visim_pml.__version__}


def test_listing_imports_neither_torch_nor_pml():
    code = (
        "import sys, contextlib, io\n"
        "from visim.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "    assert main(['plugins']) == 0 and main(['components', 'losses']) == 0\n"
        "assert 'visim-pml' in out.getvalue() and 'pml.arcface' in out.getvalue()\n"
        "heavy = [m for m in ('torch', 'pytorch_metric_learning') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("name", NAMES)
def test_params_are_pmls_constructor_arguments_with_pmls_defaults(name):
    # PML imported here, so that collecting this suite does not import it.
    from pytorch_metric_learning import losses as pml_losses

    spec = visim_pml.LOSSES[name]
    cls = getattr(pml_losses, spec.pml_class)
    for field in attrs.fields(spec.params):
        if field.name in ("miner", "distance"):
            continue
        assert field.default == pml_default(cls, field.name), field.name
    built = LossRef.of(f"pml.{name}").build(num_classes=3, embedding_dim=4).loss
    assert type(built) is cls


@pytest.mark.parametrize("name", sorted(MINERS))
def test_miner_params_are_pmls_with_pmls_defaults(name):
    from pytorch_metric_learning import miners as pml_miners
    from visim_pml.loss import MINER_CLASSES

    cls = MINER_CLASSES[name]
    for field in attrs.fields(MINERS[name]):
        if field.name != "distance":
            assert field.default == pml_default(cls, field.name), field.name
    assert cls is getattr(pml_miners, cls.__name__)


@pytest.mark.parametrize(
    ("params", "path", "message"),
    [
        ({"miner": "batch_hrd"}, "$.miner", "unknown miner 'batch_hrd'; did you mean 'batch_hard'?"),
        ({"miner": {"name": "multi_similarity", "epsilon": -1}}, "$.miner.epsilon", "must be >= 0.0"),
        ({"miner": {"name": "triplet_margin", "type_of_triplet": "hard"}}, "$.miner.type_of_triplet",
         "did you mean 'type_of_triplets'?"),
        ({"miner": {"epsilon": 0.1}}, "$.miner", "a miner needs a 'name'"),
        ({"distance": {"name": "lp", "p": 0}}, "$.distance.p", "must be > 0.0"),
        ({"distance": "cosin"}, "$.distance", "did you mean 'cosine'?"),
        ({"miner": {"name": "batch_hard", "distance": "l2"}}, "$.miner.distance", "unknown distance 'l2'"),
        ({"triplets_per_anchor": 0}, "$.triplets_per_anchor", "must equal 'all' or be an instance of int and be >= 1"),
        ({"margin": "big"}, "$.margin", "expected float"),
    ],
)
def test_bad_params_are_config_errors_at_their_path(params, path, message):
    with pytest.raises(ConfigError) as error:
        LossRef.of("pml.triplet_margin", **params)
    (problem,) = error.value.problems
    assert problem.path == path and message in problem.message


def test_an_arcface_has_no_distance_to_choose():
    with pytest.raises(ConfigError, match="unknown key 'distance'"):
        LossRef.of("pml.arcface", distance="lp")


def test_errors_in_a_config_carry_the_full_path(tmp_path):
    loss = {"name": "sum", "terms": [{"loss": "cross_entropy"},
                                     {"loss": {"name": "pml.circle", "miner": {"name": "batch_easy_hard",
                                                                              "pos_strategy": "semihard"}}}]}
    with pytest.raises(ConfigError) as error:
        config_from_dict(config(tmp_path, loss))
    (problem,) = error.value.problems
    assert problem.path == "$.train.loss.terms[1].loss.miner"
    assert "cannot be semihard and semihard" in problem.message


# -- training ---------------------------------------------------------------------------------
class Tiny(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = torch.nn.Linear(6, 8)

    def forward(self, x):
        return self.body(x)


def one_step(loss, seed=0):
    torch.manual_seed(seed)
    model = Tiny()
    inputs, targets = torch.randn(24, 6), torch.arange(24) % 4
    optimizer = torch.optim.SGD([*model.parameters(), *loss.parameters()], lr=0.1)
    before = [p.detach().clone() for p in loss.parameters()]
    value = loss(None, model(inputs), targets)
    value.backward()
    assert value.dim() == 0 and torch.isfinite(value)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    optimizer.step()
    return value, before, list(loss.parameters())


@pytest.mark.parametrize("name", NAMES)
def test_every_loss_trains_one_step(name):
    loss = LossRef.of(f"pml.{name}").build(num_classes=4, embedding_dim=8)
    _, before, after = one_step(loss)
    if name in WEIGHTED:
        # The class weights are the adapter's parameters (what the engine trains and saves).
        assert after and all(p.grad.abs().sum() > 0 for p in after)
        assert any(not torch.equal(b, a) for b, a in zip(before, after))
        assert any(key.startswith("loss.") for key in loss.state_dict())
    else:
        assert not after


@pytest.mark.parametrize("miner", sorted(MINERS))
def test_every_miner_picks_what_a_loss_trains_on(miner):
    loss = LossRef.of("pml.multi_similarity", miner={"name": miner}).build(num_classes=4, embedding_dim=8)
    plain = LossRef.of("pml.multi_similarity").build(num_classes=4, embedding_dim=8)
    mined, _, _ = one_step(loss)
    assert not torch.equal(mined, one_step(plain)[0])


def test_lp_distance_and_bf16_autocast():
    loss = LossRef.of("pml.contrastive", distance={"name": "lp", "power": 2}).build(num_classes=4, embedding_dim=8)
    assert loss.loss.distance.power == 2
    embeddings = torch.randn(16, 8, dtype=torch.bfloat16, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = loss(None, embeddings, torch.arange(16) % 4)
    assert value.dtype == torch.float32  # computed in float32, outside autocast
    value.backward()
    assert embeddings.grad.abs().sum() > 0


@pytest.mark.slow
@pytest.mark.parametrize(
    "loss",
    [
        {"name": "pml.arcface"},
        # The usual re-id pairing, through the built-in `sum`: identity cross entropy + a metric loss.
        {"name": "sum", "terms": [
            {"loss": "cross_entropy"},
            {"loss": {"name": "pml.multi_similarity", "miner": {"name": "multi_similarity", "epsilon": 0.1}}},
        ]},
    ],
    ids=["arcface", "cross_entropy+multi_similarity+miner"],
)
def test_trains_one_epoch_on_digits_through_visim_run(tmp_path, loss):
    code, run_dir = run(tmp_path, loss)
    assert code == 0
    results = json.loads((run_dir / "results.json").read_text())
    assert 0.0 <= results["mAP"] <= 1.0
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["train"]["loss"]["name"] == loss["name"]
    assert "epoch 1/1  loss " in (run_dir / "run.log").read_text()


# -- the core's learnable-loss contract: arcface's class weights train, are saved and resume ----
@pytest.mark.slow
def test_arcface_weights_train_and_are_saved_in_last_pt(tmp_path):
    run_dir = tmp_path / "run"
    engine = build_engine(config_from_dict(config(tmp_path, {"name": "pml.arcface"})), run_dir=run_dir, quiet=True)
    initial = engine.loss.loss.W.detach().clone()  # built at once: the core passes embedding_dim
    assert initial.shape == (16, 5)  # [embedding_dim, num_classes]
    engine.run()
    engine.close()
    trained = engine.loss.loss.W.detach().cpu()
    assert not torch.equal(trained, initial)
    saved = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["loss"]["loss.W"]
    assert torch.equal(saved, trained)


@pytest.mark.slow
def test_arcface_weights_resume_exactly(tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    straight.mkdir(), resumed.mkdir()
    assert run(straight, {"name": "pml.arcface"}, epochs=2)[0] == 0
    code, first = run(resumed, {"name": "pml.arcface"}, "--set", "train.epochs=1", epochs=2)
    assert code == 0
    path = resumed / "pml.yaml"
    assert visim_main(["run", str(path), "--quiet", "--resume", str(first / "checkpoints" / "last.pt")]) == 0
    (straight_dir,) = (straight / "runs" / "pml").iterdir()
    final = [torch.load(d / "checkpoints" / "last.pt", weights_only=True)["loss"]["loss.W"]
             for d in (straight_dir, *sorted((resumed / "runs" / "pml").iterdir())[-1:])]
    assert torch.equal(final[0], final[1])


# -- DDP ---------------------------------------------------------------------------------------
DDP_LOSSES = {
    "multi_similarity+miner": {"name": "pml.multi_similarity", "miner": "multi_similarity"},
    "proxy_anchor": {"name": "pml.proxy_anchor"},
    "arcface": {"name": "pml.arcface"},
}


def batch():
    generator = torch.Generator().manual_seed(1)
    return torch.randn(16, 8, generator=generator), torch.arange(16) % 4


def gradients(spec, embeddings, targets):
    """(gradient of the embeddings, gradients of the loss's weights) of a fresh loss."""
    torch.manual_seed(0)
    loss = LossRef.of(spec["name"], **{k: v for k, v in spec.items() if k != "name"}).build(
        num_classes=4, embedding_dim=8
    )
    embeddings = embeddings.clone().requires_grad_()
    loss(None, embeddings, targets).backward()
    return embeddings.grad, [p.grad for p in loss.parameters()]


def ddp_worker(rank, port, folder):
    # One thread: a child forked from a process whose OpenMP team already has threads hangs in
    # its first parallel region (libgomp is not fork-safe), e.g. when this suite runs alone.
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    embeddings, targets = batch()
    mine = slice(rank * 8, rank * 8 + 8)  # each process holds half of the global batch
    out = {}
    for key, spec in DDP_LOSSES.items():
        grad, weight_grads = gradients(spec, embeddings[mine], targets[mine])
        # DDP averages the model's gradients over the processes; the core averages the loss's.
        grad = grad / 2
        for g in weight_grads:
            torch.distributed.all_reduce(g)
            g /= 2
        out[key] = (grad, weight_grads)
    torch.save(out, f"{folder}/rank{rank}.pt")
    torch.distributed.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_under_ddp_every_process_gets_the_gradients_of_the_global_batch(tmp_path):
    # Forked: the children start with torch and PML imported (spawning would import them again).
    # Garbage collected first: the children must not destroy the parent's dead objects (an
    # onnxruntime session's thread pool hangs when destroyed where its threads do not exist).
    gc.collect()
    mp.start_processes(ddp_worker, args=(free_port(), str(tmp_path)), nprocs=2, start_method="fork")
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    embeddings, targets = batch()
    for key, spec in DDP_LOSSES.items():
        full_grad, full_weight_grads = gradients(spec, embeddings, targets)
        together = torch.cat([ranks[0][key][0], ranks[1][key][0]])
        torch.testing.assert_close(together, full_grad, msg=key)
        for rank in ranks:
            for got, expected in zip(rank[key][1], full_weight_grads, strict=True):
                torch.testing.assert_close(got, expected, msg=key)
    # Why the gathering is needed: a pair loss of each half alone is another loss.
    alone = gradients(DDP_LOSSES["multi_similarity+miner"], embeddings[:8], targets[:8])[0] / 2
    full = gradients(DDP_LOSSES["multi_similarity+miner"], embeddings, targets)[0]
    assert not torch.allclose(alone, full[:8])
