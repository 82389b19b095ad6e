"""`visim export`: ONNX and TorchScript files that reproduce `visim predict` from uint8 images."""

from __future__ import annotations

import csv
import gc
import runpy
import shutil
from pathlib import Path

import attrs
import numpy as np
import pytest
import torch
import yaml
from PIL import Image

import visim.deploy.export
from tests.helpers import tiny_config
from visim import hookimpl
from visim.cli import main
from visim.config.load import config_from_dict, dump_config
from visim.deploy import formats
from visim.deploy.graph import DeployableModel
from visim.deploy.parity import MIN_COSINE, cosines
from visim.engine.build import build_engine
from visim.outputs.embeddings import load_embeddings

ROOT = Path(__file__).resolve().parents[1]
SNIPPET = ROOT / "docs" / "deploy_snippet.py"
SUFFIX = {"onnx": ".onnx", "torchscript": ".pt"}


def small_config(tmp_path, **data) -> dict:
    """The convnet on 10 images per digit at 16x16, without a train section."""
    config = tiny_config(tmp_path)
    del config["train"]
    config["data"].update({"dataset": {"name": "digits", "max_per_digit": 10}, **data})
    config["test"]["metric"] = "cosine"
    return config


def write_config(config: dict, path: Path) -> str:
    path.write_text(yaml.safe_dump(config))
    return str(path)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run directory of the convnet: config.yaml and a checkpoints/best.pt of seeded weights."""
    tmp_path = tmp_path_factory.mktemp("export")
    config = config_from_dict(small_config(tmp_path))
    run = tmp_path / "run"
    engine = build_engine(config, train=False, run_dir=run, quiet=True)
    with torch.no_grad():  # away from the initial BatchNorm statistics, as after training
        for module in engine.model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 2.0)
    last = engine.save_model(1, None)
    shutil.copy(last, last.parent / "best.pt")
    (run / "config.yaml").write_text(dump_config(config))
    return run


def errors(captured) -> list[str]:
    """stderr without warnings (an installed plugin that fails to load warns; not our subject)."""
    return [line for line in captured.err.splitlines() if not line.startswith("visim: warning:")]


def export(source, out, *extra) -> int:
    return main(["export", str(source), "--out", str(out), "--quiet", *extra])


@pytest.fixture(scope="module")
def exported(run_dir, manifest_run):
    """The run directory's model in both formats: TorchScript exported from the run directory,
    ONNX the same weights exported through the manifest's config (the same preprocessing and
    input size; each ONNX export costs seconds, so the module makes one of the convnet)."""
    torchscript = run_dir / "model.pt"
    assert export(run_dir, torchscript) == 0
    return {"onnx": manifest_run["files"]["onnx"], "torchscript": torchscript}


def uint8_images(batch: int, size=(16, 16), seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (batch, *size, 3), dtype=np.uint8)


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_the_export_records_its_preprocessing_and_has_a_dynamic_batch(exported, run_dir, fmt):
    loaded = formats.load(exported[fmt])
    meta = loaded.metadata
    assert loaded.format == fmt and meta["export_format"] == fmt
    assert meta["input_size"] == [16, 16] and meta["input"]["shape"] == ["batch", 16, 16, 3]
    assert meta["mean"] == pytest.approx([0.485, 0.456, 0.406]) and meta["std"] == pytest.approx([0.229, 0.224, 0.225])
    assert meta["embedding_dim"] == 16 and meta["metric"] == {"name": "cosine"}
    assert meta["weights"] == str(run_dir / "checkpoints" / "best.pt") and meta["interpolation"] == "bilinear"
    images = uint8_images(5)
    five, one = loaded.run(images), loaded.run(images[:1])
    assert five.shape == (5, 16) and one.shape == (1, 16) and five.dtype == np.float32
    np.testing.assert_allclose(one[0], five[0], rtol=1e-5, atol=1e-6)
    assert not np.allclose(five[0], five[1])  # not one output for every input (torchreid #316)


def test_the_onnx_file_passes_the_checker_at_a_current_opset(exported):
    import onnx

    model = onnx.load(str(exported["onnx"]))
    onnx.checker.check_model(model, full_check=True)
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 17


class BGRModel(DeployableModel):
    def forward(self, images):
        return super().forward(images.flip(-1))


def wrong_normalisation(monkeypatch):
    real = visim.deploy.export.read_preprocessing
    monkeypatch.setattr(
        visim.deploy.export,
        "read_preprocessing",
        lambda *args: attrs.evolve(real(*args), mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)),
    )


def channels_swapped(monkeypatch):
    monkeypatch.setattr(visim.deploy.export, "DeployableModel", BGRModel)


# In the TorchScript graph: the job and its cleanup are the same for both formats, and the check
# compares outputs whatever the format (an ONNX file that differs is caught below, by --check).
@pytest.mark.parametrize("breakage", [wrong_normalisation, channels_swapped])
def test_a_broken_export_is_caught_and_nothing_is_kept(manifest_run, tmp_path, monkeypatch, capsys, breakage):
    """On colour images (a BGR mistake does not show on the grey digits)."""
    breakage(monkeypatch)
    out = tmp_path / "broken.pt"
    assert export(manifest_run["config"], out, "--weights", manifest_run["weights"]) == 1
    error = capsys.readouterr().err
    assert f"visim: error: parity check failed for {out}: min cosine" in error
    assert f"nothing was written to {out}" in error
    assert list(tmp_path.iterdir()) == []  # no file under the target name, no temporary left


def test_check_reruns_the_parity_check_on_an_existing_export(run_dir, exported, capsys):
    good = main(["export", str(run_dir), "--check", str(exported["onnx"])])
    assert good == 0 and "checked" in capsys.readouterr().out
    # Each file against a config that normalises differently: the check says so.
    other = ["--set", "data.test_transforms=[resize, to_tensor, {name: normalize, mean: [0.5, 0.5, 0.5]}]"]
    for file in exported.values():
        assert main(["export", str(run_dir), "--check", str(file), "--quiet", *other]) == 1
        assert f"visim: error: parity check failed for {file}: min cosine" in capsys.readouterr().err
        assert file.is_file()  # --check never deletes


class Unexportable(torch.nn.Module):
    """Branches on the data: torch.export cannot follow."""

    embedding_dim = 4

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(3, 4)

    def forward(self, images):
        pooled = images.mean((2, 3))
        if pooled.sum() > 0:
            pooled = pooled * 2
        return self.linear(pooled)


class UnexportablePlugin:
    @staticmethod
    @hookimpl
    def register_models(register):
        @attrs.frozen
        class NoParams:
            """No parameters."""

        register("numpy_net", lambda params, num_classes=1: Unexportable(), params=NoParams)


def test_the_onnx_exporter_runs_without_the_cyclic_collector_which_comes_back_after(tmp_path, monkeypatch):
    states = []

    def failing_export(*args, **kwargs):
        states.append(gc.isenabled())
        raise RuntimeError("the exporter failed")

    monkeypatch.setattr(torch.onnx, "export", failing_export)
    assert gc.isenabled()
    with pytest.raises(RuntimeError, match="the exporter failed"):
        formats.write_onnx(torch.nn.Identity(), torch.zeros(1, 3), tmp_path / "m.onnx", {})
    assert states == [False] and gc.isenabled()
    gc.disable()  # a caller that turned the collector off keeps it off
    try:
        with formats.collection_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_model_that_cannot_be_exported_is_named_in_one_line(tmp_path, register_plugin, capsys):
    register_plugin(UnexportablePlugin, "numpy-net")
    config = small_config(tmp_path)
    config["model"] = "numpy_net"
    out = tmp_path / "m.onnx"
    assert export(write_config(config, tmp_path / "c.yaml"), out) == 1
    [error] = errors(capsys.readouterr())
    assert error.startswith("visim: error: model 'numpy_net' cannot be exported to ONNX: GuardOnDataDependentSymNode")
    assert not out.exists()


def test_a_missing_extra_says_what_to_install(run_dir, tmp_path, monkeypatch, capsys):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else find_spec(name, *a))
    assert export(run_dir, tmp_path / "m.onnx") == 1
    assert errors(capsys.readouterr()) == ["visim: error: ONNX export needs onnxruntime: pip install 'visim[export]'"]


def test_a_test_transform_the_graph_cannot_do_is_named(tmp_path, capsys):
    config = small_config(tmp_path, test_transforms=["resize", "random_flip", "to_tensor", "normalize"])
    assert export(write_config(config, tmp_path / "c.yaml"), tmp_path / "m.pt") == 1
    assert "test transform 'random_flip' cannot be part of an exported graph" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--out", "m.bin"], "cannot tell the format of 'm.bin'"),
        (["--out", "m.onnx", "--weights", "missing.pt"], "checkpoint not found: missing.pt"),
    ],
)
def test_usage_errors_exit_2(run_dir, capsys, argv, message):
    assert main(["export", str(run_dir), *argv]) == 2
    assert message in capsys.readouterr().err


def test_a_folder_without_config_yaml_is_not_a_run_directory(tmp_path, capsys):
    assert export(tmp_path, tmp_path / "m.onnx") == 2
    assert "is not a run directory: it has no config.yaml" in capsys.readouterr().err


@pytest.fixture(scope="module")
def manifest_run(run_dir, tmp_path_factory):
    """Colour images on disk, listed by a manifest: query and gallery 12 at the input size and 4
    of other sizes; 5 train identities, as many as the run directory's model classifies."""
    root = tmp_path_factory.mktemp("manifest")
    rng = np.random.default_rng(7)
    rows = []
    for index in range(21):
        size = (9 + index, 23 - index) if 12 <= index < 16 else (16, 16)
        image = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
        Image.fromarray(image).save(root / f"{index}.png")
        split = "train" if index >= 16 else "query" if index < 4 else "gallery"
        rows.append({"path": f"{index}.png", "pid": index % 4 if index < 16 else index - 6, "camid": index % 2, "split": split})
    with (root / "images.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    config = small_config(root, dataset={"name": "manifest", "path": str(root / "images.csv")})
    config_file = write_config(config, root / "manifest.yaml")
    weights = str(run_dir / "checkpoints" / "best.pt")
    assert main(["predict", config_file, "--weights", weights, "--out", str(root / "emb.npz"), "--quiet"]) == 0
    saved = load_embeddings(root / "emb.npz")
    paths = saved.query.paths + saved.gallery.paths
    embeddings = np.concatenate([saved.query.embeddings.numpy(), saved.gallery.embeddings.numpy()])
    files = {}
    for fmt, suffix in SUFFIX.items():
        files[fmt] = root / f"model{suffix}"
        assert export(config_file, files[fmt], "--weights", weights) == 0
    return {"paths": paths, "embeddings": embeddings, "files": files, "config": config_file, "weights": weights}


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_the_export_fed_raw_images_returns_what_predict_wrote(manifest_run, fmt):
    """The issue's "done when": raw uint8 images at the input size, batch sizes 1 and 5."""
    run = formats.load(manifest_run["files"][fmt]).run
    at_size = [i for i, p in enumerate(manifest_run["paths"]) if Image.open(p).size == (16, 16)]
    images = np.stack([np.asarray(Image.open(manifest_run["paths"][i]).convert("RGB")) for i in at_size])
    expected = manifest_run["embeddings"][at_size]
    for batch in (1, 5):
        for start in range(0, len(at_size), batch):
            got = run(images[start : start + batch])
            assert got.shape == (len(images[start : start + batch]), 16)
            assert cosines(got, expected[start : start + batch]).min() >= MIN_COSINE


def test_the_docs_snippet_embeds_image_files_as_predict_does(manifest_run, capsys, monkeypatch):
    """docs/deploy_snippet.py, included in docs/deployment.rst: any image size, resized as predict does."""
    snippet = runpy.run_path(str(SNIPPET))
    session, metadata = snippet["load_model"](str(manifest_run["files"]["onnx"]))
    got = snippet["embed"](session, metadata, manifest_run["paths"])
    assert cosines(got, manifest_run["embeddings"]).min() >= MIN_COSINE
    assert {Image.open(p).size for p in manifest_run["paths"]} != {(16, 16)}  # some were resized
    monkeypatch.setattr("sys.argv", ["deploy_snippet.py", str(manifest_run["files"]["onnx"]), *manifest_run["paths"][:3]])
    runpy.run_path(str(SNIPPET), run_name="__main__")
    assert capsys.readouterr().out.strip() == "3 embeddings of size 16, metric {'name': 'cosine'}"


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_the_demo_model_exports_and_passes_its_check(tmp_path, capsys, fmt):
    """The network users start from, osnet_x0_25, at the demo's input size. In this module, so
    its ONNX export shares the exporter's start-up (imports, registry) with the convnet's."""
    config = yaml.safe_load((ROOT / "configs" / "demo.yaml").read_text())
    config.update(device="cpu", log_dir=str(tmp_path / "runs"))
    config["data"]["dataset"] = {"name": "digits", "max_per_digit": 10}
    config_file = write_config(config, tmp_path / "demo.yaml")
    out = tmp_path / f"demo{SUFFIX[fmt]}"
    assert main(["export", config_file, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out} ({fmt}: uint8 [batch, 32, 32, 3] -> float32 [batch, 512])" in printed
    assert "batch sizes 1, 5, 8" in printed and "min cosine 1.0000" in printed
    model = formats.load(out).metadata["model"]
    assert (model["name"], model["arch"]) == ("torchreid", "osnet_x0_25")
