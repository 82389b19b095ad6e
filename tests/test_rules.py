"""The named validation rules: a table of (value, validation, outcome), then every use of them."""

from __future__ import annotations

import attrs
import pytest

from visim import hookimpl
from visim.config import rules
from visim.config.converter import structure
from visim.config.errors import ConfigError, InvalidParameterException, ValidationException
from visim.config.load import config_from_dict
from visim.config.rules import satisfies, validate_params
from visim.plugins import get_registry

RAISES = ValidationException

# (value, validation, True | False | RAISES). Paths: {file} an existing file, {dir} an
# existing folder, {root} the folder holding both, {missing} a path that does not exist.
CASES = [
    # existence and types
    (None, "optional", True),
    (None, "None", True),
    (0, "None", False),
    (0, "not None", True),
    (None, "not None", False),
    (3, "number", True),
    (2.5, "number", True),
    (True, "number", False),
    ("3", "number", False),
    (len, "callable", True),
    (3, "callable", False),
    ([1], "iterable", True),
    ("ab", "iterable", True),
    (3, "iterable", False),
    ({"a": 1}, "sized", True),
    (3, "sized", False),
    (3, ("instance", int), True),
    (3, ("isinstance", (str, float)), False),
    (3, int, True),
    ("3", int, False),
    (3, ("instance", 3), RAISES),
    # numbers
    (2, ("gt", 1), True),
    (1, ("gt", 1), False),
    (1, ("gte", 1), True),
    (0.5, ("lt", 1), True),
    (1, ("lte", 1), True),
    (2, ("lte", 1), False),
    ("abc", ("gt", 0), False),
    (True, ("gt", 0), False),
    (2, ("gt", "1"), RAISES),
    (0.5, ("between", (0, 1)), True),
    (0, ("between", (0, 1)), False),
    (1, ("within", [0, 1]), True),
    (1.5, ("within", (0, 1)), False),
    (-1, ("outside", (0, 1)), True),
    (2, ("outside", (0, 1)), True),
    (0.5, ("outside", (0, 1)), False),
    (float("nan"), ("outside", (0, 1)), False),
    (1, ("between", 5), RAISES),
    (1, ("within", (3, 1)), RAISES),
    # lengths
    ([1, 2], ("len", 2), True),
    ("abc", ("len", 2), False),
    (3, ("len", 1), False),
    ([1], ("shorter", 2), True),
    ([1, 2], ("shorter", 2), False),
    ([1, 2, 3], ("longer", 2), True),
    ([1, 2], ("shorter eq", 2), True),
    ([1, 2], ("longer eq", 3), False),
    ([1, 2], ("longer_eq", 2), True),
    ([1], ("len", -1), RAISES),
    # membership
    ("cpu", ("in", ["cpu", "cuda"]), True),
    ("gpu", ("in", ["cpu", "cuda"]), False),
    ([1], ("in", {1, 2}), False),
    ("gpu", ("not in", ["cpu", "cuda"]), True),
    ("cpu", ("not in", ["cpu", "cuda"]), False),
    ([1], ("not in", {1, 2}), True),
    ("cpu", ("in", 5), RAISES),
    ([1, 2], ("contains", 2), True),
    ("abc", ("contains", "b"), True),
    (5, ("contains", 5), False),
    ([1, 2], ("not contains", 3), True),
    ([1, 2], ("not contains", 2), False),
    ("osnet_x0_25", ("startswith", "osnet"), True),
    ("resnet50", ("startswith", ("osnet", "resnet")), True),
    (5, ("startswith", "5"), False),
    ("model.pt", ("endswith", ".pt"), True),
    ("model.pth", ("endswith", ".pt"), False),
    ("x", ("endswith", 1), RAISES),
    # files and folders
    ("{file}", "file exists", True),
    ("{dir}", "file exists", False),
    ("{missing}", "file exists", False),
    (5, "file exists", False),
    ("{file}", "file exists absolute", True),
    ("a.txt", "file exists absolute", False),
    ("a.txt", ("file exists in folder", "{root}"), True),
    ("sub", ("file exists in folder", "{root}"), False),
    ("{file}", ("file exists in folder", "{root}"), False),
    ("{dir}", "folder exists", True),
    ("{file}", "folder exists", False),
    ("{missing}", "folder exists", False),
    ("{dir}", "folder exists absolute", True),
    ("sub", "folder exists absolute", False),
    ("sub", ("folder exists in folder", "{root}"), True),
    ("a.txt", ("folder exists in folder", "{root}"), False),
    ("x\0y", "folder exists", False),
    # equality
    (3, ("eq", 3), True),
    ([1], ("eq", [2]), False),
    (3, ("neq", 4), True),
    ("a", ("neq", "a"), False),
    # combinations
    (None, ("any", ["None", ("gt", 0)]), True),
    (5, ("any", ["None", ("gt", 0)]), True),
    (-5, ("any", ["None", ("gt", 0)]), False),
    (5, ("all", [int, ("gt", 0), ("lt", 10)]), True),
    (50, ("all", [int, ("gt", 0), ("lt", 10)]), False),
    (5, ("all", ("gt", 0)), True),
    (1, ("not", ("in", [0, 1])), False),
    (2, ("not", ("in", [0, 1])), True),
    (None, ("not", "None"), False),
    (5, ("not", [("gt", 0), ("lt", 3)]), True),
    (5, ("xor", [("gt", 0), ("gt", 3)]), False),
    (2, ("xor", [("gt", 0), ("gt", 3)]), True),
    (-1, ("xor", [("gt", 0), ("gt", 3)]), False),
    (None, ("any", ("None", "number")), True),
    ([1, 2, 3], ("forall", ("gte", 1)), True),
    ([1, 0, 3], ("forall", ("gte", 1)), False),
    ([], ("forall", ("gte", 1)), True),
    (5, ("forall", ("gte", 1)), False),
    ([1, 2.5], ("forall", (int, ("gt", 0))), False),
    ([[1, 2], [3]], ("forall", ("forall", ("gt", 0))), True),
    ([[1, 2], [0]], ("forall", ("forall", ("gt", 0))), False),
    ([1, None], ("forall", ("any", ["None", ("all", [int, ("gt", 0)])])), True),
    ("cuda:1", ("any", [("in", ["cpu"]), ("all", [str, ("startswith", "cuda:")])]), True),
    (4, ("not", ("xor", [("gt", 0), ("lt", 10)])), True),
    (4, lambda value: value % 2 == 0, True),
    (None, lambda value: value % 2 == 0, False),
    (4, None, True),
    # malformed validations
    (1, "gtt", RAISES),
    (1, "gt", RAISES),
    (1, ("number", 3), RAISES),
    (1, ("any", []), RAISES),
    (1, "any", RAISES),
    (1, ("gt", 0, 1), RAISES),
    (1, 42, RAISES),
    (1, ("any", [("gt", 0), "unknown rule"]), RAISES),
]


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("rules")
    (root / "a.txt").write_text("x")
    (root / "sub").mkdir()
    return {"file": root / "a.txt", "dir": root / "sub", "root": root, "missing": root / "nope"}


def with_paths(obj, tree):
    if isinstance(obj, str) and obj.startswith("{"):
        return str(tree[obj[1:-1]]) if obj.endswith("}") and obj[1:-1] in tree else obj
    if isinstance(obj, tuple):
        return tuple(with_paths(item, tree) for item in obj)
    return obj


def test_the_table_is_big_enough():
    assert len(CASES) >= 60
    assert {outcome for _, _, outcome in CASES} == {True, False, RAISES}


@pytest.mark.parametrize(("value", "validation", "outcome"), CASES)
def test_rule(value, validation, outcome, tree):
    value, validation = with_paths(value, tree), with_paths(validation, tree)
    if outcome is RAISES:
        with pytest.raises(ValidationException):
            satisfies(value, validation)
    else:
        assert satisfies(value, validation) is outcome


ORIGINAL_RULES = (
    "optional None not None number callable iterable sized instance isinstance gt gte lt lte "
    "between within outside len shorter longer in contains startswith endswith eq neq all any "
    "not xor forall"
).split() + [
    "shorter eq",
    "longer eq",
    "not in",
    "not contains",
    "file exists",
    "file exists absolute",
    "file exists in folder",
    "folder exists",
    "folder exists absolute",
    "folder exists in folder",
]


def test_every_rule_of_the_original_is_registered_through_the_hook():
    registered = get_registry().rules
    assert {name.lower() for name in ORIGINAL_RULES} <= set(registered)
    assert registered["gt"].plugin == "visim.config.rules"
    assert registered["number"].unary and not registered["gt"].unary
    # The registered checks are the real ones, usable without the compiler.
    assert registered["between"].check(0.5, (0, 1)) is True
    assert registered["forall"].check([1, 2], ("gt", 0)) is True
    assert registered["forall"].check([1, 0], ("gt", 0)) is False


def test_unknown_rule_suggests_the_closest():
    with pytest.raises(
        ValidationException, match=r"unknown validation rule 'betwen'; did you mean 'between'\?"
    ):
        satisfies(1, ("betwen", (0, 2)))


def test_rule_names_ignore_case_spaces_and_underscores():
    assert satisfies([1], ("Shorter_EQ", 1)) and satisfies(None, "NONE")


# -- attrs validators ----------------------------------------------------------------------------
@attrs.frozen
class Limits:
    size: int = attrs.field(default=1, validator=rules.gte(1))
    topk: tuple[int, ...] = attrs.field(default=(1,), validator=rules.forall(rules.gte(1)))
    mode: str = attrs.field(default="fast", validator=rules.in_(("fast", "exact")))
    scale: float | None = attrs.field(default=None, validator=rules.optional(rules.between(0, 1)))
    name: str = attrs.field(default="x", validator=rules.validator(("not", ("in", ["", "none"]))))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"size": 0}, "must be >= 1 (got 0) @ $.size"),
        ({"topk": (1, 5, 0)}, "must be >= 1 (got 0) @ $.topk[2]"),
        (
            {"mode": "fats"},
            "must be one of ['fast', 'exact'] (got 'fats'); did you mean 'fast'? @ $.mode",
        ),
        ({"scale": 1.0}, "must be strictly between 0 and 1 (got 1.0) @ $.scale"),
        ({"name": "none"}, "must not be one of ['', 'none'] (got 'none') @ $.name"),
    ],
)
def test_validators_explain_in_the_config_words(kwargs, message):
    with pytest.raises(InvalidParameterException) as info:
        Limits(**kwargs)
    assert str(info.value) == message
    assert isinstance(info.value, ConfigError) and isinstance(info.value, ValueError)


def test_optional_lets_none_through_and_validators_pass_good_values():
    assert Limits(size=3, topk=(1, 5), mode="exact", scale=None, name="a").scale is None
    assert Limits(scale=0.5).scale == 0.5


def test_validator_paths_are_rerooted_by_the_converter():
    with pytest.raises(ConfigError) as info:
        structure({"topk": [1, 0], "size": 0}, Limits, "$.test.limits")
    assert [str(p) for p in info.value.problems] == [
        "must be >= 1 (got 0) @ $.test.limits.size",
        "must be >= 1 (got 0) @ $.test.limits.topk[1]",
    ]


def test_malformed_validator_fails_when_declared():
    with pytest.raises(ValidationException, match="needs a number as data"):
        rules.gt("zero")
    with pytest.raises(ValidationException, match="needs data"):
        rules.validator("between")


# (helper, a value it accepts, a value it rejects); "{...}" are paths from the tree fixture.
HELPERS = [
    (rules.none, (), None, 0),
    (rules.not_none, (), 0, None),
    (rules.number, (), 1.5, "1.5"),
    (rules.is_callable, (), len, 1),
    (rules.iterable, (), [], 1),
    (rules.sized, (), "", 1),
    (rules.instance, (int,), 1, 1.0),
    (rules.gt, (0,), 1, 0),
    (rules.gte, (0,), 0, -1),
    (rules.lt, (0,), -1, 0),
    (rules.lte, (0,), 0, 1),
    (rules.between, (0, 1), 0.5, 1),
    (rules.within, (0, 1), 1, 2),
    (rules.outside, (0, 1), 2, 1),
    (rules.length, (1,), [0], []),
    (rules.shorter, (1,), [], [0]),
    (rules.longer, (1,), [0, 0], [0]),
    (rules.shorter_eq, (1,), [0], [0, 0]),
    (rules.longer_eq, (1,), [0], []),
    (rules.in_, ([1],), 1, 2),
    (rules.not_in, ([1],), 2, 1),
    (rules.contains, (1,), [1], [2]),
    (rules.not_contains, (1,), [2], [1]),
    (rules.startswith, ("a",), "ab", "ba"),
    (rules.endswith, ("a",), "ba", "ab"),
    (rules.file_exists, (), "{file}", "{dir}"),
    (rules.file_exists_absolute, (), "{file}", "a.txt"),
    (rules.file_exists_in_folder, ("{root}",), "a.txt", "sub"),
    (rules.folder_exists, (), "{dir}", "{file}"),
    (rules.folder_exists_absolute, (), "{dir}", "sub"),
    (rules.folder_exists_in_folder, ("{root}",), "sub", "a.txt"),
    (rules.eq, (1,), 1, 2),
    (rules.neq, (1,), 2, 1),
    (rules.all_, (int, ("gt", 0)), 1, 1.5),
    (rules.any_, ("None", int), None, 1.5),
    (rules.not_, ("None",), 0, None),
    (rules.xor, ("None", int), 1, "x"),
    (rules.forall, (int,), [1, 2], [1, "2"]),
]


@pytest.mark.parametrize(("helper", "args", "good", "bad"), HELPERS)
def test_named_helpers_accept_and_reject(helper, args, good, bad, tree):
    check = helper(*with_paths(args, tree))
    assert check.requirement.startswith("must ")
    check(None, None, with_paths(good, tree))
    with pytest.raises(InvalidParameterException):
        check(None, None, with_paths(bad, tree))


def test_combined_requirements_read_well():
    requirement = rules.xor("None", int).requirement
    assert requirement == "must satisfy exactly one of: be null; be an instance of int"
    assert rules.optional(rules.gte(1)).requirement == "null, or must be >= 1"
    assert rules.not_(rules.not_none()).requirement == "must be null"


# -- validate_params -----------------------------------------------------------------------------
VALIDATIONS = {
    "device": [str, ("any", [("in", ["cuda", "cpu"]), ("startswith", "cuda:")])],
    "topk": [("forall", [int, ("gte", 1)])],
    "weights": ["optional", "file exists"],
    "seed": [None],
    "odd": lambda value: value % 2 == 1,
}


def test_validate_params_accepts_valid_params():
    validate_params(VALIDATIONS, {"device": "cuda:1", "topk": [1, 5], "seed": 0, "odd": 3})


def test_validate_params_reports_every_problem_with_paths():
    params = {"device": "gpu", "topk": [1, 0], "odd": 2, "weights": "/no/such/file"}
    with pytest.raises(InvalidParameterException) as info:
        validate_params(VALIDATIONS, params)
    assert [str(p) for p in info.value.problems] == [
        "must be one of ['cuda', 'cpu'] or start with 'cuda:' (got 'gpu') @ $.params.device",
        "must be >= 1 (got 0) @ $.params.topk[1]",
        "must be an existing file (got '/no/such/file') @ $.params.weights",
        "required parameter missing @ $.params.seed",
        "must pass a custom check (got 2) @ $.params.odd",
    ]


def test_validate_params_takes_an_attrs_instance_and_an_attrib_name():
    with pytest.raises(InvalidParameterException, match=r"must be > 5 \(got 1\) @ \$\.train\.size"):
        validate_params({"size": [("gt", 5)]}, Limits(), attrib_name="train")


@pytest.mark.parametrize(
    ("validations", "message"),
    [
        ({"x": []}, "has no validations"),
        ({"x": ["gtt"]}, "did you mean 'gt'"),
        ({"x": [("in", 3)]}, "needs a collection"),
        ([("x", "number")], "must map parameter names"),
    ],
)
def test_validate_params_rejects_malformed_validations(validations, message):
    with pytest.raises(ValidationException, match=message):
        validate_params(validations, {"x": 1})


class EvenRules:
    @staticmethod
    @hookimpl
    def register_rules(register):
        register("even", lambda value: isinstance(value, int) and value % 2 == 0, unary=True)
        register("multiple of", lambda value, n: value % n == 0, doc="A multiple of the data.")


def test_plugin_rules_work_everywhere(register_plugin):
    register_plugin(EvenRules(), "even-rules")
    assert satisfies(4, "even") and not satisfies(3, "even")
    assert satisfies([4, 8], ("forall", ("multiple of", 4)))
    with pytest.raises(
        InvalidParameterException, match=r"must pass rule 'multiple of' with 3 \(got 4\)"
    ):
        validate_params({"n": [("multiple of", 3)]}, {"n": 4})
    # A field validator may name a plugin rule: it is looked up when first used.
    check = rules.validator("even")
    with pytest.raises(InvalidParameterException, match=r"must pass rule 'even' \(got 3\) @ \$"):
        check(None, None, 3)


class ShadowingRules:
    @staticmethod
    @hookimpl
    def register_rules(register):
        register("gt", lambda value, bound: True)


def test_a_plugin_cannot_replace_a_builtin_rule(register_plugin, capsys):
    state = register_plugin(ShadowingRules(), "shadow")
    assert state.registries.rules["gt"].plugin == "visim.config.rules"
    assert "rule 'gt' is already registered" in capsys.readouterr().err
    assert not satisfies(0, ("gt", 1))


def test_the_field_validator_example_of_the_docs_prints_what_the_docs_say():
    import pathlib
    import re

    text = (pathlib.Path(__file__).parents[1] / "docs" / "rules.rst").read_text()
    section = text[text.index("Field validators") :]
    block = re.search(r"\.\. code-block:: python\n\n((?:   .*\n|\n)+)", section).group(1)
    namespace: dict = {}
    exec(compile("\n".join(line[3:] for line in block.splitlines()), "rules.rst", "exec"), namespace)
    params = namespace["MinkowskiParams"]
    for kwargs in ({"p": 0.5}, {"weights": (1.0, 0.0)}, {"mode": "exakt"}):
        with pytest.raises(InvalidParameterException) as info:
            params(**kwargs)
        assert f"``{info.value}``" in " ".join(section.split())
    config = {"data": {"dataset": "digits"}, "model": "convnet", "test": {"metric": {"name": "minkowski", "p": 0.5}}}
    with pytest.raises(ConfigError) as info:
        config_from_dict(config)
    assert [str(p) for p in info.value.problems] == ["must be >= 1.0 (got 0.5) @ $.test.metric.p"]
    assert "``must be >= 1.0 (got 0.5) @ $.test.metric.p``" in section
