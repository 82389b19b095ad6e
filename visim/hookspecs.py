"""The plugin contract: one hook per component kind.

Each hook receives ``register(name, factory, params=ParamsClass, aliases=(), doc=None)``.
``params`` is a frozen attrs class: its fields, defaults and validators are the component's
config schema (leave it out for a component without parameters). ``factory(params, **context)``
builds the component; what each kind's factory receives and must return is its contract, in
:mod:`visim.contracts` (see also the contracts page of the docs).
"""

import pluggy

hookspec = pluggy.HookspecMarker("visim")
hookimpl = pluggy.HookimplMarker("visim")


@hookspec
def register_metrics(register):
    """Register distance / similarity metrics: ``factory(params) -> metric(a [N, E], b [M, E]) -> [N, M]``
    (:class:`visim.contracts.Metric`)."""


@hookspec
def register_models(register):
    """Register embedding models: ``factory(params, *, num_classes) -> torch.nn.Module`` returning
    ``(logits, embeddings)`` in training mode, ``embeddings`` in eval mode
    (:class:`visim.contracts.EmbeddingModel`)."""


@hookspec
def register_losses(register):
    """Register losses: ``factory(params, *, num_classes, embedding_dim) -> torch.nn.Module`` called
    ``loss(logits, embeddings, targets) -> scalar tensor`` (:class:`visim.contracts.Loss`)."""


@hookspec
def register_datasets(register):
    """Register datasets: ``factory(params) -> visim.data.ReidData`` of train, query and gallery
    :class:`~visim.data.Record` s (:class:`visim.contracts.DatasetFactory`)."""


@hookspec
def register_optimizers(register):
    """Register optimizers: ``factory(params, *, parameters) -> torch.optim.Optimizer``
    (:class:`visim.contracts.OptimizerFactory`)."""


@hookspec
def register_schedulers(register):
    """Register learning-rate schedulers: ``factory(params, *, optimizer, epochs)``, stepped per epoch
    (:class:`visim.contracts.Scheduler`)."""


@hookspec
def register_samplers(register):
    """Register train samplers: ``factory(params, *, records, batch_size, seed, num_replicas=1, rank=0)``
    (:class:`visim.contracts.Sampler`)."""


@hookspec
def register_transforms(register):
    """Register image transforms: ``factory(params, *, image_size) -> transform(image) -> image``
    (:data:`visim.contracts.Transform`)."""


@hookspec
def register_rerankers(register):
    """Register rerankers: ``factory(params) -> visim.rerank.base.Reranker`` (see its contract)."""


@hookspec
def register_indexes(register):
    """Register gallery indexes: ``factory(params, metric=..., dim=...) -> GalleryIndex``
    (see :mod:`visim.index.base`)."""


@hookspec
def register_rules(register):
    """Register named validation rules: ``register(name, check, unary=False, doc=None)``."""
