"""Every config shipped in configs/ loads; the recipes only lack the user's weights file."""

from __future__ import annotations

from pathlib import Path

import pytest

from visim.config.errors import ConfigError
from visim.config.load import load_config

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
# Recipes using the plugin packages under plugins/ (installed by `make`), not the standard recipe.
PLUGIN_RECIPES = ("market1501_timm_resnet50_arcface.yaml", "market1501_timm_vit_base.yaml")
STANDARD_RECIPES = sorted(p for p in (CONFIGS / "recipes").glob("*.yaml") if p.name not in PLUGIN_RECIPES)


@pytest.mark.parametrize("name", ["demo.yaml", "minimal.yaml"])
def test_ready_to_run_configs_load(name):
    config = load_config(CONFIGS / name)
    assert config.model.params.arch == "osnet_x0_25"
    assert config.data.dataset.name == "digits"


@pytest.mark.parametrize("path", STANDARD_RECIPES, ids=lambda p: p.stem)
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


@pytest.mark.parametrize("name", PLUGIN_RECIPES)
def test_plugin_recipes_load_and_only_lack_their_weights(name):
    path = CONFIGS / "recipes" / name
    with pytest.raises(ConfigError) as missing:
        load_config(path)
    assert [p.path for p in missing.value.problems] == ["$.model.weights"]

    config = load_config(path, ["model.weights=null"])
    assert config.model.name == "timm" and config.model.component().distribution == "visim-timm"
    assert config.data.dataset.name == "market1501" and config.data.image_size == (256, 128)
    losses = [t.loss.name for t in config.train.loss.params.terms]
    assert losses == (["pml.arcface", "triplet"] if "arcface" in name else ["cross_entropy", "triplet"])
    if config.model.params.arch.startswith("vit"):
        assert tuple(config.model.params.model_kwargs["img_size"]) == config.data.image_size
