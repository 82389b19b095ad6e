"""What visim expects of each component kind: the factory's context and the built object.

One typed contract per kind, written once. :mod:`visim.hookspecs` points here; the engine
checks the built objects against these contracts where it calls them
(:mod:`visim.contract_checks`); ``docs/contracts.rst`` explains them with examples.

A factory is always called ``factory(params, **context)``: ``params`` is an instance of the
params class given to ``register`` (an empty one when none was given), ``context`` holds the
keyword arguments listed in :data:`FACTORY_CONTEXT` for the kind. Keep a factory's context
arguments keyword-friendly (``def factory(params, *, num_classes, embedding_dim)``, or
``**context`` to ignore them).

Importing this module imports no torch: tensor types are named for type checkers only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import torch
    from torch import nn

    from visim.data.records import Record, ReidData

# The keyword arguments each kind's factory is called with, in addition to ``params``.
FACTORY_CONTEXT: dict[str, tuple[str, ...]] = {
    "metrics": (),
    "models": ("num_classes",),
    "losses": ("num_classes", "embedding_dim"),
    "datasets": (),
    "optimizers": ("parameters",),
    "schedulers": ("optimizer", "epochs"),
    "samplers": ("records", "batch_size", "seed", "num_replicas", "rank"),
    "transforms": ("image_size",),
}


# -- metrics ------------------------------------------------------------------------------------
@runtime_checkable
class Metric(Protocol):
    """A distance or similarity between two sets of embeddings.

    ``metric(a, b)`` takes ``a`` ``[N, E]`` and ``b`` ``[M, E]`` floating tensors on one device
    and returns a real ``[N, M]`` tensor of finite values. ``higher_is_better`` is False for
    distances (lower is closer; the default when the attribute is absent) and True for
    similarities. Evaluation calls the metric on blocks of queries against the whole gallery,
    under ``torch.no_grad``, so a row must not depend on the other rows of ``a``.
    :class:`visim.metrics.base.Metric` implements this protocol and validates the inputs.
    """

    higher_is_better: bool

    def __call__(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor: ...


class MetricFactory(Protocol):
    """``factory(params) -> Metric``: no context."""

    def __call__(self, params: Any) -> Metric: ...


# -- models -------------------------------------------------------------------------------------
@runtime_checkable
class EmbeddingModel(Protocol):
    """An ``nn.Module`` mapping images to embeddings, with an identity classifier for training.

    - Input: a float batch of images ``[B, 3, H, W]`` (``data.image_size`` is ``[H, W]``),
      normalised by the transforms, in ``channels_last`` memory format.
    - Training mode (``model.train()``): returns the tuple ``(logits, embeddings)``, logits
      ``[B, num_classes]`` and embeddings ``[B, D]``, floating point, finite.
    - Eval mode (``model.eval()``): returns the embeddings ``[B, D]`` only; this is what is
      ranked, exported and predicted. It runs under ``torch.inference_mode``.
    - ``embedding_dim``: the int ``D``. Optional: without it the engine measures ``D`` once
      with a forward of a zero batch in eval mode.

    Under a ``precision`` other than float32 the forward runs under ``torch.autocast``, so
    outputs may be float16 / bfloat16.
    """

    embedding_dim: int
    training: bool

    def __call__(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | torch.Tensor: ...


class ModelFactory(Protocol):
    """``factory(params, *, num_classes) -> nn.Module``: ``num_classes`` is the number of
    identities of the train split (1 for a run that only tests)."""

    def __call__(self, params: Any, *, num_classes: int) -> nn.Module: ...


# -- losses -------------------------------------------------------------------------------------
@runtime_checkable
class Loss(Protocol):
    """An ``nn.Module`` called ``loss(logits, embeddings, targets) -> scalar tensor``.

    ``logits`` ``[B, num_classes]`` and ``embeddings`` ``[B, D]`` are the model's training
    outputs; ``targets`` ``[B]`` int64 are the class ids ``0..num_classes-1``. The result is a
    0-dim floating tensor that requires grad, finite. A classification loss uses the logits, a
    metric loss the embeddings; ``sum`` combines any of them.

    A loss may have its own parameters (ArcFace / CosFace class weights, center-loss centers):
    they move to the device, are trained in their own optimizer param group (the optimizer's
    options, updated by the module's optional ``param_group`` dict, e.g. ``{"lr": 0.01}``),
    are all-reduced under DDP and are saved in every checkpoint under ``"loss"``, restored by
    ``--resume`` and ``--weights``.
    """

    def __call__(self, logits: torch.Tensor, embeddings: torch.Tensor, targets: torch.Tensor) -> torch.Tensor: ...


class LossFactory(Protocol):
    """``factory(params, *, num_classes, embedding_dim) -> nn.Module``: ``embedding_dim`` is
    the model's ``D`` (its ``embedding_dim`` attribute, or measured)."""

    def __call__(self, params: Any, *, num_classes: int, embedding_dim: int) -> nn.Module: ...


# -- datasets -----------------------------------------------------------------------------------
class DatasetFactory(Protocol):
    """``factory(params) -> visim.data.ReidData``: no context.

    The :class:`~visim.data.ReidData` holds the train, query and gallery splits as
    :class:`~visim.data.Record` tuples (``path``, int ``pid``, int ``camid``; pid -1 is junk)
    and loads images (RGB PIL images) by record. Subclass it to load images from elsewhere
    than files. The train split is relabelled to class ids ``0..C-1`` by ``ReidData`` itself.
    """

    def __call__(self, params: Any) -> ReidData: ...


# -- optimizers and schedulers ------------------------------------------------------------------
class OptimizerFactory(Protocol):
    """``factory(params, *, parameters) -> torch.optim.Optimizer``.

    ``parameters`` is a list of tensors, or of param-group dicts (``{"params": [...],
    "lr": ...}``) when the loss has parameters of its own: pass it to the optimizer unchanged.
    """

    def __call__(self, params: Any, *, parameters: Iterable[Any]) -> torch.optim.Optimizer: ...


@runtime_checkable
class Scheduler(Protocol):
    """A learning-rate scheduler stepped once per epoch: ``step()`` (``step(metric)`` for
    ``ReduceLROnPlateau``, with the monitored test metric), with ``state_dict`` /
    ``load_state_dict`` for checkpoints."""

    def step(self, *args: Any) -> None: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class SchedulerFactory(Protocol):
    """``factory(params, *, optimizer, epochs) -> Scheduler``: ``epochs`` is ``train.epochs``."""

    def __call__(self, params: Any, *, optimizer: torch.optim.Optimizer, epochs: int) -> Scheduler: ...


# -- samplers -----------------------------------------------------------------------------------
@runtime_checkable
class Sampler(Protocol):
    """The train split's sampler: iterates indices into ``records``, ``len()`` of them per epoch.

    ``set_epoch(epoch)``, when present, is called before each epoch: draw from a generator
    seeded with ``seed`` and ``epoch``, so a resumed run draws what a straight run draws. Under
    DDP each rank gets its share: ``num_replicas`` shares, this one ``rank``. The loader drops
    an incomplete last batch.
    """

    def __iter__(self) -> Iterator[int]: ...

    def __len__(self) -> int: ...


class SamplerFactory(Protocol):
    """``factory(params, *, records, batch_size, seed, num_replicas=1, rank=0) -> Sampler``."""

    def __call__(
        self,
        params: Any,
        *,
        records: Sequence[Record],
        batch_size: int,
        seed: int,
        num_replicas: int = 1,
        rank: int = 0,
    ) -> Sampler: ...


# -- transforms ---------------------------------------------------------------------------------
Transform = Callable[[Any], Any]
"""``transform(image) -> image``: a PIL image or a ``[3, H, W]`` float tensor in, either out.

Transforms run in order in the data loader's workers (so they must pickle); the pipeline ends
with a conversion to a float tensor, so the last one may return either.
"""


class TransformFactory(Protocol):
    """``factory(params, *, image_size) -> Transform``: ``image_size`` is ``(H, W)``."""

    def __call__(self, params: Any, *, image_size: tuple[int, int]) -> Transform: ...


# kind -> the protocol of what its factory returns (datasets: visim.data.ReidData)
CONTRACTS: dict[str, Any] = {
    "metrics": Metric,
    "models": EmbeddingModel,
    "losses": Loss,
    "datasets": "visim.data.ReidData",
    "optimizers": "torch.optim.Optimizer",
    "schedulers": Scheduler,
    "samplers": Sampler,
    "transforms": Transform,
}

__all__ = [
    "CONTRACTS",
    "FACTORY_CONTEXT",
    "DatasetFactory",
    "EmbeddingModel",
    "Loss",
    "LossFactory",
    "Metric",
    "MetricFactory",
    "ModelFactory",
    "OptimizerFactory",
    "Sampler",
    "SamplerFactory",
    "Scheduler",
    "SchedulerFactory",
    "Transform",
    "TransformFactory",
]
