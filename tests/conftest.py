"""Shared fixtures: plugins registered for one test, fake installed distributions, and one
trained run that every test only reading a trained run directory shares."""

from __future__ import annotations

import gc
import importlib
import os
import sys
import textwrap
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

import visim.plugins
from tests.helpers import tiny_config, train_run, write_config

# No cyclic garbage collection while the test modules are imported (torch, torchvision's
# dynamo, sympy, timm: half a million objects, each full collection walking them all again);
# collection ends by freezing them (pytest_collection_finish).
gc.disable()
# Every fork of this process (tests/helpers.py's Forked and forked ranks, torchrun's launcher,
# DataLoader workers) collects the garbage first: a child must not run the destructors of
# objects the parent no longer uses (an onnxruntime session destroying its thread pool in a
# child, where those threads do not exist, hangs in pthread_cond_destroy).
os.register_at_fork(before=gc.collect)


def pytest_collection_finish(session):
    """One torch thread in this process: the tests' tensors are tiny, so a second thread buys
    nothing and, on a busy machine, threads waiting for each other cost several times the work.
    It is also the demo config's count, so the demo forked from here prints the README's figures.
    Set before any test runs, even when the collected modules did not import torch: children
    forked from this process (tests/helpers.py ``Forked``) must find one thread and no OpenMP
    team."""
    import torch

    torch.set_num_threads(1)
    # What collection imported lives until the process ends: out of the collector's reach, a
    # full collection no longer walks it, and forked children do not copy its pages by
    # touching their GC headers.
    gc.collect()
    gc.freeze()
    gc.enable()


def pytest_unconfigure(config):
    """The collection at interpreter exit walks every object again (about 0.7 s): skipped."""
    gc.freeze()


def pytest_collection_modifyitems(config, items):
    """Modules with a ``slow`` test first, the others after, each group in collection order.

    ``make test`` hands whole modules to the pytest-xdist workers in this order
    (``--no-loadscope-reorder``): the seconds-long end-to-end modules start at once, and the
    run ends with short modules, not with one worker alone on a long one.
    """
    slow = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow)  # stable: collection order within each group


@pytest.fixture
def subnormal_floats():
    """IEEE subnormal floats during the test. visim's CPU engine flushes them to zero for the
    whole process (torch.set_flush_denormal: 4x faster convolutions), and hypothesis refuses
    to generate floats in that state, whichever earlier test built an engine."""
    flushing = sys.float_info.min / 2 == 0.0
    if flushing:
        sys.modules["torch"].set_flush_denormal(False)
    yield
    if flushing:
        sys.modules["torch"].set_flush_denormal(True)


@dataclass(frozen=True)
class TrainedRun:
    """``tiny_config(folder, epochs=1)`` trained and tested once. Read it, never write into it:
    copy the checkpoint elsewhere to resume from it."""

    folder: Path  # the config's log_dir is folder / "runs"
    config: dict
    config_file: str  # the config as YAML
    run_dir: Path  # config.yaml, run.log, results.json, events, checkpoints/{last,best,epoch-001}.pt
    checkpoint: Path  # run_dir / "checkpoints" / "last.pt"
    results: dict  # what the run's test returned


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> TrainedRun:
    """One epoch of the tiny config, trained in this process, shared by the whole session."""
    folder = tmp_path_factory.mktemp("trained")
    config = tiny_config(folder, epochs=1)
    run_dir = folder / "run"
    _, results = train_run(config, run_dir)
    from visim.config.load import config_from_dict, dump_config

    (run_dir / "config.yaml").write_text(dump_config(config_from_dict(config)))  # as `visim run` writes it
    return TrainedRun(folder, config, write_config(folder, config), run_dir, run_dir / "checkpoints" / "last.pt", results)

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
