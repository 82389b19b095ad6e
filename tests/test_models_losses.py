"""Models and losses, checked against torchreid's own definitions."""

from __future__ import annotations

import warnings

import pytest
import torch

import visim
from visim.config.errors import ConfigError
from visim.models.archs import TORCHREID_ARCHS


@pytest.fixture(scope="module")
def registry():
    return visim.get_registry()


def torchreid():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import torchreid.reid as reid
    return reid


def test_static_arch_list_equals_torchreids(registry):
    assert sorted(TORCHREID_ARCHS) == sorted(torchreid().models.__model_factory)


def test_unknown_arch_and_missing_weights_are_config_errors(registry):
    model = registry.models.get("torchreid")
    with pytest.raises(ConfigError) as err:
        model.make_params({"arch": "osnet_x0_2", "weights": "/nowhere/w.pth"})
    lines = [str(p) for p in err.value.problems]
    assert lines == [
        "must be a torchreid architecture (see 'visim components models') (got 'osnet_x0_2'); "
        "did you mean 'osnet_x0_25' or 'osnet_x0_5' or 'osnet_x0_75'? @ $.arch",
        "must be an existing file (got '/nowhere/w.pth') @ $.weights",
    ]


def test_torchreid_model_contract(registry):
    torch.manual_seed(0)
    model = registry.models.get("torchreid").build({"arch": "osnet_x0_25"}, num_classes=7)
    assert model.embedding_dim == 512
    images = torch.randn(4, 3, 32, 16)
    model.train()
    logits, embeddings = model(images)
    assert logits.shape == (4, 7) and embeddings.shape == (4, 512)
    model.eval()
    assert model(images).shape == (4, 512)


def test_local_weights_load_with_prefixes_and_skip_mismatches(registry, tmp_path):
    torch.manual_seed(0)
    source = registry.models.get("torchreid").build({"arch": "osnet_x0_25"}, num_classes=3)
    state = {f"module.{k}": v for k, v in source.network.state_dict().items()}
    path = tmp_path / "weights.pth"
    torch.save({"state_dict": state}, path)

    with pytest.warns(UserWarning, match="skipped 2 tensors"):  # classifier weight and bias
        target = registry.models.get("torchreid").build({"arch": "osnet_x0_25", "weights": str(path)}, num_classes=5)
    for key, value in source.network.state_dict().items():
        if not key.startswith("classifier"):
            assert torch.equal(target.network.state_dict()[key], value), key

    foreign = tmp_path / "foreign.pth"
    torch.save({"something": torch.zeros(2)}, foreign)
    with pytest.raises(ValueError, match="no tensor"):
        registry.models.get("torchreid").build({"arch": "osnet_x0_25", "weights": str(foreign)})


def test_convnet_contract(registry):
    model = registry.models.get("convnet").build({"width": 4, "embedding_dim": 8}, num_classes=3)
    model.train()
    logits, embeddings = model(torch.randn(2, 3, 16, 16))
    assert logits.shape == (2, 3) and embeddings.shape == (2, 8)
    model.eval()
    assert model(torch.randn(2, 3, 16, 16)).shape == (2, 8)


def batch(num_classes=4, per_class=3, dim=6):
    torch.manual_seed(1)
    targets = torch.arange(num_classes).repeat_interleave(per_class)
    return torch.randn(len(targets), num_classes), torch.randn(len(targets), dim), targets


def test_cross_entropy_equals_torchreid_label_smoothing(registry):
    logits, embeddings, targets = batch()
    ours = registry.losses.get("cross_entropy").build(num_classes=4)(logits, embeddings, targets)
    theirs = torchreid().losses.CrossEntropyLoss(num_classes=4, use_gpu=False, label_smooth=True)(logits, targets)
    assert ours.item() == pytest.approx(theirs.item(), abs=1e-6)


def test_batch_hard_triplet_equals_torchreid(registry):
    logits, embeddings, targets = batch()
    ours = registry.losses.get("triplet").build({"margin": 0.3})(logits, embeddings, targets)
    theirs = torchreid().losses.TripletLoss(margin=0.3)(embeddings, targets)
    assert ours.item() == pytest.approx(theirs.item(), abs=1e-4)


def test_triplet_without_positives_is_zero_not_nan(registry):
    logits, embeddings, _ = batch()
    loss = registry.losses.get("triplet").build()(logits, embeddings, torch.arange(len(embeddings)))
    assert loss.item() == 0.0


def test_weighted_sum_combines_and_reports_terms(registry):
    logits, embeddings, targets = batch()
    combined = registry.losses.get("sum").build(
        {"terms": [{"loss": "cross_entropy", "weight": 2.0}, {"loss": {"name": "triplet", "margin": 0.5}}]},
        num_classes=4,
    )
    total = combined(logits, embeddings, targets)
    ce = registry.losses.get("cross_entropy").build()(logits, embeddings, targets)
    tri = registry.losses.get("triplet").build({"margin": 0.5})(logits, embeddings, targets)
    assert total.item() == pytest.approx(2 * ce.item() + tri.item(), rel=1e-6)
    assert combined.last_values == pytest.approx({"cross_entropy": ce.item(), "triplet": tri.item()})
    with pytest.raises(ConfigError, match=r"must have length >= 1 \(got \(\)\) @ \$\.terms"):
        registry.losses.get("sum").make_params({"terms": []})
