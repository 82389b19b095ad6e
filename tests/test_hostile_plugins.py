"""Plugins cannot take the command down: exit, print or raise at import and at call."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

import visim
from visim.plugins import get_state

EXITS_AT_IMPORT = "import sys\nsys.exit(0)\n"
PRINTS = textwrap.dedent(
    """
    import visim
    print("hello from the plugin import")

    @visim.hookimpl
    def register_metrics(register):
        print("hello from the plugin hook")
    """
)
EXITS_IN_HOOK = textwrap.dedent(
    """
    import sys
    import visim

    @visim.hookimpl
    def register_metrics(register):
        sys.exit(3)
    """
)
INTERRUPTS_AT_IMPORT = "raise KeyboardInterrupt\n"


def info_of(name):
    return next(info for info in get_state().plugins if info.name == name)


@pytest.mark.parametrize(
    ("source", "reason"),
    [(EXITS_AT_IMPORT, "import failed: called sys.exit(0)"), (EXITS_IN_HOOK, "called sys.exit(3)")],
)
def test_sys_exit_in_a_plugin_fails_that_plugin_only(fake_dists, capsys, source, reason):
    fake_dists.add("visim-fake-exit", {"fake_exit": "visim_fake_exit"}, {"visim_fake_exit": source})
    info = info_of("fake_exit")
    assert (info.status, info.reason) == ("failed", reason)
    assert "plugin 'fake_exit' (visim-fake-exit) failed to load" in capsys.readouterr().err
    assert "cosine" in visim.get_registry().metrics


def test_a_plugin_printing_while_it_loads_writes_to_stderr(fake_dists, capsys):
    fake_dists.add("visim-fake-print", {"fake_print": "visim_fake_print"}, {"visim_fake_print": PRINTS})
    assert info_of("fake_print").status == "ok"
    out, err = capsys.readouterr()
    assert out == ""
    assert "hello from the plugin import" in err and "hello from the plugin hook" in err


def test_ctrl_c_while_a_plugin_imports_is_still_ctrl_c(fake_dists):
    fake_dists.add("visim-fake-int", {"fake_int": "visim_fake_int"}, {"visim_fake_int": INTERRUPTS_AT_IMPORT})
    with pytest.raises(KeyboardInterrupt):
        get_state()


def visim_with(site, *argv):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("VISIM_")}
    environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), environ.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "visim", *argv], capture_output=True, text=True,
                          env=environ, timeout=120)


def test_the_cli_survives_hostile_plugins(fake_dists, tmp_path):
    fake_dists.add("visim-fake-exit", {"fake_exit": "visim_fake_exit"}, {"visim_fake_exit": EXITS_AT_IMPORT})
    fake_dists.add("visim-fake-print", {"fake_print": "visim_fake_print"}, {"visim_fake_print": PRINTS})
    config = tmp_path / "bad.yaml"
    config.write_text("model: {name: convnet}\ndata: {dataset: digits}\ntest: {metric: cosin}\n")

    validated = visim_with(fake_dists.root, "validate", str(config))
    assert validated.returncode == 2, validated.stderr  # not the plugin's sys.exit(0)
    assert "did you mean 'cosine'" in validated.stderr

    listed = visim_with(fake_dists.root, "plugins", "--json")
    assert listed.returncode == 0, listed.stderr
    plugins = {entry["name"]: entry for entry in json.loads(listed.stdout)}  # stdout is pure JSON
    assert plugins["fake_exit"]["status"] == "failed"
    assert plugins["fake_print"]["status"] == "ok"
    assert "hello from the plugin import" in listed.stderr
