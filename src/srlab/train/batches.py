"""The training set of a run and the rule of which samples each step takes.

Step ``t`` of a stage on rank ``r`` of ``world`` takes the samples at stream positions ``offset + (t * world
+ r) * batch ...`` of a :class:`~srlab.data.datasets.SampleStream` (a per-epoch permutation from the seed,
per-sample crops/flips seeded by the position), ``offset`` being the positions earlier stages consumed. The
data order is a function of the iteration alone, so resume and sharding need no sampler state.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from srlab.data.datasets import SampleStream, SRTrainSet, synthesize_lr
from srlab.train.config import TrainConfig
from srlab.train.validate import ValSet, resolve_data_path

__all__ = ["TrainBatches", "load_val_set"]


class TrainBatches:
    """The training images in memory (:class:`~srlab.data.datasets.SRTrainSet`) and their sample stream."""

    def __init__(
        self, cfg: TrainConfig, data_root: Path | str | None, *, log: Callable[[str], None] | None = None
    ) -> None:

        self.cfg = cfg
        d = cfg.data
        train_dir = resolve_data_path(d.train, data_root)
        lr_dir = resolve_data_path(d.train_lr, data_root, hr=False) if d.train_lr else None
        self.data = SRTrainSet(
            train_dir,
            scale=cfg.scale,
            lr_dir=lr_dir,
            degradation=d.degradation,
            quantize_lr=d.quantize_lr,
            mode=d.mode,
            crop=d.crop,
            stride=d.stride,
            color=d.color,
            flip=d.flip,
            rot90=d.rot90,
            small=d.small,
            pre_upsample=d.pre_upsample,
            lr_on_device=d.lr_on_device,
            max_images=d.max_images,
            log=log,
        )
        self.stream = SampleStream(len(self.data), cfg.seed, shuffle=d.shuffle)

    @property
    def items(self) -> int:
        """Samples per epoch."""
        return self.stream.n

    def batch(
        self, batch_size: int, iteration: int, offset: int, *, rank: int, world: int, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Rank ``rank``'s (LR, HR) batch for ``iteration`` of a stage, on ``device`` (the LR synthesised
        there when the set holds HR only)."""

        cfg = self.cfg
        start = offset + (iteration * world + rank) * batch_size
        lr_b, hr_b = self.data.batch(self.stream, range(start, start + batch_size), seed=cfg.seed)
        hr_b = hr_b.to(device, non_blocking=True)
        if lr_b is None:
            d = cfg.data
            return synthesize_lr(hr_b, cfg.scale, d.degradation, quantize_lr=d.quantize_lr, color=d.color)
        return lr_b.to(device, non_blocking=True), hr_b


def load_val_set(cfg: TrainConfig, data_root: Path | str | None, *, log: Callable[[str], None] | None = None):
    """The validation set of ``cfg.val`` (:class:`~srlab.train.validate.ValSet`), or None without one."""

    if not cfg.val.set:
        return None
    return ValSet(
        resolve_data_path(cfg.val.set, data_root),
        scale=cfg.scale,
        protocol=cfg.val.protocol,
        hr_crop=cfg.val.hr_crop,
        dataset=cfg.val.set,
        color=cfg.data.color,
        max_images=cfg.val.max_images,
        log=log,
    )
