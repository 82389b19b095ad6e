"""TensorBoard beyond plain scalars: any result value, hparams, projector, distance histograms.

Tags: ``Train/loss``, ``Train/acc@k``, ``Train/lr``, ``Test/rank-k``, ``Test/mAP``,
``Test/mINP`` (one point per epoch), ``Test/distances/positive|negative`` (histograms),
``Test/ranked_results`` (image), projector embeddings ``query`` / ``gallery``.

hparams are written as a session-start record in the run's own event file, without the
``experiment`` record that ``SummaryWriter.add_hparams`` adds: TensorBoard then builds the
HParams table from every run's session (the union of all runs' parameters) and offers every
scalar tag as a metric column, whose value is the tag's last point, i.e. the final metric.
``add_hparams`` would instead write a separate timestamped sub-run and let the first run found
dictate the columns.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Mapping, Sequence
from numbers import Number
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from visim.evaluation.options import DEFAULTS

if TYPE_CHECKING:  # torch stays unimported until something is written
    from visim.engine.extract import Embeddings
    from visim.evaluation.result import RankingResult

# A numeric sequence up to this long is written as one scalar per item (e.g. a CMC curve);
# a longer one as a histogram (e.g. per-query AP).
MAX_SCALAR_SEQUENCE = 32
MAX_HISTOGRAM_QUERIES = 512
MAX_HISTOGRAM_VALUES = 200_000
THUMBNAIL = 32  # projector sprite cell, square as TensorBoard's sprite layout needs


class TensorBoardWarning(UserWarning):
    """A result value TensorBoard cannot show as it is; it is written as text instead."""


# -- write_results: any value under a tag ----------------------------------------------------
# Keys of RankingResult.as_dict() that are options, not results: they are in the hparams.
EVALUATION_OPTIONS = ("protocol", "ap", "no_positive", "max_rank")


def write_results(writer, results: Mapping[str, Any], prepend: str, step: int, *, skip=("epoch", *EVALUATION_OPTIONS)) -> None:
    """Write every entry of ``results`` under ``prepend/<key>``; nothing is dropped silently.

    Numbers are scalars (bools as 0/1); ``cmc`` becomes ``prepend/rank-k``; other mappings
    recurse (``prepend/key/sub``); short numeric sequences become one scalar per item, long ones
    and matrices a histogram; images (PIL, HWC/CHW arrays or tensors, NCHW/NHWC batches) go to
    the Images tab; strings and ``None`` are text; anything else is written as its ``repr``
    text with a :class:`TensorBoardWarning`. ``skip`` names keys not to write: by default
    ``epoch`` (the step itself) and the evaluation options (they are in the hparams).
    """
    for key, value in results.items():
        if key in skip:
            continue
        if key == "cmc" and isinstance(value, Mapping):
            for k, v in value.items():
                write_value(writer, f"{prepend}/rank-{k}", v, step)
        else:
            write_value(writer, f"{prepend}/{key}", value, step)
    writer.flush()


def write_value(writer, tag: str, value: Any, step: int) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            write_value(writer, f"{tag}/{key}", item, step)
        return
    if value is None or isinstance(value, str):
        writer.add_text(tag, str(value), step)
        return
    scalar = as_scalar(value)
    if scalar is not None:
        writer.add_scalar(tag, scalar, step)
        return
    image = as_image(value)
    if image is not None:
        array, dataformats = image
        if dataformats.startswith("N"):
            writer.add_images(tag, array, step, dataformats=dataformats)
        else:
            writer.add_image(tag, array, step, dataformats=dataformats)
        return
    numbers = as_numeric_array(value)
    if numbers is not None and numbers.size:
        if numbers.ndim == 1 and numbers.size <= MAX_SCALAR_SEQUENCE:
            for index, item in enumerate(numbers.tolist()):
                writer.add_scalar(f"{tag}/{index}", float(item), step)
        else:
            writer.add_histogram(tag, numbers.astype(np.float64).ravel(), step)
        return
    if isinstance(value, (list, tuple)):
        writer.add_text(tag, as_text(value), step)  # strings, dicts or mixed items: readable text
        return
    warnings.warn(
        f"TensorBoard cannot show {tag} ({type(value).__name__}); written as text",
        TensorBoardWarning,
        stacklevel=3,
    )
    writer.add_text(tag, repr(value)[:2000], step)


def as_scalar(value: Any) -> float | None:
    if isinstance(value, Number):
        return float(value)  # bools too: True is 1.0
    shape = getattr(value, "shape", None)
    if shape is not None and tuple(shape) in ((), (1,)) and is_numeric(value):
        return float(np.asarray(to_numpy(value)).reshape(()))
    return None


def as_image(value: Any) -> tuple[np.ndarray, str] | None:
    """``(array, dataformats)`` when ``value`` looks like an image or a batch of images."""
    try:
        from PIL import Image
    except ImportError:  # pillow is a dependency; without it there are no PIL images to see
        Image = None
    if Image is not None and isinstance(value, Image.Image):
        return np.asarray(value.convert("RGB")), "HWC"
    if not hasattr(value, "shape") or not is_numeric(value):
        return None
    array = to_numpy(value)
    channels = (1, 3, 4)
    if array.ndim == 3:
        if array.shape[0] in channels and array.shape[-1] not in channels:
            return array, "CHW"
        if array.shape[-1] in channels:
            return array, "HWC"
    if array.ndim == 4:
        if array.shape[1] in channels:
            return array, "NCHW"
        if array.shape[-1] in channels:
            return array, "NHWC"
    return None


def as_numeric_array(value: Any) -> np.ndarray | None:
    if hasattr(value, "shape"):
        return to_numpy(value) if is_numeric(value) else None
    if isinstance(value, (list, tuple)) and all(
        isinstance(v, Number) for v in value
    ):
        return np.asarray(value, dtype=np.float64) if value else None
    return None


def is_numeric(value: Any) -> bool:
    dtype = getattr(value, "dtype", None)
    if dtype is None:
        return False
    if hasattr(dtype, "is_floating_point"):  # torch.dtype
        return not dtype.is_complex
    return np.issubdtype(dtype, np.number) or np.issubdtype(dtype, np.bool_)


def to_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu()
        if value.dtype.is_floating_point and value.dtype.itemsize == 2:
            value = value.float()  # numpy has no bfloat16
        return value.numpy()
    return np.asarray(value)


def as_text(value: Any) -> str:
    try:
        return json.dumps(value, default=repr)
    except (TypeError, ValueError):
        return repr(value)


def write_png(writer, tag: str, png: bytes, size: tuple[int, int], step: int) -> None:
    """An RGB picture already encoded as PNG (``size`` is its ``(width, height)``), as the
    image ``add_image`` would write. ``add_image`` takes pixels and, for uint8 ones, converts
    them to float32 and back before encoding them again: 0.2 s for a ranked-results grid, most
    of an evaluation of a small test set."""
    from tensorboard.compat.proto.summary_pb2 import Summary

    width, height = size
    image = Summary.Image(height=height, width=width, colorspace=3, encoded_image_string=png)
    add_summaries(writer, [Summary(value=[Summary.Value(tag=tag, image=image)])], step)


def add_summaries(writer, summaries, step: int | None = None) -> None:
    """Prepared ``Summary`` protos into the writer's event file. ``SummaryWriter`` has no public
    method for that; its own ``add_*`` methods all go through ``_get_file_writer``."""
    file_writer = writer._get_file_writer()
    for summary in summaries:
        file_writer.add_summary(summary, step)


# -- hparams ---------------------------------------------------------------------------------
def write_hparams(writer, hparams: Mapping[str, Any], metric_tags: Sequence[str]) -> None:
    """This run's parameters for the HParams tab (see the module docstring for why no
    ``experiment`` record). ``metric_tags`` only serve to validate the call."""
    from torch.utils.tensorboard.summary import hparams as hparams_summaries

    values = {key: hparam_value(value) for key, value in hparams.items()}
    _experiment, session_start, session_end = hparams_summaries(values, dict.fromkeys(metric_tags, 0.0))
    add_summaries(writer, [session_start, session_end])
    writer.flush()


def hparam_value(value: Any) -> bool | int | float | str:
    if isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    return str(value)  # None, lists: shown as text so every run has the same column type


# -- embedding projector ---------------------------------------------------------------------
def subsample(n: int, limit: int) -> np.ndarray:
    """At most ``limit`` indices of ``range(n)``, evenly spread (so every identity keeps some)."""
    if n <= limit:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, num=limit).round().astype(np.int64))


def write_projector(writer, tag: str, embeddings, indices: np.ndarray, thumbnails, step: int) -> None:
    """``embeddings`` (an :class:`~visim.engine.extract.Embeddings`) rows ``indices`` with
    pid / camid / path metadata and ``thumbnails`` (float [n, 3, T, T] in 0..1) as sprites."""
    import torch

    rows = torch.as_tensor(indices, dtype=torch.long)
    metadata = [
        [str(int(embeddings.pids[i])), str(int(embeddings.camids[i])), embeddings.paths[i] or "-"]
        for i in indices.tolist()
    ]
    writer.add_embedding(
        embeddings.embeddings[rows],
        metadata=metadata,
        metadata_header=["pid", "camid", "path"],
        label_img=thumbnails,
        global_step=step,
        tag=tag,
    )
    writer.flush()


def square_thumbnails(images, size: int = THUMBNAIL):
    """PIL images letterboxed onto ``size`` x ``size`` black squares, as float [n, 3, s, s]."""
    import torch
    from PIL import Image

    out = np.zeros((len(images), size, size, 3), dtype=np.uint8)
    for n, image in enumerate(images):
        thumb = image.convert("RGB")
        scale = size / max(thumb.size)
        width, height = (max(1, round(d * scale)) for d in thumb.size)
        thumb = thumb.resize((width, height), Image.BILINEAR)
        top, left = (size - height) // 2, (size - width) // 2
        out[n, top : top + height, left : left + width] = np.asarray(thumb)
    return torch.from_numpy(out).permute(0, 3, 1, 2).float().div_(255)


# -- distance histograms ---------------------------------------------------------------------
def pair_distances(
    query, gallery, metric, labels, *, memory_budget: int = DEFAULTS.memory_budget, max_queries: int = MAX_HISTOGRAM_QUERIES, max_values: int = MAX_HISTOGRAM_VALUES
):
    """Metric values of positive and of negative (query, gallery) pairs, for histograms.

    ``labels`` (a :class:`visim.evaluation.labels.Labels`) applies the protocol: pairs it
    ignores (same identity on the same camera, junk, self) are in neither set. At most
    ``max_queries`` queries (evenly spread, fewer when ``memory_budget`` bytes cannot hold
    their rows) are used and each set is thinned to ``max_values`` evenly spaced values.
    """
    import torch

    # A pair costs its float value plus the protocol's boolean masks: about 8 bytes.
    affordable = max(1, memory_budget // max(1, 8 * len(gallery)))
    rows = torch.as_tensor(subsample(len(query), min(max_queries, affordable)), dtype=torch.long)
    with torch.no_grad():
        values = torch.as_tensor(metric(query.embeddings[rows], gallery.embeddings)).float().cpu()
    positive, valid = labels.relevance(rows[:, None], torch.arange(len(gallery))[None, :])
    return thin(values[positive], max_values), thin(values[valid & ~positive], max_values)


def thin(values, limit: int):
    if values.numel() <= limit:
        return values
    import torch

    return values[torch.as_tensor(subsample(values.numel(), limit), dtype=torch.long)]


def write_distance_histograms(writer, positive, negative, step: int, *, similarity: bool = False) -> None:
    name = "similarities" if similarity else "distances"
    for label, values in (("positive", positive), ("negative", negative)):
        if values.numel():  # e.g. no positive pair at all: nothing to draw
            writer.add_histogram(f"Test/{name}/{label}", values.numpy(), step)


# -- everything after a test -----------------------------------------------------------------
@attrs.frozen
class TestSummary:
    """What one test produced: the ranking, the embeddings it ranked, the step to file it at."""

    result: RankingResult
    query: Embeddings
    gallery: Embeddings
    step: int


def write_test_summaries(writer, summary: TestSummary, *, metric, config, hparams: Mapping[str, Any], run_dir, load_image) -> None:
    """hparams, distance histograms, the ranked-results grid (also ``run_dir/ranked_results.png``)
    and the projector (per ``config.test.write_embeds``) of one test.

    ``config`` is the run's Experiment, ``hparams`` the flat parameters for the HParams tab,
    ``load_image(split, index)`` the PIL image of a query or gallery item.
    """
    from visim.evaluation.labels import Labels
    from visim.outputs.ranked import write_ranked_results

    result, query, gallery, step = summary.result, summary.query, summary.gallery, summary.step
    test = config.test
    metric_tags = [f"Test/rank-{k}" for k in result.cmc_at] + ["Test/mAP", "Test/mINP"]
    write_hparams(writer, hparams, metric_tags)
    labels = Labels(
        query.pids, gallery.pids, query.camids, gallery.camids, protocol=test.protocol, shape=(len(query), len(gallery))
    )
    similarity = bool(getattr(metric, "higher_is_better", False))
    positive, negative = pair_distances(query, gallery, metric, labels, memory_budget=test.memory_budget)
    write_distance_histograms(writer, positive, negative, step, similarity=similarity)
    if test.ranked_queries > 0 and run_dir is not None:
        write_ranked_results(
            writer, run_dir, result, query, gallery, metric, labels, load_image, test, config.data.image_size, step
        )
    for split, embeddings, wanted in zip(("query", "gallery"), (query, gallery), test.write_embeds):
        if wanted and not projector_written(run_dir, split, step):
            indices = subsample(len(embeddings), test.max_embeds)
            thumbnails = square_thumbnails([load_image(split, i) for i in indices.tolist()])
            write_projector(writer, split, embeddings, indices, thumbnails, step)
    writer.flush()


def projector_written(run_dir, tag: str, step: int) -> bool:
    """The projector keeps one set per (step, tag): a second test at one step adds nothing."""
    return run_dir is not None and (run_dir / f"{step:05d}" / tag).exists()
