"""Resume honesty, failures that keep the epoch, a diverging loss, validate == run, strict options."""

from __future__ import annotations

import re

import pytest
import torch
import torch.nn.functional as F
import yaml
from torch import nn

import visim
from tests import contract_plugin
from tests.helpers import errors, only_run_dir, tiny_config, train_run, write_config
from visim.cli import main
from visim.config.load import config_from_dict
from visim.engine.build import build_engine
from visim.engine.checkpoint import load_checkpoint
from visim.engine.resume import ResumeConflict


def first_epoch(tmp_path, **train) -> str:
    """Train one epoch through the CLI; the config's path (resume it with ``--resume auto``)."""
    path = write_config(tmp_path, tiny_config(tmp_path, epochs=1, **train))
    assert main(["train", path, "--quiet"]) == 0
    return path


# -- resume honesty ------------------------------------------------------------------------------
def test_a_new_lr_is_applied_on_resume_as_if_the_run_had_started_with_it(tmp_path, capsys):
    # step scheduler, gamma 0.5 each epoch: epoch 1 trains at lr, epoch 2 at lr / 2.
    path = first_epoch(tmp_path)  # sgd lr 0.05
    assert main(["train", path, "--resume", "auto", "--set", "train.epochs=2", "--set", "train.optimizer.lr=0.2", "--quiet"]) == 0
    run_dir = only_run_dir(tmp_path)
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["train"]["optimizer"]["lr"] == 0.2
    state = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert state["epoch"] == 2
    assert [g["lr"] for g in state["optimizer"]["param_groups"]] == [0.05]  # 0.2 / 2 / 2
    assert state["optimizer"]["param_groups"][0]["initial_lr"] == 0.2
    log = (run_dir / "run.log").read_text()
    assert "resuming with train.optimizer.lr 0.05 -> 0.2" in log
    assert "epoch 2/2" in log and "lr 1.00e-01" in log  # epoch 2 trained at 0.2 / 2


def test_lr_weight_decay_and_epochs_reach_the_restored_optimizer_and_schedule(tmp_path, register_plugin, clean_plugin_env):
    register_plugin(contract_plugin, name="contract-plugin")
    # The loss's class weights have their own lr (0.5): a new optimizer lr leaves it alone.
    loss = {"name": "sum", "terms": [{"loss": {"name": "cosine_softmax", "lr": 0.5}}, {"loss": "cross_entropy"}]}
    cosine = {"name": "cosine", "eta_min": 0.0}
    train_run(tiny_config(tmp_path, epochs=1, loss=loss, scheduler=cosine), tmp_path / "a")
    resumed = tiny_config(tmp_path, epochs=4, loss=loss, scheduler=cosine)
    resumed["train"]["optimizer"].update(lr=0.1, weight_decay=0.01)
    engine = build_engine(config_from_dict(resumed), resume=tmp_path / "a" / "checkpoints" / "last.pt", quiet=True)
    model_group, loss_group = engine.optimizer.param_groups
    assert model_group["weight_decay"] == loss_group["weight_decay"] == 0.01
    assert model_group["initial_lr"] == 0.1 and loss_group["initial_lr"] == 0.5
    assert engine.lr_sched.base_lrs == [0.1, 0.5]
    assert engine.lr_sched.T_max == 4  # cosine's length follows the new epochs
    straight = build_engine(config_from_dict(resumed), quiet=True)
    straight.initialize_optimizer()
    straight.optimizer.step()  # no gradients: changes nothing, keeps torch from warning
    straight.lr_sched.step()  # where a straight run of the resumed config is after epoch 1
    assert [g["lr"] for g in engine.optimizer.param_groups] == pytest.approx([g["lr"] for g in straight.optimizer.param_groups])


def test_another_optimizer_type_is_one_line_exit_2_and_the_run_directory_is_untouched(tmp_path, capsys):
    path = first_epoch(tmp_path, optimizer={"name": "adam", "lr": 0.01})
    config_yaml = only_run_dir(tmp_path) / "config.yaml"
    before = config_yaml.read_text()
    capsys.readouterr()
    assert main(["train", path, "--resume", "auto", "--set", "train.epochs=2", "--set", "train.optimizer=sgd"]) == 2
    (line,) = errors(capsys.readouterr().err)
    assert line.startswith("visim: error: cannot resume ")
    assert "with train.optimizer.name changed ('adam' in the checkpoint, 'sgd' now): the optimizer state is" in line
    assert config_yaml.read_text() == before


@pytest.mark.parametrize(
    ("override", "setting"),
    [
        ("model.width=8", "model.width"),
        ("train.loss=cross_entropy", "train.loss.name"),
        ("train.scheduler.gamma=0.1", "train.scheduler.gamma"),
        ("train.scheduler=null", "train.scheduler"),
        ("data.batch_size=40", "data.batch_size"),
        ("seed=4", "seed"),
        ("train.optimizer.momentum=0.5", "train.optimizer.momentum"),
    ],
)
def test_settings_the_checkpoint_fixes_are_refused_one_line_each(tmp_path, trained_run, override, setting):
    data = tiny_config(tmp_path)  # trained_run's config, but for its epochs
    from visim.config.load import apply_overrides

    config = config_from_dict(apply_overrides(data, [override]))
    with pytest.raises(ResumeConflict) as caught:
        build_engine(config, resume=trained_run.checkpoint, quiet=True)
    (line,) = caught.value.report().splitlines()
    assert f"with {setting} changed (" in line and "start a new run" in line


# -- a metric or a factory that fails ----------------------------------------------------------------
class FlakyMetric:
    """Euclidean distances, until the ``fail_from``-th call: then it raises, as a buggy plugin would."""

    calls = 0
    fail_from = 10**9

    def __call__(self, a, b):
        FlakyMetric.calls += 1
        if FlakyMetric.calls >= FlakyMetric.fail_from:
            raise RuntimeError("index out of range in the flaky kernel")
        return torch.cdist(a.float(), b.float())


class NanAfter(nn.Module):
    """Cross-entropy for ``finite_calls`` calls, then NaN (a diverging run, made reproducible)."""

    finite_calls = 10**9

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, logits, embeddings, targets):
        self.calls += 1
        loss = F.cross_entropy(logits, targets)
        return loss if self.calls <= NanAfter.finite_calls else loss * float("nan")


class FailingPlugin:
    @visim.hookimpl
    def register_metrics(self, register):
        register("flaky", lambda params: FlakyMetric())
        register("lazy", lambda params: __import__("visim_no_such_backend"))

    @visim.hookimpl
    def register_losses(self, register):
        register("nan_after", lambda params, **context: NanAfter())


@pytest.fixture
def failing(register_plugin, clean_plugin_env, monkeypatch):
    monkeypatch.setattr(FlakyMetric, "calls", 0)
    register_plugin(FailingPlugin(), name="failing-plugin")


def test_a_metric_raising_in_an_evaluation_is_named_logged_and_the_epoch_is_kept(failing, tmp_path, capsys, monkeypatch):
    path = write_config(tmp_path, tiny_config(tmp_path, epochs=1, save_interval=5))
    monkeypatch.setattr(FlakyMetric, "fail_from", 1)
    assert main(["train", path, "--quiet", "--set", "test.metric=flaky"]) == 1
    assert errors(capsys.readouterr().err) == [
        "visim: error: metric 'flaky' (plugin 'failing-plugin') raised RuntimeError: index out of range in the flaky kernel"
    ]
    run_dir = only_run_dir(tmp_path)
    log = (run_dir / "run.log").read_text()
    assert "Traceback" in log and "index out of range in the flaky kernel" in log
    assert "epoch 1 trained and saved in last.pt; its evaluation failed" in log
    state = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert state["epoch"] == 1 and state["metrics"] is None
    assert state["scheduler"]["last_epoch"] == 1  # stepped as after any epoch
    # The metric fixed, the run resumes: epoch 1's training is not redone.
    assert main(["train", path, "--quiet", "--resume", "auto", "--set", "train.epochs=2", "--set", "test.metric=euclidean"]) == 0
    state = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert state["epoch"] == 2 and state["global_step"] == 6  # 3 steps an epoch
    assert "resuming with test.metric.name 'flaky' -> 'euclidean'" in (run_dir / "run.log").read_text()


def test_a_factory_whose_lazy_import_fails_is_one_line_naming_it(failing, tmp_path, capsys):
    path = write_config(tmp_path, tiny_config(tmp_path, epochs=1))
    assert main(["train", path, "--quiet", "--set", "test.metric=lazy"]) == 1
    assert errors(capsys.readouterr().err) == [
        "visim: error: metric 'lazy' (plugin 'failing-plugin') failed to build: "
        "ModuleNotFoundError: No module named 'visim_no_such_backend'"
    ]
    assert "Traceback" in (only_run_dir(tmp_path) / "run.log").read_text()


# -- a diverging loss --------------------------------------------------------------------------------
def test_a_non_finite_loss_stops_with_one_line_and_keeps_the_last_good_checkpoint(failing, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(NanAfter, "finite_calls", 4)  # 3 batches an epoch: the 5th is in epoch 2
    path = write_config(tmp_path, tiny_config(tmp_path, epochs=3, loss="nan_after", scheduler=None))
    assert main(["train", path, "--quiet"]) == 1
    (line,) = errors(capsys.readouterr().err)
    run_dir = only_run_dir(tmp_path)
    last = run_dir / "checkpoints" / "last.pt"
    assert line.startswith("visim: error: loss is nan at epoch 2, step 4 (last finite loss ")
    assert line.endswith(f"); the last good checkpoint is {last}; lower train.optimizer.lr or set train.grad_clip")
    assert "Traceback" not in line
    assert "error: loss is nan at epoch 2, step 4" in (run_dir / "run.log").read_text()
    assert load_checkpoint(last)["epoch"] == 1


def test_a_diverging_learning_rate_is_the_same_one_line(tmp_path, capsys):
    path = write_config(tmp_path, tiny_config(tmp_path, epochs=1, optimizer={"name": "sgd", "lr": 1e30}))
    assert main(["train", path, "--quiet"]) == 1
    (line,) = errors(capsys.readouterr().err)
    assert line.startswith("visim: error: loss is ") and "at epoch 1, step " in line
    assert "no checkpoint was saved yet; lower train.optimizer.lr or set train.grad_clip" in line


# -- validate == run -------------------------------------------------------------------------------
BAD_FOR_THE_DATA = [
    # (override, the line validate reports)
    ("data.batch_size=30", "batch_size (30) must be a multiple of the identity sampler's num_instances (8); e.g. 24 @ $.data.batch_size"),
    ("train.nof_classes=7", "the training data has 5 classes, not 7 @ $.train.nof_classes"),
    ("data.batch_size=48", "identity sampler cannot fill one batch of 6 identities x 8 instances: the train split has 5 identities"),
    ("data.sampler=random", "the train split gives no full batch of 200 (120 images, sampler 'random' yields 120) @ $.data.batch_size"),
]


@pytest.mark.parametrize(("override", "problem"), BAD_FOR_THE_DATA)
def test_validate_refuses_what_run_refuses_before_training(tmp_path, capsys, override, problem):
    overrides = [override] + (["data.batch_size=200"] if override == "data.sampler=random" else [])
    args = [arg for o in overrides for arg in ("--set", o)]
    path = write_config(tmp_path, tiny_config(tmp_path))
    assert main(["validate", path, *args]) == 2
    lines = errors(capsys.readouterr().err)
    assert lines[0] == f"{path}: 1 problem" and problem in lines[1] and len(lines) == 2
    assert main(["validate", path, "--config-only", *args]) == 0  # the config alone is fine
    capsys.readouterr()
    assert main(["train", path, "--quiet", *args]) in (1, 2)  # and run agrees
    assert problem.split(" @ ")[0] in capsys.readouterr().err


def test_validate_reports_missing_data_at_the_dataset_and_config_only_skips_it(tmp_path, capsys):
    path = write_config(tmp_path, tiny_config(tmp_path))
    absent = ["--set", f"data.dataset={{name: market1501, root: {tmp_path / 'nowhere'}}}"]
    assert main(["validate", path, *absent]) == 2
    assert errors(capsys.readouterr().err)[1] == f"  Market-1501 root '{tmp_path / 'nowhere'}' does not exist @ $.data.dataset"
    assert main(["validate", path, "--config-only", *absent]) == 0
    assert capsys.readouterr().out.endswith("metric euclidean\n")
    assert main(["validate", path]) == 0
    assert capsys.readouterr().out.endswith("; data: 120 train images of 5 identities, 25 query, 95 gallery images\n")


@pytest.mark.parametrize(
    ("override", "problem"),
    [
        ("data.image_size=[100000, 128]", "must be <= 4096 (got 100000) @ $.data.image_size[0]"),
        ("data.batch_size=10000000", "must be <= 65536 (got 10000000) @ $.data.batch_size"),
        ("data.eval_batch_size=10000000", "must be <= 65536 (got 10000000) @ $.data.eval_batch_size"),
        ("data.num_workers=100000", "must be <= 256 (got 100000) @ $.data.num_workers"),
        ("threads=100000", "must be <= 1024 (got 100000) @ $.threads"),
        ("threads=0", "must be >= 1 (got 0) @ $.threads"),
        ("test.max_rank=1000000000000", "must be <= 100000 (got 1000000000000) @ $.test.max_rank"),
        ("test.topk_cmc=[1, 1000000000]", "must be <= 100000 (got 1000000000) @ $.test.topk_cmc[1]"),
        ("test.memory_budget=1e30", "expected int, got float 1e+30 @ $.test.memory_budget"),
        ("test.memory_budget=1000000000000000000", "must be <= 1099511627776 (got 1000000000000000000) @ $.test.memory_budget"),
        ("test.ranked_topk=1000000", "must be <= 100 (got 1000000) @ $.test.ranked_topk"),
        ("test.max_embeds=1000000000", "must be <= 1000000 (got 1000000000) @ $.test.max_embeds"),
    ],
)
def test_resource_absurd_values_are_config_errors(tmp_path, capsys, override, problem):
    path = write_config(tmp_path, tiny_config(tmp_path))
    assert main(["validate", path, "--config-only", "--set", override]) == 2
    assert errors(capsys.readouterr().err)[1:] == [f"  {problem}"]


# -- evaluation options are strict -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"higher_is_better": "false"}, "must be a bool or None (got 'false') @ $.higher_is_better"),
        ({"higher_is_better": 1}, "must be a bool or None (got 1) @ $.higher_is_better"),
        ({"max_rank": "5"}, "@ $.max_rank"),
        ({"max_rank": 10**12}, "must be <= 100000 (got 1000000000000) @ $.max_rank"),
        ({"topk": [1, "5"]}, "@ $.topk[1]"),
        ({"keep_topk": True}, "@ $.keep_topk"),
        ({"memory_budget": 2.5}, "@ $.memory_budget"),
        ({"protocol": 3}, "@ $.protocol"),
    ],
)
def test_evaluation_options_have_strict_types(settings, problem):
    import numpy as np

    from visim.config.errors import ConfigError
    from visim.evaluation import evaluate, evaluate_embeddings
    from visim.evaluation.options import EvalOptions

    with pytest.raises(ConfigError, match=re.escape(problem)):
        evaluate(np.zeros((2, 2)), [0, 1], [0, 1], **settings)
    with pytest.raises(ConfigError):
        evaluate_embeddings(torch.eye(2), torch.eye(2), "euclidean", [0, 1], [0, 1], **settings)
    with pytest.raises(ConfigError):
        EvalOptions(**settings)


def test_a_numpy_bool_is_a_bool():
    import numpy as np

    from visim.evaluation.options import EvalOptions

    assert EvalOptions(higher_is_better=np.bool_(True)).higher_is_better is True
    assert EvalOptions(higher_is_better=False).higher_is_better is False


# -- the resume policy, unit by unit -------------------------------------------------------------
def test_a_renamed_component_is_one_change_and_an_old_checkpoint_is_trusted():
    from visim.engine import resume

    old = {"train": {"optimizer": {"name": "adam", "lr": 0.1, "betas": [0.9, 0.99]}, "epochs": 2}}
    new = {"train": {"optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9}, "epochs": 3}}
    found = resume.changes(old, new)
    assert [(c.setting, c.refusal is None) for c in found] == [("train.optimizer.name", False), ("train.epochs", True)]
    assert resume.check(None, new, "old.pt") == []  # written before checkpoints kept their config
    lr = resume.Change("$.train.optimizer.lr", 0.1, 0.2)
    assert lr.refusal is None and str(lr) == "train.optimizer.lr 0.1 -> 0.2"
    assert resume.Change("$.train.optimizer.betas", [0.9, 0.99], [0.8, 0.99]).refusal is not None
    assert resume.Change("$.data.num_workers", 0, 4).refusal is None
    assert resume.Change("$.data.image_size", [16, 16], [32, 32]).refusal is not None
