"""The generated config reference: every field documented, types, defaults and rules in words."""

from __future__ import annotations

import attrs
import pytest
from attrs import validators as v

from visim.config import rules
from visim.config.converter import resolved_fields
from visim.config.reference import (
    default_label,
    describe_validator,
    field_docs,
    rule_docs,
    sections,
    type_label,
)
from visim.config.refs import MetricRef, TransformRef
from visim.config.schema import Experiment, TrainConfig
from visim.plugins import get_registry


def test_sections_walk_the_schema():
    assert [path for path, _ in sections(Experiment)] == ["", "data", "train", "test"]


def test_every_schema_field_is_documented_and_has_a_described_rule():
    for path, cls in sections(Experiment):
        for field in resolved_fields(cls):
            assert field.metadata.get("doc"), f"{path or 'top level'}.{field.alias} has no doc"
            if field.validator is not None:
                assert describe_validator(field.validator).startswith(("must", "null")), field.alias


def test_train_rows_read_like_the_reference():
    rows = {row.name: row for row in field_docs(TrainConfig)}
    assert (rows["epochs"].type, rows["epochs"].default, rows["epochs"].rule) == (
        "int",
        "10",
        "must be >= 1",
    )
    assert (
        rows["nof_classes"].type == "int or null"
        and rows["nof_classes"].rule == "null, or must be >= 1"
    )
    assert rows["topk_acc"].type == "list of int" and rows["topk_acc"].default == "[1]"
    assert rows["optimizer"].type == "optimizer reference" and rows["optimizer"].default == "adam"
    assert (
        rows["scheduler"].type == "scheduler reference or null"
        and rows["scheduler"].default == "null"
    )


@pytest.mark.parametrize(
    ("tp", "label"),
    [
        (tuple[bool, bool], "[bool, bool]"),
        (tuple[TransformRef, ...] | None, "list of transform references or null"),
        (dict[str, float], "mapping of str to float"),
        (MetricRef, "metric reference"),
        (TrainConfig | None, "section or null"),
    ],
)
def test_type_labels(tp, label):
    assert type_label(tp) == label


@pytest.mark.parametrize(
    ("validator", "text"),
    [
        (v.ge(1), "must be >= 1"),
        (v.in_(("a", "b")), "must be one of ['a', 'b']"),
        (v.optional(v.lt(3)), "null, or must be < 3"),
        (v.and_(v.gt(0), v.le(1)), "must be > 0 and must be <= 1"),
        (v.min_len(1), "must have length >= 1"),
        (v.instance_of(int), "must be an instance of int"),
        (v.deep_iterable(v.ge(0)), "every item: must be >= 0"),
        (rules.between(0, 1), "must be strictly between 0 and 1"),
        (rules.forall(rules.gte(1)), "must have every item be >= 1"),
        (rules.any_("None", ("in", ["x"])), "must be null or be one of ['x']"),
    ],
)
def test_validators_are_described_in_words(validator, text):
    assert describe_validator(validator) == text


@attrs.frozen
class Defaults:
    required: int
    ref: MetricRef = attrs.field(factory=lambda: MetricRef.of("no_such_metric"))
    pair: tuple[int, int] = (1, 2)
    text: str = "auto"


def test_default_labels():
    labels = {f.alias: default_label(f) for f in attrs.fields(Defaults)}
    assert labels == {"required": "required", "ref": "computed", "pair": "[1, 2]", "text": "auto"}


def test_rule_docs_cover_every_builtin_rule():
    documented = {doc.name.lower() for doc in rule_docs()}
    builtin = {
        name for name, rule in get_registry().rules.items() if rule.plugin == "visim.config.rules"
    }
    assert documented == builtin
    by_name = {doc.name: doc for doc in rule_docs()}
    assert by_name["between"].data == "a (low, high) pair of numbers with low <= high"
    assert by_name["number"].data == "none" and by_name["forall"].data == "validations"
    assert all(doc.doc for doc in rule_docs())


def check_positive(instance, attribute, value):
    """must be positive"""


def undocumented(instance, attribute, value):
    return None


def test_other_validators_are_described_by_their_doc_or_name_never_an_address():
    assert describe_validator(check_positive) == "must be positive"
    assert describe_validator(undocumented) == "checked by undocumented"
