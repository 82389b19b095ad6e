"""A loss's own parameters (ArcFace class weights, center-loss centers): trained, saved, restored.

The engine gives them their own optimizer param group(s) and keeps their state in every
checkpoint under ``"loss"``. A loss module (or a term inside ``sum``) may set a
``param_group`` dict, e.g. ``{"lr": 0.01, "weight_decay": 0.0}``: its parameters then get a
group of their own with those options over the optimizer's.
"""

from __future__ import annotations

import warnings
from typing import Any

from torch import nn

from visim.engine.checkpoint import CheckpointError, strip_module_prefix


def param_groups(loss: nn.Module | None) -> list[dict[str, Any]]:
    """The loss's trainable parameters as optimizer param groups (none when it has none).

    The innermost module that sets ``param_group`` decides a parameter's options; the rest
    share one group with the optimizer's own options.
    """
    if loss is None:
        return []
    groups: list[dict[str, Any]] = []
    claimed: set[int] = set()
    for module in reversed(list(loss.modules())):  # children before their parents
        options = getattr(module, "param_group", None)
        if options is None:
            continue
        params = [p for p in module.parameters() if p.requires_grad and id(p) not in claimed]
        claimed.update(id(p) for p in params)
        if params:
            groups.append({**dict(options), "params": params})
    rest = [p for p in loss.parameters() if p.requires_grad and id(p) not in claimed]
    return ([{"params": rest}] if rest else []) + groups[::-1]


def state_of(loss: nn.Module | None) -> dict[str, Any] | None:
    """What a checkpoint keeps of the loss (its state dict, without DDP's ``module.``)."""
    if loss is None:
        return None
    inner = loss.module if hasattr(loss, "module") else loss
    return strip_module_prefix(inner.state_dict())


def restore(loss: nn.Module | None, state: dict[str, Any] | None, path: Any, *, strict: bool) -> None:
    """Load a checkpoint's ``"loss"`` into ``loss``.

    ``strict`` (resume): a loss state that does not fit is a :class:`CheckpointError`.
    Otherwise (``--weights``, which may start a new loss from old model weights) it is a
    warning and the loss keeps its fresh parameters.
    """
    if loss is None or state is None:
        return
    inner = loss.module if hasattr(loss, "module") else loss
    try:
        inner.load_state_dict(state)
    except RuntimeError as exc:
        message = f"the loss state in {path} does not fit this loss: {str(exc).splitlines()[0]}"
        if strict:
            raise CheckpointError(message) from None
        warnings.warn(f"{message}; the loss starts afresh", stacklevel=2)


def own_options(loss: nn.Module | None) -> list[set[str]]:
    """Per optimizer param group (the model's first), the options it sets itself rather than
    taking the optimizer's (a loss's ``param_group``, e.g. its own ``lr``)."""
    return [set(), *(set(group) - {"params"} for group in param_groups(loss))]
