"""``visim.testing``: every built-in passes its contract check; contract breakers are named."""

from __future__ import annotations

import attrs
import pytest

import visim
from visim.config.errors import ConfigError
from visim.data.records import Record, ReidData
from visim.metrics import BUILTIN_METRICS, SOFTMAX_METRICS
from visim.testing import check_dataset, check_loss, check_metric, check_model, tiny_run

# -- the built-ins, through the kit ---------------------------------------------------------

BUILTIN_METRIC_NAMES = [m[0] for m in BUILTIN_METRICS] + [m[0] for m in SOFTMAX_METRICS]


@pytest.mark.parametrize("name", BUILTIN_METRIC_NAMES)
def test_every_builtin_metric_meets_the_contract(name):
    assert check_metric(name) is not None


def test_metric_params_are_validated_as_in_a_config():
    assert check_metric("minkowski", {"p": 3.0}).p == 3.0
    with pytest.raises(ConfigError, match=r"must be >= 1.0.*@ \$\.p"):
        check_metric("minkowski", {"p": 0.5})


@pytest.mark.parametrize(
    ("name", "params"),
    [("convnet", None), ("convnet", {"width": 2, "embedding_dim": 5}), ("torchreid", {"arch": "osnet_x0_25"})],
)
def test_builtin_models_meet_the_contract(name, params):
    assert check_model(name, params).embedding_dim > 0


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("cross_entropy", None),
        ("triplet", {"margin": 0.5, "normalize": True}),
        ("sum", {"terms": [{"loss": "cross_entropy"}, {"loss": "triplet", "weight": 0.5}]}),
    ],
)
def test_builtin_losses_meet_the_contract(name, params):
    check_loss(name, params)


def test_builtin_digits_dataset_meets_the_contract():
    data = check_dataset("digits", {"max_per_digit": 10})
    assert data.num_train_classes == 5


def test_tiny_run_trains_and_tests_through_the_engine(tmp_path):
    results = tiny_run({"test.metric": "cosine", "train.loss.label_smoothing": 0.0}, log_dir=tmp_path)
    assert set(results["cmc"]) == {"1", "5"} and 0.0 <= results["mAP"] <= 1.0
    assert results["num_valid_queries"] > 0
    assert list(tmp_path.glob("tiny-run/*/results.json"))  # the run directory was kept


# -- contract breakers, named -----------------------------------------------------------------


@attrs.frozen
class NoParams:
    """No parameters."""


class BadMetric:
    higher_is_better = False

    def __init__(self, flaw):
        self.flaw = flaw

    def __call__(self, a, b):
        import torch

        d = torch.cdist(a, b)
        if self.flaw == "shape":
            return d.t()
        if self.flaw == "chunks":
            return d / a.shape[0]  # depends on how many queries come at once
        if self.flaw == "direction":
            return -d  # a similarity declared as a distance
        return d * float("nan") if self.flaw == "nan" else d


def bad_model(flaw):
    import torch
    from torch import nn

    class Net(nn.Module):
        embedding_dim = 3 if flaw == "dim" else 4

        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 4))
            self.head = nn.Linear(4, 4)

        def forward(self, x):
            emb = self.body(x)
            if flaw == "train" or not self.training:
                return emb
            return self.head(emb), (torch.cat([emb, emb]) if flaw == "rows" else emb)

    return Net()


def bad_loss(flaw):
    import torch
    from torch import nn

    class Loss(nn.Module):
        def __init__(self):
            super().__init__()
            self.centers = nn.Parameter(torch.zeros(4, 8))

        def forward(self, logits, embeddings, targets):
            value = nn.functional.cross_entropy(logits, targets)
            if flaw == "vector":
                return value.expand(3)
            if flaw == "unused":
                return value  # the centers are never trained
            return value + (embeddings - self.centers[targets]).pow(2).mean()

    return Loss()


def bad_dataset(flaw, tmp_path):
    image = tmp_path / "a.png"
    from PIL import Image

    Image.new("RGB", (4, 4)).save(image)
    query = [Record(str(image), 1, 0)]
    gallery = [Record(str(image), 1, 1), Record(str(tmp_path / "missing.png"), 2, 0)]
    if flaw == "missing":
        return ReidData([], query, gallery)
    if flaw == "float pid":
        return ReidData([], [Record(str(image), 1.0, 0)], gallery[:1])
    if flaw == "empty":
        return ReidData([], [], gallery[:1])
    return {"train": [], "query": query, "gallery": gallery}


class Breakers:
    def __init__(self, tmp_path):
        self.tmp_path = tmp_path

    @visim.hookimpl
    def register_metrics(self, register):
        for flaw in ("shape", "chunks", "direction", "nan"):
            register(f"bad-{flaw}", lambda params, flaw=flaw: BadMetric(flaw), params=NoParams)

    @visim.hookimpl
    def register_models(self, register):
        for flaw in ("train", "dim", "rows"):
            register(f"bad-{flaw}", lambda params, num_classes, flaw=flaw: bad_model(flaw), params=NoParams)
        register("bad-raises", lambda params, num_classes: 1 / 0, params=NoParams)

    @visim.hookimpl
    def register_losses(self, register):
        for flaw in ("vector", "unused"):
            register(f"bad-{flaw}", lambda params, flaw=flaw, **context: bad_loss(flaw), params=NoParams)
        register("good-centers", lambda params, **context: bad_loss("none"), params=NoParams)
        register("bad-context", lambda params, num_classes: bad_loss("none"), params=NoParams)

    @visim.hookimpl
    def register_datasets(self, register):
        for flaw in ("missing", "float pid", "empty", "dict"):
            name = f"bad-{flaw.replace(' ', '-')}"
            register(name, lambda params, flaw=flaw: bad_dataset(flaw, self.tmp_path), params=NoParams)


@pytest.fixture
def breakers(register_plugin, clean_plugin_env, tmp_path):
    register_plugin(Breakers(tmp_path), name="breakers")


@pytest.mark.parametrize(
    ("check", "name", "message"),
    [
        (check_metric, "bad-shape", r"metric\(a \[7, 5\], b \[11, 5\]\) must be a float Tensor\[7, 11\], got Tensor\[11, 7\] float32"),
        (check_metric, "bad-chunks", r"metric\(a\[:3\], b\) and metric\(a\[3:\], b\) stacked differ from metric\(a, b\)"),
        (check_metric, "bad-direction", r"with higher_is_better=False, each unit vector should be closest to itself"),
        (check_metric, "bad-nan", r"holds NaN or inf"),
        (check_model, "bad-train", r"must return \(logits, embeddings\) in training mode, got Tensor\[4, 4\] float32"),
        (check_model, "bad-rows", r"the training-mode embeddings must be a float Tensor\[4, D\], got Tensor\[8, 4\]"),
        (check_model, "bad-dim", r"embedding_dim is 3 but the embeddings have 4 columns"),
        (check_model, "bad-raises", r"the factory raised ZeroDivisionError"),
        (check_loss, "bad-vector", r"must return a scalar float tensor, got Tensor\[3\] float32"),
        (check_loss, "bad-unused", r"its parameter 'centers' gets no gradient"),
        (check_loss, "bad-context", r"factory raised TypeError: .*embedding_dim"),
        (check_dataset, "bad-missing", r"gallery\[1\]: no such file '.*missing.png'"),
        (check_dataset, "bad-float-pid", r"query\[0\].pid must be an int, got 1.0"),
        (check_dataset, "bad-empty", r"the query split is empty"),
        (check_dataset, "bad-dict", r"must return a visim.data.ReidData, got dict"),
    ],
)
def test_contract_breakers_are_rejected_by_name(breakers, check, name, message):
    kind = check.__name__.removeprefix("check_")
    with pytest.raises(AssertionError, match=rf"^{kind} '{name}' \(breakers\): .*{message}"):
        check(name)


def test_a_learnable_loss_passes(breakers):
    loss = check_loss("good-centers")
    assert loss.centers.grad is not None and loss.centers.grad.abs().sum() > 0
