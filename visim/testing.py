"""The plugin author's test kit: check a registered component against its kind's contract.

Each ``check_<kind>(name, params=None)`` builds the component through the registry exactly as a
config naming it would (``params`` is a mapping validated like the config's, an instance of the
params class, or None for the defaults), then exercises it. The first breach raises
``AssertionError`` naming the kind, the registered name and the distribution providing it.
:func:`tiny_run` trains and tests for one epoch on a small digits subset through the engine.

visim's own tests check every built-in with this kit, so it is exercised on every run.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from visim.registry import SINGULAR, Component

__all__ = ["check_dataset", "check_loss", "check_metric", "check_model", "tiny_run"]

NUM_CLASSES = 4
BATCH_IDS, BATCH_INSTANCES = 4, 2  # a P x K batch, as the identity sampler draws


def check_metric(name: str, params: Any = None) -> Any:
    """``metric(a [N, E], b [M, E]) -> [N, M]`` finite floats; computing the rows in chunks
    (as the evaluator does) gives the whole matrix; ``higher_is_better`` agrees with the
    metric's own ranking of a set of embeddings against itself. Returns the metric."""
    import torch

    component, metric = build("metrics", name, params)
    label = describe(component)
    generator = torch.Generator().manual_seed(0)
    a, b = torch.randn(7, 5, generator=generator), torch.randn(11, 5, generator=generator)
    whole = metric(a, b)
    expect_matrix(label, "metric(a [7, 5], b [11, 5])", whole, (7, 11))
    chunked = torch.cat([metric(a[:3], b), metric(a[3:], b)])
    require(
        torch.allclose(chunked, whole, rtol=1e-4, atol=1e-5),
        f"{label}: metric(a[:3], b) and metric(a[3:], b) stacked differ from metric(a, b) "
        f"by up to {(chunked - whole).abs().max().item():.3g}; evaluation computes in chunks of queries",
    )
    higher = getattr(metric, "higher_is_better", False)
    require(isinstance(higher, bool), f"{label}: higher_is_better must be a bool, got {higher!r}")
    unit = torch.nn.functional.normalize(torch.randn(6, 5, generator=generator), dim=1)
    self_scores = metric(unit, unit)
    expect_matrix(label, "metric(x [6, 5], x)", self_scores, (6, 6))
    closest = self_scores.argmax(dim=1) if higher else self_scores.argmin(dim=1)
    require(
        torch.equal(closest, torch.arange(6)),
        f"{label}: with higher_is_better={higher}, each unit vector should be closest to itself "
        f"in metric(x, x), but rows {closest.tolist()} were picked; "
        f"{'a distance needs higher_is_better = False' if higher else 'a similarity needs higher_is_better = True'}",
    )
    return metric


def check_model(name: str, params: Any = None, *, image_size: tuple[int, int] = (64, 32)) -> Any:
    """Built with ``num_classes``, the model is an ``nn.Module`` returning ``(logits [B, C],
    embeddings [B, D])`` in training mode and ``embeddings [B, D]`` in eval mode, finite
    floats; an ``embedding_dim`` attribute, when present, is D. Returns the model."""
    import torch
    from torch import nn

    component, model = build("models", name, params, num_classes=NUM_CLASSES)
    label = describe(component)
    require(isinstance(model, nn.Module), f"{label}: the factory must return a torch.nn.Module, got {kind_of(model)}")
    batch = 4
    images = torch.randn(batch, 3, *image_size, generator=torch.Generator().manual_seed(0))
    model.train()
    out = call(label, "model(images) in training mode", model, images)
    require(
        isinstance(out, (tuple, list)) and len(out) == 2,
        f"{label}: must return (logits, embeddings) in training mode, got {kind_of(out)}",
    )
    logits, embeddings = out
    expect_matrix(label, "the training-mode logits", logits, (batch, NUM_CLASSES))
    expect_matrix(label, "the training-mode embeddings", embeddings, (batch, None))
    dim = embeddings.shape[1]
    model.eval()
    with torch.no_grad():
        eval_out = call(label, "model(images) in eval mode", model, images)
    expect_matrix(label, "the eval-mode output (the embeddings)", eval_out, (batch, dim))
    declared = getattr(model, "embedding_dim", None)
    require(
        declared is None or (isinstance(declared, int) and declared == dim),
        f"{label}: embedding_dim is {declared!r} but the embeddings have {dim} columns",
    )
    return model


def check_loss(name: str, params: Any = None, *, embedding_dim: int = 8) -> Any:
    """Built with ``num_classes`` and ``embedding_dim``, the loss is an ``nn.Module``;
    ``loss(logits, embeddings, targets)`` on a P x K batch is a finite scalar whose backward
    pass reaches the model producing logits and embeddings and every trainable parameter of
    the loss itself (class weights, centers). Returns the loss."""
    import torch
    from torch import nn

    component, loss = build("losses", name, params, num_classes=NUM_CLASSES, embedding_dim=embedding_dim)
    label = describe(component)
    require(isinstance(loss, nn.Module), f"{label}: the factory must return a torch.nn.Module, got {kind_of(loss)}")
    torch.manual_seed(0)
    encoder, head = nn.Linear(6, embedding_dim), nn.Linear(embedding_dim, NUM_CLASSES)
    embeddings = encoder(torch.randn(BATCH_IDS * BATCH_INSTANCES, 6))
    logits = head(embeddings)
    targets = torch.arange(BATCH_IDS).repeat_interleave(BATCH_INSTANCES)
    value = call(label, "loss(logits, embeddings, targets)", loss, logits, embeddings, targets)
    require(
        isinstance(value, torch.Tensor) and value.dim() == 0 and value.dtype.is_floating_point,
        f"{label}: must return a scalar float tensor, got {kind_of(value)}",
    )
    require(bool(torch.isfinite(value)), f"{label}: returned {value.item()} for a plain batch")
    require(value.requires_grad, f"{label}: the value does not depend on logits or embeddings (no gradient)")
    value.backward()
    grad = encoder.weight.grad
    require(
        grad is not None and bool(torch.isfinite(grad).all()),
        f"{label}: the backward pass gives the model {'no' if grad is None else 'non-finite'} gradients",
    )
    for param_name, param in loss.named_parameters():
        if param.requires_grad:
            require(
                param.grad is not None and bool(torch.isfinite(param.grad).all()),
                f"{label}: its parameter {param_name!r} gets {'no' if param.grad is None else 'non-finite'} "
                "gradient from the backward pass",
            )
    return loss


def check_dataset(name: str, params: Any = None) -> Any:
    """The dataset is a :class:`~visim.data.records.ReidData` with non-empty query and gallery
    splits of :class:`~visim.data.records.Record`: string paths to existing files (unless the
    data is held in memory), integer pids and camids, train class ids 0..C-1; the first image
    of each split loads. Returns the data."""
    import os

    from visim.data.records import SPLITS, Record, ReidData

    component, data = build("datasets", name, params)
    label = describe(component)
    require(isinstance(data, ReidData), f"{label}: the factory must return a visim.data.ReidData, got {kind_of(data)}")
    for split in ("query", "gallery"):
        require(len(data.split(split)) > 0, f"{label}: the {split} split is empty")
    for split in SPLITS:
        for index, record in enumerate(data.split(split)):
            where = f"{label}: {split}[{index}]"
            require(isinstance(record, Record), f"{where} must be a visim.data.Record, got {kind_of(record)}")
            for field in ("pid", "camid"):
                value = getattr(record, field)
                require(is_int(value), f"{where}.{field} must be an int, got {value!r}")
            require(isinstance(record.path, str), f"{where}.path must be a str, got {record.path!r}")
            require(data.in_memory or os.path.isfile(record.path), f"{where}: no such file {record.path!r}")
    class_ids = sorted({r.class_id for r in data.train})
    require(
        class_ids == list(range(len(class_ids))) and len(class_ids) == data.num_train_classes,
        f"{label}: train class ids must be 0..C-1, one per pid, got {class_ids[:10]}",
    )
    for split in SPLITS:
        if data.split(split):
            image = call(label, f"load_image({split}[0])", data.load_image, data.split(split)[0])
            require(
                getattr(image, "mode", None) == "RGB",
                f"{label}: load_image({split}[0]) must return an RGB PIL image, got {kind_of(image)}",
            )
    return data


def tiny_run(overrides: Mapping[str, Any] | None = None, log_dir: str | Path | None = None) -> dict:
    """Train one epoch on a small digits subset with a tiny CNN, test, and return what the
    run's ``results.json`` holds (``cmc``, ``mAP``, ``mINP``, query counts). Takes seconds.

    ``overrides`` maps dotted config keys to values, as ``--set`` does:
    ``{"model": "acme_net", "train.loss": {"name": "acme_arc", "scale": 16}}``. Without a
    ``log_dir`` the run directory is temporary.
    """
    from visim.config.load import config_from_dict
    from visim.engine.build import build_engine
    from visim.outputs.rundir import create_run_dir

    with tempfile.TemporaryDirectory(prefix="visim-tiny-run-") as scratch:
        config = tiny_config(str(log_dir or scratch))
        for key, value in (overrides or {}).items():
            set_path(config, key, value)
        experiment = config_from_dict(config)
        run_dir = create_run_dir(experiment.log_dir, experiment.name)
        engine = build_engine(experiment, run_dir=run_dir, quiet=True)
        try:
            engine.run()
        finally:
            engine.close()
        return json.loads((run_dir / "results.json").read_text())


def tiny_config(log_dir: str) -> dict:
    return {
        "name": "tiny-run",
        "seed": 0,
        "device": "cpu",
        "log_dir": log_dir,
        "data": {
            # 16 images per digit: 2 training batches of 4 digits x 8, 20 queries, 60 gallery.
            "dataset": {"name": "digits", "max_per_digit": 16},
            "batch_size": 32,
            "image_size": [16, 16],
            "sampler": {"name": "identity", "num_instances": 8},
        },
        "model": {"name": "convnet", "width": 4, "embedding_dim": 16},
        "train": {"epochs": 1, "loss": "cross_entropy", "optimizer": {"name": "adam", "lr": 0.01}},
        "test": {"metric": "euclidean", "topk_cmc": [1, 5]},
    }


def set_path(config: dict, key: str, value: Any) -> None:
    """``config[a][b] = value`` for ``a.b``; a component named by a bare string becomes
    ``{name: ...}`` when one of its params is set."""
    *parents, last = key.split(".")
    node = config
    for part in parents:
        child = node.get(part)
        if isinstance(child, str):
            child = {"name": child}
        elif not isinstance(child, dict):
            child = {}
        node[part] = child
        node = child
    node[last] = value


# -- helpers ----------------------------------------------------------------------------------
def build(kind: str, name: str, params: Any, **context: Any) -> tuple[Component, Any]:
    """The component (resolved as a config resolves ``name``) and what its factory returned."""
    from visim.plugins import get_registry

    component = get_registry()[kind].get(name)
    made = component.make_params(params)  # a ConfigError here is the caller's params at fault
    try:
        return component, component.factory(made, **context)
    except Exception as exc:
        raise AssertionError(f"{describe(component)}: the factory raised {type(exc).__name__}: {exc}") from exc


def describe(component: Component) -> str:
    """``model 'acme_net' (visim-acme 0.1.0)``: whose code to look at."""
    source = " ".join(filter(None, (component.distribution or component.plugin, component.version)))
    return f"{SINGULAR[component.kind]} {component.name!r} ({source})"


def call(label: str, what: str, function, *args: Any) -> Any:
    try:
        return function(*args)
    except Exception as exc:
        raise AssertionError(f"{label}: {what} raised {type(exc).__name__}: {exc}") from exc


def require(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def is_int(value: Any) -> bool:
    import numbers

    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def kind_of(value: Any) -> str:
    """A short description: ``Tensor[4, 16] float32``, ``tuple of 3``, ``NoneType``."""
    import torch

    if isinstance(value, torch.Tensor):
        return f"Tensor[{', '.join(map(str, value.shape))}] {str(value.dtype).removeprefix('torch.')}"
    if isinstance(value, (tuple, list)):
        return f"{type(value).__name__} of {len(value)}"
    return type(value).__name__


def expect_matrix(label: str, what: str, value: Any, shape: tuple[int, int | None]) -> None:
    """A finite floating ``[rows, cols]`` tensor (``cols`` None: any number of columns)."""
    import torch

    wanted = f"[{shape[0]}, {'D' if shape[1] is None else shape[1]}]"
    ok = (
        isinstance(value, torch.Tensor)
        and value.dim() == 2
        and value.shape[0] == shape[0]
        and (shape[1] is None or value.shape[1] == shape[1])
        and value.dtype.is_floating_point
    )
    require(ok, f"{label}: {what} must be a float Tensor{wanted}, got {kind_of(value)}")
    require(bool(torch.isfinite(value).all()), f"{label}: {what} holds NaN or inf")
