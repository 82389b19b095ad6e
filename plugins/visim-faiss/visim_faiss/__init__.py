"""faiss gallery indexes for visim: ``faiss.flat``, ``faiss.ivf``, ``faiss.hnsw``.

This hook module imports neither faiss nor torch; :mod:`visim_faiss.index` does, when an index
is built.
"""

from __future__ import annotations

import attrs
from attrs import validators as v

import visim

__version__ = "0.1.0"


@attrs.frozen
class FlatParams:
    """Exact search by faiss (no parameters)."""


@attrs.frozen(kw_only=True)
class IVFParams:
    """Inverted lists: ``nlist`` k-means cells, ``nprobe`` of them visited per query;
    ``storage`` of the vectors: ``flat`` (float32), ``fp16`` or ``sq8`` (8-bit)."""

    nlist: int = attrs.field(default=1024, validator=[v.instance_of(int), v.ge(1)])
    nprobe: int = attrs.field(default=16, validator=[v.instance_of(int), v.ge(1)])

    @nprobe.validator
    def _at_most_nlist(self, attribute, value):
        if value > self.nlist:
            raise ValueError(f"nprobe ({value}) cannot exceed nlist ({self.nlist})")

    storage: str = attrs.field(default="flat", validator=v.in_(("flat", "fp16", "sq8")))
    train_size: int = attrs.field(default=256, validator=[v.instance_of(int), v.ge(39)])  # per cell


@attrs.frozen(kw_only=True)
class HNSWParams:
    """Graph search: ``M`` links per node, ``ef_search`` / ``ef_construction`` beam widths."""

    M: int = attrs.field(default=32, validator=[v.instance_of(int), v.ge(2)])
    ef_search: int = attrs.field(default=64, validator=[v.instance_of(int), v.ge(1)])
    ef_construction: int = attrs.field(default=40, validator=[v.instance_of(int), v.ge(1)])


def factory(kind: str):
    def build(params, *, metric, dim: int):
        from visim_faiss.index import FaissIndex

        return FaissIndex(kind, params, metric, dim)

    build.__doc__ = f"faiss {kind} index."
    return build


@visim.hookimpl
def register_indexes(register):
    register("faiss.flat", factory("flat"), params=FlatParams, doc="faiss exact (flat) search.")
    register("faiss.ivf", factory("ivf"), params=IVFParams, doc="faiss IVF: approximate, nlist cells, nprobe visited.")
    register("faiss.hnsw", factory("hnsw"), params=HNSWParams, doc="faiss HNSW graph: approximate.")
