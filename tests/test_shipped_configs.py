"""Every config shipped in configs/ loads; the recipes only lack the user's weights file."""

from __future__ import annotations

from pathlib import Path

import pytest

from visim.config.errors import ConfigError
from visim.config.load import load_config

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


@pytest.mark.parametrize("name", ["demo.yaml", "minimal.yaml"])
def test_ready_to_run_configs_load(name):
    config = load_config(CONFIGS / name)
    assert config.model.params.arch == "osnet_x0_25"
    assert config.data.dataset.name == "digits"


@pytest.mark.parametrize("path", sorted((CONFIGS / "recipes").glob("*.yaml")), ids=lambda p: p.stem)
def test_recipes_are_the_standard_recipe_and_name_their_weights(path):
    with pytest.raises(ConfigError) as missing:
        load_config(path)
    assert [p.path for p in missing.value.problems] == ["$.model.weights"]

    config = load_config(path, ["model.weights=null"])
    assert config.model.params.arch == "osnet_x1_0"
    assert config.data.image_size == (256, 128)
    assert config.data.sampler.name == "identity"
    assert [t.loss.name for t in config.train.loss.params.terms] == ["cross_entropy", "triplet"]
    assert config.train.scheduler.params.warmup_epochs > 0
    assert config.data.dataset.name == path.stem
