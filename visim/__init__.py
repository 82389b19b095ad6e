"""visim: train and evaluate visual-similarity (re-identification) embedding models.

Importing visim is cheap: torch and friends are imported only by the components and the
engine that need them.
"""

from visim.hookspecs import hookimpl
from visim.registry import Component, Registries, Registry

__version__ = "0.1.0"


def get_registry() -> Registries:
    """The registries of every component kind, filled by the built-in and installed plugins."""
    from visim.plugins import get_registry

    return get_registry()


def build_engine(config, **kwargs):
    """Build a :class:`~visim.engine.VisualSimilarityEngine` (and its loaders) from a config."""
    from visim.engine.build import build_engine

    return build_engine(config, **kwargs)


__all__ = ["Component", "Registries", "Registry", "__version__", "build_engine", "get_registry", "hookimpl"]
