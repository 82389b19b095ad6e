"""``visim plugin new``: packages of every kind install for real and pass their own tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import visim
from tests.helpers import run_forked
from visim.cli import main
from visim.scaffold import KINDS

ROOT = Path(__file__).resolve().parents[1]


def run(*argv, env=None, timeout=600):
    return subprocess.run([sys.executable, *argv], env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_every_kind_installs_lists_and_passes_its_own_tests(tmp_path, capsys, clean_plugin_env):
    targets = []
    for kind in KINDS:
        assert main(["plugin", "new", kind, f"acme_{kind}", "--output", str(tmp_path)]) == 0
        targets.append(tmp_path / f"visim-acme-{kind}")
    assert f"created {targets[0]}" in capsys.readouterr().out
    pyproject = (targets[1] / "pyproject.toml").read_text()
    assert f'dependencies = ["visim>={visim.__version__}"]' in pyproject
    assert 'acme_model = "visim_acme_model"' in pyproject
    # A real pip install (wheel build, dist-info, entry points) into a folder of its own, so
    # the shared environment is left as it was.
    site = tmp_path / "site"
    installed = run("-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", str(site), *map(str, targets))
    assert installed.returncode == 0, installed.stderr
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(site)])}
    for name in ("VISIM_STRICT_PLUGINS", "VISIM_LOAD_PLUGINS", "VISIM_DISABLE_PLUGINS"):
        env.pop(name, None)
    listed = run("-m", "visim", "components", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    found = {(c["kind"], c["name"]): c for c in json.loads(listed.stdout)}
    for kind, plural in zip(KINDS, ("metrics", "models", "losses", "datasets")):
        assert found[(plural, f"acme_{kind}")]["distribution"] == f"visim-acme-{kind}"
    # The four packages' suites in one pytest session, in a process forked from this one (no
    # second start-up of torch) that sees the installed packages as a new interpreter would.
    tested = run_forked(pytest_in_site, site, [str(t) for t in targets])
    assert tested.returncode == 0, tested.stdout[-3000:] + tested.stderr[-2000:]
    assert "12 passed" in tested.stdout


def pytest_in_site(site: Path, args: list[str]) -> int:
    import importlib

    import visim.plugins

    sys.path.insert(0, str(site))
    importlib.invalidate_caches()
    visim.plugins.reset()  # the plugin manager finds the four distributions' entry points
    return pytest.main(["-q", "-p", "no:cacheprovider", "-p", "no:xdist", *args])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["metric", "Acme-Net"], "invalid name 'Acme-Net': lowercase letters, digits and underscores"),
        (["metric", "9lives"], "invalid name '9lives'"),
        (["metric", "cosine"], "metric 'cosine' is built into visim; choose another name"),
        (["loss", "softmax"], "loss 'softmax' is built into visim"),  # an alias counts too
        (["model", "taken"], "visim-taken already exists"),
    ],
)
def test_bad_name_or_existing_target_exits_2_writing_nothing(tmp_path, capsys, clean_plugin_env, argv, message):
    (tmp_path / "visim-taken").mkdir()
    before = sorted(tmp_path.rglob("*"))
    assert main(["plugin", "new", *argv, "--output", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("visim: error: ") and message in err and err.count("\n") == 1
    assert sorted(tmp_path.rglob("*")) == before
