"""Components checked against their contracts where visim calls them.

A component is checked when it is built (the factory must not raise, and must return the
right type) and on its first use: the model's first training and first eval batch, the loss's
first value, the metric's first block. A breach raises :class:`ContractError`, whose message is
one line naming the kind, the registered name and the distribution that provides it. After the
first use nothing is checked again: the hooks remove themselves.

torch is imported only inside the functions (``visim.testing`` and the engine use them).
"""

from __future__ import annotations

import contextlib
import weakref
from typing import Any

from visim.errors import EXIT_FAILURE, VisimError
from visim.registry import SINGULAR, Component

# Built object -> the Component it came from, so a later breach can name its source. Kept
# beside the objects, not on them: a model or transform stays as its factory made it.
_provenance: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class ContractError(VisimError):
    """A component broke its contract (see :mod:`visim.contracts`); the CLI exits 1."""

    exit_code = EXIT_FAILURE
    log_traceback = True

    def __init__(self, who: str, problem: str) -> None:
        super().__init__(f"{who} {problem}")
        self.who = who


def describe(component: Component | None, kind: str = "", obj: Any = None) -> str:
    """``model 'acme.net' (visim-acme 0.1.0)``; an object from outside the registry by its type."""
    if component is None:
        return f"{SINGULAR.get(kind, kind)} {type(obj).__name__} (not built from the registry)"
    source = " ".join(filter(None, (component.distribution, component.version))) or f"plugin {component.plugin!r}"
    return f"{SINGULAR[component.kind]} {component.name!r} ({source})"


def component_of(obj: Any) -> Component | None:
    """The registered component ``obj`` was built from by :func:`build` (None if unknown)."""
    try:
        return _provenance.get(obj)
    except TypeError:  # not weak-referenceable or not hashable
        return None


def shape_of(value: Any) -> str:
    """``Tensor[64, 24]`` (with the dtype unless float32), a tuple of those, else the type."""
    import torch

    if isinstance(value, torch.Tensor):
        dtype = "" if value.dtype == torch.float32 else f" {str(value.dtype).removeprefix('torch.')}"
        return f"Tensor[{', '.join(map(str, value.shape))}]{dtype}"
    if isinstance(value, (tuple, list)):
        inner = ", ".join(shape_of(v) for v in value[:4]) + (", ..." if len(value) > 4 else "")
        return f"{type(value).__name__}({inner})"
    return type(value).__name__


# -- at build time ------------------------------------------------------------------------------
def passes_through() -> tuple[type[BaseException], ...]:
    """Errors a factory raises on purpose for its user (bad config or data): not breaches."""
    from visim.config.errors import ConfigError
    from visim.data.records import DataError

    return (ConfigError, DataError, ContractError)


def build(ref: Any, **context: Any) -> Any:
    """``ref.build(**context)`` (a config's component reference), checked against the contract.

    A factory that raises (other than a config or data error) or returns the wrong type is a
    :class:`ContractError` naming the component; the original exception is its ``__cause__``.
    The built object remembers its component (:func:`component_of`).
    """
    component = ref.component()
    try:
        built = component.build(ref.params, **context)
    except passes_through():
        raise
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ContractError(describe(component), f"failed to build: {type(exc).__name__}: {first}") from exc
    problem = BUILT_CHECKS[component.kind](built)
    if problem:
        raise ContractError(describe(component), problem)
    with contextlib.suppress(TypeError):  # not weak-referenceable or hashable: goes undescribed
        _provenance[built] = component
    return built


def check_module(obj: Any) -> str | None:
    from torch import nn

    return None if isinstance(obj, nn.Module) else f"must be a torch.nn.Module, got {type(obj).__name__}"


def check_model(model: Any) -> str | None:
    dim = getattr(model, "embedding_dim", None)
    if dim is not None and (type(dim) is not int or dim < 1):
        return f"must have an int embedding_dim >= 1 (or none), got {dim!r}"
    return check_module(model)


def check_metric(metric: Any) -> str | None:
    if not callable(metric):
        return f"must be callable as metric(a, b), got {type(metric).__name__}"
    if not isinstance(getattr(metric, "higher_is_better", False), bool):
        return f"must have a bool higher_is_better (or none), got {metric.higher_is_better!r}"
    return None


def check_dataset(data: Any) -> str | None:
    from visim.data.records import SPLITS, Record, ReidData

    if not isinstance(data, ReidData):
        return f"must return a visim.data.ReidData, got {type(data).__name__}"
    for split in SPLITS:
        for record in data.split(split):
            if not isinstance(record, Record) or type(record.pid) is not int or type(record.camid) is not int:
                return f"must hold visim.data.Record items with int pid and camid, got {record!r} in its {split} split"
    return None


def check_optimizer(optimizer: Any) -> str | None:
    import torch

    if isinstance(optimizer, torch.optim.Optimizer):
        return None
    return f"must return a torch.optim.Optimizer, got {type(optimizer).__name__}"


def check_scheduler(scheduler: Any) -> str | None:
    if all(callable(getattr(scheduler, m, None)) for m in ("step", "state_dict", "load_state_dict")):
        return None
    return f"must have step(), state_dict() and load_state_dict(), got {type(scheduler).__name__}"


def check_sampler(sampler: Any) -> str | None:
    if hasattr(sampler, "__iter__") and hasattr(sampler, "__len__"):
        return None
    return f"must be iterable (indices into the records) and have len(), got {type(sampler).__name__}"


def check_transform(transform: Any) -> str | None:
    return None if callable(transform) else f"must be callable, got {type(transform).__name__}"


BUILT_CHECKS = {
    "metrics": check_metric,
    "models": check_model,
    "losses": check_module,
    "datasets": check_dataset,
    "optimizers": check_optimizer,
    "schedulers": check_scheduler,
    "samplers": check_sampler,
    "transforms": check_transform,
}


# -- on first use -------------------------------------------------------------------------------
def tensor_problem(value: Any, what: str, shape: tuple, dims: str) -> str | None:
    """Why ``value`` is not a finite floating tensor of ``shape`` (None entries: any size)."""
    import torch

    if not isinstance(value, torch.Tensor):
        return f"{what} {dims}"
    if value.dim() != len(shape) or any(s is not None and s != n for s, n in zip(shape, value.shape)):
        wanted = ", ".join("?" if s is None else str(s) for s in shape)
        return f"{what} [{wanted}] {dims}"
    if not value.is_floating_point():
        return f"floating-point {what}"
    if not bool(torch.isfinite(value.detach()).all()):
        return f"finite {what} (no NaN or inf)"
    return None


def model_output_problem(output: Any, training: bool, batch: int, num_classes: int, dim: int | None) -> str | None:
    import torch

    if not training:
        problem = tensor_problem(output, "embeddings", (batch, dim), "(batch, embedding_dim)")
        return problem and f"must return {problem} in eval mode"
    if not (isinstance(output, (tuple, list)) and len(output) == 2 and all(isinstance(o, torch.Tensor) for o in output)):
        return "must return (logits, embeddings) in training mode"
    logits, embeddings = output
    classes = num_classes if num_classes > 0 else None
    problem = tensor_problem(logits, "logits", (batch, classes), "(batch, num_classes)") or tensor_problem(
        embeddings, "embeddings", (batch, dim), "(batch, embedding_dim)"
    )
    return problem and f"must return {problem} in training mode"


def watch_model(model: Any, *, num_classes: int, embedding_dim: int | None, modes=("train", "eval")) -> None:
    """Check the model's output on its first forward in each of ``modes``, then stop watching."""
    who = describe(component_of(model), "models", model)
    pending = set(modes)

    def hook(module, inputs, output):
        mode = "train" if module.training else "eval"
        if mode not in pending:
            return
        pending.discard(mode)
        if not pending:
            handle.remove()
        batch = inputs[0].shape[0] if inputs and hasattr(inputs[0], "shape") else None
        problem = model_output_problem(output, module.training, batch, num_classes, embedding_dim)
        if problem:
            raise ContractError(who, f"{problem}, got {shape_of(output)}")

    handle = model.register_forward_hook(hook)


def loss_problem(value: Any, needs_grad: bool) -> str | None:
    """``needs_grad``: the inputs or the loss's parameters require grad, so must the value."""
    import torch

    if not isinstance(value, torch.Tensor) or value.dim() != 0:
        return "must return a scalar tensor"
    if not value.is_floating_point():
        return "must return a floating-point scalar"
    if needs_grad and torch.is_grad_enabled() and not value.requires_grad:
        return "must return a scalar that requires grad (computed from its inputs or parameters)"
    if not bool(torch.isfinite(value.detach())):
        return f"must return a finite value on the first batch, got {value.item()}"
    return None


def watch_loss(loss: Any) -> None:
    """Check the loss's first value (a finite floating scalar with a gradient), then stop."""
    who = describe(component_of(loss), "losses", loss)

    def hook(module, inputs, output):
        handle.remove()
        tensors = [*inputs, *module.parameters()]
        problem = loss_problem(output, any(getattr(t, "requires_grad", False) for t in tensors))
        if problem:
            raise ContractError(who, problem if "got" in problem else f"{problem}, got {shape_of(output)}")

    handle = loss.register_forward_hook(hook)


class CheckedMetric:
    """Calls ``metric``, checking its first result block ([N, M], real, finite) unless
    ``checked`` already; an exception the metric raises, in any block, is a
    :class:`ContractError` naming it (the original is its ``__cause__``)."""

    def __init__(self, metric: Any, *, checked: bool = False) -> None:
        self.metric = metric
        self.higher_is_better = bool(getattr(metric, "higher_is_better", False))
        self.whole_gallery = bool(getattr(metric, "whole_gallery", False))  # see evaluation.blocks
        self.checked = checked

    @property
    def who(self) -> str:
        return describe(component_of(self.metric), "metrics", self.metric)

    def __call__(self, a: Any, b: Any) -> Any:
        try:
            block = self.metric(a, b)
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise ContractError(self.who, f"raised {type(exc).__name__}: {first}".rstrip(": ")) from exc
        if not self.checked:
            self.check(block, len(a), len(b))
            self.checked = True
        return block

    def check(self, block: Any, rows: int, cols: int) -> None:
        import torch

        who = self.who
        ok = isinstance(block, torch.Tensor) and tuple(block.shape) == (rows, cols)
        if not ok:
            raise ContractError(who, f"must return a [{rows}, {cols}] tensor for inputs of {rows} and {cols} rows, got {shape_of(block)}")
        if block.is_complex() or block.dtype == torch.bool:
            raise ContractError(who, f"must return real numbers, got {shape_of(block)}")
        if not bool(torch.isfinite(block).all()):
            raise ContractError(who, "must return finite values (no NaN or inf) on the first block")

    def __repr__(self) -> str:
        return repr(self.metric)


def measure_embedding_dim(model: Any, image_size, device: Any) -> int:
    """``D``: the model's ``embedding_dim``, else the width of an eval-mode forward of zeros.

    Zeros, eval mode and no_grad: nothing random is drawn and no BatchNorm statistic moves, so
    measuring leaves a run's results (and exact resume) as they were.
    """
    import torch

    dim = getattr(model, "embedding_dim", None)
    if dim is not None:
        return dim
    was_training = model.training
    model.eval()
    try:
        images = torch.zeros((2, 3, *image_size), device=device).contiguous(memory_format=torch.channels_last)
        with torch.no_grad():
            output = model(images)
    finally:
        model.train(was_training)
    problem = model_output_problem(output, False, 2, 0, None)
    if problem:
        raise ContractError(describe(component_of(model), "models", model), f"{problem}, got {shape_of(output)}")
    return int(output.shape[1])
