"""Loading config files: YAML errors, overrides, dumps and round trips, the minimal config."""

from __future__ import annotations

import textwrap

import pytest
import yaml

from tests import config_fakes
from visim.config import schema
from visim.config.errors import ConfigError
from visim.config.load import (
    apply_overrides,
    config_from_dict,
    dump_config,
    load_config,
    load_config_data,
)
from visim.plugins import get_registry, plugin_registered

MINIMAL_CONFIG = """\
name: holdout
seed: 0
device: cpu
log_dir: runs
data:
  dataset: digits
  batch_size: 32
  image_size: [64, 32]
model:
  name: torchreid
  arch: osnet_x0_25
train:
  epochs: 2
  loss: cross_entropy
  optimizer: {name: adam, lr: 0.0003}
test:
  metric: euclidean
  topk_cmc: [1, 5]
"""


@pytest.fixture(scope="module", autouse=True)
def fakes():
    with plugin_registered(config_fakes):
        yield


@pytest.fixture
def write(tmp_path):
    def write(text: str, name: str = "config.yaml"):
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path

    return write


def fake_yaml() -> str:
    return yaml.safe_dump(config_fakes.minimal_config(), sort_keys=False)


def messages(exc_info) -> list[str]:
    return [str(p) for p in exc_info.value.problems]


def test_load_config_gives_an_experiment(write):
    config = load_config(write(fake_yaml()))
    assert isinstance(config, schema.Experiment)
    assert config == config_from_dict(config_fakes.minimal_config())


def test_yaml_syntax_error_names_file_line_and_column(write):
    path = write("name: x\ndata:\n  dataset: [a, b\nmodel: m\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    [message] = messages(info)
    assert message.startswith(f"YAML syntax error in {path}, line 4, column 6:")


def test_bad_indentation_is_a_syntax_error_with_position(write):
    path = write("name: x\n  seed: 1\n")
    with pytest.raises(ConfigError, match=r"line 2, column 7: mapping values are not allowed here"):
        load_config_data(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "config file is empty"),
        ("# only a comment\n", "config file is empty"),
        ("- a\n- b\n", "must be a mapping of settings, got list ['a', 'b']"),
        ("just text\n", "must be a mapping of settings, got str 'just text'"),
        ("a: 1\na: 2\n", "duplicate key 'a' (first given on line 1)"),
        ("a: !!python/object:os.system x\n", "could not determine a constructor"),
    ],
)
def test_unusable_files_get_one_clear_problem(write, text, message):
    with pytest.raises(ConfigError) as info:
        load_config_data(write(text))
    [problem] = info.value.problems
    assert message in problem.message


def test_missing_file_and_directory_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)


def test_scientific_notation_is_a_float(write):
    data = load_config_data(write("lr: 3e-4\nbig: 1E5\nhalf: .5\nint: 3\nversion: 1.2.3\n"))
    assert data == {"lr": 3e-4, "big": 1e5, "half": 0.5, "int": 3, "version": "1.2.3"}


# -- overrides ---------------------------------------------------------------------------------
def test_overrides_parse_values_as_yaml_and_create_mappings():
    data = {"train": {"epochs": 1}, "test": {"metric": "minkowski", "topk_cmc": [1, 5]}}
    result = apply_overrides(
        data,
        [
            "train.epochs=3",
            "test.metric.p=3",
            "test.topk_cmc.0=2",
            "train.scheduler.name=cosine",
            "name=a=b",
            "data.eval_batch_size=null",
            "test.write_embeds=[true, false]",
        ],
    )
    assert result == {
        "train": {"epochs": 3, "scheduler": {"name": "cosine"}},
        "test": {
            "metric": {"name": "minkowski", "p": 3},
            "topk_cmc": [2, 5],
            "write_embeds": [True, False],
        },
        "name": "a=b",
        "data": {"eval_batch_size": None},
    }
    assert data["train"]["epochs"] == 1 and data["test"]["metric"] == "minkowski"  # not mutated


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        (
            "train.epochs",
            "invalid override 'train.epochs': expected KEY.PATH=VALUE, e.g. train.epochs=3 @ $",
        ),
        ("=3", "invalid override '=3': expected KEY.PATH=VALUE, e.g. train.epochs=3 @ $"),
        (
            "train..epochs=3",
            "invalid override 'train..epochs=3': expected KEY.PATH=VALUE, e.g. train.epochs=3 @ $",
        ),
        (
            "train.epochs.x=3",
            "cannot apply override 'train.epochs.x=3': $.train.epochs is int 1 @ $.train.epochs",
        ),
        (
            "test.topk_cmc.7=3",
            "cannot apply override 'test.topk_cmc.7=3': $.test.topk_cmc is list [1, 5] "
            "@ $.test.topk_cmc.7",
        ),
    ],
)
def test_malformed_overrides_are_config_errors(override, expected):
    with pytest.raises(ConfigError) as info:
        apply_overrides({"train": {"epochs": 1}, "test": {"topk_cmc": [1, 5]}}, [override])
    assert messages(info) == [expected]


def test_override_value_with_bad_yaml_names_the_override():
    with pytest.raises(ConfigError) as info:
        apply_overrides({}, ["test.topk_cmc=[1, 5"])
    [problem] = info.value.problems
    assert problem.path == "$.test.topk_cmc"
    assert problem.message.startswith("YAML syntax error in override 'test.topk_cmc=[1, 5'")


def test_overrides_are_applied_before_validation(write):
    bad = config_fakes.minimal_config()
    bad["train"]["epochs"] = 0
    path = write(yaml.safe_dump(bad))
    with pytest.raises(ConfigError, match=r"must be >= 1 \(got 0\) @ \$\.train\.epochs"):
        load_config(path)
    assert load_config(path, ["train.epochs=4"]).train.epochs == 4
    with pytest.raises(ConfigError, match=r"expected int, got str 'four' @ \$\.train\.epochs"):
        load_config(path, ["train.epochs=four"])


# -- dumping -----------------------------------------------------------------------------------
def test_dump_includes_every_default_and_round_trips(write):
    config = load_config(
        write(fake_yaml()), ["test.metric.p=3", "data.train_transforms=[fake_transform]"]
    )
    text = dump_config(config)
    dumped = yaml.safe_load(text)
    assert dumped["train"]["optimizer"] == {
        "name": "adam",
        "lr": 0.001,
        "weight_decay": 0.0005,
        "betas": [0.9, 0.999],
        "amsgrad": False,
    }
    assert dumped["test"]["memory_budget"] == 1 << 30 and dumped["train"]["nof_classes"] is None
    assert dumped["test"]["metric"] == {"name": "fake_metric", "p": 3.0}
    assert "image_size: [8, 4]" in text  # lists of scalars stay on one line
    assert load_config(write(text, "shown.yaml")) == config
    assert dump_config(load_config(write(text, "again.yaml"))) == text


def test_the_minimal_config_of_the_issue_validates_with_the_real_components(write):
    """Needs the built-in torchreid model, digits dataset, cross_entropy loss, euclidean metric."""
    config = load_config(write(MINIMAL_CONFIG))
    assert (config.model.name, config.data.dataset.name) == ("torchreid", "digits")
    assert (config.train.loss.name, config.test.metric.name) == ("cross_entropy", "euclidean")
    assert config.model.params.arch == "osnet_x0_25" and config.train.optimizer.params.lr == 0.0003
    assert config.data.sampler.name in get_registry().samplers
    assert load_config(write(dump_config(config), "shown.yaml")) == config
