"""The parity check: the export and the PyTorch model on the same real query images.

The reference is computed the way ``visim predict`` computes embeddings: the test pipeline on
the decoded image, the engine's model on its device with its precision. The export gets the
same images as uint8 arrays after the pipeline's resize, i.e. what a deployment feeds it. It
runs at several batch sizes (1 included), so a batch size baked into the graph or a trace is
caught too.

Tolerance: every embedding's cosine similarity to its reference is at least ``MIN_COSINE``
and the largest absolute difference is at most ``MAX_RELATIVE_ERROR`` times the largest
reference magnitude. A preprocessing mistake (wrong mean/std, BGR for RGB, normalising twice)
moves cosines to about 0.99 or below; the numerics of another runtime stay near 1e-6.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import cycle, islice

import attrs
import numpy as np
import torch

from visim.deploy.errors import ExportError
from visim.deploy.formats import first_line

MIN_COSINE = 0.9999
MAX_RELATIVE_ERROR = 1e-3
BATCH_SIZES = (1, 5, 8)


@attrs.frozen
class CheckBatch:
    images: np.ndarray  # uint8 [B, H, W, 3], what the export is fed
    reference: np.ndarray  # float32 [B, D], what PyTorch (visim predict) returns


@attrs.frozen
class ParityReport:
    images: int
    batch_sizes: tuple[int, ...]
    max_abs_diff: float
    max_relative_error: float
    min_cosine: float
    failures: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        sizes = ", ".join(map(str, self.batch_sizes))
        return (
            f"parity with PyTorch on {self.images} query images, batch sizes {sizes}: "
            f"max abs diff {self.max_abs_diff:.3g}, max relative error {self.max_relative_error:.3g}, "
            f"min cosine {self.min_cosine:.7f} "
            f"(tolerance: cosine >= {MIN_COSINE}, relative error <= {MAX_RELATIVE_ERROR:g})"
        )


def reference_batches(engine, preprocessing, batch_sizes: Sequence[int] = BATCH_SIZES) -> list[CheckBatch]:
    """Consecutive query images (repeated if there are fewer) in batches of ``batch_sizes``."""
    dataset = engine.loaders.query.dataset
    if len(dataset.records) == 0:
        raise ExportError("the query split is empty: no images for the parity check")
    records = iter(cycle(dataset.records))
    model, key = engine.model, engine.config.test.image_key
    model.eval()
    batches = []
    for size in batch_sizes:
        chosen = list(islice(records, size))
        decoded = [dataset.data.load_image(record) for record in chosen]
        images = np.stack([np.asarray(preprocessing.resize(image).convert("RGB"), dtype=np.uint8) for image in decoded])
        if images.shape[1:3] != tuple(preprocessing.input_size):
            raise ExportError(
                f"query image {chosen[0].path!r} is {images.shape[1]}x{images.shape[2]} after the test "
                f"transforms, not the input size {preprocessing.input_size[0]}x{preprocessing.input_size[1]}"
            )
        tensors = torch.stack([dataset.transform(image) for image in decoded])
        with torch.inference_mode(), engine.autocast():  # as visim predict embeds (engine.extract)
            reference = model(engine.get_data({key: tensors})).float().cpu().numpy()
        batches.append(CheckBatch(images, reference))
    return batches


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.astype(np.float64), b.astype(np.float64)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    dots = (a * b).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        # Two zero vectors agree; one zero vector against another does not.
        return np.where(norms > 0, dots / norms, np.where(np.abs(a).sum(1) + np.abs(b).sum(1) == 0, 1.0, 0.0))


def check(run: Callable[[np.ndarray], np.ndarray], batches: Sequence[CheckBatch]) -> ParityReport:
    """Run the export on every batch and compare; the report lists every failed check."""
    failures: list[str] = []
    max_abs, max_ref, min_cos = 0.0, 0.0, 1.0
    for batch in batches:
        size = len(batch.images)
        try:
            output = np.asarray(run(batch.images))
        except Exception as exc:  # the runtime's own error: a shape it rejects, a bad graph
            failures.append(f"batch size {size}: the export failed to run: {first_line(exc)}")
            continue
        if output.shape != batch.reference.shape or output.dtype != np.float32:
            failures.append(
                f"batch size {size}: output {output.dtype} {list(output.shape)}, "
                f"expected float32 {list(batch.reference.shape)}"
            )
            continue
        if not np.isfinite(output).all():
            failures.append(f"batch size {size}: the output has NaN or infinite values")
            continue
        max_abs = max(max_abs, float(np.abs(output - batch.reference).max()))
        max_ref = max(max_ref, float(np.abs(batch.reference).max()))
        min_cos = min(min_cos, float(cosines(output, batch.reference).min()))
    relative = max_abs / max_ref if max_ref > 0 else (0.0 if max_abs == 0 else float("inf"))
    if not min_cos >= MIN_COSINE:
        failures.append(f"min cosine {min_cos:.7f} < {MIN_COSINE}")
    if not relative <= MAX_RELATIVE_ERROR:
        failures.append(f"relative error {relative:.3g} > {MAX_RELATIVE_ERROR:g} (max abs diff {max_abs:.3g})")
    sizes = tuple(len(b.images) for b in batches)
    return ParityReport(sum(sizes), sizes, max_abs, relative, min_cos, tuple(failures))
