"""The metric contract: a callable ``(a [N, E], b [M, E]) -> [N, M]`` tensor.

:class:`Metric` validates the inputs once so that subclasses only write the arithmetic. This
module does not import torch at import time, so a plugin can subclass :class:`Metric` at the top
of its hook module without making ``visim plugins`` load torch.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any


def as_matrix_pair(a: Any, b: Any) -> tuple[Any, Any]:
    """Two 2-D floating tensors with the same embedding size, on ``a``'s device.

    numpy arrays and nested lists are accepted; integer inputs become float32 and mixed float
    dtypes are promoted (float16 + float32 -> float32).
    """
    import torch

    a, b = torch.as_tensor(a), torch.as_tensor(b)
    for label, x in (("first", a), ("second", b)):
        if x.dim() != 2:
            raise ValueError(
                f"the {label} input must be a 2-D [N, E] matrix of embeddings, "
                f"got shape {tuple(x.shape)}"
            )
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"embedding sizes differ: {tuple(a.shape)} vs {tuple(b.shape)} "
            "(both inputs need the same number of columns)"
        )
    dtype = torch.promote_types(a.dtype, b.dtype)
    if not dtype.is_floating_point:
        dtype = torch.float32
    return a.to(dtype), b.to(device=a.device, dtype=dtype)


class Metric(ABC):
    """Base class of distance / similarity metrics.

    Subclasses implement :meth:`compute` on validated inputs. ``higher_is_better`` is False for
    distances (lower is closer) and True for similarities; evaluation ranks accordingly.
    """

    higher_is_better: bool = False

    def __call__(self, a: Any, b: Any) -> Any:
        a, b = as_matrix_pair(a, b)
        return self.compute(a, b)

    @abstractmethod
    def compute(self, a: Any, b: Any) -> Any:
        """The ``[N, M]`` matrix between the rows of ``a`` and the rows of ``b``."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
