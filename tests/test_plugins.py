"""The plugin manager: built-ins, in-process plugins and real entry-point discovery.

Entry-point tests install fake distributions (dist-info folders plus modules) on sys.path, so
discovery goes through importlib.metadata exactly as for a pip-installed plugin.
"""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

import visim
import visim.plugins
from visim.config.errors import ConfigError
from visim.config.refs import MetricRef
from visim.plugins import DEFAULT_PLUGINS, PluginError, get_state, plugin_registered
from visim.registry import AmbiguousComponentError, UnknownComponentError

GOOD = """
    import attrs
    from visim import hookimpl

    @attrs.frozen
    class ShiftParams:
        by: float = 1.0

    def build_shift(params):
        '''Shift by a constant.'''
        return lambda x: x + params.by

    @hookimpl
    def register_metrics(register):
        register("fake-shift", build_shift, params=ShiftParams, aliases=("FakeShift",))
"""

OBJECT_PLUGIN = """
    import attrs
    from visim import hookimpl

    @attrs.frozen
    class NoParams:
        '''No parameters.'''

    class Plugin:
        @hookimpl
        def register_samplers(self, register):
            register("fake-sampler", lambda params: "sampler", params=NoParams)

    plugin = Plugin()
"""

BROKEN_IMPORT = """
    import visim_module_that_does_not_exist  # noqa: F401
"""

BAD_SIGNATURE = """
    from visim import hookimpl

    @hookimpl
    def register_metrics(reg):
        reg("never", print)
"""

MISSPELLED = """
    from visim import hookimpl

    @hookimpl
    def register_metric(register):
        raise AssertionError("a misspelled hook is never called")
"""

SHADOWS_BUILTIN = """
    import attrs
    from visim import hookimpl

    @attrs.frozen
    class P:
        lr: float = 1.0

    @hookimpl
    def register_metrics(register):
        register("fake-extra", print, params=P)

    @hookimpl
    def register_optimizers(register):
        register("adam", print, params=P)
"""


def twin(tag: str) -> str:
    return f"""
    import attrs
    from visim import hookimpl

    @attrs.frozen
    class P:
        '''No parameters.'''

    def build(params):
        return "{tag}"

    @hookimpl
    def register_metrics(register):
        register("fake-twin", build, params=P)
    """


def reload():
    visim.plugins.reset()
    return get_state()


def info_of(state, name):
    (info,) = [info for info in state.plugins if info.name == name]
    return info


@attrs.frozen
class CountParams:
    start: int = 0


class InProcessPlugin:
    @visim.hookimpl
    def register_datasets(self, register):
        register("fake-counter", lambda params: params.start, params=CountParams, aliases=("FakeCounter",))


# -- built-ins ------------------------------------------------------------------------------


def test_builtin_plugins_load_through_the_hooks_with_provenance(clean_plugin_env):
    state = reload()
    builtins = [info for info in state.plugins if info.builtin]
    assert [info.name for info in builtins] == list(DEFAULT_PLUGINS)
    assert all(info.status == "ok" and info.distribution == "visim" for info in builtins)
    assert info_of(state, "visim.optim").components == {
        "optimizers": ["adam", "adamw", "sgd"],
        "schedulers": ["step", "multistep", "cosine", "plateau"],
    }
    adam = visim.get_registry().optimizers.get("adam")
    assert (adam.plugin, adam.distribution, adam.version, adam.builtin) == (
        "visim.optim", "visim", visim.__version__, True,
    )


# -- in-process plugins ---------------------------------------------------------------------


def test_registered_plugin_resolves_with_provenance(register_plugin, clean_plugin_env):
    state = register_plugin(InProcessPlugin(), name="counter-plugin")
    component = visim.get_registry().datasets.get("FakeCounter")
    assert (component.name, component.plugin, component.distribution) == (
        "fake-counter", "counter-plugin", None,
    )
    assert component.build({"start": 4}) == 4
    assert info_of(state, "counter-plugin").hooks == ["register_datasets"]


def test_plugin_registered_is_undone_after_the_block(clean_plugin_env):
    with plugin_registered(InProcessPlugin(), name="counter-plugin"):
        assert "fake-counter" in visim.get_registry().datasets
    assert "fake-counter" not in visim.get_registry().datasets
    assert "counter-plugin" not in [info.name for info in get_state().plugins]


def invalid_plugin(call):
    """A plugin registering one valid metric, then making ``call(register)``."""

    class Plugin:
        @visim.hookimpl
        def register_metrics(self, register):
            register("fake-valid", lambda params: params, params=CountParams)
            call(register)

    return Plugin()


@attrs.frozen
class HasName:
    name: str = "x"


@pytest.mark.parametrize(
    ("call", "reason"),
    [
        (lambda r: r("Bad Name", print, params=CountParams), "invalid metric name 'Bad Name'"),
        (lambda r: r("fake-dict", print, params={"start": int}), "params must be an attrs class"),
        (lambda r: r("fake-named", print, params=HasName), "may not have a field called 'name'"),
        (lambda r: r("fake-valid", print, params=CountParams), "registered twice by plugin 'bad'"),
        (lambda r: r("fake-alias", print, params=CountParams, alias="x"), "unexpected keyword"),
        (lambda r: 1 / 0, "ZeroDivisionError: division by zero"),
    ],
)
def test_invalid_registration_fails_the_whole_plugin_only(register_plugin, clean_plugin_env, capsys, call, reason):
    state = register_plugin(invalid_plugin(call), name="bad")
    info = info_of(state, "bad")
    assert info.status == "failed"
    assert reason in info.reason
    assert "fake-valid" not in visim.get_registry().metrics  # nothing of it landed
    assert "adam" in visim.get_registry().optimizers
    err = capsys.readouterr().err
    assert f"visim: warning: plugin 'bad' failed to load: {info.reason}" in err


def test_aliases_may_be_any_iterable_of_names(register_plugin, clean_plugin_env):
    class Plugin:
        @visim.hookimpl
        def register_metrics(self, register):
            register("fake-gen", print, params=CountParams, aliases=(a for a in ["FakeGen", "gen2"]))

    register_plugin(Plugin(), name="gen")
    assert visim.get_registry().metrics.get("gen2").aliases == ("FakeGen", "gen2")


def test_rules_register_and_may_not_be_taken_over(register_plugin, clean_plugin_env):
    class RulePlugin:
        @visim.hookimpl
        def register_rules(self, register):
            register("fake_positive", lambda value: value > 0, unary=True, doc="Positive.")

    state = register_plugin(RulePlugin(), name="rules-a")
    rule = visim.get_registry().rules["fake_positive"]
    assert (rule.unary, rule.plugin, rule.check(2), rule.check(-1)) == (True, "rules-a", True, False)
    assert info_of(state, "rules-a").components == {"rules": ["fake_positive"]}
    state = register_plugin(RulePlugin(), name="rules-b")
    assert "already registered by rules-a" in info_of(state, "rules-b").reason


# -- entry points: real discovery through fake distributions --------------------------------


def test_good_entry_point_plugin_resolves_with_distribution_provenance(fake_dists):
    fake_dists.add("visim-fake-good", {"fake_good": "visim_fake_good"}, {"visim_fake_good": GOOD}, "2.3")
    fake_dists.add("visim-fake-obj", {"fake_obj": "visim_fake_obj:plugin"}, {"visim_fake_obj": OBJECT_PLUGIN})
    registry = visim.get_registry()
    shift = registry.metrics.get("FakeShift")
    assert (shift.name, shift.plugin, shift.distribution, shift.version, shift.builtin) == (
        "fake-shift", "fake_good", "visim-fake-good", "2.3", False,
    )
    assert shift.summary == "Shift by a constant."
    assert shift.build({"by": 2.0})(1.0) == 3.0
    assert registry.samplers.get("fake-sampler").distribution == "visim-fake-obj"
    info = info_of(get_state(), "fake_good")
    assert (info.status, info.hooks, info.components) == ("ok", ["register_metrics"], {"metrics": ["fake-shift"]})


def test_import_error_is_reported_and_everything_else_loads(fake_dists, capsys):
    fake_dists.add("visim-fake-broken", {"fake_broken": "visim_fake_broken"}, {"visim_fake_broken": BROKEN_IMPORT})
    fake_dists.add("visim-fake-good", {"fake_good": "visim_fake_good"}, {"visim_fake_good": GOOD})
    state = get_state()
    broken = info_of(state, "fake_broken")
    assert broken.status == "failed"
    assert broken.reason == (
        "import failed: ModuleNotFoundError: No module named 'visim_module_that_does_not_exist'"
    )
    err = capsys.readouterr().err
    assert "visim: warning: plugin 'fake_broken' (visim-fake-broken) failed to load: import failed" in err
    assert info_of(state, "fake_good").status == "ok"
    assert "fake-shift" in visim.get_registry().metrics
    assert all(info.status == "ok" for info in state.plugins if info.builtin)


def test_bad_hook_signature_fails_with_a_one_line_reason(fake_dists, capsys):
    fake_dists.add("visim-fake-sig", {"fake_sig": "visim_fake_sig"}, {"visim_fake_sig": BAD_SIGNATURE})
    info = info_of(get_state(), "fake_sig")
    assert info.status == "failed"
    assert info.reason.startswith("invalid hook implementation: Plugin 'fake_sig' for hook 'register_metrics'")
    assert "'reg'" in info.reason and "\n" not in info.reason
    assert len([line for line in capsys.readouterr().err.splitlines() if "fake_sig" in line]) == 1


def test_misspelled_hook_is_caught(fake_dists):
    fake_dists.add("visim-fake-typo", {"fake_typo": "visim_fake_typo"}, {"visim_fake_typo": MISSPELLED})
    state = get_state()
    info = info_of(state, "fake_typo")
    assert info.status == "failed"
    assert info.reason.startswith("unknown hook(s) register_metric; known hooks: register_datasets")
    state.manager.check_pending()  # the failed plugin left nothing pending behind


def test_shadowing_a_builtin_is_rejected_naming_the_distribution(fake_dists, capsys):
    fake_dists.add("visim-fake-shadow", {"fake_shadow": "visim_fake_shadow"}, {"visim_fake_shadow": SHADOWS_BUILTIN})
    info = info_of(get_state(), "fake_shadow")
    assert info.status == "failed"
    assert info.reason == (
        "optimizer 'adam' is built into visim; distribution 'visim-fake-shadow' may not shadow it"
    )
    assert "visim-fake-shadow" in capsys.readouterr().err
    registry = visim.get_registry()
    assert registry.optimizers.get("adam").builtin
    assert "fake-extra" not in registry.metrics  # the plugin is left out whole


def test_invalid_register_call_from_an_entry_point(fake_dists):
    source = GOOD.replace('"fake-shift"', '"Fake Shift"')
    fake_dists.add("visim-fake-invalid", {"fake_invalid": "visim_fake_invalid"}, {"visim_fake_invalid": source})
    info = info_of(get_state(), "fake_invalid")
    assert (info.status, info.reason) == (
        "failed", "invalid metric name 'Fake Shift': must match ^[a-z][a-z0-9_.-]*$",
    )


def test_two_way_conflict_is_ambiguous_until_qualified(fake_dists):
    fake_dists.add("visim-fake-a", {"plugin": "visim_fake_a"}, {"visim_fake_a": twin("a")})
    fake_dists.add("visim-fake-b", {"plugin": "visim_fake_b"}, {"visim_fake_b": twin("b")})
    state = get_state()
    assert {info_of(state, "plugin").status, info_of(state, "visim-fake-b:plugin").status} == {"ok"}
    metrics = visim.get_registry().metrics
    with pytest.raises(AmbiguousComponentError) as info:
        metrics.get("fake-twin")
    assert "(visim-fake-a, visim-fake-b)" in str(info.value)
    assert metrics.get("visim-fake-a:fake-twin").build() == "a"
    assert metrics.get("Visim_Fake_B:Fake-Twin").build() == "b"
    with pytest.raises(ConfigError) as error:
        MetricRef.of("fake-twin")
    assert "'visim-fake-a:fake-twin'" in str(error.value)
    ref = MetricRef.of("visim-fake-b:fake-twin")
    assert (ref.name, ref.build()) == ("visim-fake-b:fake-twin", "b")


def test_strict_mode_makes_a_broken_plugin_fatal(fake_dists):
    fake_dists.add("visim-fake-broken", {"fake_broken": "visim_fake_broken"}, {"visim_fake_broken": BROKEN_IMPORT})
    fake_dists.add("visim-fake-good", {"fake_good": "visim_fake_good"}, {"visim_fake_good": GOOD})
    with pytest.MonkeyPatch.context() as env:
        env.setenv("VISIM_STRICT_PLUGINS", "1")
        visim.plugins.reset()
        with pytest.raises(PluginError, match=r"plugin 'fake_broken' \(visim-fake-broken\) failed to load"):
            visim.get_registry()
        env.setenv("VISIM_STRICT_PLUGINS", "0")
        visim.plugins.reset()
        assert "fake-shift" in visim.get_registry().metrics


@pytest.fixture
def two_fakes(fake_dists):
    fake_dists.add("visim-fake-a", {"fake_a": "visim_fake_a"}, {"visim_fake_a": twin("a")})
    fake_dists.add("visim-fake-good", {"fake_good": "visim_fake_good"}, {"visim_fake_good": GOOD})
    return fake_dists


def statuses(state):
    return {info.name: info.status for info in state.plugins if not info.builtin and info.name.startswith("fake_")}


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("VISIM_LOAD_PLUGINS", "", {"fake_a": "blocked", "fake_good": "blocked"}),
        ("VISIM_LOAD_PLUGINS", " visim_fake_good , other ", {"fake_a": "blocked", "fake_good": "ok"}),
        ("VISIM_LOAD_PLUGINS", "fake_a", {"fake_a": "ok", "fake_good": "blocked"}),
        ("VISIM_DISABLE_PLUGINS", "Visim-Fake-A", {"fake_a": "blocked", "fake_good": "ok"}),
        ("VISIM_DISABLE_PLUGINS", "", {"fake_a": "ok", "fake_good": "ok"}),
    ],
)
def test_load_and_disable_filters(two_fakes, monkeypatch, variable, value, expected):
    monkeypatch.setenv(variable, value)
    state = reload()
    assert statuses(state) == expected
    blocked = [info for info in state.plugins if info.status == "blocked"]
    assert all("VISIM_LOAD_PLUGINS / VISIM_DISABLE_PLUGINS" in info.reason for info in blocked)
    assert ("fake-shift" in visim.get_registry().metrics) == (expected["fake_good"] == "ok")
    assert all(info.status == "ok" for info in state.plugins if info.builtin)


def test_unknown_name_through_the_loaded_registry(clean_plugin_env):
    with pytest.raises(UnknownComponentError) as info:
        reload().registries.optimizers.get("adamm")
    assert str(info.value) == (
        "unknown optimizer 'adamm'; did you mean 'adam' or 'adamw'? "
        "(run 'visim components optimizers' to list them)"
    )


# -- the example of docs/plugins.rst --------------------------------------------------------

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "example_plugin"


def test_the_documented_example_plugin_works(fake_dists):
    pyproject = (EXAMPLE / "pyproject.toml").read_text()
    section = pyproject.split("[project.entry-points.visim]", 1)[1]
    name, target = (part.strip().strip('"') for part in section.strip().splitlines()[0].split("="))
    assert (name, target) == ("canberra", "visim_canberra")
    source = (EXAMPLE / "visim_canberra.py").read_text()
    fake_dists.add("visim-canberra", {name: target}, {target: source}, "0.1.0")

    canberra = visim.get_registry().metrics.get("CanberraDistance")
    assert (canberra.name, canberra.distribution, canberra.version) == ("canberra", "visim-canberra", "0.1.0")
    distances = canberra.build({"eps": 1e-9})([[1.0, 0.0], [2.0, 2.0]], [[0.0, 1.0], [1.0, 0.0]])
    assert distances.tolist() == [[2.0, 0.0], [pytest.approx(4 / 3), pytest.approx(4 / 3)]]
    with pytest.raises(ConfigError, match=r"@ \$\.eps"):
        canberra.build({"eps": 0})


def test_two_entry_points_naming_one_module_load_it_once(fake_dists):
    fake_dists.add("visim-fake-good", {"one": "visim_fake_good", "two": "visim_fake_good"}, {"visim_fake_good": GOOD})
    state = get_state()
    assert (info_of(state, "one").status, info_of(state, "two").reason) == (
        "ok", "the same object is already registered as plugin 'one'",
    )
    assert visim.get_registry().metrics.get("fake-shift").plugin == "one"
