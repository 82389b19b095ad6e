"""The test-time preprocessing, read from the built test pipeline, and the exported module.

The graph does not resize. Resizing is where libraries disagree (PIL, OpenCV and torch give
different pixels for the same image), and ``visim predict`` resizes with PIL before anything
else; an image that is already at the model's input size passes torchvision's ``Resize``
unchanged. So the graph takes images at that size, and a caller who resizes the way the data
was prepared gets exactly ``visim predict``'s embeddings. What follows the resize (uint8 ->
float, /255, normalisation) is the same arithmetic in the same order as torchvision's
``to_tensor`` and ``Normalize``, so the graph's input tensor equals ``predict``'s bit for bit.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import torch
from torch import nn

from visim.data.transforms import Pipeline, TensorInput, to_tensor
from visim.deploy.errors import ExportError

SUPPORTED = "resize, to_tensor and normalize"


@attrs.frozen
class Preprocessing:
    """What the exported graph must do to a uint8 image, and the size it expects."""

    input_size: tuple[int, int]  # (height, width)
    mean: tuple[float, float, float] | None  # None: no normalisation, just /255
    std: tuple[float, float, float] | None
    resizes: tuple = ()  # the pipeline's Resize steps: the parity check applies them to PIL images

    @property
    def interpolation(self) -> str | None:
        """How ``visim predict`` resizes (PIL's filter of that name), None if it does not."""
        return self.resizes[-1].interpolation.value if self.resizes else None

    def resize(self, image):
        """A PIL image at the input size, as ``visim predict`` resizes it."""
        for step in self.resizes:
            image = step(image)
        return image


def read_preprocessing(pipeline: Pipeline, names: Sequence[str], image_size: Sequence[int]) -> Preprocessing:
    """The preprocessing of a built test ``pipeline`` (``names``: its steps' registered names)."""
    from torchvision import transforms

    size, normalize, resizes = tuple(image_size), None, []
    for name, step in zip(names, pipeline.transforms):
        if isinstance(step, transforms.Resize):
            size = (step.size, step.size) if isinstance(step.size, int) else tuple(step.size)
            resizes.append(step)
        elif step is to_tensor:
            continue
        elif isinstance(step, TensorInput) and isinstance(step.transform, transforms.Normalize) and normalize is None:
            normalize = step.transform
        else:
            raise ExportError(f"test transform {name!r} cannot be part of an exported graph (it can do {SUPPORTED}, once each)")
    mean = tuple(float(m) for m in normalize.mean) if normalize else None
    std = tuple(float(s) for s in normalize.std) if normalize else None
    return Preprocessing(size, mean, std, tuple(resizes))


class DeployableModel(nn.Module):
    """uint8 RGB ``[B, H, W, 3]`` -> the model's float32 embeddings ``[B, D]``."""

    def __init__(self, model: nn.Module, preprocessing: Preprocessing) -> None:
        super().__init__()
        self.model = model
        self.normalize = preprocessing.mean is not None
        mean = preprocessing.mean or (0.0, 0.0, 0.0)
        std = preprocessing.std or (1.0, 1.0, 1.0)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        # The order of torchvision's to_tensor (float, then /255) and Normalize (sub, then div).
        x = images.permute(0, 3, 1, 2).to(torch.float32).div(255)
        if self.normalize:
            x = x.sub(self.mean).div(self.std)
        return self.model(x).to(torch.float32)
