"""visim-timm, installed: found through its entry point, the model contract, local weights only,
CNN and ViT training through ``visim run``."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from importlib import metadata

import pytest
import torch
import visim_timm
import yaml

import visim
from visim.cli import main as visim_main
from visim.config.errors import ConfigError
from visim.config.refs import ModelRef


def config(tmp_path, model: dict) -> dict:
    return {
        "name": "timm",
        "seed": 0,
        "device": "cpu",
        "log_dir": str(tmp_path / "runs"),
        "data": {
            "dataset": {"name": "digits", "max_per_digit": 8},
            "batch_size": 32,
            "image_size": [32, 32],
            "sampler": {"name": "identity", "num_instances": 8},
        },
        "model": model,
        "train": {
            "epochs": 1,
            "loss": {"name": "sum", "terms": [{"loss": "cross_entropy"}, {"loss": "triplet"}]},
            "optimizer": {"name": "adam", "lr": 0.001},
        },
        "test": {"metric": "cosine", "topk_cmc": [1]},
    }


def write(tmp_path, model: dict):
    path = tmp_path / "timm.yaml"
    path.write_text(yaml.safe_dump(config(tmp_path, model)))
    return str(path)


def model(**params):
    return ModelRef.of("timm", **params).build(num_classes=5)


def timm_network(arch: str, **kwargs):
    """timm's own network; timm imported here, so that collecting this suite does not import it."""
    import timm

    return timm.create_model(arch, **kwargs)


def test_found_through_its_real_entry_point_with_its_version():
    (entry,) = [ep for ep in metadata.entry_points(group="visim") if ep.name == "timm"]
    assert entry.dist.name == "visim-timm" and entry.load() is visim_timm
    component = visim.get_registry().models.get("timm")
    assert (component.distribution, component.version) == ("visim-timm", visim_timm.__version__)


def test_listing_imports_neither_torch_nor_timm():
    code = (
        "import sys, contextlib, io\n"
        "from visim.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "    assert main(['plugins']) == 0 and main(['components', 'models']) == 0\n"
        "assert 'visim-timm' in out.getvalue()\n"
        "heavy = [m for m in ('torch', 'timm') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(
    ("params", "dim"),
    [
        ({"arch": "resnet18"}, 512),
        ({"arch": "resnet18", "pool": "gem", "embedding_dim": 64}, 64),
        ({"arch": "resnet18", "pool": "max", "drop_rate": 0.5}, 512),
        ({"arch": "mobilenetv3_small_100"}, 1024),  # a conv head after pooling
        ({"arch": "vit_tiny_patch16_224", "model_kwargs": {"img_size": 32}}, 192),
    ],
)
def test_the_model_contract_with_channels_last_and_bf16_autocast(params, dim):
    net = model(**params).to(memory_format=torch.channels_last)
    assert net.embedding_dim == dim and net.classifier.out_features == 5
    images = torch.randn(4, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits, embeddings = net(images)
    assert logits.shape == (4, 5) and embeddings.shape == (4, dim)
    logits.float().sum().backward()
    assert all(p.grad is not None for p in net.classifier.parameters())
    net.eval()
    with torch.inference_mode():
        assert net(images).shape == (4, dim)


def test_gem_pools_feature_maps_with_a_learnable_exponent():
    net = model(arch="resnet18", pool="gem").eval()
    gem = net.backbone
    images = torch.randn(2, 3, 64, 64)
    maps = gem.network.forward_features(images)
    expected = maps.clamp(min=1e-6).pow(3).mean((2, 3)).pow(1 / 3)
    torch.testing.assert_close(net(images), expected)
    assert gem.p.requires_grad


def test_gem_on_a_transformer_is_a_one_line_error():
    net = model(arch="vit_tiny_patch16_224", pool="gem", model_kwargs={"img_size": 32})
    with pytest.raises(RuntimeError, match="pool 'gem' needs feature maps"):
        net(torch.randn(2, 3, 32, 32))


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_local_weights_load(tmp_path, suffix):
    torch.manual_seed(1)
    source = timm_network("resnet10t", num_classes=10)  # its classifier is dropped on load
    path = tmp_path / f"resnet10t{suffix}"
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(source.state_dict(), path)
    else:
        torch.save(source.state_dict(), path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a complete load says nothing
        net = model(arch="resnet10t", weights=str(path))
    for name, tensor in net.backbone.state_dict().items():
        torch.testing.assert_close(tensor, source.state_dict()[name], msg=name)
    fresh = model(arch="resnet10t")
    assert not torch.equal(fresh.backbone.layer1[0].conv1.weight, net.backbone.layer1[0].conv1.weight)


def test_weights_of_another_arch_load_partially_with_a_warning(tmp_path):
    torch.save(timm_network("resnet18", num_classes=0).state_dict(), tmp_path / "resnet18.pth")
    with pytest.warns(UserWarning, match=r"resnet18.pth: Missing keys \(layer1.2.conv1.weight, "):
        model(arch="resnet34", weights=str(tmp_path / "resnet18.pth"))


def test_vit_weights_load_at_another_image_size(tmp_path):
    torch.manual_seed(1)
    source = timm_network("vit_tiny_patch16_224", num_classes=0)
    torch.save(source.state_dict(), tmp_path / "vit.pth")
    net = model(arch="vit_tiny_patch16_224", weights=str(tmp_path / "vit.pth"), model_kwargs={"img_size": [32, 16]})
    assert torch.equal(net.backbone.blocks[0].attn.qkv.weight, source.blocks[0].attn.qkv.weight)
    assert net.backbone.pos_embed.shape == (1, 1 + 2 * 1, 192)  # resized by timm's own filter


@pytest.mark.parametrize(
    ("params", "path", "message"),
    [
        ({"arch": "resnt18"}, "$.arch", "unknown timm arch 'resnt18'; did you mean 'resnet18'"),
        ({"weights": "missing/resnet50.pth"}, "$.weights", "must be an existing file (got 'missing/resnet50.pth')"),
        ({"weights": "resnet50.onnx"}, "$.weights", "must end with ['.pth', '.bin', '.safetensors']"),
        ({"pool": "mean"}, "$.pool", "must be one of ['avg', 'max', 'gem']"),
        ({"embedding_dim": 0}, "$.embedding_dim", "must be >= 1"),
        ({"drop_rate": 1.0}, "$.drop_rate", "must be < 1.0"),
        ({"model_kwargs": {"num_classes": 3}}, "$.model_kwargs", "may not set 'num_classes'"),
    ],
)
def test_bad_params_are_config_errors_at_their_path(params, path, message):
    with pytest.raises(ConfigError) as error:
        ModelRef.of("timm", **params)
    (problem,) = error.value.problems
    assert problem.path == path and message in problem.message


def test_an_argument_the_arch_does_not_take_is_a_config_error():
    with pytest.raises(ConfigError, match=r"timm resnet18: .*img_size.* @ \$\.model\.model_kwargs"):
        model(arch="resnet18", model_kwargs={"img_size": 32})


def test_a_missing_weights_file_fails_visim_validate_naming_the_path(tmp_path, capsys):
    path = write(tmp_path, {"name": "timm", "arch": "resnet18", "weights": "weights/resnet18.pth"})
    assert visim_main(["validate", path]) == 2
    err = capsys.readouterr().err
    assert "must be an existing file (got 'weights/resnet18.pth') @ $.model.weights" in err
    assert "Traceback" not in err


@pytest.mark.slow
@pytest.mark.parametrize(
    "params",
    [{"arch": "resnet10t"}, {"arch": "vit_tiny_patch16_224", "model_kwargs": {"img_size": [32, 32]}}],
    ids=["resnet10t", "vit_tiny"],
)
def test_trains_one_epoch_on_digits_through_visim_run(tmp_path, params):
    assert visim_main(["run", write(tmp_path, {"name": "timm", **params}), "--quiet"]) == 0
    (run_dir,) = (tmp_path / "runs" / "timm").iterdir()
    assert 0.0 <= json.loads((run_dir / "results.json").read_text())["mAP"] <= 1.0
    state = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["model"]
    assert any(key.startswith("backbone.") for key in state)
