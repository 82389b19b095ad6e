"""visim-acme: a backbone, a learnable margin loss and a folder dataset.

visim imports this module to call its hooks, also for ``visim plugins``: no torch here. The
factories import the torch code (``visim_acme.nets``) when a component is built.
"""

from __future__ import annotations

import attrs

from visim import hookimpl
from visim.config import rules


@attrs.frozen
class AcmeNetParams:
    width: int = attrs.field(default=16, validator=rules.gte(1))
    embedding_dim: int = attrs.field(default=64, validator=rules.gte(1))


@attrs.frozen
class CosFaceParams:
    scale: float = attrs.field(default=16.0, validator=rules.gt(0))
    margin: float = attrs.field(default=0.2, validator=rules.within(0, 1))


@attrs.frozen
class FoldersParams:
    root: str = attrs.field(validator=rules.folder_exists())


def build_net(params: AcmeNetParams, *, num_classes: int):
    """A small CNN: (logits, embeddings) in training mode, embeddings in eval mode."""
    from visim_acme.nets import AcmeNet

    return AcmeNet(params.width, params.embedding_dim, num_classes)


def build_cosface(params: CosFaceParams, *, num_classes: int, embedding_dim: int):
    """CosFace: a large-margin cosine loss whose class weights are learnt."""
    from visim_acme.nets import CosFace

    return CosFace(num_classes, embedding_dim, params.scale, params.margin)


def build_folders(params: FoldersParams):
    """root/{train,query,gallery}/<pid>_c<camid>_<anything>.png"""
    from pathlib import Path

    from visim.data.records import Record, ReidData

    def records(split):
        found = []
        for path in sorted(Path(params.root, split).glob("*.png")):
            pid, camid = path.stem.split("_")[:2]
            found.append(Record(str(path), int(pid), int(camid.removeprefix("c"))))
        return found

    # ReidData numbers the train identities 0..C-1: the classes a classifier learns.
    return ReidData(records("train"), records("query"), records("gallery"), name="acme_folders", root=params.root)


@hookimpl
def register_models(register):
    register("acme_net", build_net, params=AcmeNetParams)


@hookimpl
def register_losses(register):
    register("acme_cosface", build_cosface, params=CosFaceParams)


@hookimpl
def register_datasets(register):
    register("acme_folders", build_folders, params=FoldersParams)
