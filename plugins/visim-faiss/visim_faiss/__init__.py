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
    """Inverted lists: ``nlist`` k-means cells, ``nprobe`` of them visited per query.

    ``storage`` of the vectors in the lists: ``flat`` (float32), ``fp16``, ``sq8`` (8-bit), or
    ``pq`` (product quantiser, ``pq_m`` codes of 4 bits per vector, scanned with faiss's SIMD
    fast-scan: many times faster per vector, coarse distances). ``refine`` R > 1 re-ranks each
    query's ``R * k`` best candidates by their float16 vectors (kept beside the lists), which
    restores the ranking a coarse ``storage`` loses; 1 re-ranks nothing."""

    nlist: int = attrs.field(default=1024, validator=[v.instance_of(int), v.ge(1)])
    nprobe: int = attrs.field(default=16, validator=[v.instance_of(int), v.ge(1)])

    @nprobe.validator
    def _at_most_nlist(self, attribute, value):
        if value > self.nlist:
            raise ValueError(f"nprobe ({value}) cannot exceed nlist ({self.nlist})")

    storage: str = attrs.field(default="flat", validator=v.in_(("flat", "fp16", "sq8", "pq")))
    pq_m: int | None = attrs.field(default=None, validator=v.optional([v.instance_of(int), v.ge(1)]))  # default: dim / 2
    refine: int = attrs.field(default=1, validator=[v.instance_of(int), v.ge(1)])
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
