"""Building blocks of bounded-memory reranking: nearest neighbours by chunks, sparse rows."""

from __future__ import annotations

import warnings

import attrs
import torch

from visim.evaluation.options import BYTES_PER_PAIR, SCRATCH_SHARE


def chunk_rows(num_columns: int, memory_budget: int) -> int:
    """Rows of a ``[rows, num_columns]`` distance block (and its temporaries) within the budget,
    by the same accounting as the evaluation's chunks."""
    room = memory_budget - memory_budget // SCRATCH_SHARE
    return max(1, room // max(1, num_columns * BYTES_PER_PAIR))


def clipped(k: int, available: int, what: str) -> int:
    """``k``, or ``available`` with a warning when there are fewer items than ``k`` asks for."""
    if k > available:
        warnings.warn(
            f"{what}={k} asks for more neighbours than the {available} items available; "
            f"using {available}",
            stacklevel=3,
        )
        return available
    return k


def smallest_k(keys: torch.Tensor, k: int) -> torch.Tensor:
    """``[c, k]`` column indices of the ``k`` smallest keys of each row, smallest first; equal
    keys are ordered by column index, so the result is deterministic."""
    if bool(torch.isnan(keys.amax())):
        raise ValueError("the distances contain NaN; check the embeddings and the metric")
    kth = keys.topk(k, dim=1, largest=False, sorted=True).values[:, -1:]
    rows, cols = (keys <= kth).nonzero(as_tuple=True)  # row-major: columns ascending per row
    order = torch.sort(keys[rows, cols], stable=True).indices
    order = order[torch.sort(rows[order], stable=True).indices]
    rows, cols = rows[order], cols[order]
    counts = torch.bincount(rows, minlength=keys.shape[0])
    first = counts.cumsum(0) - counts
    return cols[first[:, None] + torch.arange(k, device=keys.device)]


def expand_ranges(starts: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(owner, position)`` for every position of the ranges ``starts[i] .. +lengths[i]``."""
    owner = torch.repeat_interleave(torch.arange(len(lengths), device=lengths.device), lengths)
    offsets = lengths.cumsum(0) - lengths
    positions = torch.arange(len(owner), device=lengths.device) - offsets[owner] + starts[owner]
    return owner, positions


@attrs.frozen(eq=False)
class SparseRows:
    """A sparse ``[rows, columns]`` matrix in compressed-row form (columns ascending per row)."""

    crow: torch.Tensor  # [rows + 1] offsets into col / val
    col: torch.Tensor
    val: torch.Tensor
    num_columns: int

    @classmethod
    def from_parts(cls, parts, num_columns: int, device) -> SparseRows:
        """From ``(counts per row, col, val)`` parts, in row order."""
        counts, cols, vals = zip(*parts)
        counts = torch.cat(counts)
        crow = torch.zeros(len(counts) + 1, dtype=torch.long, device=device)
        crow[1:] = counts.cumsum(0)
        return cls(crow, torch.cat(cols), torch.cat(vals), num_columns)

    def entries(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(i, col, val)`` of the entries of ``rows``; ``i`` indexes ``rows``."""
        owner, positions = expand_ranges(self.crow[rows], self.crow[rows + 1] - self.crow[rows])
        return owner, self.col[positions], self.val[positions]

    def row_lengths(self) -> torch.Tensor:
        return self.crow[1:] - self.crow[:-1]

    def transposed(self) -> SparseRows:
        """The columns as rows: an inverted index from a column to the rows that use it."""
        rows = torch.repeat_interleave(
            torch.arange(len(self.crow) - 1, device=self.col.device), self.row_lengths()
        )
        order = torch.sort(self.col, stable=True).indices
        counts = torch.bincount(self.col, minlength=self.num_columns)
        return SparseRows.from_parts([(counts, rows[order], self.val[order])], len(self.crow) - 1, self.col.device)


def weighted_neighbour_mean(
    features: torch.Tensor, database: torch.Tensor, k: int, alpha: float, memory_budget: int
) -> torch.Tensor:
    """Each row of ``features`` replaced by the mean over its ``k`` most cosine-similar rows of
    ``database`` (itself included when it is there) of ``similarity ** alpha * database row``.

    ``alpha = 0`` gives the plain mean. Similarities come from L2-normalised rows; the rows
    averaged are the raw ones. One chunk of ``features`` at a time.
    """
    unit = torch.nn.functional.normalize(features, dim=1)
    unit_db = torch.nn.functional.normalize(database, dim=1)
    rows = chunk_rows(len(database), memory_budget)
    out = torch.empty_like(features)
    for start in range(0, len(features), rows):
        similarity = unit[start : start + rows] @ unit_db.T
        nearest = smallest_k(-similarity, k)
        weights = similarity.gather(1, nearest).pow(alpha)
        out[start : start + rows] = (database[nearest] * weights[..., None]).mean(1)
    return out
