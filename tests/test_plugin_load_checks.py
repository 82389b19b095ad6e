"""What the plugin loader checks before a plugin counts as loaded: the rule names its params
classes use (item 5 of issue 11) and its distribution's requirement on visim (item 6).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import visim
import visim.plugins
from visim.cli import main
from visim.config.errors import ConfigError
from visim.plugins import PluginError, get_state

MISSPELT_RULE = """
    import attrs
    from visim import hookimpl
    from visim.config import rules

    @attrs.frozen
    class StepParams:
        step: int = attrs.field(default=8, validator=[rules.gte(1), rules.validator("multipl of", 8)])

    @hookimpl
    def register_metrics(register):
        register("fake-step", print, params=StepParams)
"""

OWN_RULE = """
    import attrs
    from visim import hookimpl
    from visim.config import rules

    @attrs.frozen
    class StepParams:
        step: int = attrs.field(
            default=8, validator=rules.optional(rules.validator(("any", ["fake even", ("eq", 1)])))
        )

    @hookimpl
    def register_rules(register):
        register("fake even", lambda value: value % 2 == 0, unary=True)

    @hookimpl
    def register_metrics(register):
        register("fake-step", print, params=StepParams)
"""

GOOD = """
    import attrs
    from visim import hookimpl

    @attrs.frozen
    class NoParams:
        '''No parameters.'''

    @hookimpl
    def register_metrics(register):
        register("fake-future", print, params=NoParams)
"""


def info_of(name):
    (info,) = [info for info in get_state().plugins if info.name == name]
    return info


def test_unknown_rule_name_fails_the_plugin_when_it_loads(fake_dists, capsys):
    fake_dists.add("visim-fake-rule", {"fake_rule": "visim_fake_rule"}, {"visim_fake_rule": MISSPELT_RULE})
    info = info_of("fake_rule")
    assert info.status == "failed"
    assert info.reason == (
        "metric 'fake-step': StepParams.step: unknown validation rule 'multipl of' (see docs: rules)"
    )
    assert "fake-step" not in visim.get_registry().metrics
    assert "plugin 'fake_rule' (visim-fake-rule) failed to load: metric 'fake-step'" in capsys.readouterr().err


def test_unknown_rule_name_nested_in_a_combination_is_caught_too(fake_dists):
    source = MISSPELT_RULE.replace(
        '[rules.gte(1), rules.validator("multipl of", 8)]',
        'rules.optional(rules.any_(rules.eq(1), rules.not_(rules.validator("multipl of", 8))))',
    )
    fake_dists.add("visim-fake-nested", {"fake_nested": "visim_fake_nested"}, {"visim_fake_nested": source})
    assert info_of("fake_nested").reason.endswith("unknown validation rule 'multipl of' (see docs: rules)")


def test_a_rule_registered_by_the_same_plugin_is_known_at_load(fake_dists):
    fake_dists.add("visim-fake-own", {"fake_own": "visim_fake_own"}, {"visim_fake_own": OWN_RULE})
    assert info_of("fake_own").status == "ok"
    step = visim.get_registry().metrics.get("fake-step")
    assert step.make_params({"step": 4}).step == 4
    with pytest.raises(ConfigError, match="got 3"):
        step.make_params({"step": 3})


@pytest.mark.parametrize(
    ("requires", "status"),
    [
        (("visim>=99",), "incompatible"),
        (("visim<0.1",), "incompatible"),
        (("Visim >=0.1, <99", "numpy"), "ok"),
        (("visim>=99; extra == 'dev'",), "ok"),  # only for an extra: not required here
        ((), "ok"),
    ],
)
def test_requirement_on_visim_decides_compatibility(fake_dists, capsys, requires, status):
    fake_dists.add("visim-fake-future", {"fake_future": "visim_fake_future"}, {"visim_fake_future": GOOD}, requires=requires)
    info = info_of("fake_future")
    assert info.status == status
    assert ("fake-future" in visim.get_registry().metrics) == (status == "ok")
    if status == "incompatible":
        assert info.reason == f"requires {requires[0]}, this is visim {visim.__version__}"
        assert "visim_fake_future" not in sys.modules  # not even imported
        assert "(visim-fake-future) is incompatible: requires" in capsys.readouterr().err


def test_incompatible_is_listed_and_strict_mode_exits_2(fake_dists, capsys, monkeypatch):
    fake_dists.add("visim-fake-future", {"fake_future": "visim_fake_future"}, {"visim_fake_future": GOOD}, requires=["visim>=99"])
    assert main(["plugins", "--json"]) == 0
    listed = {p["name"]: p for p in json.loads(capsys.readouterr().out)}
    assert (listed["fake_future"]["status"], listed["fake_future"]["reason"]) == (
        "incompatible", f"requires visim>=99, this is visim {visim.__version__}",
    )
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "incompatible  requires visim>=99" in out and "1 incompatible" in out
    monkeypatch.setenv("VISIM_STRICT_PLUGINS", "1")
    visim.plugins.reset()
    with pytest.raises(PluginError, match="is incompatible: requires visim>=99"):
        get_state()
    assert main(["plugins"]) == 2
    assert "visim: error: plugin 'fake_future' (visim-fake-future) is incompatible" in capsys.readouterr().err


def test_listing_an_incompatible_plugin_imports_no_torch(fake_dists):
    fake_dists.add("visim-fake-future", {"fake_future": "visim_fake_future"}, {"visim_fake_future": GOOD}, requires=["visim>=99"])
    code = (
        "import sys; from visim.cli import main; main(['plugins']); "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(fake_dists.root), *sys.path])}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "incompatible" in done.stdout
