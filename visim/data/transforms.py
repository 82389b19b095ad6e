"""Image transforms as components (torchvision.transforms v1 underneath) and default pipelines.

``factory(params, image_size=(h, w))`` returns a callable on a PIL image or a CHW tensor.
Tensor-only steps (normalize, random_erasing) convert a PIL input first, and a pipeline always
ends with a float tensor, so ``[resize, random_flip, normalize]`` is a complete pipeline.
torchvision is imported inside the factories: registering these components costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs

from visim.config import rules

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
probability = rules.within(0.0, 1.0)
non_negative = rules.gte(0.0)
increasing_pair = rules.custom(lambda pair: 0 < pair[0] <= pair[1], "be [low, high] with 0 < low <= high")
optional_size = rules.optional(rules.forall(rules.gte(1)))
positive_items = rules.forall(rules.gt(0.0))


@attrs.frozen
class ResizeParams:
    # (height, width); None means the data section's image_size.
    size: tuple[int, int] | None = attrs.field(default=None, validator=optional_size)
    interpolation: str = attrs.field(default="bilinear", validator=rules.in_(("nearest", "bilinear", "bicubic")))


@attrs.frozen
class RandomFlipParams:
    p: float = attrs.field(default=0.5, validator=probability)


@attrs.frozen
class RandomCropParams:
    """Zero-pad every side by ``padding`` pixels, then crop ``image_size`` at random."""

    padding: int = attrs.field(default=10, validator=rules.gte(0))


@attrs.frozen
class RandomErasingParams:
    p: float = attrs.field(default=0.5, validator=probability)
    scale: tuple[float, float] = attrs.field(default=(0.02, 0.4), validator=increasing_pair)
    ratio: tuple[float, float] = attrs.field(default=(0.3, 3.33), validator=increasing_pair)
    value: float = 0.0


@attrs.frozen
class ColorJitterParams:
    brightness: float = attrs.field(default=0.2, validator=non_negative)
    contrast: float = attrs.field(default=0.15, validator=non_negative)
    saturation: float = attrs.field(default=0.0, validator=non_negative)
    hue: float = attrs.field(default=0.0, validator=rules.within(0.0, 0.5))


@attrs.frozen
class NormalizeParams:
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = attrs.field(default=IMAGENET_STD, validator=positive_items)


@attrs.frozen
class ToTensorParams:
    """No parameters: PIL image (0-255) -> float tensor CxHxW (0-1)."""


def to_tensor(image: Any) -> Any:
    """PIL -> float tensor; tensors pass through."""
    from PIL import Image
    from torchvision.transforms import functional

    return functional.to_tensor(image) if isinstance(image, Image.Image) else image


class TensorInput:
    """Run a tensor-only transform on PIL input too, converting it first."""

    def __init__(self, transform: Callable) -> None:
        self.transform = transform

    def __call__(self, image: Any) -> Any:
        return self.transform(to_tensor(image))

    def __repr__(self) -> str:
        return repr(self.transform)


class Pipeline:
    """Apply transforms in order; the result is always a float tensor (picklable for workers)."""

    def __init__(self, transforms: Sequence[Callable]) -> None:
        self.transforms = tuple(transforms)

    def __call__(self, image: Any) -> Any:
        for transform in self.transforms:
            image = transform(image)
        return to_tensor(image)

    def __repr__(self) -> str:
        inner = "".join(f"\n    {t!r}," for t in self.transforms)
        return f"Pipeline({inner}\n)"


def build_resize(params: ResizeParams, image_size: Sequence[int] = (256, 128)):
    """Resize to (height, width), upscaling small images (the digits) as needed."""
    from torchvision import transforms

    mode = getattr(transforms.InterpolationMode, params.interpolation.upper())
    return transforms.Resize(tuple(params.size or image_size), interpolation=mode, antialias=True)


def build_random_flip(params: RandomFlipParams, image_size: Sequence[int] = (256, 128)):
    """Mirror left-right with probability ``p``."""
    from torchvision import transforms

    return transforms.RandomHorizontalFlip(params.p)


def build_random_crop(params: RandomCropParams, image_size: Sequence[int] = (256, 128)):
    """Pad, then crop image_size at a random position (the strong-baseline augmentation)."""
    from torchvision import transforms

    return transforms.RandomCrop(tuple(image_size), padding=params.padding)


def build_random_erasing(params: RandomErasingParams, image_size: Sequence[int] = (256, 128)):
    """Erase a random rectangle with probability ``p`` (Zhong et al.); works on tensors."""
    from torchvision import transforms

    erase = transforms.RandomErasing(p=params.p, scale=params.scale, ratio=params.ratio, value=params.value)
    return TensorInput(erase)


def build_color_jitter(params: ColorJitterParams, image_size: Sequence[int] = (256, 128)):
    """Random brightness, contrast, saturation and hue changes."""
    from torchvision import transforms

    return transforms.ColorJitter(**attrs.asdict(params))


def build_normalize(params: NormalizeParams, image_size: Sequence[int] = (256, 128)):
    """Subtract the mean and divide by the std per channel (ImageNet statistics by default)."""
    from torchvision import transforms

    return TensorInput(transforms.Normalize(mean=list(params.mean), std=list(params.std)))


def build_to_tensor(params: ToTensorParams, image_size: Sequence[int] = (256, 128)):
    """Convert a PIL image to a float tensor in [0, 1]."""
    return to_tensor


def default_transform_refs(train: bool) -> tuple:
    """The default pipelines as config references (what ``train_transforms: null`` means)."""
    from visim.config.refs import TransformRef

    names = ("resize", "random_flip", "to_tensor", "normalize") if train else ("resize", "to_tensor", "normalize")
    return tuple(TransformRef.of(name) for name in names)


def build_pipeline(refs: Sequence[Any] | None, image_size: Sequence[int], *, train: bool) -> Pipeline:
    """Build configured transform references (None: the default pipeline) into one callable."""
    refs = default_transform_refs(train) if refs is None else refs
    from visim.contract_checks import build

    return Pipeline([build(ref, image_size=tuple(image_size)) for ref in refs])


def default_transforms(image_size: Sequence[int], train: bool) -> Pipeline:
    """Train: resize, random flip, to tensor, normalize. Test: resize, to tensor, normalize.

    Random erasing is off by default; add ``random_erasing`` to ``train_transforms`` for it.
    """
    return build_pipeline(None, image_size, train=train)
