"""Named validation rules: the original engine's validation forms as attrs validators and
``validate_params``.

A validation is written in one of the original's forms:

* a rule name: ``"number"``, ``"not None"`` (a unary rule, ``check(value)``);
* a ``(name, data)`` tuple: ``("gt", 0)``, ``("in", ["cpu", "cuda"])``;
* a type: ``int`` (``isinstance``);
* a callable, called with the value: ``lambda value: value % 2 == 0``;
* ``None``: the parameter only has to exist;
* a combination: ``("any", ["None", ("gt", 0)])``, ``("not", ("in", [0]))``,
  ``("forall", ("gte", 1))``, ``("xor", ...)``, ``("all", ...)``.

Inside a combination, a list is always a list of validations; a tuple is one ``(name, data)``
validation when its first item names a rule that takes data, else a tuple of validations.

A validation is compiled once into a :class:`Check`; a failing check explains itself in the
config's words, ``must be >= 1 (got 0)``, at the path of what failed (``forall`` adds the item
index: ``$.topk_cmc[2]``). Built-in rules are registered through the ``register_rules`` hook,
exactly as a plugin registers its own: ``register(name, check, unary=False, doc=None)``.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from visim.config.errors import InvalidParameterException, Problem, ValidationException
from visim.config.rule_checks import LEAF_RULES, LeafRule, shown
from visim.hookspecs import hookimpl
from visim.suggest import did_you_mean

NESTED_RULES = {
    "all": "Every one of the validations in the data holds.",
    "any": "At least one of the validations in the data holds.",
    "not": "The validation in the data does not hold (several: not all of them hold).",
    "xor": "Exactly one of the validations in the data holds.",
    "forall": "The value is iterable and every item passes the validations in the data.",
}


class _NoData:
    def __repr__(self) -> str:
        return "NO_DATA"


NO_DATA: Any = _NoData()


class RuleNotBuiltin(ValidationException):
    """A rule name that only the plugin registry may know (looked up once plugins are loaded)."""


def rule_key(name: str) -> str:
    """``Shorter_Eq`` and ``shorter  eq`` both name ``shorter eq``."""
    return " ".join(name.replace("_", " ").split()).lower()


BUILTIN_LEAVES = {rule_key(name): leaf for name, leaf in LEAF_RULES.items()}


def show_value(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def negate(phrase: str) -> str:
    return phrase[4:] if phrase.startswith("not ") else f"not {phrase}"


@attrs.frozen
class Check:
    """A compiled validation. ``phrase`` completes "must ...": ``be >= 1``."""

    phrase: str
    test: Callable[[Any], Any] | None = attrs.field(default=None, eq=False)
    combine: str | None = None  # one of NESTED_RULES for combinations
    children: tuple[Check, ...] = ()
    hint: Callable[[Any], str] | None = attrs.field(default=None, eq=False)

    def holds(self, value: Any) -> bool:
        if self.combine is None:
            try:
                return bool(self.test(value))
            except (TypeError, ValueError):  # a custom check choking on a wrong-typed value
                return False
        if self.combine == "forall":
            return isinstance(value, Iterable) and all(
                all(child.holds(item) for child in self.children) for item in value
            )
        if self.combine == "all":
            return all(child.holds(value) for child in self.children)
        if self.combine == "any":
            return any(child.holds(value) for child in self.children)
        if self.combine == "not":
            return not all(child.holds(value) for child in self.children)
        return sum(child.holds(value) for child in self.children) == 1  # xor

    def failure(self, value: Any, path: str = "$") -> Problem | None:
        """None when ``value`` passes, else the most precise problem found."""
        if self.combine == "all":
            return next(filter(None, (c.failure(value, path) for c in self.children)), None)
        if self.combine == "forall" and isinstance(value, Iterable):
            for index, item in enumerate(value):
                for child in self.children:
                    problem = child.failure(item, f"{path}[{index}]")
                    if problem:
                        return problem
            return None
        if self.holds(value):
            return None
        hint = self.hint(value) if self.hint else ""
        return Problem(f"must {self.phrase} (got {show_value(value)}){hint}", path)


def combination(name: str, children: tuple[Check, ...]) -> Check:
    phrases = [child.phrase for child in children]
    if name == "all":
        phrase = " and ".join(phrases)
    elif name == "any":
        phrase = " or ".join(phrases)
    elif name == "not":
        phrase = negate(phrases[0]) if len(phrases) == 1 else f"not ({' and '.join(phrases)})"
    elif name == "xor":
        phrase = f"satisfy exactly one of: {'; '.join(phrases)}"
    else:
        phrase = f"have every item {' and '.join(phrases)}"
    return Check(phrase, combine=name, children=children)


# -- looking rules up ------------------------------------------------------------------------
def plugin_leaf(rule) -> LeafRule:
    """A registry :class:`visim.registry.Rule` from a plugin, as a leaf rule."""

    def phrase(data):
        return f"pass rule {rule.name!r}" + ("" if rule.unary else f" with {shown(data)}")

    return LeafRule(rule.name, rule.check, rule.unary, phrase)


def find_rule(name: str, use_registry: bool | Mapping = True) -> LeafRule | str:
    """The leaf rule called ``name``, or the name of a combining rule.

    ``use_registry``: True looks plugin rules up in the loaded registry, False knows only the
    built-in rules, and a mapping (name -> registry Rule) is the set of rules to use instead,
    which lets the plugin loader check names before the registry exists.
    """
    key = rule_key(name)
    if key in NESTED_RULES:
        return key
    if key in BUILTIN_LEAVES:
        return BUILTIN_LEAVES[key]
    if use_registry is False:
        raise RuleNotBuiltin(f"rule {name!r} is not built in")
    if isinstance(use_registry, Mapping):
        rules = use_registry
    else:
        from visim.plugins import get_registry

        rules = get_registry().rules
    registered = {rule_key(n): rule for n, rule in rules.items()}
    if key in registered:
        return plugin_leaf(registered[key])
    known = sorted({*registered, *BUILTIN_LEAVES, *NESTED_RULES})
    hint = did_you_mean(key, known) or " (see docs: rules)"
    raise ValidationException(f"unknown validation rule {name!r}{hint}")


def takes_data(name: str, use_registry: bool) -> bool:
    try:
        found = find_rule(name, use_registry)
    except ValidationException:
        return False
    return isinstance(found, str) or not found.unary


# -- compiling validations ---------------------------------------------------------------------
def compile_validation(spec: Any, use_registry: bool = True) -> Check:
    """Compile one validation (any of the forms in this module's docstring) into a Check."""
    if isinstance(spec, RuleValidator):
        if spec._check is None and use_registry is False:
            raise RuleNotBuiltin(f"{spec!r} names a plugin rule")
        if spec._check is None and isinstance(use_registry, Mapping):
            return compile_validation(spec.spec, use_registry)  # not cached: these rules may go
        return spec.check
    if isinstance(spec, Check):
        return spec
    if spec is None:
        return Check("exist", test=lambda value: True)
    if isinstance(spec, str):
        return compile_rule(spec, NO_DATA, use_registry)
    if isinstance(spec, tuple):
        if len(spec) != 2 or not isinstance(spec[0], str):
            raise ValidationException(f"a validation tuple is (rule name, data), got {spec!r}")
        return compile_rule(spec[0], spec[1], use_registry)
    if isinstance(spec, (type, types.UnionType)):
        return compile_rule("instance", spec, use_registry)
    if callable(spec):
        name = getattr(spec, "__name__", "")
        what = "a custom check" if not name or name == "<lambda>" else name
        return Check(f"pass {what}", test=spec)
    raise ValidationException(
        "a validation is a rule name, a (name, data) tuple, a type, a callable or None; "
        f"got {spec!r}"
    )


def compile_rule(name: str, data: Any, use_registry: bool = True) -> Check:
    found = find_rule(name, use_registry)
    if isinstance(found, str):
        if data is NO_DATA:
            raise ValidationException(
                f"rule {name!r} needs the validations it combines: ({name!r}, [...])"
            )
        return combination(found, compile_group(found, data, use_registry))
    if found.unary:
        if data is not NO_DATA and data is not None:
            raise ValidationException(f"rule {name!r} takes no data, got {data!r}")
        return Check(found.phrase(None), test=found.check)
    if data is NO_DATA:
        raise ValidationException(f"rule {name!r} needs data: write ({name!r}, <data>)")
    wrong = found.check_data(data)
    if wrong:
        raise ValidationException(f"rule {name!r} needs {wrong} as data, got {data!r}")
    hint = (lambda value: found.hint(value, data)) if found.hint else None
    return Check(found.phrase(data), test=lambda value: found.check(value, data), hint=hint)


def compile_group(name: str, data: Any, use_registry: bool) -> tuple[Check, ...]:
    """The validations a combining rule's data holds (see the module docstring)."""
    single_pair = (
        isinstance(data, tuple)
        and len(data) == 2
        and isinstance(data[0], str)
        and takes_data(data[0], use_registry)
    )
    if isinstance(data, list) or (isinstance(data, tuple) and not single_pair):
        items = list(data)
    else:
        items = [data]
    if not items:
        raise ValidationException(f"rule {name!r} needs at least one validation to combine")
    return tuple(compile_validation(item, use_registry) for item in items)


def satisfies(value: Any, validation: Any) -> bool:
    """Whether ``value`` passes ``validation`` (any form): ``satisfies(3, ("gt", 0))``."""
    return compile_validation(validation).holds(value)


def combining_check(name: str):
    def check(value: Any, data: Any) -> bool:
        return compile_rule(name, data).holds(value)

    check.__name__ = check.__qualname__ = f"{name}_check"
    check.__doc__ = NESTED_RULES[name]
    return check


@hookimpl
def register_rules(register):
    for name, leaf in LEAF_RULES.items():
        register(name, leaf.check, unary=leaf.unary, doc=leaf.doc)
    for name, doc in NESTED_RULES.items():
        register(name, combining_check(name), doc=doc)


# -- attrs validators ------------------------------------------------------------------------
class RuleValidator:
    """An attrs validator made of a validation; raises :class:`InvalidParameterException`.

    Built-in rules are compiled (and their data checked) at once, so a malformed validation
    fails when the class is defined; a plugin's rule is looked up when first used.
    """

    __slots__ = ("spec", "_check")

    def __init__(self, spec: Any) -> None:
        self.spec = spec
        try:
            self._check: Check | None = compile_validation(spec, use_registry=False)
        except RuleNotBuiltin:
            self._check = None

    @property
    def check(self) -> Check:
        if self._check is None:
            self._check = compile_validation(self.spec)
        return self._check

    @property
    def requirement(self) -> str:
        """What a valid value does: ``must be >= 1``."""
        return f"must {self.check.phrase}"

    def __call__(self, instance: Any, attribute: Any, value: Any) -> None:
        where = "$"
        if attribute is not None:
            where = f"$.{getattr(attribute, 'alias', None) or attribute.name}"
        problem = self.check.failure(value, where)
        if problem:
            raise InvalidParameterException(problem)

    def __repr__(self) -> str:
        return f"<rule validator {self.spec!r}>"


def check_rule_names(params_class: type, rules: Mapping) -> None:
    """Compile every rule validator of ``params_class`` whose rules are not built in against
    ``rules`` (name -> registry Rule): an unknown rule name raises :class:`ValidationException`
    naming the field, when the plugin loads rather than when a config first uses it.
    """
    for field in attrs.fields(params_class):
        for each in rule_validators(field.validator):
            if each._check is None:
                try:
                    compile_validation(each.spec, use_registry=rules)
                except ValidationException as exc:
                    raise ValidationException(f"{params_class.__name__}.{field.name}: {exc}") from None


def rule_validators(validator_: Any) -> Iterable[RuleValidator]:
    """The :class:`RuleValidator` objects inside a validator, through attrs' and_/optional."""
    if isinstance(validator_, RuleValidator):
        yield validator_
        return
    for inner in ("_validators", "validators", "validator"):  # and_, ours and attrs' optional
        found = getattr(validator_, inner, None)
        children = found if isinstance(found, (tuple, list)) else [] if found is None else [found]
        for child in children:
            yield from rule_validators(child)


def validator(rule: Any, data: Any = NO_DATA) -> RuleValidator:
    """An attrs validator: ``validator("between", (0, 1))``, ``validator(("any", [...]))``."""
    return RuleValidator(rule if data is NO_DATA else (rule, data))


@attrs.frozen
class OptionalValidator:
    """Lets None through; any other value must pass every one of ``validators``."""

    validators: tuple[Callable[..., Any], ...]

    def __call__(self, instance: Any, attribute: Any, value: Any) -> None:
        if value is not None:
            for each in self.validators:
                each(instance, attribute, value)

    @property
    def requirement(self) -> str:
        inner = [getattr(v, "requirement", repr(v)) for v in self.validators]
        return f"null, or {' and '.join(inner)}"


def optional(*validators: Callable[..., Any]) -> OptionalValidator:
    """None, or a value passing every validator: ``optional(gte(1))``."""
    return OptionalValidator(tuple(validators))


def custom(test: Callable[[Any], Any], phrase: str, hint: Callable[[Any], str] | None = None):
    """An attrs validator for a check no named rule expresses, failing in the rules' words.

    ``custom(is_arch, "be a torchreid architecture", hint=...)`` reports
    ``must be a torchreid architecture (got 'x')`` plus the hint's text (e.g. a did-you-mean).
    """
    return RuleValidator(Check(phrase, test=test, hint=hint))


# Named helpers, one per rule, for field declarations: ``attrs.field(validator=gte(1))``. They
# make validators; the rules' predicates are ``visim.config.rule_checks.check_<rule>``.
def none():
    return validator("None")


def not_none():
    return validator("not None")


def number():
    return validator("number")


def is_callable():
    return validator("callable")


def iterable():
    return validator("iterable")


def sized():
    return validator("sized")


def instance(types_: Any):
    return validator("instance", types_)


def gt(bound):
    return validator("gt", bound)


def gte(bound):
    return validator("gte", bound)


def lt(bound):
    return validator("lt", bound)


def lte(bound):
    return validator("lte", bound)


def between(low, high):
    return validator("between", (low, high))


def within(low, high):
    return validator("within", (low, high))


def outside(low, high):
    return validator("outside", (low, high))


def length(size: int):
    return validator("len", size)


def shorter(size: int):
    return validator("shorter", size)


def longer(size: int):
    return validator("longer", size)


def shorter_eq(size: int):
    return validator("shorter eq", size)


def longer_eq(size: int):
    return validator("longer eq", size)


def in_(options):
    return validator("in", options)


def not_in(options):
    return validator("not in", options)


def contains(item):
    return validator("contains", item)


def not_contains(item):
    return validator("not contains", item)


def startswith(prefix):
    return validator("startswith", prefix)


def endswith(suffix):
    return validator("endswith", suffix)


def file_exists():
    return validator("file exists")


def file_exists_absolute():
    return validator("file exists absolute")


def file_exists_in_folder(folder):
    return validator("file exists in folder", folder)


def folder_exists():
    return validator("folder exists")


def folder_exists_absolute():
    return validator("folder exists absolute")


def folder_exists_in_folder(folder):
    return validator("folder exists in folder", folder)


def eq(other):
    return validator("eq", other)


def neq(other):
    return validator("neq", other)


def all_(*validations):
    return validator("all", list(validations))


def any_(*validations):
    return validator("any", list(validations))


def not_(*validations):
    return validator("not", list(validations))


def xor(*validations):
    return validator("xor", list(validations))


def forall(*validations):
    """Every item passes: ``forall(gte(1))`` reports ``must be >= 1 (got 0)`` at ``[i]``."""
    return validator("forall", list(validations))


# -- the original's per-key form -------------------------------------------------------------
def is_optional(spec: Any) -> bool:
    return isinstance(spec, str) and rule_key(spec) == "optional"


def parameters_of(params: Any, attrib_name: str) -> Mapping[str, Any]:
    if isinstance(params, Mapping):
        return params
    if attrs.has(type(params)):
        return {f.name: getattr(params, f.name) for f in attrs.fields(type(params))}
    raise TypeError(
        f"{attrib_name} must be a mapping or an attrs instance, got {type(params).__name__}"
    )


def validate_params(
    validations: Mapping[str, Any], params: Any, attrib_name: str = "params"
) -> None:
    """Validate ``params`` (a mapping or attrs instance) key by key, the original's way.

    ``validations`` maps a parameter name to a list of validations that must all hold (a
    single validation may stand without the list). A missing parameter is a problem unless
    its list holds ``"optional"``. Every problem is reported, at ``$.<attrib_name>.<key>``.

    Raises :class:`InvalidParameterException` (a :class:`~visim.config.errors.ConfigError`)
    when a parameter is missing or invalid, and :class:`ValidationException` when a
    validation is malformed or names an unknown rule.
    """
    if not isinstance(validations, Mapping):
        raise ValidationException(
            f"validations must map parameter names to validations, got {type(validations).__name__}"
        )
    values = parameters_of(params, attrib_name)
    compiled: dict[str, tuple[list[Check], bool]] = {}
    for name, specs in validations.items():
        specs = specs if isinstance(specs, list) else [specs]
        if not specs:
            raise ValidationException(f"parameter {name!r} has no validations")
        compiled[name] = ([compile_validation(s) for s in specs], any(map(is_optional, specs)))
    root = f"$.{attrib_name}" if attrib_name else "$"
    problems: list[Problem] = []
    for name, (checks, optional_) in compiled.items():
        path = f"{root}.{name}"
        if name not in values:
            if not optional_:
                problems.append(Problem("required parameter missing", path))
            continue
        problem = next(filter(None, (c.failure(values[name], path) for c in checks)), None)
        if problem:
            problems.append(problem)
    if problems:
        raise InvalidParameterException(problems)
