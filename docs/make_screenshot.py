"""Render the TensorBoard pictures of docs/tensorboard.rst from a real demo run.

Reads the run's event files with tensorboard's EventAccumulator and draws, with PIL only (no
matplotlib needed), the scalar cards as TensorBoard shows them plus the positive / negative
distance histograms into ``docs/_static/tensorboard_scalars.png``; copies the run's
``ranked_results.png`` to ``docs/_static/ranked_results.png``. Without a run directory it first
runs the demo (``configs/demo.yaml``, evaluated every epoch) into a temporary folder::

    .venv/bin/python docs/make_screenshot.py [RUN_DIR]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "docs" / "_static"
CARDS = ("Train/loss", "Train/acc@1", "Train/lr", "Test/rank-1", "Test/mAP", "Test/mINP")
CARD = (330, 210)
PAD = 12
INK, GRID, LINE, FILL = (30, 30, 30), (225, 225, 225), (255, 112, 67), (246, 246, 246)
HISTOGRAM_COLOURS = {"positive": (30, 170, 60), "negative": (220, 40, 40)}


def run_demo(folder: Path) -> Path:
    command = [
        sys.executable, "-m", "visim", "run", str(ROOT / "configs" / "demo.yaml"), "--quiet",
        "--set", f"log_dir={folder}", "--set", "train.eval_interval=1",
    ]
    subprocess.run(command, check=True, cwd=ROOT)
    (run_dir,) = (folder / "demo").iterdir()
    return run_dir


def load_events(run_dir: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "histograms": 0})
    events.Reload()
    return events


def nice(value: float) -> str:
    return f"{value:.3g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.1e}"


def draw_card(draw: ImageDraw.ImageDraw, font, corner: tuple[int, int], title: str, points) -> None:
    """One TensorBoard-like scalar card: title, light grid, the series as a line with dots."""
    left, top = corner
    width, height = CARD
    draw.rectangle((left, top, left + width - 1, top + height - 1), fill=(255, 255, 255), outline=GRID)
    draw.text((left + 10, top + 8), title, fill=INK, font=font)
    plot = (left + 52, top + 32, left + width - 14, top + height - 28)
    steps = [p[0] for p in points]
    values = [p[1] for p in points]
    low, high = min(values), max(values)
    if high - low < 1e-12:
        low, high = low - 0.5, high + 0.5
    for n in range(5):
        y = plot[1] + n * (plot[3] - plot[1]) / 4
        draw.line((plot[0], y, plot[2], y), fill=GRID)
        draw.text((left + 6, y - 6), nice(high - n * (high - low) / 4), fill=INK, font=font)
    first, last = min(steps), max(steps)
    span = max(last - first, 1)

    def xy(step, value):
        x = plot[0] + (step - first) / span * (plot[2] - plot[0])
        y = plot[3] - (value - low) / (high - low) * (plot[3] - plot[1])
        return x, y

    coordinates = [xy(s, v) for s, v in points]
    if len(coordinates) > 1:
        draw.line(coordinates, fill=LINE, width=2)
    for x, y in coordinates:
        draw.ellipse((x - 3, y - 3, x + 3, y + 3), fill=LINE)
    for step in sorted(set(steps)):
        x, _ = xy(step, low)
        draw.text((x - 3, plot[3] + 6), str(step), fill=INK, font=font)


def draw_histograms(draw: ImageDraw.ImageDraw, font, corner: tuple[int, int], size, title: str, histograms) -> None:
    """Positive and negative distance distributions of the last test, overlaid as outlines."""
    left, top = corner
    width, height = size
    draw.rectangle((left, top, left + width - 1, top + height - 1), fill=(255, 255, 255), outline=GRID)
    draw.text((left + 10, top + 8), f"{title}: positive (green) vs negative (red), last epoch", fill=INK, font=font)
    plot = (left + 14, top + 32, left + width - 14, top + height - 28)
    low = min(h.min for h in histograms.values())
    high = max(h.max for h in histograms.values())
    for label, histogram in histograms.items():
        edges = [low] + list(histogram.bucket_limit)
        counts = list(histogram.bucket)
        total = sum(counts) or 1
        densities = [c / total / max(edges[i + 1] - edges[i], 1e-12) for i, c in enumerate(counts)]
        peak = max(densities) or 1
        outline = []
        for i, density in enumerate(densities):
            x0 = plot[0] + (min(max(edges[i], low), high) - low) / (high - low) * (plot[2] - plot[0])
            x1 = plot[0] + (min(max(edges[i + 1], low), high) - low) / (high - low) * (plot[2] - plot[0])
            y = plot[3] - density / peak * (plot[3] - plot[1])
            outline += [(x0, y), (x1, y)]
        draw.line(outline, fill=HISTOGRAM_COLOURS[label], width=2)
    draw.line((plot[0], plot[3], plot[2], plot[3]), fill=INK)
    draw.text((plot[0], plot[3] + 6), nice(low), fill=INK, font=font)
    draw.text((plot[2] - 30, plot[3] + 6), nice(high), fill=INK, font=font)


def render(run_dir: Path, target: Path) -> None:
    events = load_events(run_dir)
    font = ImageFont.load_default()
    columns, rows = 3, 2
    histogram_height = 200
    width = PAD + columns * (CARD[0] + PAD)
    height = PAD + rows * (CARD[1] + PAD) + histogram_height + PAD
    canvas = Image.new("RGB", (width, height), FILL)
    draw = ImageDraw.Draw(canvas)
    for n, tag in enumerate(CARDS):
        points = [(e.step, e.value) for e in events.Scalars(tag)]
        corner = (PAD + (n % columns) * (CARD[0] + PAD), PAD + (n // columns) * (CARD[1] + PAD))
        draw_card(draw, font, corner, tag, points)
    # Similarity metrics (higher is closer) write Test/similarities/... instead.
    name = "Test/distances" if "Test/distances/positive" in events.Tags()["histograms"] else "Test/similarities"
    histograms = {label: events.Histograms(f"{name}/{label}")[-1].histogram_value for label in ("positive", "negative")}
    corner = (PAD, PAD + rows * (CARD[1] + PAD))
    draw_histograms(draw, font, corner, (width - 2 * PAD, histogram_height), name, histograms)
    canvas.save(target)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", nargs="?", type=Path, help="a finished run of configs/demo.yaml (default: run it)")
    args = parser.parse_args(argv)
    STATIC.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        run_dir = args.run_dir or run_demo(Path(folder))
        render(run_dir, STATIC / "tensorboard_scalars.png")
        shutil.copyfile(run_dir / "ranked_results.png", STATIC / "ranked_results.png")
    print(f"wrote {STATIC / 'tensorboard_scalars.png'} and {STATIC / 'ranked_results.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
