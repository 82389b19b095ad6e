"""The export job: build the model as ``visim predict`` does, export, check, keep or discard.

The file is written under a temporary name beside the target and renamed only after the
parity check passed, so a failed export leaves nothing under the target name.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import attrs
import torch

from visim.deploy import formats, parity
from visim.deploy.errors import ExportError, MissingExtraError
from visim.deploy.graph import DeployableModel, Preprocessing, read_preprocessing
from visim.outputs.atomic import publish

FORMAT, VERSION = "visim-export", 1


class ParityError(ExportError):
    """The export does not reproduce the PyTorch embeddings; ``parity`` says how far off."""

    def __init__(self, path: Path, report: parity.ParityReport) -> None:
        super().__init__(f"parity check failed for {path}: {'; '.join(report.failures)}")
        self.parity = report  # not "report": VisimError.report() is the one-line message


@attrs.frozen
class Checked:
    path: Path
    format: str
    metadata: dict
    report: parity.ParityReport


def describe_model(ref) -> str:
    """``'torchreid' (arch=osnet_x0_25)``: the user must know whose model would not export."""
    from visim.config.converter import unstructure

    params = {k: v for k, v in (unstructure(ref.params) or {}).items() if k in ("arch", "name")}
    extra = ", ".join(f"{k}={v}" for k, v in params.items())
    return f"{ref.name!r}" + (f" ({extra})" if extra else "")


def prepare(config, weights, quiet: bool = True):
    """The engine (model, weights, query data) and its test-time preprocessing."""
    from visim.data.transforms import default_transform_refs
    from visim.engine.build import build_engine

    engine = build_engine(config, train=False, weights=weights, quiet=quiet)
    refs = config.data.test_transforms
    names = [ref.name for ref in (default_transform_refs(False) if refs is None else refs)]
    preprocessing = read_preprocessing(engine.loaders.query.dataset.transform, names, config.data.image_size)
    return engine, preprocessing


def deployable(engine, preprocessing: Preprocessing) -> DeployableModel:
    """A float32 CPU copy of the engine's model behind the preprocessing, in eval mode."""
    from visim.engine.engine import unwrap

    model = copy.deepcopy(unwrap(engine.model)).cpu().float()
    model = model.to(memory_format=torch.contiguous_format)
    return DeployableModel(model, preprocessing).eval()


def metadata(engine, preprocessing: Preprocessing, fmt: str, embedding_dim: int, weights) -> dict:
    from visim import __version__
    from visim.config.converter import unstructure

    height, width = preprocessing.input_size
    return {
        "format": FORMAT,
        "version": VERSION,
        "export_format": fmt,
        "input": {"name": formats.INPUT, "dtype": "uint8", "shape": ["batch", height, width, 3], "channels": "RGB"},
        "output": {"name": formats.OUTPUT, "dtype": "float32", "shape": ["batch", embedding_dim]},
        "input_size": [height, width],
        "interpolation": preprocessing.interpolation,
        "mean": list(preprocessing.mean) if preprocessing.mean else None,
        "std": list(preprocessing.std) if preprocessing.std else None,
        "embedding_dim": embedding_dim,
        "metric": unstructure(engine.config.test.metric),
        "model": unstructure(engine.config.model),
        "weights": str(weights) if weights else None,
        "opset": formats.ONNX_OPSET if fmt == "onnx" else None,
        "visim_version": __version__,
        "torch_version": torch.__version__,
    }


def export_model(config, weights, fmt: str, out: str | Path, *, quiet: bool = True) -> Checked:
    """Export, check and keep ``out``; ExportError (ParityError) with nothing kept otherwise."""
    if fmt == "onnx":
        formats.require_onnx()  # before the slow part
    out = Path(out)
    engine, preprocessing = prepare(config, weights, quiet)
    batches = parity.reference_batches(engine, preprocessing)
    module = deployable(engine, preprocessing)
    meta = metadata(engine, preprocessing, fmt, batches[0].reference.shape[1], weights)
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        try:
            formats.write(fmt, module, torch.from_numpy(batches[-1].images), temporary, meta)
        except MissingExtraError:
            raise
        except ExportError as exc:
            raise ExportError(f"model {describe_model(config.model)} cannot be exported to {formats.TITLES[fmt]}: {exc}") from exc
        report = parity.check(formats.load(temporary).run, batches)
        if not report.ok:
            raise ParityError(out, report)
        publish(temporary, out)
    finally:
        temporary.unlink(missing_ok=True)
    return Checked(out, fmt, meta, report)


def check_export(config, weights, path: str | Path, *, quiet: bool = True) -> Checked:
    """Re-run the parity check of an existing export against ``config`` and ``weights``."""
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"no such export: {path}")
    loaded = formats.load(path)
    engine, preprocessing = prepare(config, weights, quiet)
    report = parity.check(loaded.run, parity.reference_batches(engine, preprocessing))
    if not report.ok:
        raise ParityError(path, report)
    return Checked(path, loaded.format, loaded.metadata, report)
