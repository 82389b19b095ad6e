"""The plugin contract: one hook per component kind.

Each hook receives ``register(name, factory, params=ParamsClass, aliases=(), doc=None)``.
``params`` is a frozen attrs class: its fields, defaults and validators are the component's
config schema. ``factory(params, **context)`` builds the component.
"""

import pluggy

hookspec = pluggy.HookspecMarker("visim")
hookimpl = pluggy.HookimplMarker("visim")


@hookspec
def register_metrics(register):
    """Register distance / similarity metrics: ``factory(params) -> callable(a, b) -> [N, M]``."""


@hookspec
def register_models(register):
    """Register embedding models: ``factory(params, num_classes=...) -> torch.nn.Module``."""


@hookspec
def register_losses(register):
    """Register losses: ``factory(params, num_classes=...) -> callable(outputs, batch) -> loss``."""


@hookspec
def register_datasets(register):
    """Register datasets: ``factory(params, ...) -> object with train, query and gallery``."""


@hookspec
def register_optimizers(register):
    """Register optimizers: ``factory(params, parameters=...) -> torch.optim.Optimizer``."""


@hookspec
def register_schedulers(register):
    """Register learning-rate schedulers: ``factory(params, optimizer=..., epochs=...)``."""


@hookspec
def register_samplers(register):
    """Register batch samplers: ``factory(params, records=..., batch_size=..., seed=...)``."""


@hookspec
def register_transforms(register):
    """Register image transforms: ``factory(params, image_size=...) -> callable``."""


@hookspec
def register_indexes(register):
    """Register gallery indexes: ``factory(params, metric=..., dim=...) -> GalleryIndex``
    (see :mod:`visim.index.base`)."""


@hookspec
def register_rules(register):
    """Register named validation rules: ``register(name, check, unary=False, doc=None)``."""
