"""From a config to the three DataLoaders the engine consumes.

Bad images: with ``on_bad_image: error`` every file's existence is checked up front (one
stat each) and a missing file is an error naming it and its index; a file that exists but
cannot be decoded raises the same kind of error when its batch is loaded. With
``on_bad_image: skip`` every image is decoded once up front and the unreadable ones are left
out of the splits before the sampler sees them, so identity batches keep their P x K shape;
``Loaders.bad_images`` lists them for the end-of-run report.
"""

from __future__ import annotations

import attrs

from visim.data.bad_images import BadImage
from visim.data.preflight import preflight
from visim.data.records import ReidData
from visim.data.transforms import build_pipeline


@attrs.define
class Loaders:
    data: ReidData
    train: object | None  # torch DataLoader; None when not training
    query: object
    gallery: object
    num_classes: int
    bad_images: tuple[BadImage, ...] = ()

    @property
    def skipped(self) -> int:
        return len(self.bad_images)

    def bad_image_report(self) -> str | None:
        """One line for the end of a run, or None when nothing was skipped."""
        if not self.bad_images:
            return None
        first = self.bad_images[0]
        return f"skipped {self.skipped} unreadable image(s) (on_bad_image: skip), first: {first}"


def build_loaders(
    config, *, train: bool = True, seed: int | None = None, num_replicas: int = 1, rank: int = 0
) -> Loaders:
    """DataLoaders for ``config`` (a :class:`visim.config.schema.Experiment`).

    ``train`` loader: the configured sampler, ``batch_size``, ``drop_last=True`` (every batch
    full, as identity batches and BatchNorm want). ``query`` / ``gallery``: in order,
    ``eval_batch_size`` (default ``batch_size``). ``num_replicas`` / ``rank`` shard the train
    sampler for distributed training.
    """
    import torch
    from torch.utils.data import DataLoader

    training = train and config.train is not None
    seed = config.seed if seed is None else seed
    prepared = preflight(config, train=training, seed=seed, num_replicas=num_replicas, rank=rank)
    data, skipped = prepared.data, prepared.skipped
    cfg = config.data
    image_key = config.test.image_key
    common = {
        "num_workers": cfg.num_workers,
        # Page-locked batches let the engine copy to the GPU with non_blocking=True.
        "pin_memory": config.device != "cpu" and torch.cuda.is_available(),
        "persistent_workers": cfg.num_workers > 0,
    }
    train_loader = None
    if training:
        transform = build_pipeline(cfg.train_transforms, cfg.image_size, train=True)
        train_loader = DataLoader(
            data.torch_dataset("train", transform, image_key),
            batch_size=cfg.batch_size,
            sampler=prepared.sampler,
            drop_last=True,
            # Seeds the workers' transform randomness; without workers transforms draw from
            # the global torch RNG, which the engine seeds.
            # (per rank under DDP, so ranks do not augment in lockstep; rank 0 = one process)
            generator=torch.Generator().manual_seed(seed + 7_919 * rank),
            **common,
        )
    transform = build_pipeline(cfg.test_transforms, cfg.image_size, train=False)
    eval_batch_size = cfg.eval_batch_size or cfg.batch_size

    def sequential(split: str):
        dataset = data.torch_dataset(split, transform, image_key)
        return DataLoader(dataset, batch_size=eval_batch_size, shuffle=False, **common)

    return Loaders(
        data=data,
        train=train_loader,
        query=sequential("query"),
        gallery=sequential("gallery"),
        num_classes=data.num_train_classes,
        bad_images=tuple(skipped),
    )
