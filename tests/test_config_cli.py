"""``visim validate`` and ``visim config show``: one-line summary or every problem, exit 0 or 2."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from tests import config_fakes
from visim.cli import main
from visim.config.load import config_from_dict, load_config
from visim.plugins import plugin_registered


@pytest.fixture(scope="module", autouse=True)
def fakes():
    with plugin_registered(config_fakes):
        yield


@pytest.fixture
def config_file(tmp_path):
    def write(data=None, name="exp.yaml"):
        path = tmp_path / name
        text = (
            data if isinstance(data, str) else yaml.safe_dump(data or config_fakes.minimal_config())
        )
        path.write_text(text)
        return str(path)

    return write


def test_validate_prints_a_one_line_summary(config_file, capsys):
    path = config_file()
    assert main(["validate", path]) == 0
    out = capsys.readouterr().out
    assert out == (
        f"{path}: valid; experiment 'fake': model fake_model, dataset fake_dataset, "
        "train 2 epochs (fake_loss, adam), metric fake_metric; "
        "data: 40 train images of 10 identities, 10 query, 30 gallery images\n"
    )


def test_validate_a_test_only_config(config_file, capsys):
    data = config_fakes.minimal_config()
    del data["train"]
    assert main(["validate", config_file(data)]) == 0
    assert "test only" in capsys.readouterr().out


def test_validate_reports_every_problem_and_exits_2(config_file, capsys):
    data = config_fakes.minimal_config()
    data["data"]["batch_size"] = 0
    data["train"]["epoch"] = 3
    data["test"]["metric"] = {"name": "fake_metric", "p": 0}
    path = config_file(data)
    assert main(["validate", path]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        f"{path}: 3 problems",
        "  must be >= 1 (got 0) @ $.data.batch_size",
        "  unknown key 'epoch'; did you mean 'epochs'? @ $.train.epoch",
        "  must be >= 1 (got 0.0) @ $.test.metric.p",
    ]


def test_validate_applies_overrides(config_file, capsys):
    path = config_file()
    assert main(["validate", path, "--set", "train.epochs=0", "--set", "seed=x"]) == 2
    assert capsys.readouterr().err.splitlines()[1:] == [
        "  expected int, got str 'x' @ $.seed",
        "  must be >= 1 (got 0) @ $.train.epochs",
    ]
    assert main(["validate", path, "--set", "train.epochs=7"]) == 0
    assert "train 7 epochs" in capsys.readouterr().out


def test_validate_yaml_error_and_missing_file(config_file, tmp_path, capsys):
    path = config_file("data: [\n")
    assert main(["validate", path]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{path}: 1 problem\n  YAML syntax error in {path}, line 2, column 1:")
    assert main(["validate", str(tmp_path / "nope.yaml")]) == 2
    assert "config file not found" in capsys.readouterr().err


def test_config_show_prints_yaml_that_round_trips(config_file, capsys):
    path = config_file()
    assert main(["config", "show", path, "--set", "test.metric.p=4"]) == 0
    text = capsys.readouterr().out
    shown = config_file(text, "shown.yaml")
    assert load_config(shown) == load_config(path, ["test.metric.p=4"])
    assert yaml.safe_load(text)["data"]["num_workers"] == 0  # defaults are spelled out


def test_config_show_with_errors_exits_2(config_file, capsys):
    assert main(["config", "show", config_file(), "--set", "device=tpu"]) == 2
    assert "must be auto, cpu, cuda or cuda:N (got 'tpu') @ $.device" in capsys.readouterr().err


def test_config_without_action_shows_usage(capsys):
    assert main(["config"]) == 2
    assert "show" in capsys.readouterr().err


def test_validate_exit_code_2_without_traceback_in_a_real_process(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: 12\ndata: {batch_size: 0}\ntest: {metric: {}}\nextra: 1\n")
    result = subprocess.run(
        [sys.executable, "-m", "visim", "validate", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[0] == f"{path}: 6 problems"
    assert lines[1:] == [
        "  unknown key 'extra' (known: name, seed, device, threads, precision, log_dir, data, model, "
        "train, test) @ $.extra",
        "  expected str, got int 12 @ $.name",
        "  required field missing @ $.data.dataset",
        "  must be >= 1 (got 0) @ $.data.batch_size",
        "  required field missing @ $.model",
        "  a metric reference needs a 'name' @ $.test.metric",
    ]


def test_the_fake_minimal_config_is_what_the_cli_validates():
    assert config_from_dict(config_fakes.minimal_config()).name == "fake"
