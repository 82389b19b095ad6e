"""Writing, loading and running the two export formats; the metadata travels inside the file.

ONNX goes through ``torch.onnx.export(..., dynamo=True)`` (torch.export underneath; the
TorchScript-based exporter is deprecated since torch 2.9, and both were exact for osnet and
the convnet), opset 18, with a dynamic batch dimension; the file is checked with
``onnx.checker`` and run with onnxruntime. TorchScript goes through ``torch.jit.trace``: exact
(bit-identical) for those models, where ``torch.jit.script`` rejects most third-party code;
that the trace holds for other batch sizes is what the parity check verifies.

Metadata (a JSON object) is stored in the ONNX model's ``metadata_props`` under ``visim`` and
in the TorchScript archive as the extra file ``visim.json``.
"""

from __future__ import annotations

import contextlib
import gc
import importlib.util
import io
import json
import logging
import re
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import attrs
import numpy as np
import torch

from visim.deploy.errors import ExportError, MissingExtraError

ONNX_OPSET = 18
METADATA_KEY = "visim"
EXTRA_FILE = "visim.json"
INPUT, OUTPUT = "images", "embeddings"
TITLES = {"onnx": "ONNX", "torchscript": "TorchScript"}
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def require_onnx() -> None:
    missing = [m for m in ("onnx", "onnxruntime", "onnxscript") if importlib.util.find_spec(m) is None]
    if missing:
        raise MissingExtraError("ONNX export", missing)


@contextlib.contextmanager
def quiet_torch():
    """Deprecation notices, progress lines and graph dumps of the exporters are not for users.

    A failure is reported as one line (:func:`first_line`) instead.
    """
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        logging.disable(logging.CRITICAL)  # torch logs graph dumps through its own handlers
        try:
            yield
        finally:
            logging.disable(logging.NOTSET)


def first_line(exc: BaseException) -> str:
    """The innermost cause's first line, without terminal colours: the reason, not the wrapper."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    text = ANSI.sub("", str(exc))
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return f"{type(exc).__name__}: {line}" if line else type(exc).__name__


def write(fmt: str, module: torch.nn.Module, example: torch.Tensor, path: Path, metadata: dict) -> None:
    """Export ``module`` (called on ``example``) to ``path``; ExportError if torch cannot."""
    try:
        with quiet_torch():
            (write_onnx if fmt == "onnx" else write_torchscript)(module, example, path, metadata)
    except MissingExtraError:
        raise
    except Exception as exc:  # whatever the exporter, or the model's own code, raised
        raise ExportError(first_line(exc)) from exc


@contextlib.contextmanager
def collection_paused():
    """No cyclic garbage collection inside the block. The ONNX exporter builds graphs of
    hundreds of thousands of objects that live until it returns; each automatic full
    collection would walk them all again (about 7% of an osnet export)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def write_onnx(module, example, path: Path, metadata: dict) -> None:
    require_onnx()
    import onnx

    with collection_paused():
        torch.onnx.export(
            module,
            (example,),
            str(path),
            dynamo=True,
            verbose=False,
            opset_version=ONNX_OPSET,
            input_names=[INPUT],
            output_names=[OUTPUT],
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            external_data=False,  # one self-contained file
        )
    model = onnx.load(str(path))
    onnx.helper.set_model_props(model, {METADATA_KEY: json.dumps(metadata)})
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))


def write_torchscript(module, example, path: Path, metadata: dict) -> None:
    traced = torch.jit.trace(module, example, check_trace=False)  # the parity check checks it
    torch.jit.save(traced, str(path), _extra_files={EXTRA_FILE: json.dumps(metadata)})


def format_of(path: Path) -> str:
    """TorchScript files are zip archives; ONNX files are protobuf."""
    return "torchscript" if zipfile.is_zipfile(path) else "onnx"


@attrs.frozen
class LoadedExport:
    format: str
    metadata: dict
    run: Callable[[np.ndarray], np.ndarray]  # uint8 [B, H, W, 3] -> float32 [B, D]


def load(path: Path) -> LoadedExport:
    """Load an export the way a deployment would: onnxruntime, or ``torch.jit.load``."""
    fmt = format_of(path)
    try:
        with quiet_torch():
            return load_onnx(path) if fmt == "onnx" else load_torchscript(path)
    except MissingExtraError:
        raise
    except Exception as exc:
        raise ExportError(f"cannot load {path} as {TITLES[fmt]}: {first_line(exc)}") from exc


def load_onnx(path: Path) -> LoadedExport:
    require_onnx()
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    props = session.get_modelmeta().custom_metadata_map
    if METADATA_KEY not in props:
        raise ExportError("no visim metadata: not written by `visim export`")
    name = session.get_inputs()[0].name
    return LoadedExport("onnx", json.loads(props[METADATA_KEY]), lambda images: session.run(None, {name: images})[0])


def load_torchscript(path: Path) -> LoadedExport:
    extra = {EXTRA_FILE: ""}
    module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    if not extra[EXTRA_FILE]:
        raise ExportError("no visim metadata: not written by `visim export`")

    def run(images: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return module(torch.from_numpy(images)).numpy()

    return LoadedExport("torchscript", json.loads(extra[EXTRA_FILE]), run)
