"""Built-in optimizers and learning-rate schedulers over torch.optim.

Optimizer factories take ``parameters`` (an iterable of tensors or param groups); scheduler
factories take ``optimizer`` and ``epochs``. Schedulers are stepped once per epoch; ``plateau``
is stepped with the monitored metric. Every scheduler accepts a linear warm-up.
"""

from __future__ import annotations

import attrs

from visim.config import rules
from visim.hookspecs import hookimpl

positive = rules.gt(0.0)
non_negative = rules.gte(0.0)
unit_interval = rules.all_(rules.gte(0.0), rules.lt(1.0))


@attrs.frozen
class AdamParams:
    lr: float = attrs.field(default=3e-4, validator=positive)
    weight_decay: float = attrs.field(default=5e-4, validator=non_negative)
    betas: tuple[float, float] = attrs.field(default=(0.9, 0.999), validator=rules.forall(unit_interval))
    amsgrad: bool = False


@attrs.frozen
class AdamWParams:
    lr: float = attrs.field(default=3e-4, validator=positive)
    weight_decay: float = attrs.field(default=0.01, validator=non_negative)
    betas: tuple[float, float] = attrs.field(default=(0.9, 0.999), validator=rules.forall(unit_interval))
    amsgrad: bool = False


@attrs.frozen
class SGDParams:
    lr: float = attrs.field(default=0.01, validator=positive)
    momentum: float = attrs.field(default=0.9, validator=unit_interval)
    weight_decay: float = attrs.field(default=5e-4, validator=non_negative)
    nesterov: bool = False
    dampening: float = attrs.field(default=0.0, validator=non_negative)

    def __attrs_post_init__(self) -> None:
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError("nesterov needs momentum > 0 and dampening == 0")


def build_adam(params: AdamParams, parameters):
    """Adam (Kingma & Ba), torchreid's default optimizer."""
    import torch

    return torch.optim.Adam(parameters, **attrs.asdict(params))


def build_adamw(params: AdamWParams, parameters):
    """AdamW: Adam with decoupled weight decay."""
    import torch

    return torch.optim.AdamW(parameters, **attrs.asdict(params))


def build_sgd(params: SGDParams, parameters):
    """Stochastic gradient descent with momentum."""
    import torch

    return torch.optim.SGD(parameters, **attrs.asdict(params))


def warmup_field():
    return attrs.field(default=0, validator=rules.gte(0), kw_only=True)


@attrs.frozen
class StepParams:
    step_size: int = attrs.field(default=20, validator=rules.gte(1))
    gamma: float = attrs.field(default=0.1, validator=positive)
    warmup_epochs: int = warmup_field()
    warmup_factor: float = attrs.field(default=0.1, validator=rules.all_(rules.gt(0.0), rules.lte(1.0)), kw_only=True)


@attrs.frozen
class MultiStepParams:
    milestones: tuple[int, ...] = attrs.field(default=(30, 60), validator=rules.forall(rules.gte(1)))
    gamma: float = attrs.field(default=0.1, validator=positive)
    warmup_epochs: int = warmup_field()
    warmup_factor: float = attrs.field(default=0.1, validator=rules.all_(rules.gt(0.0), rules.lte(1.0)), kw_only=True)


@attrs.frozen
class CosineParams:
    """``t_max`` 0 means: anneal over the epochs that follow the warm-up."""

    t_max: int = attrs.field(default=0, validator=rules.gte(0))
    eta_min: float = attrs.field(default=0.0, validator=non_negative)
    warmup_epochs: int = warmup_field()
    warmup_factor: float = attrs.field(default=0.1, validator=rules.all_(rules.gt(0.0), rules.lte(1.0)), kw_only=True)


@attrs.frozen
class PlateauParams:
    mode: str = attrs.field(default="max", validator=rules.in_(("min", "max")))
    factor: float = attrs.field(default=0.1, validator=rules.all_(rules.gt(0.0), rules.lt(1.0)))
    patience: int = attrs.field(default=10, validator=rules.gte(0))
    threshold: float = attrs.field(default=1e-4, validator=non_negative)
    min_lr: float = attrs.field(default=0.0, validator=non_negative)


def with_warmup(scheduler, optimizer, params):
    """Prefix a linear warm-up of ``params.warmup_epochs`` epochs, if any."""
    if not params.warmup_epochs:
        return scheduler
    from torch.optim import lr_scheduler

    warmup = lr_scheduler.LinearLR(
        optimizer, start_factor=params.warmup_factor, total_iters=params.warmup_epochs
    )
    return lr_scheduler.SequentialLR(optimizer, [warmup, scheduler], milestones=[params.warmup_epochs])


def build_step(params: StepParams, optimizer, epochs: int = 1):
    """Decay the learning rate by ``gamma`` every ``step_size`` epochs."""
    from torch.optim import lr_scheduler

    main = lr_scheduler.StepLR(optimizer, step_size=params.step_size, gamma=params.gamma)
    return with_warmup(main, optimizer, params)


def build_multistep(params: MultiStepParams, optimizer, epochs: int = 1):
    """Decay the learning rate by ``gamma`` at each milestone epoch."""
    from torch.optim import lr_scheduler

    main = lr_scheduler.MultiStepLR(optimizer, milestones=list(params.milestones), gamma=params.gamma)
    return with_warmup(main, optimizer, params)


def build_cosine(params: CosineParams, optimizer, epochs: int = 1):
    """Cosine annealing to ``eta_min``."""
    from torch.optim import lr_scheduler

    t_max = params.t_max or max(1, epochs - params.warmup_epochs)
    main = lr_scheduler.CosineAnnealingLR(optimizer, T_max=t_max, eta_min=params.eta_min)
    return with_warmup(main, optimizer, params)


def build_plateau(params: PlateauParams, optimizer, epochs: int = 1):
    """Reduce the learning rate when the monitored test metric stops improving."""
    from torch.optim import lr_scheduler

    return lr_scheduler.ReduceLROnPlateau(optimizer, **attrs.asdict(params))


@hookimpl
def register_optimizers(register):
    register("adam", build_adam, params=AdamParams, aliases=("Adam",))
    register("adamw", build_adamw, params=AdamWParams, aliases=("AdamW",))
    register("sgd", build_sgd, params=SGDParams, aliases=("SGD",))


@hookimpl
def register_schedulers(register):
    register("step", build_step, params=StepParams, aliases=("StepLR",))
    register("multistep", build_multistep, params=MultiStepParams, aliases=("MultiStepLR",))
    register("cosine", build_cosine, params=CosineParams, aliases=("CosineAnnealingLR",))
    register("plateau", build_plateau, params=PlateauParams, aliases=("ReduceLROnPlateau",))
