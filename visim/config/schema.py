"""The experiment schema: frozen attrs classes whose defaults and validators are the contract.

Defaults live here and nowhere else. The original engine's parameters keep their names and
defaults (``nof_classes``, ``topk_acc``, ``topk_cmc``, ``write_embeds``, ``image_key``,
``metric`` whose params are the original ``metric_kwargs``).
"""

from __future__ import annotations

import re

import attrs
from attrs import validators as v

from visim.config.refs import (
    DatasetRef,
    LossRef,
    MetricRef,
    ModelRef,
    OptimizerRef,
    SamplerRef,
    SchedulerRef,
    TransformRef,
)

DEVICE_RE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")
PRECISIONS = ("float32", "bfloat16", "float16")
PROTOCOLS = ("market1501", "none", "exclude_self")
NO_POSITIVE = ("skip", "zero", "error")
AP_MODES = ("standard", "market_official")
BEST_METRICS_RE = re.compile(r"^(mAP|mINP|rank-\d+)$")


def matches(pattern: re.Pattern, what: str):
    def check(instance, attribute, value):
        if not pattern.match(value):
            raise ValueError(f"must be {what} (got {value!r})")

    return check


def positive_ints(instance, attribute, value):
    for i, k in enumerate(value):
        if k < 1:
            raise ValueError(f"must be >= 1 (got {k}) at item [{i}]")


@attrs.frozen(kw_only=True)
class DataConfig:
    dataset: DatasetRef
    batch_size: int = attrs.field(default=32, validator=v.ge(1))
    # Extraction batch size for query/gallery; defaults to batch_size.
    eval_batch_size: int | None = attrs.field(default=None, validator=v.optional(v.ge(1)))
    image_size: tuple[int, int] = attrs.field(default=(256, 128), validator=positive_ints)
    num_workers: int = attrs.field(default=0, validator=v.ge(0))
    sampler: SamplerRef = attrs.field(factory=lambda: SamplerRef.of("random"))
    # None means the default pipeline built from image_size.
    train_transforms: tuple[TransformRef, ...] | None = None
    test_transforms: tuple[TransformRef, ...] | None = None
    on_bad_image: str = attrs.field(default="error", validator=v.in_(("error", "skip")))


@attrs.frozen(kw_only=True)
class TrainConfig:
    nof_classes: int | None = attrs.field(default=None, validator=v.optional(v.ge(1)))
    topk_acc: tuple[int, ...] = attrs.field(default=(1,), validator=positive_ints)
    epochs: int = attrs.field(default=10, validator=v.ge(1))
    start_epoch: int = attrs.field(default=1, validator=v.ge(1))
    save_interval: int = attrs.field(default=5, validator=v.ge(1))
    eval_interval: int = attrs.field(default=1, validator=v.ge(1))
    loss: LossRef = attrs.field(factory=lambda: LossRef.of("cross_entropy"))
    optimizer: OptimizerRef = attrs.field(factory=lambda: OptimizerRef.of("adam"))
    scheduler: SchedulerRef | None = None
    grad_clip: float | None = attrs.field(default=None, validator=v.optional(v.gt(0.0)))
    best_metric: str = attrs.field(default="mAP", validator=matches(BEST_METRICS_RE, "mAP, mINP or rank-K"))

    def __attrs_post_init__(self) -> None:
        if self.start_epoch > self.epochs:
            raise ValueError(f"start_epoch ({self.start_epoch}) is after the last epoch ({self.epochs})")


@attrs.frozen(kw_only=True)
class TestConfig:
    metric: MetricRef
    topk_cmc: tuple[int, ...] = attrs.field(default=(1, 5, 10, 20), validator=positive_ints)
    write_embeds: tuple[bool, bool] = (False, False)
    image_key: str = "image"
    protocol: str = attrs.field(default="market1501", validator=v.in_(PROTOCOLS))
    no_positive: str = attrs.field(default="skip", validator=v.in_(NO_POSITIVE))
    ap: str = attrs.field(default="standard", validator=v.in_(AP_MODES))
    max_rank: int = attrs.field(default=50, validator=v.ge(1))
    # Bytes of the Q x G distance matrix held at once; larger galleries are chunked.
    memory_budget: int = attrs.field(default=1 << 30, validator=v.ge(1 << 16))


@attrs.frozen(kw_only=True)
class Experiment:
    name: str = attrs.field(default="visim", validator=v.min_len(1))
    seed: int = 0
    device: str = attrs.field(default="auto", validator=matches(DEVICE_RE, "auto, cpu, cuda or cuda:N"))
    precision: str = attrs.field(default="float32", validator=v.in_(PRECISIONS))
    log_dir: str = "runs"
    data: DataConfig
    model: ModelRef
    train: TrainConfig | None = None
    test: TestConfig

    def __attrs_post_init__(self) -> None:
        if self.train and self.train.best_metric.startswith("rank-"):
            k = int(self.train.best_metric.split("-")[1])
            if k not in self.test.topk_cmc:
                raise ValueError(f"train.best_metric {self.train.best_metric!r} needs {k} in test.topk_cmc")
