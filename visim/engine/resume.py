"""What a resumed run may change: settings applied to the restored state, settings refused.

A checkpoint keeps the config it ran with (its ``config``). Resuming compares that config,
setting by setting, with the config given now. A changed setting is either applied (it takes
effect from the resumed epoch on, and the run's ``config.yaml`` says so) or refused with one
line naming it (:class:`ResumeConflict`, exit 2): nothing is ignored silently. The policy
is :data:`POLICY`, by the longest matching path; docs/engine.rst shows it as a table.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from typing import Any

import attrs

from visim.engine.checkpoint import CheckpointError

APPLIED = None  # a POLICY value: the setting takes effect on resume

# Setting path -> None (applied) or why it cannot change under a resumed run.
POLICY: dict[str, str | None] = {
    "$": "it shapes what was trained",
    "$.name": APPLIED,
    "$.log_dir": APPLIED,
    "$.device": APPLIED,
    "$.precision": APPLIED,
    "$.seed": "the run's random draws derive from it",
    "$.model": "the weights belong to this model",
    "$.data": "the trained model and the sampler's plan depend on it",
    "$.data.num_workers": APPLIED,
    "$.data.eval_batch_size": APPLIED,
    "$.data.on_bad_image": APPLIED,
    "$.data.test_transforms": APPLIED,
    "$.train": APPLIED,  # epochs, eval_interval, save_interval, grad_clip, topk_acc, nof_classes
    "$.train.start_epoch": "a resumed run starts after the checkpoint's epoch",
    "$.train.best_metric": "best.pt was chosen by it",
    "$.train.loss": "the loss and its parameters' state are the checkpoint's",
    "$.train.optimizer": "the optimizer state is the checkpoint's (only lr and weight_decay apply)",
    "$.train.optimizer.lr": APPLIED,
    "$.train.optimizer.weight_decay": APPLIED,
    "$.train.scheduler": "the schedule's state is the checkpoint's",
    "$.test": APPLIED,
}
LR, WEIGHT_DECAY = "$.train.optimizer.lr", "$.train.optimizer.weight_decay"


class ResumeConflict(CheckpointError):
    """A resumed run's config changes a setting the checkpoint's state fixes (exit 2)."""

    def report(self, source: str | None = None) -> str:
        return "\n".join(f"{self.prog}: error: {line}" for line in str(self).splitlines())


@attrs.frozen
class Change:
    path: str
    old: Any
    new: Any

    @property
    def setting(self) -> str:
        return self.path.removeprefix("$.")

    @property
    def refusal(self) -> str | None:
        """Why this change is refused, or None when it is applied."""
        parts = self.path.split(".")
        for end in range(len(parts), 0, -1):
            prefix = ".".join(parts[:end])
            if prefix in POLICY:
                return POLICY[prefix]
        return POLICY["$"]

    def __str__(self) -> str:
        return f"{self.setting} {shown(self.old)} -> {shown(self.new)}"


def shown(value: Any) -> str:
    if isinstance(value, Mapping):  # a component: its name says enough
        return repr(value.get("name", "{...}"))
    return repr(value)


def changes(old: Any, new: Any, path: str = "$") -> list[Change]:
    """The settings that differ; a component whose name changed is one change (its name)."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        if "name" in old and old.get("name") != new.get("name"):
            return [Change(f"{path}.name", old.get("name"), new.get("name"))]
        found = []
        for key in [*old, *(k for k in new if k not in old)]:
            found += changes(old.get(key), new.get(key), f"{path}.{key}")
        return found
    return [] if old == new else [Change(path, old, new)]


def check(saved: Mapping | None, current: Mapping, path: Any) -> list[Change]:
    """The applied changes from the checkpoint's config ``saved`` to ``current``; a
    :class:`ResumeConflict` listing every refused one (one line each). A checkpoint without
    its config (an older visim) is trusted as it is."""
    if saved is None:
        return []
    found = changes(saved, current)
    refused = [c for c in found if c.refusal is not None]
    if refused:
        raise ResumeConflict(
            "\n".join(
                f"cannot resume {path} with {c.setting} changed ({shown(c.old)} in the checkpoint, "
                f"{shown(c.new)} now): {c.refusal}; start a new run (--weights keeps the model weights)"
                for c in refused
            )
        )
    return found


def scheduler_parts(scheduler: Any) -> list[Any]:
    """The scheduler and the ones it chains (a warm-up's SequentialLR holds two)."""
    if scheduler is None:
        return []
    return [scheduler, *getattr(scheduler, "_schedulers", [])]


def schedule_lengths(scheduler: Any) -> list[Any]:
    """What a scheduler derived from ``train.epochs`` (cosine's ``T_max``), to keep over the
    checkpoint's when ``epochs`` changed."""
    return [getattr(part, "T_max", None) for part in scheduler_parts(scheduler)]


def apply(found: list[Change], optimizer: Any, scheduler: Any, lengths: list[Any], own: list[set[str]]) -> None:
    """Apply the changed lr / weight_decay to the restored optimizer (and the scheduler's base
    rates), and a schedule length derived from a changed ``epochs``.

    A new ``lr`` rescales the schedule: each group's current rate (and the scheduler's base
    rates) by new / old, so the resumed epochs run as if the run had started with the new
    ``lr``. Groups that set an option themselves (a loss's ``param_group``, ``own``) keep it.
    """
    by_path = {c.path: c for c in found}
    if WEIGHT_DECAY in by_path:
        for group, options in zip(optimizer.param_groups, own):
            if "weight_decay" not in options:
                group["weight_decay"] = by_path[WEIGHT_DECAY].new
    if LR in by_path:
        rescale_lr(by_path[LR].old, by_path[LR].new, optimizer, scheduler, [("lr" in o) for o in own])
    for part, length in zip(scheduler_parts(scheduler), lengths):
        if length is not None and part.T_max != length:
            part.T_max = length
            if part is active_part(scheduler):  # its rate now, as a straight run would have it
                rates = part._get_closed_form_lr()
                for group, rate in zip(optimizer.param_groups, rates):
                    group["lr"] = rate
                part._last_lr = rates


def rescale_lr(old: float, new: float, optimizer: Any, scheduler: Any, keep: list[bool]) -> None:
    def rescaled(rate: float) -> float:
        return rate / old * new  # exactly ``new`` for an unscheduled rate

    for group, fixed in zip(optimizer.param_groups, keep):
        if not fixed:
            group["lr"] = rescaled(group["lr"])
            if "initial_lr" in group:
                group["initial_lr"] = rescaled(group["initial_lr"])
    for part in scheduler_parts(scheduler):
        for name in ("base_lrs", "_last_lr"):
            rates = getattr(part, name, None)
            if rates is not None:
                setattr(part, name, [r if fixed else rescaled(r) for r, fixed in zip(rates, keep)])


def active_part(scheduler: Any) -> Any:
    """The scheduler that sets the rate now (in a SequentialLR, the one past the milestones)."""
    chained = getattr(scheduler, "_schedulers", None)
    if not chained:
        return scheduler
    return chained[bisect.bisect_right(scheduler._milestones, scheduler.last_epoch)]
