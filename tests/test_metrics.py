"""Built-in metrics: registration, numbers against scipy, similarity flags, input checks."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist
from scipy.special import softmax

import visim
from visim.config.errors import ConfigError
from visim.metrics.base import Metric

RNG = np.random.default_rng(0)
A = RNG.standard_normal((7, 5))
B = RNG.standard_normal((11, 5))

DISTANCES = {
    "euclidean": cdist(A, B, "euclidean"),
    "sqeuclidean": cdist(A, B, "sqeuclidean"),
    "cosine": cdist(A, B, "cosine"),
    "manhattan": cdist(A, B, "cityblock"),
    "chebyshev": cdist(A, B, "chebyshev"),
    "cosine_similarity": 1 - cdist(A, B, "cosine"),
    "dot": A @ B.T,
    "negsoftmax_euclidean": softmax(-cdist(A, B, "euclidean"), axis=1),
    "negsoftmax_sqeuclidean": softmax(-cdist(A, B, "sqeuclidean"), axis=1),
}
SIMILARITIES = {"cosine_similarity", "dot", "negsoftmax_euclidean", "negsoftmax_sqeuclidean"}
ORIGINAL_NAMES = {
    "EuclideanDistance": "euclidean",
    "EuclideanSquare": "sqeuclidean",
    "CosineDistance": "cosine",
    "CosineSimilarity": "cosine_similarity",
    "NegSoftmaxEuclideanDist": "negsoftmax_euclidean",
    "NegSoftmaxEuclideanSqDist": "negsoftmax_sqeuclidean",
}


def build(name, params=None):
    return visim.get_registry().metrics.get(name).build(params)


@pytest.mark.parametrize("name", sorted(DISTANCES))
def test_metric_matches_scipy_and_declares_its_direction(name):
    metric = build(name)
    out = metric(torch.from_numpy(A), torch.from_numpy(B))
    assert isinstance(out, torch.Tensor) and out.shape == (7, 11)
    np.testing.assert_allclose(out.numpy(), DISTANCES[name], rtol=1e-9, atol=1e-9)
    assert bool(getattr(metric, "higher_is_better", False)) is (name in SIMILARITIES)


@pytest.mark.parametrize("p", [1, 1.5, 2, 3, float("inf")])
def test_minkowski_p(p):
    out = build("minkowski", {"p": p})(A, B)
    expected = cdist(A, B, "chebyshev") if p == float("inf") else cdist(A, B, "minkowski", p=p)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-9)


def test_minkowski_rejects_p_below_one():
    with pytest.raises(ConfigError, match=r"\$\.p"):
        build("minkowski", {"p": 0.5})
    from visim.metrics.distances import Minkowski

    with pytest.raises(ValueError, match="p >= 1"):
        Minkowski(0.5)


def test_metrics_take_no_unknown_params():
    with pytest.raises(ConfigError, match="unknown"):
        build("cosine", {"p": 2})


@pytest.mark.parametrize("alias", sorted(ORIGINAL_NAMES))
def test_original_camelcase_names_resolve(alias):
    assert visim.get_registry().metrics.get(alias).name == ORIGINAL_NAMES[alias]


def test_every_builtin_is_registered_by_visim():
    registry = visim.get_registry().metrics
    for name in [*DISTANCES, "minkowski"]:
        component = registry.get(name)
        assert component.builtin and component.distribution == "visim"
        assert component.summary


@pytest.mark.parametrize("name", ["cosine", "cosine_similarity"])
def test_zero_vector_has_cosine_zero_not_nan(name):
    zero = torch.zeros(2, 5)
    out = build(name)(zero, torch.from_numpy(B).float())
    assert not torch.isnan(out).any()
    np.testing.assert_allclose(out.numpy(), 1.0 if name == "cosine" else 0.0)


@pytest.mark.parametrize(
    ("a", "b", "message"),
    [
        (np.ones(5), B, "first input must be a 2-D"),
        (A, np.ones((2, 3, 5)), "second input must be a 2-D"),
        (A, np.ones((3, 4)), "embedding sizes differ"),
    ],
)
def test_metrics_reject_bad_shapes(a, b, message):
    for name in ("euclidean", "cosine", "dot", "minkowski"):
        with pytest.raises(ValueError, match=message):
            build(name)(a, b)


def test_inputs_are_converted_and_promoted():
    metric = build("sqeuclidean")
    assert metric(np.ones((2, 3), dtype=np.int64), np.zeros((4, 3), dtype=np.int32)).dtype == torch.float32
    mixed = metric(torch.ones(2, 3, dtype=torch.float16), torch.zeros(4, 3))
    assert mixed.dtype == torch.float32 and torch.all(mixed == 3)
    assert metric(A, B).dtype == torch.float64


def test_squared_euclidean_is_never_negative():
    x = torch.randn(50, 64, dtype=torch.float32) * 100
    assert (build("sqeuclidean")(x, x) >= 0).all()


def test_negsoftmax_rows_are_distributions_over_the_gallery():
    out = build("negsoftmax_euclidean")(A, B)
    np.testing.assert_allclose(out.sum(1).numpy(), 1.0)


def test_custom_metric_gets_the_base_class_checks():
    class Halved(Metric):
        def compute(self, a, b):
            return torch.cdist(a, b) / 2

    with pytest.raises(ValueError, match="embedding sizes differ"):
        Halved()(A, np.ones((2, 4)))
    np.testing.assert_allclose(Halved()(A, B).numpy(), cdist(A, B) / 2)
    assert Halved.higher_is_better is False and repr(Halved()) == "Halved()"


def test_loading_the_metric_registry_does_not_import_torch():
    code = (
        "import sys, visim; visim.get_registry().metrics.get('cosine'); "
        "import visim.metrics.base; assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_metrics_page_lists_every_builtin_name_and_alias():
    from pathlib import Path

    page = (Path(__file__).parents[1] / "docs" / "metrics.rst").read_text()
    for component in visim.get_registry().metrics:
        if component.builtin:
            for name in (component.name, *component.aliases):
                assert f"``{name}``" in page, name


@pytest.mark.parametrize("name", ["euclidean", "sqeuclidean", "negsoftmax_euclidean", "minkowski"])
@pytest.mark.parametrize("change", ["in_place", "through_data", "through_numpy"])
def test_a_gallery_changed_between_calls_is_never_served_stale(name, change):
    """Nothing is cached across calls: also not when the change bypasses the version counter."""
    metric = build(name)
    gallery = torch.from_numpy(B.copy())
    metric(torch.from_numpy(A), gallery)
    if change == "in_place":
        gallery.mul_(2)
    elif change == "through_data":
        gallery.data.mul_(2)
    else:
        gallery.numpy()[:] *= 2
    np.testing.assert_allclose(metric(torch.from_numpy(A), gallery).numpy(),
                               build(name)(A, 2 * B).numpy(), rtol=1e-9)
