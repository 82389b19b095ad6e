"""The registry on its own: lookup, normalisation, provenance, collisions, registration checks."""

from __future__ import annotations

import subprocess
import sys

import attrs
import pytest

from visim.config.converter import structure
from visim.config.errors import ConfigError
from visim.registry import (
    KINDS,
    AmbiguousComponentError,
    Component,
    NoParams,
    RegistrationError,
    Registries,
    Registry,
    UnknownComponentError,
    check_registration,
    normalize_kind,
    normalize_name,
)


@attrs.frozen
class PowerParams:
    p: int = attrs.field(default=2, validator=attrs.validators.ge(1))
    scale: float = 1.0


def make_power(params: PowerParams, offset: int = 0):
    """Raise to the power p.

    More text that is not the summary.
    """
    return lambda x: params.scale * x**params.p + offset


def component(name="power", aliases=(), distribution="visim-maths", builtin=False, **kw):
    return Component(
        name=name,
        kind="metrics",
        factory=make_power,
        params=PowerParams,
        aliases=aliases,
        plugin=kw.pop("plugin", f"{distribution}-plugin"),
        distribution=distribution,
        version="1.2",
        builtin=builtin,
        structure=kw.pop("structure", structure),
        **kw,
    )


@pytest.fixture
def metrics() -> Registry:
    registry = Registry("metrics")
    registry.add(component("euclidean", ("EuclideanDistance", "l2"), "visim", builtin=True))
    registry.add(component("cosine", ("CosineSimilarity",), "visim", builtin=True, plugin="core"))
    return registry


def test_lookup_ignores_case_and_resolves_aliases(metrics):
    assert metrics.get("Euclidean").name == "euclidean"
    assert metrics.get("EuclideanDistance").name == "euclidean"
    assert metrics.get("EUCLIDEANDISTANCE").name == "euclidean"
    assert metrics.get("L2").name == "euclidean"
    assert metrics.get("cosinesimilarity").name == "cosine"
    assert "COSINE" in metrics and "cosin" not in metrics


@pytest.mark.parametrize(
    "written",
    ["cosine", " cosine ", "'cosine'", '"Cosine"', "cosine,", " 'COSINE', ", "\tCosine\n", "'cosine'  ,"],
)
def test_names_are_normalised_before_lookup(metrics, written):
    assert normalize_name(written) == "cosine"
    assert metrics.get(written).name == "cosine"


def test_unknown_name_suggests_close_names_and_the_listing_command(metrics):
    with pytest.raises(UnknownComponentError) as info:
        metrics.get("cosin")
    message = str(info.value)
    assert message == (
        "unknown metric 'cosin'; did you mean 'cosine'? (run 'visim components metrics' to list them)"
    )
    assert isinstance(info.value, LookupError)


def test_suggestions_through_an_alias_name_the_component(metrics):
    with pytest.raises(UnknownComponentError, match=r"did you mean 'euclidean'\?"):
        metrics.get("EuclideanDistanc")


def test_unknown_name_without_close_match_only_points_to_the_listing(metrics):
    with pytest.raises(UnknownComponentError) as info:
        metrics.get("zzz")
    assert "did you mean" not in str(info.value)
    assert "visim components metrics" in str(info.value)


def test_external_component_may_not_shadow_a_builtin_name_or_alias(metrics):
    with pytest.raises(RegistrationError, match=r"'cosine' is built into visim; distribution 'visim-evil'"):
        metrics.add(component("cosine", distribution="visim-evil"))
    with pytest.raises(RegistrationError, match=r"'l2' is built into visim; distribution 'visim-evil'"):
        metrics.add(component("myl2", aliases=("L2",), distribution="visim-evil"))
    assert metrics.get("cosine").distribution == "visim"
    assert "myl2" not in metrics


def test_two_external_components_with_one_name_are_ambiguous_until_qualified(metrics):
    metrics.add(component("power", distribution="visim-alpha"))
    metrics.add(component("power", distribution="visim-beta"))
    with pytest.raises(AmbiguousComponentError) as info:
        metrics.get("power")
    message = str(info.value)
    assert "visim-alpha" in message and "visim-beta" in message
    assert "'visim-alpha:power'" in message
    assert metrics.get("visim-alpha:power").distribution == "visim-alpha"
    assert metrics.get(" 'Visim_Beta:Power' ").distribution == "visim-beta"


def test_qualified_name_with_a_distribution_that_lacks_it(metrics):
    with pytest.raises(UnknownComponentError, match=r"distribution 'visim-gamma' registers no metric 'cosine'"):
        metrics.get("visim-gamma:cosine")
    with pytest.raises(UnknownComponentError, match=r"unknown metric 'visim:nope'"):
        metrics.get("visim:nope")


def test_one_distribution_cannot_register_a_name_twice(metrics):
    metrics.add(component("power", distribution="visim-alpha", plugin="first"))
    with pytest.raises(RegistrationError, match="same distribution 'visim-alpha'"):
        metrics.add(component("power", distribution="visim-alpha", plugin="second"))
    with pytest.raises(RegistrationError, match="registered twice by plugin 'first'"):
        metrics.add(component("power", distribution="visim-alpha", plugin="first"))


def test_iteration_is_sorted_and_names_are_canonical(metrics):
    assert [c.name for c in metrics] == ["cosine", "euclidean"]
    assert metrics.names() == ["cosine", "euclidean"]
    assert len(metrics) == 2


@pytest.mark.parametrize(
    "name",
    ["Power", "1power", "has space", "", "power!", "_power", None, 3],
)
def test_register_rejects_bad_names(name):
    with pytest.raises(RegistrationError, match="invalid metric name"):
        check_registration("metrics", name, make_power, PowerParams, ())


@pytest.mark.parametrize("params", [dict, {"p": int}, type("Plain", (), {}), PowerParams(p=2)])
def test_register_requires_an_attrs_params_class(params):
    with pytest.raises(RegistrationError, match="params must be an attrs class"):
        check_registration("metrics", "power", make_power, params, ())


def test_a_component_without_params_gets_an_empty_params_class():
    check_registration("metrics", "power", make_power, None, ())  # accepted
    component = Component(name="power", kind="metrics", factory=lambda params: params)
    assert component.params is NoParams and attrs.fields(NoParams) == ()
    assert component.build() == NoParams()
    # Made by hand, the component has no structurer: its params class refuses the key itself
    # (through the plugin loader a config gets a ConfigError with the key's path instead).
    with pytest.raises(TypeError, match="'p'"):
        component.make_params({"p": 2})


def test_register_forbids_a_params_field_called_name():
    @attrs.frozen
    class Named:
        name: str = "x"

    with pytest.raises(RegistrationError, match="may not have a field called 'name'"):
        check_registration("losses", "named", make_power, Named, ())


@pytest.mark.parametrize("aliases", ["Power", ("ok", "not ok"), ("ok", 3)])
def test_register_rejects_bad_aliases(aliases):
    with pytest.raises(RegistrationError, match="aliases must be"):
        check_registration("metrics", "power", make_power, PowerParams, aliases)


def test_register_rejects_a_factory_that_is_not_callable():
    with pytest.raises(RegistrationError, match="factory must be callable"):
        check_registration("metrics", "power", "make_power", PowerParams, ())


def test_register_accepts_dotted_and_dashed_names_and_camelcase_aliases():
    check_registration("metrics", "power.v2-fast_x", make_power, PowerParams, ("PowerV2",))


def test_build_from_defaults_dict_and_instance():
    power = component()
    assert power.build()(3) == 9
    assert power.build({"p": 3, "scale": 2})(2) == 16
    assert power.build(PowerParams(p=1), offset=5)(2) == 7


def test_build_validates_a_dict_as_a_config_with_paths():
    with pytest.raises(ConfigError) as info:
        component().build({"p": 0, "scale": "big"})
    assert [problem.path for problem in info.value.problems] == ["$.p", "$.scale"]
    with pytest.raises(ConfigError) as info:
        component().build({"p": 0})
    assert [problem.path for problem in info.value.problems] == ["$.p"]
    with pytest.raises(ConfigError) as info:
        component().build({"scael": 1.0})
    (problem,) = info.value.problems
    assert problem.path == "$.scael" and "'scale'" in problem.message


def test_without_a_structure_function_the_params_class_checks_a_mapping_itself():
    # The registry imports no config layer; the plugin loader hands every component the strict
    # structurer. A component made by hand without one still builds from a plain mapping.
    assert component(structure=None).build({"p": 3})(2) == 8
    with pytest.raises(ValueError, match="'p' must be >= 1"):
        component(structure=None).build({"p": 0})


def test_build_rejects_params_that_are_neither_mapping_nor_instance():
    with pytest.raises(TypeError, match="takes a PowerParams instance or a mapping, not list"):
        component().build([1, 2])


def test_summary_is_the_first_doc_line():
    assert component().summary == "Raise to the power p."
    assert component(doc="Own doc.\nDetails.").summary == "Own doc."
    assert component().qualified_name == "visim-maths:power"


@pytest.mark.parametrize("written", ["metric", "metrics", "Metric", " METRICS "])
def test_kinds_accept_singular_and_plural(written):
    assert normalize_kind(written) == "metrics"


def test_unknown_kind_lists_the_kinds():
    with pytest.raises(UnknownComponentError, match="unknown component kind 'metrik'; choose one of metrics"):
        normalize_kind("metrik")


def test_registries_have_one_registry_per_kind():
    registries = Registries()
    assert [registry.kind for registry in registries] == list(KINDS)
    assert registries["loss"] is registries.losses
    assert registries.rules == {}


def test_the_registry_imports_neither_the_config_layer_nor_torch():
    code = "import sys, visim.registry; print(sorted(m for m in sys.modules if m.startswith(('visim.config', 'torch'))))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]"
