"""What the generated config reference says about each field: type, default, rule, doc.

Read straight from the attrs classes (the schema, a component's params), so the reference
cannot drift from what the loader accepts. A field's description is its ``metadata["doc"]``;
a validator may carry a ``requirement`` text (rule validators do) to describe itself. These
labels are the only ones: ``visim components`` shows params with them too.
"""

from __future__ import annotations

import inspect
import re
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Union

import attrs
import yaml

from visim.config.converter import resolved_fields, unstructure
from visim.config.refs import ComponentRef
from visim.config.rule_checks import shown

NoneType = type(None)
# "visim.config.refs.MetricRef" -> "MetricRef", in annotations that could not be resolved
QUALIFIED = re.compile(r"\b(?:[A-Za-z_]\w*\.)+([A-Za-z_]\w*)")


@attrs.frozen
class FieldDoc:
    name: str
    type: str
    default: str
    rule: str
    doc: str


def is_section(tp: Any) -> bool:
    return isinstance(tp, type) and attrs.has(tp) and not issubclass(tp, ComponentRef)


def section_of(tp: Any) -> type | None:
    """The attrs class a field holds (``TrainConfig | None`` included), if it is a section."""
    if is_section(tp):
        return tp
    if typing.get_origin(tp) in (Union, types.UnionType):
        found = [arg for arg in typing.get_args(tp) if is_section(arg)]
        return found[0] if len(found) == 1 else None
    return None


def sections(cls: type, prefix: str = "") -> list[tuple[str, type]]:
    """``[("", Experiment), ("data", DataConfig), ...]``: a class and its nested sections."""
    found = [(prefix, cls)]
    for field in resolved_fields(cls):
        nested = section_of(field.type)
        if nested is not None:
            found += sections(nested, f"{prefix}.{field.alias}" if prefix else field.alias)
    return found


def type_label(tp: Any) -> str:
    """A type in a config author's words: ``list of int``, ``float or null``."""
    if isinstance(tp, str):  # an annotation that could not be resolved (a plugin's)
        return QUALIFIED.sub(r"\1", tp)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is NoneType or tp is None:
        return "null"
    if tp is Any:
        return "anything"
    if origin in (Union, types.UnionType):
        return " or ".join(type_label(arg) for arg in args)
    if origin is Literal:
        return "one of " + ", ".join(map(str, args))
    if origin in (tuple, list, Sequence) or tp in (tuple, list):
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            return "[" + ", ".join(type_label(arg) for arg in args) + "]"
        item = type_label(args[0]) if args else ""
        return f"list of {item}{'s' if item.endswith('reference') else ''}" if args else "list"
    if origin in (dict, Mapping) or tp is dict:
        return f"mapping of {type_label(args[0])} to {type_label(args[1])}" if args else "mapping"
    if isinstance(tp, type) and issubclass(tp, ComponentRef):
        return f"{tp.what()} reference"
    if is_section(tp):
        return "section"
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def field_type_label(field: attrs.Attribute) -> str:
    return "anything" if field.type is None else type_label(field.type)


def value_label(value: Any) -> str:
    """A value as it would be written in YAML: ``[1, 5]``, ``market1501``, ``null``."""
    if isinstance(value, ComponentRef):
        return value.name
    try:
        text = yaml.safe_dump(unstructure(value), default_flow_style=True, width=10_000).strip()
    except yaml.YAMLError:  # a plugin's own type that has no plain form
        return repr(value)
    return text.removesuffix("...").strip()


class Computed:
    """Stands for a default computed from the other fields, or not computable on its own."""

    def __repr__(self) -> str:
        return "computed"


COMPUTED = Computed()


def default_value(field: attrs.Attribute) -> Any:
    """The field's default: ``attrs.NOTHING`` when it is required, :data:`COMPUTED` when it
    cannot be known without the other fields (or without a plugin that is not installed)."""
    default = field.default
    if not isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        return default
    if default.takes_self:
        return COMPUTED
    try:
        return default.factory()
    except Exception:  # e.g. a default component whose plugin is not installed
        return COMPUTED


def default_label(field: attrs.Attribute) -> str:
    value = default_value(field)
    if value is attrs.NOTHING:
        return "required"
    return "computed" if value is COMPUTED else value_label(value)


def describe_validator(validator: Any) -> str:
    """``must be >= 1``, from a rule validator, one of attrs' own, or anything with a doc.

    In order: a ``requirement`` text (rule validators carry one; a plugin's validator may), an
    attrs validator described from its fields, the first line of a docstring, the name.
    """
    if validator is None:
        return ""
    requirement = getattr(validator, "requirement", None)
    if isinstance(requirement, str):
        return requirement
    described = describe_attrs_validator(validator) if attrs.has(type(validator)) else None
    if described:
        return described
    # Anything else: the first line of its own docstring, else its name; never an address.
    if inspect.isfunction(validator) or inspect.ismethod(validator):
        doc, name = inspect.getdoc(validator), validator.__name__
    else:
        doc, name = type(validator).__dict__.get("__doc__"), type(validator).__name__
    return inspect.cleandoc(doc).splitlines()[0] if doc and doc.strip() else f"checked by {name}"


def describe_attrs_validator(validator: Any) -> str | None:
    """attrs' own validators (``attrs.validators.ge(1)``, ``in_``, ``optional``, ...) are attrs
    classes: they are read through ``attrs.fields``, by the field names their reprs show, never
    by their (private) class names. None for a shape not known here."""
    values = {field.name.lstrip("_"): getattr(validator, field.name) for field in attrs.fields(type(validator))}
    if "validators" in values:  # and_
        return " and ".join(describe_validator(v) for v in values["validators"])
    if "validator" in values:  # optional
        inner = values["validator"]
        inner = inner if isinstance(inner, (list, tuple)) else [inner]
        return f"null, or {' and '.join(describe_validator(v) for v in inner)}"
    if "member_validator" in values:  # deep_iterable
        return f"every item: {describe_validator(values['member_validator'])}"
    if "compare_op" in values and "bound" in values:  # lt, le, ge, gt
        return f"must be {values['compare_op']} {values['bound']!r}"
    if "options" in values:  # in_
        return f"must be one of {shown(values['options'])}"
    if "min_length" in values:
        return f"must have length >= {values['min_length']}"
    if "max_length" in values:
        return f"must have length <= {values['max_length']}"
    if "type" in values:  # instance_of
        return f"must be an instance of {type_label(values['type'])}"
    if "pattern" in values:  # matches_re
        pattern = values["pattern"]
        return f"must match {getattr(pattern, 'pattern', pattern)!r}"
    return None


def field_docs(cls: type) -> list[FieldDoc]:
    return [
        FieldDoc(
            name=field.alias,
            type=field_type_label(field),
            default=default_label(field),
            rule=describe_validator(field.validator),
            doc=str(field.metadata.get("doc", "")),
        )
        for field in resolved_fields(cls)
    ]


@attrs.frozen
class RuleDoc:
    name: str
    data: str
    doc: str


def rule_docs() -> list[RuleDoc]:
    """The built-in rules, in declaration order, with what data each takes."""
    from visim.config.rule_checks import LEAF_RULES
    from visim.config.rules import NESTED_RULES

    docs = []
    for name, leaf in LEAF_RULES.items():
        # A data check names what it wants when shown something that is nothing.
        data = "none" if leaf.unary else (leaf.check_data(object()) or "any value")
        docs.append(RuleDoc(name, data, leaf.doc))
    docs += [RuleDoc(name, "validations", doc) for name, doc in NESTED_RULES.items()]
    return docs
