"""Shared fixtures: plugins registered for one test, and fake installed distributions."""

from __future__ import annotations

import importlib
import sys
import textwrap
from contextlib import ExitStack
from pathlib import Path

import pytest

import visim.plugins

PLUGIN_ENV_VARS = ("VISIM_STRICT_PLUGINS", "VISIM_LOAD_PLUGINS", "VISIM_DISABLE_PLUGINS")


@pytest.fixture
def register_plugin():
    """``register_plugin(obj, name=None) -> PluginState``: obj's hookimpls count for this test only.

    ``obj`` is anything pluggy accepts (a module, a class, an instance); the plugin manager is
    reloaded with it and reloaded without it when the test ends.
    """
    with ExitStack() as stack:

        def register(plugin: object, name: str | None = None):
            return stack.enter_context(visim.plugins.plugin_registered(plugin, name))

        yield register


@pytest.fixture
def clean_plugin_env(monkeypatch):
    """No VISIM_*_PLUGINS variable from the caller's shell leaks into the test."""
    for name in PLUGIN_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


class FakeDistributions:
    """Writes installed-looking distributions (``<name>-<version>.dist-info``) into one folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.modules: list[str] = []

    def add(
        self,
        name: str,
        entry_points: dict[str, str],
        modules: dict[str, str] | None = None,
        version: str = "1.0",
        requires: tuple[str, ...] = (),
    ) -> Path:
        """Install distribution ``name`` with ``visim`` entry points and module sources.

        ``entry_points`` maps an entry-point name to ``module`` or ``module:attribute``;
        ``modules`` maps a top-level module name to its (dedented) source; ``requires`` are
        its ``Requires-Dist`` lines (``visim>=99``).
        """
        for module, source in (modules or {}).items():
            (self.root / f"{module}.py").write_text(textwrap.dedent(source))
            self.modules.append(module)
        dist_info = self.root / f"{name.replace('-', '_')}-{version}.dist-info"
        dist_info.mkdir()
        (dist_info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
            + "".join(f"Requires-Dist: {line}\n" for line in requires)
        )
        lines = "".join(f"{ep} = {target}\n" for ep, target in entry_points.items())
        (dist_info / "entry_points.txt").write_text(f"[visim]\n{lines}")
        # The import system and importlib.metadata cache directory listings.
        importlib.invalidate_caches()
        visim.plugins.reset()
        return dist_info


@pytest.fixture
def fake_dists(tmp_path, clean_plugin_env):
    """A :class:`FakeDistributions` whose folder is on ``sys.path`` for this test only."""
    root = tmp_path / "site-packages"
    root.mkdir()
    clean_plugin_env.syspath_prepend(str(root))
    dists = FakeDistributions(root)
    visim.plugins.reset()
    yield dists
    for module in dists.modules:
        sys.modules.pop(module, None)
    visim.plugins.reset()
