"""The experiment schema: frozen attrs classes whose defaults and validators are the contract.

Every default of a config lives in these classes, except the evaluation options of the test
section (protocol, no_positive, ap, max_rank, memory budget, CMC ranks), whose choices and
defaults are :mod:`visim.evaluation.options`'s, taken from there; nothing else repeats them.
The original engine's parameters keep their names and defaults (``nof_classes``, ``topk_acc``,
``topk_cmc``, ``write_embeds``, ``image_key``, ``metric`` whose params are the original
``metric_kwargs``).
"""

from __future__ import annotations

import re

import attrs

from visim.config import rules
from visim.config.errors import InvalidParameterException, Problem
from visim.config.refs import (
    DatasetRef,
    LossRef,
    MetricRef,
    ModelRef,
    OptimizerRef,
    RerankerRef,
    SamplerRef,
    SchedulerRef,
    TransformRef,
)
from visim.evaluation.options import (
    AP_MODES,
    DEFAULTS,
    MAX_RANK,
    NO_POSITIVE,
    PROTOCOLS,
    EvalOptions,
)

DEVICE_RE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")
PRECISIONS = ("float32", "bfloat16", "float16")
BEST_METRICS_RE = re.compile(r"^(mAP|mINP|rank-\d+)$")


def matches(pattern: re.Pattern, what: str):
    return rules.custom(lambda value: pattern.match(value), f"be {what}")


# Every item >= 1; a bad item is reported at its own path: ``$.test.topk_cmc[2]``.
positive_ints = rules.forall(rules.gte(1))

# Upper bounds of the settings that size memory or work: a value beyond them is a typo or an
# attack, and would fail (or swap) far into a run instead of at validate time.
MAX_BATCH = 1 << 16  # images per batch
MAX_IMAGE_SIDE = 4096  # pixels; a batch of 32 such images is 6 GiB of float32 already
MAX_WORKERS = 256
MAX_THREADS = 1024
MAX_MEMORY_BUDGET = 1 << 40  # 1 TiB
MAX_SHOWN = 100  # queries and ranks in the ranked-results picture
MAX_PROJECTED = 1_000_000  # embeddings per split in the TensorBoard projector


def bounded(low, high):
    """``>= low`` and ``<= high``, each broken bound reported as itself."""
    return rules.all_(rules.gte(low), rules.lte(high))


def doc(text: str) -> dict:
    """Field metadata read by the generated config reference (docs/config.rst)."""
    return {"doc": text}


@attrs.frozen(kw_only=True)
class DataConfig:
    """What is trained and tested on, and how images are batched."""

    dataset: DatasetRef = attrs.field(
        metadata=doc("The dataset: a name (``digits``) or a name with params.")
    )
    batch_size: int = attrs.field(
        default=32, validator=bounded(1, MAX_BATCH), metadata=doc("Images per training batch.")
    )
    eval_batch_size: int | None = attrs.field(
        default=None,
        validator=rules.optional(bounded(1, MAX_BATCH)),
        metadata=doc("Images per batch when embedding query and gallery; null: ``batch_size``."),
    )
    image_size: tuple[int, int] = attrs.field(
        default=(256, 128),
        validator=rules.forall(bounded(1, MAX_IMAGE_SIDE)),
        metadata=doc("``[height, width]`` every image is resized to."),
    )
    num_workers: int = attrs.field(
        default=0,
        validator=bounded(0, MAX_WORKERS),
        metadata=doc("DataLoader worker processes; 0 loads in the main process."),
    )
    sampler: SamplerRef = attrs.field(
        factory=lambda: SamplerRef.of("random"),
        metadata=doc("How training batches are drawn, e.g. at random or P identities x K images."),
    )
    train_transforms: tuple[TransformRef, ...] | None = attrs.field(
        default=None,
        metadata=doc("Training transforms, a list of references; null: the default pipeline."),
    )
    test_transforms: tuple[TransformRef, ...] | None = attrs.field(
        default=None,
        metadata=doc("Query / gallery transforms, a list of references; null: the default."),
    )
    on_bad_image: str = attrs.field(
        default="error",
        validator=rules.in_(("error", "skip")),
        metadata=doc("An unreadable image is an error, or is skipped."),
    )


@attrs.frozen(kw_only=True)
class TrainConfig:
    """How the model is trained (the original engine's ``params_train``)."""

    nof_classes: int | None = attrs.field(
        default=None,
        validator=rules.optional(rules.gte(1)),
        metadata=doc("Identity classes; null infers them from the training data, else checked."),
    )
    topk_acc: tuple[int, ...] = attrs.field(
        default=(1,), validator=rules.forall(bounded(1, MAX_RANK)), metadata=doc("k of the top-k training accuracy.")
    )
    epochs: int = attrs.field(
        default=10, validator=rules.gte(1), metadata=doc("Last epoch (epochs count from 1).")
    )
    start_epoch: int = attrs.field(
        default=1, validator=rules.gte(1), metadata=doc("First epoch to train.")
    )
    save_interval: int = attrs.field(
        default=5, validator=rules.gte(1), metadata=doc("Keep a checkpoint every N epochs.")
    )
    eval_interval: int = attrs.field(
        default=1,
        validator=rules.gte(1),
        metadata=doc("Test every N epochs; the last epoch is always tested."),
    )
    loss: LossRef = attrs.field(
        factory=lambda: LossRef.of("cross_entropy"), metadata=doc("The training loss.")
    )
    optimizer: OptimizerRef = attrs.field(
        factory=lambda: OptimizerRef.of("adam"),
        metadata=doc("The optimizer and its params, e.g. ``{name: adam, lr: 0.0003}``."),
    )
    scheduler: SchedulerRef | None = attrs.field(
        default=None,
        metadata=doc("Learning-rate scheduler, stepped once per epoch; null: constant rate."),
    )
    grad_clip: float | None = attrs.field(
        default=None,
        validator=rules.optional(rules.gt(0)),
        metadata=doc("Clip the gradient norm to this; null: no clipping."),
    )
    best_metric: str = attrs.field(
        default="mAP",
        validator=matches(BEST_METRICS_RE, "mAP, mINP or rank-K"),
        metadata=doc("Test result that picks ``best.pt``; rank-K needs K in ``test.topk_cmc``."),
    )

    def __attrs_post_init__(self) -> None:
        if self.start_epoch > self.epochs:
            message = f"must be <= epochs ({self.epochs}) (got {self.start_epoch})"
            raise InvalidParameterException(Problem(message, "$.start_epoch"))


def rerank_chain(instance, attribute, value) -> None:
    from visim.rerank.base import check_chain_refs  # here: visim.rerank imports visim.config

    check_chain_refs(instance, attribute, value)


rerank_chain.requirement = "must be null, a reranker, or a list of them with k_reciprocal last"


@attrs.frozen(kw_only=True)
class TestConfig:
    """How query and gallery are ranked and scored (the original engine's ``params_test``)."""

    metric: MetricRef = attrs.field(
        metadata=doc("Distance between embeddings; the original ``metric_kwargs`` are its params.")
    )
    topk_cmc: tuple[int, ...] = attrs.field(
        default=DEFAULTS.topk,
        validator=rules.forall(bounded(1, MAX_RANK)),
        metadata=doc("Ranks k of CMC rank-k."),
    )
    write_embeds: tuple[bool, bool] = attrs.field(
        default=(False, False), metadata=doc("Save the embeddings of ``[query, gallery]``.")
    )
    image_key: str = attrs.field(
        default="image",
        validator=rules.longer_eq(1),
        metadata=doc("Key of the image tensor in a batch."),
    )
    protocol: str = attrs.field(
        default=DEFAULTS.protocol,
        validator=rules.in_(PROTOCOLS),
        metadata=doc("Gallery items ignored per query: same identity and camera (market1501)."),
    )
    no_positive: str = attrs.field(
        default=DEFAULTS.no_positive,
        validator=rules.in_(NO_POSITIVE),
        metadata=doc("A query without a valid match is skipped, scored zero, or an error."),
    )
    ap: str = attrs.field(
        default=DEFAULTS.ap,
        validator=rules.in_(AP_MODES),
        metadata=doc("How average precision is computed."),
    )
    max_rank: int = attrs.field(
        default=DEFAULTS.max_rank,
        validator=bounded(1, MAX_RANK),
        metadata=doc("Length of the CMC curve kept."),
    )
    memory_budget: int = attrs.field(
        default=DEFAULTS.memory_budget,
        validator=bounded(1 << 16, MAX_MEMORY_BUDGET),  # a config may not starve the evaluation
        metadata=doc("Bytes of the query x gallery distances held at once; more is chunked."),
    )
    max_embeds: int = attrs.field(
        default=1000,
        validator=bounded(1, MAX_PROJECTED),
        metadata=doc("TensorBoard projector: embeddings per split, subsampled evenly."),
    )
    ranked_queries: int = attrs.field(
        default=3,
        validator=bounded(0, MAX_SHOWN),
        metadata=doc("Ranked-results grid: this many worst and best queries by AP (0: none)."),
    )
    ranked_topk: int = attrs.field(
        default=10,
        validator=bounded(1, MAX_SHOWN),
        metadata=doc("Ranked-results grid: top gallery images shown per query."),
    )
    rerank: RerankerRef | tuple[RerankerRef, ...] | None = attrs.field(
        default=None,
        validator=rerank_chain,
        metadata=doc("Re-ranking: a reranker or a list (e.g. query_expansion, k_reciprocal)."),
    )

    def eval_options(self) -> EvalOptions:
        """The options :func:`visim.evaluation.evaluate_embeddings` ranks this section with."""
        return EvalOptions(
            topk=self.topk_cmc,
            protocol=self.protocol,
            no_positive=self.no_positive,
            ap=self.ap,
            max_rank=self.max_rank,
            memory_budget=self.memory_budget,
        )


@attrs.frozen(kw_only=True)
class Experiment:
    """A whole experiment: the top level of a config file."""

    name: str = attrs.field(
        default="visim",
        validator=rules.longer_eq(1),
        metadata=doc("Experiment name; runs go to ``<log_dir>/<name>/<run_id>/``."),
    )
    seed: int = attrs.field(
        default=0,
        validator=rules.within(0, 2**32 - 1),
        metadata=doc("Seed of every random number generator (0 .. 2**32 - 1)."),
    )
    device: str = attrs.field(
        default="auto",
        validator=matches(DEVICE_RE, "auto, cpu, cuda or cuda:N"),
        metadata=doc("``auto`` (CUDA when available), ``cpu``, ``cuda`` or ``cuda:N``."),
    )
    threads: int | None = attrs.field(
        default=None,
        validator=rules.optional(bounded(1, MAX_THREADS)),
        metadata=doc(
            "CPU threads of torch's operators, set for the whole process when the engine is "
            "built (``torch.set_num_threads``); null: torch's default, one per core. Results "
            "depend on it (each thread sums its own share of a product), so a config whose "
            "figures must be the same on every machine sets it."
        ),
    )
    precision: str = attrs.field(
        default="float32",
        validator=rules.in_(PRECISIONS),
        metadata=doc("Autocast precision of training and embedding."),
    )
    log_dir: str = attrs.field(
        default="runs", validator=rules.longer_eq(1), metadata=doc("Folder of the run folders.")
    )
    data: DataConfig = attrs.field(metadata=doc("The data section."))
    model: ModelRef = attrs.field(
        metadata=doc("The model, e.g. ``{name: torchreid, arch: osnet_x0_25}``.")
    )
    train: TrainConfig | None = attrs.field(
        default=None, metadata=doc("The train section; without it a run only tests.")
    )
    test: TestConfig = attrs.field(metadata=doc("The test section."))

    def __attrs_post_init__(self) -> None:
        if self.train and self.train.best_metric.startswith("rank-"):
            k = int(self.train.best_metric.split("-")[1])
            if k not in self.test.topk_cmc:
                message = f"needs {k} in test.topk_cmc (got {self.train.best_metric!r})"
                raise InvalidParameterException(Problem(message, "$.train.best_metric"))
