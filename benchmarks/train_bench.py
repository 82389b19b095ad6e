"""Training steps/s and extraction images/s: visim's engine against torchreid's, side by side.

Both sides get the same network (osnet_x0_25, random init, identical weights), the same
batches of synthetic images, the same optimizer (Adam, lr 3e-4, betas 0.9/0.99, weight decay
5e-4, torchreid's defaults) and the same loss (cross entropy with label smoothing 0.1):

- training: ``VisualSimilarityEngine.train_epoch`` against ``ImageSoftmaxEngine.train`` (its
  epoch loop around ``forward_backward``), both iterating over one list of prepared batches, so
  the figure compares the engines, not the data loaders;
- extraction from tensors: ``VisualSimilarityEngine.extract`` against torchreid's
  ``FeatureExtractor`` called batch by batch;
- extraction from images: visim's query DataLoader (in-memory images, its test transforms)
  into ``extract`` against ``FeatureExtractor`` given the same images as numpy arrays (it
  preprocesses them one by one, as its docs show).

Every figure is the median of ``--repeats`` short timed runs after one warm-up, the two sides
alternating run by run: on a shared machine a burst of load then hits a few runs of both
sides, not one side's whole measurement. The defaults take about a minute::

    .venv/bin/python benchmarks/train_bench.py [--repeats 9] [--steps 4] [--device cpu]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

warnings.filterwarnings("ignore", message="Cython evaluation")
LR, BETAS, WEIGHT_DECAY, LABEL_SMOOTHING = 3e-4, (0.9, 0.99), 5e-4, 0.1


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--steps", type=int, default=4, help="training batches per timed run")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--eval-images", type=int, default=128, help="images per extraction run")
    parser.add_argument("--height", type=int, default=128)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--classes", type=int, default=16)
    # One intra-op thread by default: with more threads than idle cores (a shared CI machine),
    # OpenMP's spin-waiting makes steps 10-50x slower at random and the timings meaningless.
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    return parser.parse_args(argv)


# -- the shared data ---------------------------------------------------------------------------
def synthetic_images(n: int, height: int, width: int, seed: int) -> np.ndarray:
    """uint8 [n, H, W, 3]: smooth random blobs, so resizing and normalising do real work."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(n, height // 8, width // 8, 3), dtype=np.uint8)
    return small.repeat(8, axis=1).repeat(8, axis=2)


def normalised(images: np.ndarray) -> torch.Tensor:
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    # .contiguous(): NCHW in memory, as a DataLoader's collated batches are. Without it the
    # permuted NHWC storage carries over and every model would run channels_last.
    return ((torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255 - mean) / std).contiguous()


def training_batches(args) -> list[dict]:
    """Identity batches (4 images per class) as both engines read them."""
    batches = []
    for step in range(args.steps):
        images = normalised(synthetic_images(args.batch_size, args.height, args.width, seed=step))
        labels = torch.arange(args.batch_size) // 4 % args.classes
        # visim reads "image" and "class_id", torchreid "img" and "pid": one tensor, both keys.
        batches.append({"image": images, "img": images, "class_id": labels, "pid": labels})
    return batches


def eval_batches(args) -> list[dict]:
    images = normalised(synthetic_images(args.eval_images, args.height, args.width, seed=99))
    pids = torch.arange(args.eval_images) % args.classes
    return [
        {"image": images[i : i + args.batch_size], "pid": pids[i : i + args.batch_size], "camid": pids[i : i + args.batch_size] % 2}
        for i in range(0, args.eval_images, args.batch_size)
    ]


# -- the two engines ---------------------------------------------------------------------------
def visim_engine(args, train_batches):
    from visim.engine.engine import VisualSimilarityEngine

    config = {
        "name": "bench",
        "device": args.device,
        "data": {"dataset": "digits", "batch_size": args.batch_size, "image_size": [args.height, args.width]},
        "model": {"name": "torchreid", "arch": "osnet_x0_25"},
        "train": {
            "epochs": 1000,
            "loss": {"name": "cross_entropy", "label_smoothing": LABEL_SMOOTHING},
            "optimizer": {"name": "adam", "lr": LR, "betas": list(BETAS), "weight_decay": WEIGHT_DECAY},
        },
        "test": {"metric": "euclidean"},
    }
    from visim.config.load import config_from_dict

    config = config_from_dict(config)
    torch.manual_seed(0)
    model = config.model.build(num_classes=args.classes)
    engine = VisualSimilarityEngine(config, model, None, None, train_loader=train_batches, quiet=True)
    engine.initialize_optimizer()
    return engine


class MinimalDataManager:
    """What ``torchreid.reid.engine.Engine`` reads from a datamanager."""

    def __init__(self, train_loader, num_train_pids: int) -> None:
        self.train_loader = train_loader
        self.test_loader = {}
        self.num_train_pids = num_train_pids


def torchreid_engine(args, train_batches, weights: dict):
    from torchreid.reid import models, optim
    from torchreid.reid.engine import ImageSoftmaxEngine

    model = models.build_model("osnet_x0_25", num_classes=args.classes, loss="softmax", pretrained=False)
    model.load_state_dict(weights)
    model.to(args.device)
    optimizer = optim.build_optimizer(model, optim="adam", lr=LR, weight_decay=WEIGHT_DECAY, adam_beta1=BETAS[0], adam_beta2=BETAS[1])
    engine = ImageSoftmaxEngine(
        MinimalDataManager(train_batches, args.classes), model, optimizer, use_gpu=args.device.startswith("cuda"), label_smooth=True
    )
    engine.max_epoch = 1_000_000  # read by its progress line only
    return engine


def feature_extractor(args, weights: dict, folder: Path):
    from torchreid.reid.utils import FeatureExtractor

    # An existing model_path makes it load these weights instead of downloading pretrained ones.
    path = folder / "osnet_x0_25.pth"
    torch.save({"state_dict": weights}, path)
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its classifier (1 class) differs: skipped, as intended
        return FeatureExtractor("osnet_x0_25", model_path=str(path), image_size=(args.height, args.width), device=args.device, verbose=False)


def in_memory_query_loader(args, images: np.ndarray):
    """visim's own DataLoader over in-memory images with its default test transforms."""
    from torch.utils.data import DataLoader

    from visim.data.records import Record, ReidData
    from visim.data.transforms import default_transforms

    class ArrayData(ReidData):
        def load_image(self, record):
            from PIL import Image

            return Image.fromarray(images[int(record.path)])

    records = [Record(str(i), i % args.classes, i % 2) for i in range(len(images))]
    data = ArrayData((), records, records, name="synthetic")
    dataset = data.torch_dataset("query", default_transforms((args.height, args.width), train=False))
    return DataLoader(dataset, batch_size=args.batch_size, shuffle=False)


# -- timing ------------------------------------------------------------------------------------
def choose_clock(args):
    """Process CPU time for one CPU thread: unlike wall time it does not count the time other
    processes of a shared machine hold the core. Wall time otherwise (GPU, several threads)."""
    if args.device == "cpu" and args.threads == 1:
        return time.process_time, "process CPU time"
    return time.perf_counter, "wall time"


CLOCK = time.perf_counter


def timed(fn) -> float:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    started = CLOCK()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return CLOCK() - started


def side_by_side(repeats: int, visim_fn, torchreid_fn) -> tuple[float, float]:
    """Median seconds of each, after one warm-up each, alternating which runs first."""
    visim_fn(), torchreid_fn()
    times: dict[str, list[float]] = {"visim": [], "torchreid": []}
    for r in range(repeats):
        order = [("visim", visim_fn), ("torchreid", torchreid_fn)]
        for name, fn in order if r % 2 == 0 else order[::-1]:
            times[name].append(timed(fn))
    return statistics.median(times["visim"]), statistics.median(times["torchreid"])


def main(argv=None) -> int:
    global CLOCK
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    CLOCK, clock_name = choose_clock(args)
    batches = training_batches(args)
    evals = eval_batches(args)
    raw = synthetic_images(args.eval_images, args.height, args.width, seed=99)

    ours = visim_engine(args, batches)
    weights = {k: v.detach().clone() for k, v in ours.model.network.state_dict().items()}
    theirs = torchreid_engine(args, batches, weights)
    epoch = iter(range(1, 10**9))

    def train_visim():
        ours.train_epoch(next(epoch))

    def train_torchreid():
        with contextlib.redirect_stdout(io.StringIO()):
            theirs.train(print_freq=10**9)

    rows = []
    v, t = side_by_side(args.repeats, train_visim, train_torchreid)
    rows.append(("training", "steps/s", args.steps / v, args.steps / t))

    with tempfile.TemporaryDirectory() as folder:
        extractor = feature_extractor(args, weights, Path(folder))
    ours.set_model_mode("test")

    def extract_visim():
        ours.extract(evals)

    def extract_torchreid():
        torch.cat([extractor(batch["image"]) for batch in evals])

    v, t = side_by_side(args.repeats, extract_visim, extract_torchreid)
    rows.append(("extraction, tensors", "images/s", args.eval_images / v, args.eval_images / t))

    loader = in_memory_query_loader(args, raw)
    arrays = list(raw)

    def predict_visim():
        ours.extract(loader)

    def predict_torchreid():
        torch.cat([extractor(arrays[i : i + args.batch_size]) for i in range(0, len(arrays), args.batch_size)])

    v, t = side_by_side(args.repeats, predict_visim, predict_torchreid)
    rows.append(("extraction, images", "images/s", args.eval_images / v, args.eval_images / t))

    print(
        f"osnet_x0_25, batch {args.batch_size}, {args.height}x{args.width}, {args.device}, "
        f"{args.threads} threads, median of {args.repeats} ({clock_name})"
    )
    print(f"{'':22}{'unit':>10}{'visim':>10}{'torchreid':>11}{'ratio':>8}")
    for name, unit, ours_rate, their_rate in rows:
        print(f"{name:22}{unit:>10}{ours_rate:10.1f}{their_rate:11.1f}{ours_rate / their_rate:7.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
