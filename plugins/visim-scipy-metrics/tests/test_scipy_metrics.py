"""visim-scipy-metrics, installed: found through its entry point, used by name, equal to scipy."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata

import numpy as np
import pytest
import torch
import visim_scipy_metrics
from scipy.spatial.distance import cdist, jensenshannon

import visim
from visim.config.errors import ConfigError
from visim.config.refs import MetricRef
from visim.evaluation import evaluate, evaluate_embeddings

RNG = np.random.default_rng(0)
A = RNG.random((6, 4))
B = RNG.random((9, 4))
ALL_NAMES = sorted([*visim_scipy_metrics.WEIGHTED, *visim_scipy_metrics.SPECIAL])


def metric(name, params=None):
    return visim.get_registry().metrics.get(f"scipy.{name}").build(params)


def test_found_through_its_real_entry_point():
    (entry,) = [ep for ep in metadata.entry_points(group="visim") if ep.name == "scipy_metrics"]
    assert entry.value == "visim_scipy_metrics"
    assert entry.dist.name == "visim-scipy-metrics"
    assert entry.load() is visim_scipy_metrics


def test_lookup_by_name_resolves_to_the_plugin():
    component = visim.get_registry().metrics.get("scipy.braycurtis")
    assert component.distribution == "visim-scipy-metrics"
    assert component.version == visim_scipy_metrics.__version__
    assert not component.builtin
    assert component.factory.__module__ == "visim_scipy_metrics"
    assert visim.get_registry().metrics.get("visim-scipy-metrics:scipy.braycurtis") is component
    assert isinstance(MetricRef.of("scipy.minkowski", p=3).build()(A, B), torch.Tensor)


def test_every_cdist_metric_is_registered():
    registered = {c.name for c in visim.get_registry().metrics if c.distribution == "visim-scipy-metrics"}
    assert registered == {f"scipy.{name}" for name in ALL_NAMES}
    assert len(registered) >= 19


@pytest.mark.parametrize("name", sorted(visim_scipy_metrics.WEIGHTED))
def test_numbers_equal_scipy(name):
    out = metric(name)(torch.from_numpy(A), torch.from_numpy(B))
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float64
    np.testing.assert_array_equal(out.numpy(), cdist(A, B, name))
    weights = [0.5, 1.0, 2.0, 0.0]
    np.testing.assert_array_equal(metric(name, {"w": weights})(A, B).numpy(), cdist(A, B, name, w=weights))


@pytest.mark.parametrize(
    ("name", "params", "scipy_options"),
    [
        ("minkowski", {}, {"p": 2.0}),
        ("minkowski", {"p": 3, "w": [1, 2, 3, 4]}, {"p": 3.0, "w": [1.0, 2.0, 3.0, 4.0]}),
        ("minkowski", {"p": 0.5}, {"p": 0.5}),
        ("seuclidean", {"V": [1, 2, 3, 4]}, {"V": [1.0, 2.0, 3.0, 4.0]}),
        ("seuclidean", {}, {"V": np.var(B, axis=0, ddof=1)}),
        ("mahalanobis", {"VI": np.diag([1.0, 2, 3, 4]).tolist()}, {"VI": np.diag([1.0, 2, 3, 4])}),
        ("mahalanobis", {}, {"VI": np.linalg.pinv(np.cov(B, rowvar=False))}),
        ("jensenshannon", {}, {}),
    ],
)
def test_parameters_are_scipys(name, params, scipy_options):
    np.testing.assert_allclose(metric(name, params)(A, B).numpy(), cdist(A, B, name, **scipy_options),
                               rtol=1e-12)


def test_jensenshannon_base_equals_scipys_pairwise_function():
    expected = cdist(A, B, lambda u, v: jensenshannon(u, v, base=2.0))
    np.testing.assert_allclose(metric("jensenshannon", {"base": 2})(A, B).numpy(), expected, rtol=1e-12)


def test_float32_inputs_give_float32_and_bad_params_are_config_errors():
    assert metric("canberra")(A.astype(np.float32), B.astype(np.float32)).dtype == torch.float32
    with pytest.raises(ConfigError, match=r"\$\.p"):
        metric("minkowski", {"p": 0})
    with pytest.raises(ConfigError, match=r"\$\.w"):
        metric("euclidean", {"w": [1, -1, 0, 0]})
    with pytest.raises(ValueError, match="scipy.euclidean: Weights must have same size"):
        metric("euclidean", {"w": [1, 1]})(A, B)
    with pytest.raises(ValueError, match="embedding sizes differ"):
        metric("braycurtis")(A, B[:, :3])


def test_gallery_estimates_keep_chunked_evaluation_exact():
    q_pids, g_pids = np.arange(6) % 3, np.arange(9) % 3
    for name in ("seuclidean", "mahalanobis"):
        m = metric(name)
        full = evaluate(m(A, B), q_pids, g_pids, protocol="none")
        chunked = evaluate_embeddings(A, B, m, q_pids, g_pids, protocol="none", memory_budget=1)
        np.testing.assert_array_equal(chunked.per_query.ap, full.per_query.ap)


def test_loading_the_plugin_does_not_import_torch():
    code = (
        "import sys, visim; c = visim.get_registry().metrics.get('scipy.cosine'); "
        "assert c.distribution == 'visim-scipy-metrics'; assert 'torch' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
