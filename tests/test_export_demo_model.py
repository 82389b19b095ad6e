"""`visim export` of the demo's osnet_x0_25: the network users start from exports and passes
its parity check. A module of its own, so that pytest-xdist runs it beside tests/test_export.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from visim.cli import main
from visim.deploy import formats

ROOT = Path(__file__).resolve().parents[1]
SUFFIX = {"onnx": ".onnx", "torchscript": ".pt"}


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_the_demo_model_exports_and_passes_its_check(tmp_path, capsys, fmt):
    config = yaml.safe_load((ROOT / "configs" / "demo.yaml").read_text())
    config.update(device="cpu", log_dir=str(tmp_path / "runs"))
    config["data"]["dataset"] = {"name": "digits", "max_per_digit": 10}
    config_file = tmp_path / "demo.yaml"
    config_file.write_text(yaml.safe_dump(config))
    out = tmp_path / f"demo{SUFFIX[fmt]}"
    assert main(["export", str(config_file), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out} ({fmt}: uint8 [batch, 32, 32, 3] -> float32 [batch, 512])" in printed
    assert "batch sizes 1, 5, 8" in printed and "min cosine 1.0000" in printed
    model = formats.load(out).metadata["model"]
    assert (model["name"], model["arch"]) == ("torchreid", "osnet_x0_25")
