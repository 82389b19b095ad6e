"""Where untrusted input becomes typed config: visim's strict structurer, cattrs behind it.

:func:`structure` is hand-written. It walks the annotations visim's schemas use (attrs classes,
component references, unions, ``Literal``, lists, tuples, mappings and the four primitives) and
is strict (no bool from "false", no int from 5.7, no str from 12), rejects unknown keys with a
did-you-mean, runs every attrs validator field by field so its message keeps the field's path,
and collects every problem before raising one :class:`ConfigError`.

:data:`converter` is a plain ``cattrs.Converter``, and the fallback: a type :func:`structure`
does not know (one a plugin declares in its params) goes to it, so a plugin teaches visim a type
of its own the cattrs way, ``converter.register_structure_hook(MyType, hook)``; whatever the
hook raises is reported at the field's path. It also unstructures (``visim config show``).

Why not visim's rules as hooks on the cattrs Converter: this structurer's strictness, paths and
collected problems are what every config test pins down, and rewriting it as hooks would change
all of that for no user-visible gain. What visim does not handle, cattrs does.
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any, Literal, Union

import attrs
import cattrs

from visim.config.errors import ConfigError, Problem
from visim.suggest import did_you_mean

converter = cattrs.Converter()
NoneType = type(None)
# attrs >= 24.1 wraps converters that take the instance in attrs.Converter; older has none.
CONVERTER_OBJECTS = getattr(attrs, "Converter", ())


def describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) < 40 else text[:37] + '...'}"


def join(path: str, key: str | int) -> str:
    return f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}"


class Collector:
    """Gathers problems from several children, re-raising them together."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def run(self, fn, *args):
        try:
            return fn(*args)
        except ConfigError as exc:
            self.problems.extend(exc.problems)
        return None

    def add(self, message: str, path: str) -> None:
        self.problems.append(Problem(message, path))

    def raise_if_any(self) -> None:
        if self.problems:
            raise ConfigError(self.problems)


def structure(data: Any, cls: Any, path: str = "$") -> Any:
    """Structure ``data`` into ``cls``; every problem is reported with its path."""
    return structure_at(data, cls, path)


def structure_at(value: Any, tp: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if tp is NoneType or tp is None:
        if value is not None:
            raise ConfigError(Problem(f"expected null, got {describe(value)}", path))
        return None
    if origin in (Union, types.UnionType):
        return structure_union(value, typing.get_args(tp), path)
    if origin is Literal:
        choices = typing.get_args(tp)
        if value not in choices or type(value) is not type(choices[0]):
            raise ConfigError(Problem(f"must be one of {list(choices)} (got {value!r})", path))
        return value
    if origin in (tuple, list, Sequence, typing.Sequence) or tp in (tuple, list):
        return structure_sequence(value, tp, path)
    if origin in (dict, Mapping) or tp is dict:
        return structure_mapping(value, tp, path)
    if isinstance(tp, type) and attrs.has(tp):
        return structure_attrs(value, tp, path)
    if tp in PRIMITIVES:
        return PRIMITIVES[tp](value, path)
    try:
        return converter.structure(value, tp)
    except Exception as exc:  # a type some plugin declared that only cattrs knows
        raise ConfigError(Problem(f"invalid value {describe(value)}: {exc}", path)) from None


def structure_union(value: Any, options: tuple, path: str) -> Any:
    if value is None and NoneType in options:
        return None
    candidates = [o for o in options if o is not NoneType]
    # A list only fits the sequence options, anything else only the others: when that leaves
    # one option (``ref | tuple[ref, ...]``), its own detailed problems are reported.
    is_list = isinstance(value, Sequence) and not isinstance(value, (str, bytes))
    shaped = [o for o in candidates if is_sequence_type(o) == is_list]
    if len(shaped) == 1:
        candidates = shaped
    errors: list[Problem] = []
    for option in candidates:
        try:
            return structure_at(value, option, path)
        except ConfigError as exc:
            errors.extend(exc.problems)
    if len(candidates) == 1:
        raise ConfigError(errors)
    names = " or ".join(type_name(o) for o in options)
    raise ConfigError(Problem(f"expected {names}, got {describe(value)}", path))


def is_sequence_type(tp: Any) -> bool:
    return typing.get_origin(tp) in (tuple, list, Sequence, typing.Sequence) or tp in (tuple, list)


def type_name(tp: Any) -> str:
    if tp is NoneType:
        return "null"
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def strict(expected: type | tuple[type, ...], name: str, cast=None):
    def hook(value: Any, path: str) -> Any:
        # bool is an int subclass: exclude it explicitly wherever it is not asked for.
        if isinstance(value, bool) and bool not in (
            expected if isinstance(expected, tuple) else (expected,)
        ):
            raise ConfigError(Problem(f"expected {name}, got {describe(value)}", path))
        if not isinstance(value, expected):
            raise ConfigError(Problem(f"expected {name}, got {describe(value)}", path))
        if cast is None:
            return value
        try:
            return cast(value)
        except ValueError as exc:
            raise ConfigError(Problem(str(exc), path)) from None

    return hook


# A float field whose attrs metadata holds this key accepts +-inf (never nan).
INFINITY_OK = "visim_infinity_ok"


def is_infinity(value: Any) -> bool:
    return isinstance(value, float) and math.isinf(value)


def finite(value: float) -> float:
    # nan and inf pass every comparison rule the wrong way (nan > 0 is False, inf > 0 is True)
    # and only blow up later, inside training; the few fields that mean something by inf say
    # so with INFINITY_OK in their metadata.
    if not math.isfinite(value):
        raise ValueError(f"must be a finite number (got {value})")
    return float(value)


PRIMITIVES = {
    bool: strict(bool, "bool"),
    int: strict(int, "int"),
    float: strict((int, float), "float", finite),
    str: strict(str, "str"),
}


def structure_sequence(value: Any, tp: Any, path: str) -> Any:
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
        raise ConfigError(Problem(f"expected a list, got {describe(value)}", path))
    args = typing.get_args(tp)
    origin = typing.get_origin(tp) or tp
    if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
        if len(value) != len(args):
            raise ConfigError(
                Problem(f"expected exactly {len(args)} items (got {len(value)})", path)
            )
        item_types = list(args)
    else:
        item_types = [args[0] if args else Any] * len(value)
    collector = Collector()
    items = [
        collector.run(structure_at, item, t, join(path, i))
        for i, (item, t) in enumerate(zip(value, item_types))
    ]
    collector.raise_if_any()
    return list(items) if origin is list else tuple(items)


def structure_mapping(value: Any, tp: Any, path: str) -> dict:
    if not isinstance(value, Mapping):
        raise ConfigError(Problem(f"expected a mapping, got {describe(value)}", path))
    key_type, value_type = typing.get_args(tp) or (Any, Any)
    collector = Collector()
    out = {}
    for key, item in value.items():
        k = collector.run(structure_at, key, key_type, join(path, str(key)))
        out[k] = collector.run(structure_at, item, value_type, join(path, str(key)))
    collector.raise_if_any()
    return out


@cache
def resolved_fields(cls: type) -> tuple[attrs.Attribute, ...]:
    attrs.resolve_types(cls)
    return tuple(f for f in attrs.fields(cls) if f.init)


def structure_attrs(value: Any, cls: type, path: str) -> Any:
    from visim.config.refs import ComponentRef, structure_ref

    if issubclass(cls, ComponentRef):
        return structure_ref(value, cls, path)
    if isinstance(value, cls):
        return value
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        raise ConfigError(Problem(f"expected a mapping, got {describe(value)}", path))
    fields = {f.alias: f for f in resolved_fields(cls)}
    problems = unknown_keys(value, fields, path)
    by_field: dict[str, list[Problem]] = {}
    kwargs: dict[str, Any] = {}
    for name, field in fields.items():
        if name not in value:
            if field.default is attrs.NOTHING:
                by_field[name] = [Problem("required field missing", join(path, name))]
            continue
        try:
            if field.metadata.get(INFINITY_OK) and is_infinity(value[name]):
                kwargs[name] = float(value[name])  # e.g. minkowski's p: .inf, the Chebyshev distance
            else:
                kwargs[name] = structure_at(value[name], field.type, join(path, name))
        except ConfigError as exc:
            by_field[name] = list(exc.problems)
    # Validators run on every field that structured, before __init__: one bad field never
    # hides another, and cross-field checks in __attrs_post_init__ only see valid fields.
    provisional = provisional_instance(cls, kwargs, path, by_field)
    run_validators(provisional, cls, path, by_field)
    problems += [problem for name in fields for problem in by_field.get(name, [])]
    if problems:
        raise ConfigError(problems)
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        raise ConfigError(rerooted(exc.problems, path)) from None
    except Exception as exc:  # a cross-field check in __attrs_post_init__
        raise ConfigError(Problem(validator_message(exc), path)) from None


def unknown_keys(value: Mapping, fields: Mapping[str, attrs.Attribute], path: str) -> list[Problem]:
    problems = []
    for key in value:
        if key not in fields:
            hint = did_you_mean(str(key), fields)
            if hint:
                known = ""
            elif fields:
                known = f" (known: {', '.join(fields)})"
            else:
                known = " (nothing can be set here)"
            problems.append(Problem(f"unknown key {key!r}{hint}{known}", join(path, str(key))))
    return problems


def rerooted(problems: list[Problem], root: str) -> list[Problem]:
    """Problems whose paths start at ``$`` (what was validated), moved under ``root``."""
    return [
        Problem(p.message, root + p.path[1:] if p.path.startswith("$") else join(root, p.path))
        for p in problems
    ]


def provisional_instance(cls: type, kwargs: dict, path: str, by_field: dict) -> Any:
    """The instance-to-be, built without ``__init__``, for validators to look at."""
    instance = object.__new__(cls)
    for field in resolved_fields(cls):
        if field.alias in kwargs:
            value = kwargs[field.alias]
            if field.converter is not None and not isinstance(field.converter, CONVERTER_OBJECTS):
                value = field.converter(value)
        elif field.alias in by_field or field.default is attrs.NOTHING:
            continue
        elif isinstance(field.default, attrs.Factory):
            try:
                factory = field.default.factory
                value = factory(instance) if field.default.takes_self else factory()
            except ConfigError as exc:  # e.g. a default component nobody registered
                by_field[field.alias] = rerooted(exc.problems, join(path, field.alias))
                continue
        else:
            value = field.default
        object.__setattr__(instance, field.name, value)
    return instance


def run_validators(instance: Any, cls: type, path: str, by_field: dict) -> None:
    fields = resolved_fields(cls)
    complete = all(hasattr(instance, f.name) for f in fields)
    for field in fields:
        if field.validator is None or field.alias in by_field or not hasattr(instance, field.name):
            continue
        try:
            field.validator(instance, field, getattr(instance, field.name))
        except ConfigError as exc:  # rule validators: paths rooted at the instance
            by_field[field.alias] = rerooted(exc.problems, path)
        except Exception as exc:  # attrs' own validators and anything a plugin wrote
            if isinstance(exc, AttributeError) and not complete:
                continue  # a cross-field validator looking at a field that already failed
            by_field[field.alias] = [Problem(validator_message(exc), join(path, field.alias))]


def validator_message(exc: Exception) -> str:
    # attrs' own validators raise TypeError(msg, attribute, ...) / ValueError(msg): keep msg.
    return str(exc.args[0]) if exc.args else type(exc).__name__


def unstructure(obj: Any) -> Any:
    """Plain YAML-safe data (dicts, lists, scalars) for a config object."""
    from visim.config.refs import ComponentRef

    if isinstance(obj, ComponentRef):
        return {"name": obj.name, **unstructure(obj.params)}
    if attrs.has(type(obj)):
        return {
            f.alias: unstructure(getattr(obj, f.name)) for f in attrs.fields(type(obj)) if f.init
        }
    if isinstance(obj, (list, tuple)):
        return [unstructure(item) for item in obj]
    if isinstance(obj, Mapping):
        return {key: unstructure(item) for key, item in obj.items()}
    return converter.unstructure(obj)


converter.register_unstructure_hook_func(
    lambda t: isinstance(t, type) and attrs.has(t), unstructure
)
