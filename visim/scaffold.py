"""``visim plugin new``: a ready-to-install plugin package with one working component.

The templates are plain :class:`string.Template` text (``$name`` placeholders), one set per
kind; the common files (pyproject.toml, README.md) are shared. Nothing here imports torch.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path
from string import Template

from visim.outputs.atomic import publish, write_text

KINDS = ("metric", "model", "loss", "dataset")
NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


class ScaffoldError(ValueError):
    """An invalid name or an existing target: nothing was written."""


PYPROJECT = '''\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "$dist"
version = "0.1.0"
description = "$summary"
readme = "README.md"
requires-python = ">=3.10"
dependencies = ["visim>=$visim_version"]

[project.optional-dependencies]
test = ["pytest"]

# visim finds the plugin through this entry point: the module holding the hook.
[project.entry-points.visim]
$name = "$package"

[tool.setuptools]
packages = ["$package"]

[tool.pytest.ini_options]
testpaths = ["tests"]
'''

README = '''\
# $dist

$summary

A visim plugin registering the $kind `$name`.

```bash
pip install -e .            # the entry point makes visim see it
visim components ${kind}s   # lists $name
pytest                      # the contract checks of visim.testing and a tiny training run
```

Use it in a config:

```yaml
$usage
```

`$package/__init__.py` holds the hook and the params class (no torch at import, so
`visim plugins` stays fast); `$package/$module.py` holds the implementation.
'''

INIT = {
    "metric": '''\
"""$summary

visim imports this module to call its hook: keep torch out of it (the factory imports it).
"""

import attrs

from visim import hookimpl
from visim.config import rules


@attrs.frozen
class ${Title}Params:
    """``metric: {name: $name, scale: 2.0}``."""

    scale: float = attrs.field(default=1.0, validator=rules.gt(0.0))


def build(params: ${Title}Params):
    """Euclidean distance times a positive scale (lower is closer)."""
    from $package.metric import ScaledEuclidean

    return ScaledEuclidean(params.scale)


@hookimpl
def register_metrics(register):
    register("$name", build, params=${Title}Params)
''',
    "model": '''\
"""$summary

visim imports this module to call its hook: keep torch out of it (the factory imports it).
"""

import attrs

from visim import hookimpl
from visim.config import rules


@attrs.frozen
class ${Title}Params:
    """``model: {name: $name, width: 16, embedding_dim: 64}``."""

    width: int = attrs.field(default=16, validator=rules.gte(1))
    embedding_dim: int = attrs.field(default=64, validator=rules.gte(1))


def build(params: ${Title}Params, *, num_classes: int):
    """A small CNN backbone with an identity classifier."""
    from $package.model import SmallNet

    return SmallNet(params.width, params.embedding_dim, num_classes)


@hookimpl
def register_models(register):
    register("$name", build, params=${Title}Params)
''',
    "loss": '''\
"""$summary

visim imports this module to call its hook: keep torch out of it (the factory imports it).
"""

import attrs

from visim import hookimpl
from visim.config import rules


@attrs.frozen
class ${Title}Params:
    """``loss: {name: $name, scale: 16.0, margin: 0.2}``."""

    scale: float = attrs.field(default=16.0, validator=rules.gt(0.0))
    margin: float = attrs.field(default=0.2, validator=rules.within(0.0, 1.0))


def build(params: ${Title}Params, *, num_classes: int, embedding_dim: int):
    """Large-margin cosine loss (CosFace) with learnable class weights."""
    from $package.loss import MarginCosineLoss

    return MarginCosineLoss(num_classes, embedding_dim, params.scale, params.margin)


@hookimpl
def register_losses(register):
    register("$name", build, params=${Title}Params)
''',
    "dataset": '''\
"""$summary

visim imports this module to call its hook; datasets need no torch at all.
"""

import attrs

from visim import hookimpl
from visim.config import rules


@attrs.frozen
class ${Title}Params:
    """``dataset: {name: $name, root: path/to/data}``."""

    root: str = attrs.field(validator=rules.folder_exists())


def build(params: ${Title}Params):
    """Images under root/{train,query,gallery}/, named <pid>_c<camid>_<anything>.<ext>."""
    from $package.dataset import load

    return load(params.root, name="$name")


@hookimpl
def register_datasets(register):
    register("$name", build, params=${Title}Params)
''',
}

MODULE = {
    "metric": '''\
"""The torch side of the $name metric, imported when the metric is built."""

import torch

from visim.metrics.base import Metric


class ScaledEuclidean(Metric):
    """``scale * ||a - b||`` between every row of ``a`` and every row of ``b``: ``[N, M]``."""

    higher_is_better = False  # a distance; a similarity sets True

    def __init__(self, scale: float) -> None:
        self.scale = scale

    def compute(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.scale * torch.cdist(a, b)
''',
    "model": '''\
"""The torch side of the $name model, imported when the model is built."""

import torch
from torch import nn


class SmallNet(nn.Module):
    """Training mode: ``(logits [B, C], embeddings [B, D])``; eval mode: ``embeddings [B, D]``."""

    def __init__(self, width: int, embedding_dim: int, num_classes: int) -> None:
        super().__init__()
        self.embedding_dim = embedding_dim  # visim reads it to build the loss
        self.features = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(2 * width, embedding_dim),
        )
        self.classifier = nn.Linear(embedding_dim, num_classes)

    def forward(self, images: torch.Tensor):
        embeddings = self.features(images)
        if not self.training:
            return embeddings
        return self.classifier(embeddings), embeddings
''',
    "loss": '''\
"""The torch side of the $name loss, imported when the loss is built."""

import torch
from torch import nn
from torch.nn import functional as F


class MarginCosineLoss(nn.Module):
    """CosFace: cross entropy over ``scale * (cos(embedding, class weight) - margin at the
    target)``. The class weights are this loss's own parameters: visim trains and saves them.
    The model's logits are not used."""

    def __init__(self, num_classes: int, embedding_dim: int, scale: float, margin: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(num_classes, embedding_dim) * 0.01)
        self.scale, self.margin = scale, margin

    def forward(self, logits, embeddings, targets):
        cosine = F.linear(F.normalize(embeddings.float(), dim=1), F.normalize(self.weight, dim=1))
        margins = F.one_hot(targets, cosine.shape[1]) * self.margin
        return F.cross_entropy(self.scale * (cosine - margins), targets)
''',
    "dataset": '''\
"""Reading the $name folder layout into visim records."""

import re
from pathlib import Path

from visim.data.records import Record, ReidData

NAME = re.compile(r"^(-?\\d+)_c(\\d+)")  # <pid>_c<camid>_...; pid -1 is junk
SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}


def load(root: str, name: str) -> ReidData:
    splits = {}
    for split in ("train", "query", "gallery"):
        records = []
        for path in sorted(Path(root, split).glob("*")):
            match = NAME.match(path.name)
            if match and path.suffix.lower() in SUFFIXES:
                records.append(Record(str(path), int(match[1]), int(match[2])))
        splits[split] = records
    # ReidData numbers the train identities 0..C-1 (the classes a classifier learns).
    return ReidData(**splits, name=name, root=root)
''',
}

TESTS = {
    "metric": '''\
"""The $name metric against visim's metric contract, then in a real (tiny) run."""

import pytest

from visim.config.errors import ConfigError
from visim.testing import check_metric, tiny_run


def test_meets_the_metric_contract():
    check_metric("$name")
    assert check_metric("$name", {"scale": 2.0}).scale == 2.0


def test_params_are_validated():
    with pytest.raises(ConfigError, match="must be > 0.0"):
        check_metric("$name", {"scale": 0.0})


def test_ranks_a_gallery_in_a_tiny_run(tmp_path):
    results = tiny_run({"test.metric": {"name": "$name", "scale": 2.0}}, log_dir=tmp_path)
    assert 0.0 <= results["mAP"] <= 1.0
''',
    "model": '''\
"""The $name model against visim's model contract, then trained in a real (tiny) run."""

import pytest

from visim.config.errors import ConfigError
from visim.testing import check_model, tiny_run


def test_meets_the_model_contract():
    assert check_model("$name", {"width": 4, "embedding_dim": 8}).embedding_dim == 8


def test_params_are_validated():
    with pytest.raises(ConfigError, match="must be >= 1"):
        check_model("$name", {"width": 0})


def test_trains_in_a_tiny_run(tmp_path):
    results = tiny_run({"model": {"name": "$name", "width": 4, "embedding_dim": 16}}, log_dir=tmp_path)
    assert results["mAP"] > 0.0
''',
    "loss": '''\
"""The $name loss against visim's loss contract, then trained in a real (tiny) run."""

import pytest

from visim.config.errors import ConfigError
from visim.testing import check_loss, tiny_run


def test_meets_the_loss_contract_and_its_weights_get_gradients():
    loss = check_loss("$name", {"scale": 8.0})
    assert loss.weight.grad is not None


def test_params_are_validated():
    with pytest.raises(ConfigError, match="must be within"):
        check_loss("$name", {"margin": 1.5})


def test_trains_in_a_tiny_run(tmp_path):
    results = tiny_run({"train.loss": {"name": "$name", "scale": 8.0}}, log_dir=tmp_path)
    assert 0.0 <= results["mAP"] <= 1.0
''',
    "dataset": '''\
"""The $name dataset against visim's dataset contract, then used in a real (tiny) run."""

import pytest
from PIL import Image

from visim.config.errors import ConfigError
from visim.testing import check_dataset, tiny_run


@pytest.fixture
def tree(tmp_path):
    """4 train identities x 8 images, 3 test identities: 1 query and 3 gallery images each."""
    root = tmp_path / "data"
    layout = {"train": [(pid, i) for pid in range(4) for i in range(8)]}
    layout["query"] = [(pid, 0) for pid in range(10, 13)]
    layout["gallery"] = [(pid, i) for pid in range(10, 13) for i in range(1, 4)]
    for split, images in layout.items():
        (root / split).mkdir(parents=True)
        for pid, i in images:
            colour = (40 * (pid % 6), 255 - 20 * (pid % 10), 60 + 10 * i)
            Image.new("RGB", (16, 16), colour).save(root / split / f"{pid:04d}_c{i % 2}_{i:03d}.png")
    return root


def test_meets_the_dataset_contract(tree):
    data = check_dataset("$name", {"root": str(tree)})
    assert (len(data.train), len(data.query), len(data.gallery)) == (32, 3, 9)


def test_root_must_exist(tmp_path):
    with pytest.raises(ConfigError, match="root"):
        check_dataset("$name", {"root": str(tmp_path / "nowhere")})


def test_feeds_a_tiny_run(tree, tmp_path):
    results = tiny_run({"data.dataset": {"name": "$name", "root": str(tree)}}, log_dir=tmp_path)
    assert results["num_queries"] == 3
''',
}

SUMMARIES = {
    "metric": "A scaled Euclidean distance metric for visim.",
    "model": "A small CNN backbone for visim.",
    "loss": "A large-margin cosine loss (CosFace) with learnable class weights for visim.",
    "dataset": "A folder-layout re-identification dataset for visim.",
}
USAGE = {
    "metric": "test:\n  metric: {name: $name, scale: 1.0}",
    "model": "model: {name: $name, width: 16, embedding_dim: 64}",
    "loss": "train:\n  loss: {name: $name, scale: 16.0, margin: 0.2}",
    "dataset": "data:\n  dataset: {name: $name, root: path/to/data}",
}


def files_for(kind: str, name: str, visim_version: str) -> dict[str, str]:
    """Relative path -> text of every file of the new package."""
    package = f"visim_{name}"
    values = {
        "name": name,
        "kind": kind,
        "package": package,
        "dist": f"visim-{name.replace('_', '-')}",
        "Title": "".join(part.capitalize() for part in name.split("_")),
        "summary": SUMMARIES[kind],
        "visim_version": visim_version,
        "module": kind,
    }
    values["usage"] = Template(USAGE[kind]).substitute(values)

    def fill(text: str) -> str:
        return Template(text).substitute(values)

    return {
        "pyproject.toml": fill(PYPROJECT),
        "README.md": fill(README),
        f"{package}/__init__.py": fill(INIT[kind]),
        f"{package}/{kind}.py": fill(MODULE[kind]),
        f"tests/test_{package}.py": fill(TESTS[kind]),
    }


def target_dir(output: str | Path, name: str) -> Path:
    return Path(output) / f"visim-{name.replace('_', '-')}"


def create(kind: str, name: str, output: str | Path, visim_version: str) -> Path:
    """Write the package for ``kind``/``name`` under ``output``; raise ScaffoldError first if
    the name is invalid or the target exists (then nothing is written)."""
    if kind not in KINDS:
        raise ScaffoldError(f"unknown kind {kind!r}; choose one of {', '.join(KINDS)}")
    if not NAME_RE.match(name):
        raise ScaffoldError(
            f"invalid name {name!r}: lowercase letters, digits and underscores, starting with a letter"
        )
    target = target_dir(output, name)
    if target.exists():
        raise ScaffoldError(f"{target} already exists; choose another name or --output")
    target.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:  # the whole package appears at once, or nothing does
        for relative, text in files_for(kind, name, visim_version).items():
            write_text(building / relative, text)
        building.chmod(0o755)  # mkdtemp's 0o700 would hide the package from other users
        return publish(building, target)
    finally:
        shutil.rmtree(building, ignore_errors=True)
