"""The example plugins that docs/plugins.rst includes verbatim, installed as distributions and
checked with ``visim.testing``: a metric (visim-canberra), a backbone, a learnable loss and a
dataset (visim-acme)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from PIL import Image

import visim
from visim.testing import check_dataset, check_loss, check_metric, check_model, tiny_run

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser under its old name
    import tomli as tomllib

EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "example_plugin"


def install(fake_dists, project: Path) -> dict:
    """Install ``project`` (its modules or packages copied, a dist-info from its pyproject)."""
    meta = tomllib.loads((project / "pyproject.toml").read_text())
    settings = meta["tool"]["setuptools"]
    for package in settings.get("packages", []):
        shutil.copytree(project / package, fake_dists.root / package)
        fake_dists.modules.append(package)
    for module in settings.get("py-modules", []):
        shutil.copy(project / f"{module}.py", fake_dists.root)
        fake_dists.modules.append(module)
    project_meta = meta["project"]
    fake_dists.add(
        project_meta["name"],
        project_meta["entry-points"]["visim"],
        version=project_meta["version"],
        requires=project_meta["dependencies"],
    )
    return project_meta


@pytest.fixture
def examples(fake_dists):
    install(fake_dists, EXAMPLES)
    install(fake_dists, EXAMPLES / "acme")
    yield
    for name in list(sys.modules):
        if name.startswith("visim_acme."):
            del sys.modules[name]


def test_examples_load_with_provenance(examples):
    registry = visim.get_registry()
    assert registry.metrics.get("canberra").distribution == "visim-canberra"
    for kind, name in (("models", "acme_net"), ("losses", "acme_cosface"), ("datasets", "acme_folders")):
        component = registry[kind].get(name)
        assert (component.distribution, component.version) == ("visim-acme", "0.1.0")


def test_metric_example_meets_the_contract(examples):
    assert check_metric("canberra", {"eps": 1e-9}).eps == 1e-9


def test_backbone_and_learnable_loss_examples_meet_the_contract(examples):
    assert check_model("acme_net", {"width": 4, "embedding_dim": 8}).embedding_dim == 8
    loss = check_loss("acme_cosface", embedding_dim=8)
    assert loss.weight.shape == (4, 8) and loss.weight.grad.abs().sum() > 0


def test_dataset_example_meets_the_contract(examples, tmp_path):
    for split, pids, per_pid in (("train", range(3), 4), ("query", range(10, 12), 1), ("gallery", range(10, 12), 2)):
        (tmp_path / split).mkdir()
        for pid in pids:
            for i in range(per_pid):
                Image.new("RGB", (8, 8), (pid * 20, i * 40, 0)).save(tmp_path / split / f"{pid}_c{i % 2}_{i}.png")
    data = check_dataset("acme_folders", {"root": str(tmp_path)})
    assert (data.num_train_classes, len(data.query), len(data.gallery)) == (3, 2, 4)


def test_backbone_and_loss_examples_train_together(examples, tmp_path):
    overrides = {"model": {"name": "acme_net", "width": 4, "embedding_dim": 16}, "train.loss": "acme_cosface"}
    results = tiny_run(overrides, log_dir=tmp_path)
    assert 0.0 < results["mAP"] <= 1.0
