"""``visim plugins`` and ``visim components``, in-process and as real subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import attrs
import pytest

import visim
from visim.cli import main
from visim.commands._table import format_table, join_wrapped

BROKEN = "import visim_module_that_does_not_exist  # noqa: F401\n"


@attrs.frozen
class WindowParams:
    size: int
    stride: int = 2
    modes: tuple[str, ...] = ("a", "b")
    weights: list[float] = attrs.Factory(list)


class WindowPlugin:
    @visim.hookimpl
    def register_transforms(self, register):
        register(
            "fake-window",
            lambda params: params,
            params=WindowParams,
            aliases=("FakeWindow", "win"),
            doc="Slide a window.\n\nLonger explanation.",
        )


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# -- the table formatter --------------------------------------------------------------------


def test_table_aligns_columns_and_grows_rows_for_multiline_cells():
    table = format_table(["A", "LONG HEADER", "C"], [["xx", "1\n22\n333", "end"], ["y", "", ""]])
    assert table.splitlines() == [
        "A   LONG HEADER  C",
        "xx  1            end",
        "    22",
        "    333",
        "y",
    ]


def test_lists_wrap_between_items_only():
    names = ["file exists", "folder exists in folder", "eq", "neq"]
    assert join_wrapped("rules:", names, width=30).splitlines() == [
        "rules: file exists,",
        "  folder exists in folder, eq,",
        "  neq",
    ]
    assert join_wrapped("hook:", ["-"]) == "hook: -"
    assert join_wrapped("", ["a" * 40, "b"], width=10) == "a" * 40 + ",\n  b"


def test_table_rejects_rows_of_the_wrong_width():
    with pytest.raises(ValueError, match="row has 1 cells for 2 columns"):
        format_table(["A", "B"], [["only"]])


# -- visim plugins --------------------------------------------------------------------------


def test_plugins_lists_builtins_with_hooks_and_components(capsys, clean_plugin_env):
    visim.plugins.reset()
    code, out, _ = run_cli(capsys, "plugins")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["PLUGIN", "DISTRIBUTION", "VERSION", "STATUS", "DETAILS"]
    optim = lines.index(next(line for line in lines if line.startswith("visim.optim ")))
    assert lines[optim].split() == [
        "visim.optim", "visim", visim.__version__, "ok", "register_optimizers:", "adam,", "adamw,", "sgd",
    ]
    # the second hook continues under DETAILS, aligned with the first
    details_column = lines[0].index("DETAILS")
    assert lines[optim + 1].index("register_schedulers") == details_column
    assert lines[-1].startswith(f"{len(visim.plugins.get_state().plugins)} plugins: ")


def test_plugins_shows_failed_plugins_with_their_reason(capsys, register_plugin, clean_plugin_env):
    class Broken:
        @visim.hookimpl
        def register_metrics(self, register):
            register("Not A Name", print, params=WindowParams)

    register_plugin(Broken(), name="broken-one")
    code, out, err = run_cli(capsys, "plugins")
    assert code == 0
    (row,) = [line for line in out.splitlines() if line.startswith("broken-one ")]
    assert row.split()[:4] == ["broken-one", "-", "-", "failed"]
    assert row.endswith("invalid metric name 'Not A Name': must match ^[a-z][a-z0-9_.-]*$")
    assert "1 failed" in out.splitlines()[-1]
    assert "plugin 'broken-one' failed to load" in err


def test_plugins_json(capsys, register_plugin, clean_plugin_env):
    register_plugin(WindowPlugin(), name="window")
    code, out, _ = run_cli(capsys, "plugins", "--json")
    assert code == 0
    plugins = {entry["name"]: entry for entry in json.loads(out)}
    assert plugins["window"] == {
        "name": "window",
        "distribution": None,
        "version": None,
        "builtin": False,
        "status": "ok",
        "reason": None,
        "hooks": ["register_transforms"],
        "components": {"transforms": ["fake-window"]},
    }
    assert plugins["visim.optim"]["components"]["schedulers"] == ["step", "multistep", "cosine", "plateau"]


# -- visim components -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["optimizers", "optimizer", "Optimizer", "OPTIMIZERS"])
def test_components_of_one_kind_singular_or_plural(capsys, kind, clean_plugin_env):
    code, out, _ = run_cli(capsys, "components", kind)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "optimizers (3)"
    assert lines[1].split() == ["NAME", "ALIASES", "PLUGIN", "DISTRIBUTION", "PARAMS", "DESCRIPTION"]
    adam = lines[2]
    assert adam.split()[:7] == ["adam", "Adam", "visim.optim", "visim", visim.__version__, "lr:", "float"]
    assert adam.endswith("Adam (Kingma & Ba), torchreid's default optimizer.")
    params_column = lines[1].index("PARAMS")
    assert lines[3][params_column:].rstrip() == "weight_decay: float = 0.0005"
    assert "schedulers" not in out


def test_components_show_params_types_defaults_and_first_doc_line(capsys, register_plugin, clean_plugin_env):
    register_plugin(WindowPlugin(), name="window")
    code, out, _ = run_cli(capsys, "components", "transform")
    assert code == 0
    table = out.splitlines()
    (row,) = [i for i, line in enumerate(table) if line.startswith("fake-window ")]
    assert table[row].split()[1:4] == ["FakeWindow", "window", "-"]
    assert table[row].endswith("Slide a window.")

    def column(header, height):
        start = table[1].index(header)
        return [line[start:].split("  ")[0] for line in table[row : row + height]]

    assert column("ALIASES", 2) == ["FakeWindow", "win"]  # one alias per line
    assert column("PARAMS", 4) == [
        "size: int (required)",
        "stride: int = 2",
        "modes: list of str = [a, b]",  # the config reference's words: types and YAML values
        "weights: list of float = []",
    ]


def test_components_json(capsys, register_plugin, clean_plugin_env):
    register_plugin(WindowPlugin(), name="window")
    code, out, _ = run_cli(capsys, "components", "--json")
    assert code == 0
    listing = json.loads(out)
    assert {entry["kind"] for entry in listing} >= {"optimizers", "schedulers", "transforms"}
    (window,) = [entry for entry in listing if entry["name"] == "fake-window"]
    assert window == {
        "kind": "transforms",
        "name": "fake-window",
        "aliases": ["FakeWindow", "win"],
        "plugin": "window",
        "distribution": None,
        "version": None,
        "builtin": False,
        "doc": "Slide a window.",
        "params": [
            {"name": "size", "type": "int", "required": True, "default": None},
            {"name": "stride", "type": "int", "required": False, "default": 2},
            {"name": "modes", "type": "list of str", "required": False, "default": ["a", "b"]},
            {"name": "weights", "type": "list of float", "required": False, "default": []},
        ],
    }


def test_components_unknown_kind_is_a_one_line_usage_error(capsys, clean_plugin_env):
    code, out, err = run_cli(capsys, "components", "metrik")
    assert code == 2 and out == ""
    assert err == (
        "visim: error: unknown component kind 'metrik'; choose one of metrics, models, losses, "
        "datasets, optimizers, schedulers, samplers, transforms, rerankers, indexes\n"
    )


# -- subprocesses: the installed command, fake distributions, lazy imports ------------------


@pytest.fixture
def broken_site(tmp_path):
    """A folder holding one installed-looking distribution whose import fails."""
    site = tmp_path / "site"
    dist_info = site / "visim_fake_broken-0.1.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: visim-fake-broken\nVersion: 0.1\n")
    (dist_info / "entry_points.txt").write_text("[visim]\nfake_broken = visim_fake_broken\n")
    (site / "visim_fake_broken.py").write_text(BROKEN)
    return site


def visim_subprocess(*argv, site=None, **env):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("VISIM_")}
    if site is not None:
        environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), environ.get("PYTHONPATH")]))
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-m", "visim", *argv], capture_output=True, text=True, env=environ, timeout=60
    )


def test_plugins_json_subprocess_shows_the_broken_distribution(broken_site):
    result = visim_subprocess("plugins", "--json", site=broken_site)
    assert result.returncode == 0, result.stderr
    plugins = {entry["name"]: entry for entry in json.loads(result.stdout)}
    broken = plugins["fake_broken"]
    assert (broken["distribution"], broken["version"], broken["status"]) == ("visim-fake-broken", "0.1", "failed")
    assert broken["reason"].startswith("import failed: ModuleNotFoundError")
    assert all(plugins[name]["status"] == "ok" for name in visim.plugins.DEFAULT_PLUGINS)
    assert "plugin 'fake_broken' (visim-fake-broken) failed to load" in result.stderr
    assert "Traceback" not in result.stderr


def test_components_still_work_beside_a_broken_distribution(broken_site):
    result = visim_subprocess("components", "optimizers", "--json", site=broken_site)
    assert result.returncode == 0, result.stderr
    assert [entry["name"] for entry in json.loads(result.stdout)] == ["adam", "adamw", "sgd"]


def test_strict_mode_is_a_clean_usage_error(broken_site):
    result = visim_subprocess("components", site=broken_site, VISIM_STRICT_PLUGINS="1")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "visim: error: plugin 'fake_broken' (visim-fake-broken) failed to load: import failed: "
        "ModuleNotFoundError: No module named 'visim_module_that_does_not_exist' (VISIM_STRICT_PLUGINS=1)"
    ]


def test_broken_distribution_can_be_disabled(broken_site):
    result = visim_subprocess("plugins", site=broken_site, VISIM_DISABLE_PLUGINS="visim-fake-broken")
    assert result.returncode == 0
    assert result.stderr == ""
    (row,) = [line for line in result.stdout.splitlines() if line.startswith("fake_broken ")]
    assert row.split()[:4] == ["fake_broken", "visim-fake-broken", "0.1", "blocked"]


# Records who imports torch (or torchvision / torchreid) first, so a failure names the module.
NO_TORCH_SCRIPT = textwrap.dedent(
    """
    import contextlib, sys, traceback

    HEAVY = ("torch", "torchvision", "torchreid")
    importers = []

    class Spy:
        def find_spec(self, name, path=None, target=None):
            if name in HEAVY:
                frames = [f for f in traceback.extract_stack() if "/visim/" in f.filename]
                importers.append(f"{name} <- " + (f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"))
            return None

    sys.meta_path.insert(0, Spy())

    import visim
    import visim.cli
    visim.get_registry()
    for argv in (["plugins"], ["plugins", "--json"], ["components"], ["components", "rerankers"], ["--help"]):
        with contextlib.suppress(SystemExit):  # --help exits
            visim.cli.main(argv)
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in HEAVY)
    print("IMPORTERS", importers)
    print("LOADED", loaded)
    """
)


def test_listing_commands_import_no_torch():
    environ = {k: v for k, v in os.environ.items() if not k.startswith("VISIM_")}
    result = subprocess.run(
        [sys.executable, "-c", NO_TORCH_SCRIPT], capture_output=True, text=True, env=environ, timeout=60
    )
    assert result.returncode == 0, result.stderr
    report = result.stdout.splitlines()[-2:]
    assert report == ["IMPORTERS []", "LOADED []"], "\n".join(report)
