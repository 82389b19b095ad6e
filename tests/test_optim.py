"""Built-in optimizers and schedulers, built through the registry as a config would."""

from __future__ import annotations

import pytest
import torch

import visim
from visim.config.converter import structure
from visim.config.errors import ConfigError
from visim.config.refs import OptimizerRef, SchedulerRef


def at(problem, path):
    """The problem is at ``path`` or at one of its items (``$.betas`` covers ``$.betas[1]``)."""
    return problem.path == path or problem.path.startswith(f"{path}[")


def tiny_parameters():
    return [torch.nn.Parameter(torch.ones(3))]


def sgd(lr=1.0, parameters=None):
    """Plain SGD, so that the learning rate is exactly what a scheduler set."""
    component = visim.get_registry().optimizers.get("sgd")
    return component.build({"lr": lr, "momentum": 0.0, "weight_decay": 0.0}, parameters=parameters or tiny_parameters())


def learning_rates(scheduler_name, params, epochs=7, steps=None, lr=1.0):
    """The learning rate of each epoch, stepping the scheduler once per epoch."""
    optimizer = sgd(lr)
    scheduler = visim.get_registry().schedulers.get(scheduler_name).build(params, optimizer=optimizer, epochs=epochs)
    rates = []
    for _ in range(steps or epochs):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return rates


@pytest.mark.parametrize(
    ("name", "alias", "cls"),
    [("adam", "Adam", torch.optim.Adam), ("adamw", "AdamW", torch.optim.AdamW), ("sgd", "SGD", torch.optim.SGD)],
)
def test_optimizers_build_through_the_registry_and_train(name, alias, cls):
    parameters = tiny_parameters()
    component = visim.get_registry().optimizers.get(alias)
    assert component.name == name
    optimizer = component.build({"lr": 0.1, "weight_decay": 0.0}, parameters=parameters)
    assert type(optimizer) is cls
    assert optimizer.param_groups[0]["lr"] == 0.1
    parameters[0].sum().backward()
    optimizer.step()
    assert torch.all(parameters[0] < 1.0)  # one step down the gradient


def test_optimizer_defaults_reach_torch():
    optimizer = visim.get_registry().optimizers.get("adam").build(None, parameters=tiny_parameters())
    group = optimizer.param_groups[0]
    assert (group["lr"], group["weight_decay"], group["betas"], group["amsgrad"]) == (3e-4, 5e-4, (0.9, 0.999), False)
    sgd_group = visim.get_registry().optimizers.get("sgd").build({"nesterov": True}, parameters=tiny_parameters()).param_groups[0]
    assert (sgd_group["momentum"], sgd_group["nesterov"]) == (0.9, True)


@pytest.mark.parametrize("name", ["adam", "adamw", "sgd"])
@pytest.mark.parametrize("lr", [0, -0.1])
def test_learning_rate_must_be_positive_with_the_config_path(name, lr):
    with pytest.raises(ConfigError) as info:
        structure({"name": name, "lr": lr}, OptimizerRef, "$.train.optimizer")
    (problem,) = info.value.problems
    assert problem.path == "$.train.optimizer.lr"
    assert "> 0" in problem.message and str(float(lr)) in problem.message


@pytest.mark.parametrize(
    ("name", "params", "path", "fragment"),
    [
        ("adam", {"betas": [0.9, 1.5]}, "$.betas", "< 1.0"),
        ("adam", {"lr": "fast"}, "$.lr", "expected float"),
        ("sgd", {"nesterov": True, "momentum": 0.0}, "$", "nesterov needs momentum > 0 and dampening == 0"),
        ("sgd", {"momentum": 1.0}, "$.momentum", "< 1.0"),
        ("adamw", {"weight_decay": -1}, "$.weight_decay", ">= 0.0"),
    ],
)
def test_optimizer_params_are_validated(name, params, path, fragment):
    with pytest.raises(ConfigError) as info:
        visim.get_registry().optimizers.get(name).build(params, parameters=tiny_parameters())
    (problem,) = info.value.problems
    assert at(problem, path) and fragment in problem.message, problem


def test_step_schedule():
    rates = learning_rates("step", {"step_size": 2, "gamma": 0.5})
    assert rates == pytest.approx([1.0, 1.0, 0.5, 0.5, 0.25, 0.25, 0.125])


def test_warmup_rises_linearly_then_the_schedule_counts_from_its_end():
    rates = learning_rates("step", {"step_size": 2, "gamma": 0.5, "warmup_epochs": 2, "warmup_factor": 0.1})
    assert rates == pytest.approx([0.1, 0.55, 1.0, 1.0, 0.5, 0.5, 0.25])


def test_multistep_with_warmup():
    params = {"milestones": [1, 3], "gamma": 0.1, "warmup_epochs": 1, "warmup_factor": 0.5}
    rates = learning_rates("MultiStepLR", params)
    assert rates == pytest.approx([0.5, 1.0, 0.1, 0.1, 0.01, 0.01, 0.01])


def test_cosine_anneals_over_the_epochs_after_warmup():
    rates = learning_rates("cosine", {"warmup_epochs": 2, "eta_min": 0.01}, epochs=6, steps=7)
    assert rates[:3] == pytest.approx([0.1, 0.55, 1.0])
    assert rates[3:] == sorted(rates[3:], reverse=True)
    assert rates[-1] == pytest.approx(0.01)  # t_max = epochs - warmup = 4


def test_cosine_with_explicit_period():
    rates = learning_rates("cosine", {"t_max": 2}, steps=3)
    assert rates == pytest.approx([1.0, 0.5, 0.0])


def test_plateau_steps_with_the_monitored_metric():
    optimizer = sgd(1.0)
    scheduler = visim.get_registry().schedulers.get("ReduceLROnPlateau").build(
        {"mode": "max", "factor": 0.5, "patience": 0}, optimizer=optimizer
    )
    rates = []
    for metric in (0.5, 0.6, 0.6, 0.7, 0.4):
        optimizer.step()
        scheduler.step(metric)
        rates.append(optimizer.param_groups[0]["lr"])
    assert rates == [1.0, 1.0, 0.5, 0.5, 0.25]


@pytest.mark.parametrize("name", ["step", "multistep", "cosine", "plateau"])
def test_every_scheduler_builds_from_its_defaults(name):
    ref = SchedulerRef.of(name)
    scheduler = ref.build(optimizer=sgd(0.1), epochs=3)
    assert isinstance(scheduler, (torch.optim.lr_scheduler.LRScheduler, torch.optim.lr_scheduler.ReduceLROnPlateau))


@pytest.mark.parametrize(
    ("name", "params", "path"),
    [
        ("step", {"step_size": 0}, "$.train.scheduler.step_size"),
        ("step", {"warmup_factor": 0.0}, "$.train.scheduler.warmup_factor"),
        ("multistep", {"milestones": [10, 0]}, "$.train.scheduler.milestones"),
        ("cosine", {"warmup_epochs": -1}, "$.train.scheduler.warmup_epochs"),
        ("plateau", {"mode": "maximum"}, "$.train.scheduler.mode"),
        ("plateau", {"factor": 1.0}, "$.train.scheduler.factor"),
    ],
)
def test_scheduler_params_are_validated_with_paths(name, params, path):
    with pytest.raises(ConfigError) as info:
        structure({"name": name, **params}, SchedulerRef, "$.train.scheduler")
    (problem,) = info.value.problems
    assert at(problem, path), problem
