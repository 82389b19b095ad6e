"""Structuring config data: strict primitives, unknown keys, references, every problem at once."""

from __future__ import annotations

import attrs
import pytest

from tests import config_fakes
from visim.config import schema
from visim.config.converter import structure, unstructure
from visim.config.errors import ConfigError
from visim.config.load import config_from_dict
from visim.config.refs import MetricRef, SamplerRef
from visim.plugins import plugin_registered


@pytest.fixture(scope="module", autouse=True)
def fakes():
    with plugin_registered(config_fakes):
        yield


def problems(data) -> list[str]:
    with pytest.raises(ConfigError) as info:
        config_from_dict(data)
    return [str(p) for p in info.value.problems]


def with_(**changes) -> dict:
    """The minimal fake config with ``section__key=value`` changes (``key=value`` at the top)."""
    data = config_fakes.minimal_config()
    for dotted, value in changes.items():
        *parents, key = dotted.split("__")
        node = data
        for parent in parents:
            node = node.setdefault(parent, {})
        node[key] = value
    return data


def test_the_minimal_fake_config_is_valid():
    config = config_from_dict(config_fakes.minimal_config())
    assert isinstance(config, schema.Experiment)
    assert config.model.params == config_fakes.FakeModelParams(arch="small")
    assert config.test.topk_cmc == (1, 5) and config.data.image_size == (8, 4)
    assert config.train.optimizer.params.lr == 0.001


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"test__write_embeds": ["false", False]},
            "expected bool, got str 'false' @ $.test.write_embeds[0]",
        ),
        ({"train__epochs": 5.7}, "expected int, got float 5.7 @ $.train.epochs"),
        ({"train__epochs": True}, "expected int, got bool True @ $.train.epochs"),
        ({"train__epochs": "3"}, "expected int, got str '3' @ $.train.epochs"),
        ({"name": 12}, "expected str, got int 12 @ $.name"),
        ({"name": ["a"]}, "expected str, got list ['a'] @ $.name"),
        ({"train__grad_clip": True}, "expected float, got bool True @ $.train.grad_clip"),
        ({"data__image_size": "64x32"}, "expected a list, got str '64x32' @ $.data.image_size"),
        ({"data__image_size": [64]}, "expected exactly 2 items (got 1) @ $.data.image_size"),
        ({"train": [1]}, "expected a mapping, got list [1] @ $.train"),
        ({"data__batch_size": None}, "expected int, got NoneType None @ $.data.batch_size"),
    ],
)
def test_primitives_are_strict(changes, expected):
    assert problems(with_(**changes)) == [expected]


def test_an_int_is_a_float_but_not_the_other_way_round():
    config = config_from_dict(
        with_(train__grad_clip=1, test__metric={"name": "fake_metric", "p": 3})
    )
    assert config.train.grad_clip == 1.0 and isinstance(config.train.grad_clip, float)
    assert config.test.metric.params.p == 3.0


def test_unknown_keys_get_did_you_mean_or_the_known_keys():
    assert problems(with_(train__epoch=3)) == [
        "unknown key 'epoch'; did you mean 'epochs'? @ $.train.epoch"
    ]
    [message] = problems(with_(data__zzz=1))
    assert message.startswith(
        "unknown key 'zzz' (known: dataset, batch_size,"
    ) and message.endswith("@ $.data.zzz")
    assert problems(with_(test__metric={"name": "fake_plain_metric", "p": 3})) == [
        "unknown key 'p' (nothing can be set here) @ $.test.metric.p"
    ]


def test_missing_required_sections_are_named():
    assert problems({"name": "x"}) == [
        "required field missing @ $.data",
        "required field missing @ $.model",
        "required field missing @ $.test",
    ]


def test_component_refs_are_structured_into_their_params_class():
    config = config_from_dict(with_(test__metric={"name": "FakeMinkowski", "p": 3}))
    assert config.test.metric == MetricRef("fake_metric", config_fakes.FakeMetricParams(p=3.0))
    assert config.test.metric.build() == config_fakes.FakeMetricParams(p=3.0)
    assert config.data.sampler.params == config_fakes.FakeSamplerParams()


@pytest.mark.parametrize(
    ("metric", "expected"),
    [
        ({"name": "fake_metric", "p": 0.5}, "must be >= 1 (got 0.5) @ $.test.metric.p"),
        ({"name": "fake_metric", "p": "3"}, "expected float, got str '3' @ $.test.metric.p"),
        ({"name": "fake_metric", "q": 3}, "unknown key 'q' (known: p) @ $.test.metric.q"),
        ({"p": 3}, "a metric reference needs a 'name' @ $.test.metric"),
        ({"name": 3}, "expected str, got int 3 @ $.test.metric.name"),
        (
            ["fake_metric"],
            "expected a metric name or a mapping with 'name', got list ['fake_metric'] "
            "@ $.test.metric",
        ),
    ],
)
def test_component_ref_mistakes_carry_full_paths(metric, expected):
    assert problems(with_(test__metric=metric)) == [expected]


def test_unknown_component_names_get_did_you_mean():
    [message] = problems(with_(model={"name": "fake_modle", "arch": "tiny"}))
    assert message.startswith("unknown model 'fake_modle'; did you mean 'fake_model'?")
    assert message.endswith("@ $.model.name")
    [message] = problems(with_(test__metric="fake_metrc"))
    assert "did you mean 'fake_metric'" in message and message.endswith("@ $.test.metric")


def test_several_mistakes_are_reported_at_once_in_field_order():
    data = with_(
        seed="0",
        device="gpu",
        data__batch_size=0,
        data__samplr="fake_sampler",
        model={"name": "fake_model", "arch": "huge", "width": 0},
        train__epochs=0,
        train__optimizer={"name": "adam", "lr": -1},
        test__topk_cmc=[1, 0, 5],
    )
    assert problems(data) == [
        "expected int, got str '0' @ $.seed",
        "must be auto, cpu, cuda or cuda:N (got 'gpu') @ $.device",
        "unknown key 'samplr'; did you mean 'sampler'? @ $.data.samplr",
        "must be >= 1 (got 0) @ $.data.batch_size",
        "must be one of ['tiny', 'small'] (got 'huge') @ $.model.arch",
        "must be >= 1 (got 0) @ $.model.width",
        "must be >= 1 (got 0) @ $.train.epochs",
        "must be > 0.0 (got -1.0) @ $.train.optimizer.lr",
        "must be >= 1 (got 0) @ $.test.topk_cmc[1]",
    ]


def test_a_bad_field_does_not_hide_the_validators_of_the_others():
    # epochs fails its own rule, so the start_epoch <= epochs cross-check stays quiet.
    assert problems(with_(train__epochs=0, train__save_interval=0)) == [
        "must be >= 1 (got 0) @ $.train.epochs",
        "must be >= 1 (got 0) @ $.train.save_interval",
    ]


def test_cross_field_checks_point_at_the_field():
    assert problems(with_(train__epochs=2, train__start_epoch=3)) == [
        "must be <= epochs (2) (got 3) @ $.train.start_epoch"
    ]
    assert problems(with_(train__best_metric="rank-10")) == [
        "needs 10 in test.topk_cmc (got 'rank-10') @ $.train.best_metric"
    ]


@attrs.frozen
class NeedsSampler:
    sampler: SamplerRef = attrs.field(factory=lambda: SamplerRef.of("no_such_sampler"))


def test_a_default_component_that_is_not_registered_is_reported_at_its_field():
    with pytest.raises(ConfigError) as info:
        structure({}, NeedsSampler, "$.data")
    [problem] = info.value.problems
    assert problem.path == "$.data.sampler"
    assert problem.message.startswith("unknown sampler 'no_such_sampler'")


@attrs.frozen
class Window:
    low: int = 0
    high: int = attrs.field(default=1)

    @high.validator
    def _above_low(self, attribute, value):
        if value <= self.low:
            raise ValueError(f"must be > low ({self.low}) (got {value})")


def test_cross_field_validators_see_the_other_fields():
    assert structure({"low": 2, "high": 3}, Window) == Window(2, 3)
    with pytest.raises(ConfigError, match=r"must be > low \(2\) \(got 2\) @ \$\.high"):
        structure({"low": 2, "high": 2}, Window)
    # low itself is broken: the validator of high cannot run and says nothing.
    with pytest.raises(ConfigError) as info:
        structure({"low": "2", "high": 2}, Window)
    assert [p.path for p in info.value.problems] == ["$.low"]


def test_test_only_config_has_no_train_section():
    data = with_()
    del data["train"]
    assert config_from_dict(data).train is None
    assert config_from_dict(with_(train=None)).train is None


def test_unstructure_gives_plain_data_that_structures_back():
    config = config_from_dict(with_(data__train_transforms=["fake_transform"]))
    data = unstructure(config)
    assert data["test"]["metric"] == {"name": "fake_metric", "p": 2.0}
    assert data["data"]["image_size"] == [8, 4] and data["train"]["scheduler"] is None
    assert data["data"]["train_transforms"] == [{"name": "fake_transform"}]
    assert config_from_dict(data) == config


class Colour:
    def __init__(self, name: str) -> None:
        self.name = name


@attrs.frozen
class Paint:
    colour: Colour
    coats: int = 1


def test_a_plugin_teaches_a_type_of_its_own_the_cattrs_way():
    from visim.config.converter import converter

    def structure_colour(value, _type):
        if value not in ("red", "blue"):
            raise ValueError(f"no colour {value!r}")
        return Colour(value)

    converter.register_structure_hook(Colour, structure_colour)
    paint = structure({"colour": "red", "coats": 2}, Paint, "$.paint")
    assert paint.colour.name == "red" and paint.coats == 2
    with pytest.raises(ConfigError) as info:
        structure({"colour": "green", "coats": "2"}, Paint, "$.paint")
    assert [str(p) for p in info.value.problems] == [
        "invalid value str 'green': no colour 'green' @ $.paint.colour",
        "expected int, got str '2' @ $.paint.coats",
    ]
