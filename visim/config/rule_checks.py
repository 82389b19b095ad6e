"""The leaf rules of the original engine: what each one checks and how it says what it wants.

A check (a predicate, named ``check_<rule>``: ``check_gt(value, bound)``) takes the value (and
the rule's data, unless the rule is unary) and returns a bool; the attrs validators made from
the rules are the :mod:`visim.config.rules` helpers (``rules.gt(0)``). A check never raises
for a value of the wrong type: such a value simply fails (``("gt", 0)`` is false for ``"abc"``). Bad *data* is a mistake of the validation's author; it is caught once, when a
validation is compiled, by the rule's data check. The combining rules (all, any, not, xor,
forall) live in :mod:`visim.config.rules`, which compiles and evaluates validations.

Deliberate differences from the original: ``not in`` means not in; ``outside`` is
``x < low or x > high``; folder checks return booleans; ``number`` excludes booleans.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Callable, Container, Iterable, Sized
from pathlib import Path
from typing import Any

import attrs

from visim.suggest import did_you_mean


def shown(data: Any) -> str:
    """Data as a config author would write it: tuples and sets as lists."""
    if isinstance(data, (set, frozenset)):
        try:
            data = sorted(data)
        except TypeError:
            data = list(data)
    if isinstance(data, tuple):
        data = list(data)
    return repr(data)


def is_number(value: Any) -> bool:
    # bool is an int subclass, but True is not a number anyone configures on purpose.
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def is_path(value: Any) -> bool:
    return isinstance(value, (str, os.PathLike))


def type_names(types: Any) -> str:
    if isinstance(types, tuple):
        return " or ".join(type_names(t) for t in types)
    return getattr(types, "__name__", None) or str(types)


# -- data checks: None when the data is fine, else what the data should have been ----------
def any_data(data: Any) -> str | None:
    return None


def number_data(data: Any) -> str | None:
    return None if is_number(data) else "a number"


def bounds_data(data: Any) -> str | None:
    ok = (
        isinstance(data, (tuple, list))
        and len(data) == 2
        and all(is_number(d) for d in data)
        and data[0] <= data[1]
    )
    return None if ok else "a (low, high) pair of numbers with low <= high"


def size_data(data: Any) -> str | None:
    ok = isinstance(data, int) and not isinstance(data, bool) and data >= 0
    return None if ok else "a non-negative int"


def container_data(data: Any) -> str | None:
    return None if isinstance(data, Container) else "a collection (list, tuple, set or str)"


def affix_data(data: Any) -> str | None:
    ok = isinstance(data, str) or (
        isinstance(data, tuple) and data and all(isinstance(d, str) for d in data)
    )
    return None if ok else "a string or a tuple of strings"


def type_data(data: Any) -> str | None:
    try:
        isinstance(None, data)
    except TypeError:
        return "a type or a tuple of types"
    return None


def path_data(data: Any) -> str | None:
    return None if is_path(data) else "a folder path"


@attrs.frozen
class LeafRule:
    """A built-in rule: ``check(value)`` when unary, else ``check(value, data)``."""

    name: str
    check: Callable[..., bool]
    unary: bool
    # What a passing value does, completing "must ...": ``be >= 1``, ``contain 'x'``.
    phrase: Callable[[Any], str]
    check_data: Callable[[Any], str | None] = any_data
    # An extra hint for a failing value, such as a did-you-mean.
    hint: Callable[[Any, Any], str] | None = None

    @property
    def doc(self) -> str:
        return " ".join((self.check.__doc__ or "").split())


LEAF_RULES: dict[str, LeafRule] = {}


def rule(name: str, phrase, *, unary: bool = False, data=any_data, hint=None, aliases=()):
    """Declare the decorated function as the built-in rule ``name``."""

    def declare(check):
        for each in (name, *aliases):
            LEAF_RULES[each] = LeafRule(each, check, unary, phrase, data, hint)
        return check

    return declare


def choice_hint(value: Any, options: Any) -> str:
    """A did-you-mean for a value that is not one of a rule's choices."""
    if not isinstance(options, Iterable) or isinstance(options, str):
        return ""
    return did_you_mean(value, options)


def safely(test: Callable[[], bool], otherwise: bool = False) -> bool:
    """A comparison a value of the wrong type cannot take part in gives ``otherwise``."""
    try:
        return bool(test())
    except (TypeError, ValueError, OSError):
        return otherwise


# -- types and existence ---------------------------------------------------------------------
@rule("optional", lambda _: "be anything", unary=True)
def check_optional(value):
    """Always true. In ``validate_params`` it lets the parameter be missing."""
    return True


@rule("None", lambda _: "be null", unary=True)
def check_none(value):
    """The value is None (``null`` in YAML)."""
    return value is None


@rule("not None", lambda _: "not be null", unary=True)
def check_not_none(value):
    """The value is anything but None."""
    return value is not None


@rule("number", lambda _: "be a number", unary=True)
def check_number(value):
    """An int or a float (any real number), but not a bool."""
    return is_number(value)


@rule("callable", lambda _: "be callable", unary=True)
def check_callable(value):
    """The value can be called."""
    return callable(value)


@rule("iterable", lambda _: "be iterable", unary=True)
def check_iterable(value):
    """The value can be iterated over (lists, tuples, strings, mappings, ...)."""
    return isinstance(value, Iterable)


@rule("sized", lambda _: "have a length", unary=True)
def check_sized(value):
    """The value has a length."""
    return isinstance(value, Sized)


@rule(
    "instance",
    lambda d: f"be an instance of {type_names(d)}",
    data=type_data,
    aliases=("isinstance",),
)
def check_instance(value, types):
    """``isinstance(value, data)``; the data is a type or a tuple of types."""
    return isinstance(value, types)


# -- numbers ---------------------------------------------------------------------------------
@rule("gt", lambda d: f"be > {d!r}", data=number_data)
def check_gt(value, bound):
    """A number greater than the data."""
    return is_number(value) and value > bound


@rule("gte", lambda d: f"be >= {d!r}", data=number_data)
def check_gte(value, bound):
    """A number greater than or equal to the data."""
    return is_number(value) and value >= bound


@rule("lt", lambda d: f"be < {d!r}", data=number_data)
def check_lt(value, bound):
    """A number less than the data."""
    return is_number(value) and value < bound


@rule("lte", lambda d: f"be <= {d!r}", data=number_data)
def check_lte(value, bound):
    """A number less than or equal to the data."""
    return is_number(value) and value <= bound


@rule("between", lambda d: f"be strictly between {d[0]!r} and {d[1]!r}", data=bounds_data)
def check_between(value, bounds):
    """A number strictly between the data's (low, high): ``low < x < high``."""
    return is_number(value) and bounds[0] < value < bounds[1]


@rule("within", lambda d: f"be within [{d[0]!r}, {d[1]!r}]", data=bounds_data)
def check_within(value, bounds):
    """A number within the data's (low, high), ends included: ``low <= x <= high``."""
    return is_number(value) and bounds[0] <= value <= bounds[1]


@rule("outside", lambda d: f"be outside [{d[0]!r}, {d[1]!r}]", data=bounds_data)
def check_outside(value, bounds):
    """A number outside the data's (low, high): ``x < low or x > high``."""
    return is_number(value) and (value < bounds[0] or value > bounds[1])


# -- lengths ---------------------------------------------------------------------------------
@rule("len", lambda d: f"have length {d!r}", data=size_data)
def check_len(value, size):
    """Something with a length equal to the data."""
    return isinstance(value, Sized) and len(value) == size


@rule("shorter", lambda d: f"have length < {d!r}", data=size_data)
def check_shorter(value, size):
    """Something shorter than the data."""
    return isinstance(value, Sized) and len(value) < size


@rule("longer", lambda d: f"have length > {d!r}", data=size_data)
def check_longer(value, size):
    """Something longer than the data."""
    return isinstance(value, Sized) and len(value) > size


@rule("shorter eq", lambda d: f"have length <= {d!r}", data=size_data)
def check_shorter_eq(value, size):
    """Something at most as long as the data."""
    return isinstance(value, Sized) and len(value) <= size


@rule("longer eq", lambda d: f"have length >= {d!r}", data=size_data)
def check_longer_eq(value, size):
    """Something at least as long as the data."""
    return isinstance(value, Sized) and len(value) >= size


# -- membership ------------------------------------------------------------------------------
@rule("in", lambda d: f"be one of {shown(d)}", data=container_data, hint=choice_hint)
def check_in(value, options):
    """The value is one of the data (a list, tuple, set; a substring of a str)."""
    return safely(lambda: value in options)


@rule("not in", lambda d: f"not be one of {shown(d)}", data=container_data)
def check_not_in(value, options):
    """The value is none of the data."""
    # An unhashable value cannot be in a set: it is, indeed, not in it.
    return safely(lambda: value not in options, otherwise=True)


@rule("contains", lambda d: f"contain {d!r}")
def check_contains(value, item):
    """The value (a list, tuple, set, str, mapping) contains the data."""
    return isinstance(value, Container) and safely(lambda: item in value)


@rule("not contains", lambda d: f"not contain {d!r}")
def check_not_contains(value, item):
    """The value (a list, tuple, set, str, mapping) does not contain the data."""
    return isinstance(value, Container) and safely(lambda: item not in value, otherwise=True)


@rule("startswith", lambda d: f"start with {shown(d)}", data=affix_data)
def check_startswith(value, prefix):
    """A string starting with the data (a string, or a tuple of alternatives)."""
    return isinstance(value, str) and value.startswith(prefix)


@rule("endswith", lambda d: f"end with {shown(d)}", data=affix_data)
def check_endswith(value, suffix):
    """A string ending with the data (a string, or a tuple of alternatives)."""
    return isinstance(value, str) and value.endswith(suffix)


# -- files and folders -----------------------------------------------------------------------
@rule("file exists", lambda _: "be an existing file", unary=True)
def check_file_exists(value):
    """A path (relative to the working directory, or absolute; ``~`` expanded) to a file."""
    return is_path(value) and safely(lambda: Path(value).expanduser().is_file())


@rule("file exists absolute", lambda _: "be an absolute path to an existing file", unary=True)
def check_file_exists_absolute(value):
    """An absolute path to a file."""
    return is_path(value) and safely(lambda: Path(value).is_absolute() and Path(value).is_file())


@rule("file exists in folder", lambda d: f"be a file in {str(d)!r}", data=path_data)
def check_file_exists_in_folder(value, folder):
    """A relative path naming a file inside the folder given as data."""
    return is_path(value) and safely(
        lambda: not Path(value).is_absolute() and (Path(folder).expanduser() / value).is_file()
    )


@rule("folder exists", lambda _: "be an existing folder", unary=True)
def check_folder_exists(value):
    """A path (relative to the working directory, or absolute; ``~`` expanded) to a folder."""
    return is_path(value) and safely(lambda: Path(value).expanduser().is_dir())


@rule("folder exists absolute", lambda _: "be an absolute path to an existing folder", unary=True)
def check_folder_exists_absolute(value):
    """An absolute path to a folder."""
    return is_path(value) and safely(lambda: Path(value).is_absolute() and Path(value).is_dir())


@rule("folder exists in folder", lambda d: f"be a folder in {str(d)!r}", data=path_data)
def check_folder_exists_in_folder(value, folder):
    """A relative path naming a folder inside the folder given as data."""
    return is_path(value) and safely(
        lambda: not Path(value).is_absolute() and (Path(folder).expanduser() / value).is_dir()
    )


# -- equality --------------------------------------------------------------------------------
@rule("eq", lambda d: f"equal {d!r}")
def check_eq(value, other):
    """The value equals the data."""
    return safely(lambda: value == other)


@rule("neq", lambda d: f"not equal {d!r}")
def check_neq(value, other):
    """The value does not equal the data."""
    return safely(lambda: value != other)
