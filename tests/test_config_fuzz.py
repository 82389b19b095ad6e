"""Property: whatever YAML-like data reaches the loader, the result is a config or a ConfigError.

Never another exception (a traceback for a CLI user), and a config that loads prints back to
YAML that loads to the same config.
"""

from __future__ import annotations

import copy

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import config_fakes
from visim.config.converter import resolved_fields
from visim.config.errors import ConfigError
from visim.config.load import config_from_dict, dump_config, load_config, load_config_data
from visim.config.reference import sections
from visim.config.schema import Experiment
from visim.plugins import plugin_registered

pytestmark = pytest.mark.usefixtures("subnormal_floats")  # hypothesis needs them (conftest.py)

# Keys the schema and the fakes know, so that random mappings often hit real fields.
KNOWN_KEYS = sorted(
    {f.alias for _, cls in sections(Experiment) for f in resolved_fields(cls)}
    | {"name", "p", "arch", "width", "lr", "num_instances", "label_smoothing", "identities"}
)
NAMES = ["fake_model", "fake_dataset", "fake_metric", "fake_loss", "fake_sampler", "adam", "step"]

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=10)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats()
    | text
    | st.sampled_from(NAMES + ["cpu", "cuda:1", "mAP", "rank-5", "skip"])
)
keys = st.sampled_from(KNOWN_KEYS) | text
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4),
    max_leaves=12,
)


def plausible(value):
    """A value of the same type as ``value``: often valid, so that round trips get exercised."""
    if isinstance(value, bool):
        return st.booleans()
    if isinstance(value, int):
        return st.integers(0, 64)
    if isinstance(value, float):
        return st.floats(0, 2)
    return st.sampled_from(NAMES + ["tiny", "small", "cpu", "auto"])


FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module", autouse=True)
def fakes():
    with plugin_registered(config_fakes):
        yield


@pytest.fixture(scope="module")
def config_path(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz") / "config.yaml"


def load_or_error(data):
    try:
        return config_from_dict(data)
    except ConfigError as exc:
        assert exc.problems and all(p.path.startswith("$") for p in exc.problems)
        return None


def paths_of(data, prefix=()):
    """Every key path of nested mappings (lists included by index)."""
    items = (
        data.items()
        if isinstance(data, dict)
        else enumerate(data)
        if isinstance(data, list)
        else ()
    )
    for key, value in items:
        yield (*prefix, key)
        yield from paths_of(value, (*prefix, key))


def get_path(data, path):
    for key in path:
        data = data[key]
    return data


def set_path(data, path, value):
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


@FUZZ
@given(values)
def test_any_document_gives_a_config_or_a_config_error(document):
    load_or_error(document)


@FUZZ
@given(st.data())
def test_mutated_valid_configs_load_or_fail_cleanly_and_round_trip(config_path, data):
    document = copy.deepcopy(config_fakes.minimal_config())
    document["train"]["optimizer"]["betas"] = [0.8, 0.9]
    document["data"]["train_transforms"] = ["fake_transform"]
    for _ in range(data.draw(st.integers(1, 2))):
        targets = list(paths_of(document))
        path = data.draw(st.sampled_from(targets))
        how = data.draw(st.sampled_from(["anything", "plausible", "new key"]))
        if how == "anything":
            set_path(document, path, data.draw(values))
        elif how == "plausible":  # a leaf, often still valid: the round trip gets exercised
            leaves = [p for p in targets if not isinstance(get_path(document, p), (dict, list))]
            leaf = data.draw(st.sampled_from(leaves))
            set_path(document, leaf, data.draw(plausible(get_path(document, leaf))))
        else:  # a new key beside an existing one
            parent = path[:-1]
            node = document
            for key in parent:
                node = node[key]
            if isinstance(node, dict):
                node[data.draw(keys)] = data.draw(values)
    config = load_or_error(document)
    if config is not None:
        config_path.write_text(dump_config(config))
        assert load_config(config_path) == config


@FUZZ
@given(st.text(st.characters(blacklist_categories=("Cs",)), max_size=60))
def test_any_text_file_gives_data_or_a_config_error(config_path, content):
    config_path.write_text(content)
    try:
        assert isinstance(load_config_data(config_path), dict)
    except ConfigError as exc:
        assert exc.problems


@FUZZ
@given(values)
def test_any_yaml_file_gives_a_config_or_a_config_error(config_path, document):
    config_path.write_text(yaml.safe_dump(document))
    try:
        load_config(config_path)
    except ConfigError as exc:
        assert exc.problems
