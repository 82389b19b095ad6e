"""The ranked-results grid: sample queries and their top-k gallery images, right or wrong.

One row per query: the query image (blue border, captioned with its pid and AP), a
gap, then its top-k gallery images in rank order, green when the identity matches and red
when it does not, each captioned with its pid and distance. Gallery items the protocol
ignores (same identity on the same camera, junk) are left out, as the evaluation does.
Rendering uses PIL only.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence

import attrs
import numpy as np

CELL_HEIGHT = 128  # image height in a cell; the width follows the configured aspect ratio
BORDER = 4
GAP = 4
SEPARATOR = 16  # extra space between the query and its ranking
MARGIN = 8
CAPTION = 26  # two lines of PIL's default font
COLOURS = {
    "query": (40, 110, 230),
    "correct": (30, 170, 60),
    "wrong": (220, 40, 40),
    "background": (255, 255, 255),
    "empty": (235, 235, 235),
    "text": (20, 20, 20),
}


@attrs.frozen
class RankedRow:
    """One query and its ranking: gallery indices, whether each is the query's identity."""

    query: int
    ap: float
    pid: int
    camid: int
    gallery: tuple[int, ...]
    correct: tuple[bool, ...]
    distances: tuple[float, ...]
    gallery_pids: tuple[int, ...]


def select_queries(ap: Sequence[float], valid: Sequence[bool], count: int) -> list[int]:
    """The ``count`` worst then the ``count`` best valid queries by AP (ties: lower index first).

    No query is shown twice: with fewer than ``2 * count`` valid queries, each appears once.
    """
    ap_values, valid = np.asarray(ap, dtype=np.float64), np.asarray(valid, dtype=bool)
    candidates = np.flatnonzero(valid & np.isfinite(ap_values))
    if count < 1 or candidates.size == 0:
        return []
    worst = candidates[np.lexsort((candidates, ap_values[candidates]))][:count].tolist()
    best_first = candidates[np.lexsort((candidates, -ap_values[candidates]))].tolist()
    return worst + [q for q in best_first if q not in worst][:count]


def cell_size(image_size: Sequence[int]) -> tuple[int, int]:
    """``(width, height)`` of an image in the grid for a configured ``(height, width)``."""
    height, width = image_size
    return max(8, round(CELL_HEIGHT * width / height)), CELL_HEIGHT


def grid_size(rows: int, topk: int, cell: tuple[int, int]) -> tuple[int, int]:
    """``(width, height)`` in pixels of a grid of ``rows`` queries with ``topk`` results each."""
    width, height = cell
    columns = 1 + topk
    total_width = 2 * MARGIN + columns * (width + 2 * BORDER) + (columns - 1) * GAP + SEPARATOR
    total_height = 2 * MARGIN + rows * (height + 2 * BORDER + CAPTION) + max(rows - 1, 0) * GAP
    return total_width, total_height


def render_grid(rows: Sequence[RankedRow], load: Callable[[str, int], object], topk: int, cell: tuple[int, int]):
    """The grid as an RGB ``PIL.Image``. ``load(split, index)`` returns a PIL image."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default()
    canvas = Image.new("RGB", grid_size(len(rows), topk, cell), COLOURS["background"])
    draw = ImageDraw.Draw(canvas)
    width, height = cell
    for r, row in enumerate(rows):
        top = MARGIN + r * (height + 2 * BORDER + CAPTION + GAP)
        left = MARGIN
        paste_cell(canvas, draw, load("query", row.query), (left, top), cell, COLOURS["query"])
        caption(draw, font, (left, top + height + 2 * BORDER), [f"pid {row.pid}", f"AP {row.ap:.2f}"])
        left += width + 2 * BORDER + GAP + SEPARATOR
        for rank in range(topk):
            if rank < len(row.gallery):
                colour = COLOURS["correct" if row.correct[rank] else "wrong"]
                image = load("gallery", row.gallery[rank])
                paste_cell(canvas, draw, image, (left, top), cell, colour)
                lines = [f"pid {row.gallery_pids[rank]}", f"{row.distances[rank]:.3g}"]
                caption(draw, font, (left, top + height + 2 * BORDER), lines)
            else:  # fewer valid gallery items than k
                draw.rectangle(box((left, top), cell), fill=COLOURS["empty"])
            left += width + 2 * BORDER + GAP
    return canvas


def box(corner: tuple[int, int], cell: tuple[int, int]) -> tuple[int, int, int, int]:
    left, top = corner
    return left, top, left + cell[0] + 2 * BORDER - 1, top + cell[1] + 2 * BORDER - 1


def paste_cell(canvas, draw, image, corner: tuple[int, int], cell: tuple[int, int], colour) -> None:
    """``image`` fitted into ``cell`` (aspect kept, centred) inside a ``colour`` border."""
    from PIL import Image

    draw.rectangle(box(corner, cell), fill=colour)
    draw.rectangle(
        (corner[0] + BORDER, corner[1] + BORDER, corner[0] + BORDER + cell[0] - 1, corner[1] + BORDER + cell[1] - 1),
        fill=COLOURS["empty"],
    )
    image = image.convert("RGB")
    scale = min(cell[0] / image.width, cell[1] / image.height)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    # Upscaled tiny images (e.g. 8x8 digits) stay crisp with NEAREST; photos shrink smoothly.
    resample = Image.NEAREST if scale >= 2 else Image.BILINEAR
    image = image.resize(size, resample)
    left = corner[0] + BORDER + (cell[0] - size[0]) // 2
    top = corner[1] + BORDER + (cell[1] - size[1]) // 2
    canvas.paste(image, (left, top))


def caption(draw, font, corner: tuple[int, int], lines: Sequence[str]) -> None:
    left, top = corner
    for n, line in enumerate(lines):
        draw.text((left + 1, top + 1 + 12 * n), line, fill=COLOURS["text"], font=font)


def ranked_rows(result, query, gallery, metric, labels, count: int, topk: int) -> list[RankedRow]:
    """The rows for the ``count`` worst and best queries of ``result`` (a RankingResult)."""
    import torch

    from visim.evaluation.topk import topk_gallery

    per_query = result.per_query
    selected = select_queries(per_query.ap, per_query.num_positives > 0, count)
    if not selected:
        return []
    rows = torch.as_tensor(selected, dtype=torch.long)
    with torch.no_grad():
        values = torch.as_tensor(metric(query.embeddings[rows], gallery.embeddings)).float().cpu()
    keys = -values if getattr(metric, "higher_is_better", False) else values
    top = topk_gallery(keys, rows, labels, topk)
    out = []
    for n, q in enumerate(selected):
        ranked = [int(g) for g in top[n].tolist() if g >= 0]
        pid = int(query.pids[q])
        gallery_pids = tuple(int(gallery.pids[g]) for g in ranked)
        out.append(
            RankedRow(
                query=q,
                ap=float(per_query.ap[q]),
                pid=pid,
                camid=int(query.camids[q]),
                gallery=tuple(ranked),
                correct=tuple(p == pid for p in gallery_pids),
                distances=tuple(float(values[n, g]) for g in ranked),
                gallery_pids=gallery_pids,
            )
        )
    return out


def image_loader(data, query, gallery) -> Callable[[str, int], object]:
    """``load(split, index)``: the original image of a query or gallery item, as a PIL image.

    Images come from ``data`` (a dataset's ``load_image``, which also serves in-memory
    datasets) or, when ``data`` is None, from the file at the item's path. An image that
    cannot be read is drawn grey, with one warning.
    """
    import warnings

    from PIL import Image

    from visim.data.records import Record, read_image_file

    splits = {"query": query, "gallery": gallery}
    warned = []

    def load(split: str, index: int):
        item = splits[split]
        record = Record(item.paths[index], int(item.pids[index]), int(item.camids[index]))
        try:
            return data.load_image(record) if data is not None else read_image_file(record.path)
        except (OSError, ValueError) as exc:
            if not warned:
                warned.append(True)
                warnings.warn(f"cannot read {record.path!r} for the TensorBoard images ({exc}); drawn grey", stacklevel=2)
            return Image.new("RGB", (8, 8), COLOURS["empty"])

    return load


def write_ranked_results(writer, run_dir, result, query, gallery, metric, labels, load, test, image_size, step: int) -> None:
    """The grid to TensorBoard (``Test/ranked_results``) and to ``run_dir/ranked_results.png``.

    ``test`` is the test config (``ranked_queries``, ``ranked_topk``); ``image_size`` the
    configured ``(height, width)``, which sets the cells' aspect ratio.
    """
    from visim.outputs.atomic import atomic_write
    from visim.outputs.tensorboard import write_png

    rows = ranked_rows(result, query, gallery, metric, labels, test.ranked_queries, test.ranked_topk)
    if not rows:
        return
    grid = render_grid(rows, load, test.ranked_topk, cell_size(image_size))
    encoded = io.BytesIO()
    grid.save(encoded, format="PNG")
    png = encoded.getvalue()
    with atomic_write(run_dir / "ranked_results.png") as handle:
        handle.write(png)
    write_png(writer, "Test/ranked_results", png, grid.size, step)
