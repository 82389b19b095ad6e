"""Transforms as components, and the default train/test pipelines built from image_size."""

from __future__ import annotations

import pickle

import pytest
import torch
from PIL import Image

from visim.config.errors import ConfigError
from visim.config.refs import TransformRef
from visim.data.transforms import IMAGENET_MEAN, IMAGENET_STD, build_pipeline, default_transforms
from visim.plugins import get_registry


def transform(name: str, image_size=(8, 4), **params):
    return get_registry().transforms.get(name).build(params, image_size=image_size)


def grey(value: int, size=(4, 8)) -> Image.Image:
    return Image.new("RGB", size, (value, value, value))


def half_and_half() -> Image.Image:
    """Left half black, right half white: flips are visible."""
    image = Image.new("RGB", (4, 2), (0, 0, 0))
    for x in (2, 3):
        for y in (0, 1):
            image.putpixel((x, y), (255, 255, 255))
    return image


def test_default_test_pipeline_resizes_and_normalises():
    pipeline = default_transforms((16, 8), train=False)
    out = pipeline(grey(255, size=(3, 3)))
    assert out.shape == (3, 16, 8) and out.dtype == torch.float32
    expected = torch.tensor([(1.0 - m) / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)])
    assert torch.allclose(out[:, 5, 3], expected, atol=1e-5)


def test_default_train_pipeline_flips_half_the_time():
    torch.manual_seed(0)
    pipeline = default_transforms((2, 4), train=True)
    left_pixels = {round(float(pipeline(half_and_half())[0, 0, 0]), 3) for _ in range(40)}
    assert len(left_pixels) == 2  # black or white on the left: flipped some of the time


def test_digits_sized_images_are_upscaled():
    out = transform("resize", image_size=(32, 16))(Image.new("RGB", (8, 8)))
    assert out.size == (16, 32)  # PIL: width, height
    assert transform("resize", size=[5, 7])(Image.new("RGB", (8, 8))).size == (7, 5)


def test_random_flip_probabilities():
    image = half_and_half()
    flipped = transform("random_flip", p=1.0)(image)
    assert flipped.getpixel((0, 0)) == (255, 255, 255)
    assert transform("random_flip", p=0.0)(image).getpixel((0, 0)) == (0, 0, 0)


def test_random_erasing_works_on_pil_input_and_erases():
    out = transform("random_erasing", p=1.0, scale=[0.2, 0.4], value=0.0)(grey(255, size=(8, 16)))
    assert out.shape == (3, 16, 8)
    erased = (out == 0).all(dim=0).sum().item()
    assert 0.2 * 128 * 0.5 <= erased <= 0.4 * 128 * 1.5


def test_color_jitter_changes_brightness():
    torch.manual_seed(1)
    jitter = transform("color_jitter", brightness=0.5, contrast=0.0)
    values = {jitter(grey(128)).getpixel((0, 0))[0] for _ in range(10)}
    assert len(values) > 1 and all(64 <= v <= 192 for v in values)


def test_random_crop_pads_then_crops_image_size():
    torch.manual_seed(0)
    crop = transform("random_crop", image_size=(8, 4), padding=3)
    outs = [crop(grey(200, size=(4, 8))) for _ in range(20)]
    assert all(o.size == (4, 8) for o in outs)
    assert any(o.getpixel((0, 0)) == (0, 0, 0) for o in outs)  # padding showed up somewhere


def test_configured_pipeline_always_ends_as_a_tensor():
    refs = (TransformRef.of("resize"), TransformRef.of("random_flip", p=0.0))
    out = build_pipeline(refs, (6, 3), train=True)(grey(51))
    assert isinstance(out, torch.Tensor) and torch.allclose(out, torch.full((3, 6, 3), 0.2), atol=1e-6)
    normalized = build_pipeline((TransformRef.of("normalize", mean=[0.2] * 3, std=[0.5] * 3),), (6, 3), train=False)
    assert torch.allclose(normalized(grey(51, size=(3, 6))), torch.zeros(3, 6, 3), atol=1e-6)


def test_pipelines_pickle_for_worker_processes():
    for train in (True, False):
        pipeline = default_transforms((8, 4), train=train)
        restored = pickle.loads(pickle.dumps(pipeline))
        assert restored(grey(10)).shape == (3, 8, 4)
    assert "Resize" in repr(default_transforms((8, 4), train=False))


@pytest.mark.parametrize(
    "name, params, message",
    [
        ("random_flip", {"p": 1.5}, "$.p"),
        ("random_erasing", {"scale": [0.5, 0.1]}, "must be [low, high] with 0 < low <= high (got (0.5, 0.1)) @ $.scale"),
        ("normalize", {"std": [1.0, 0.0, 1.0]}, "must be > 0.0 (got 0.0) @ $.std[1]"),
        ("normalize", {"mean": [0.5, 0.5]}, "expected exactly 3 items"),
        ("resize", {"interpolation": "lanczos"}, "$.interpolation"),
        ("resize", {"size": [0, 4]}, "must be >= 1 (got 0) @ $.size[0]"),
    ],
)
def test_bad_transform_params_are_config_errors(name, params, message):
    with pytest.raises(ConfigError) as info:
        transform(name, **params)
    assert message in str(info.value)
