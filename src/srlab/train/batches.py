"""The training set of a run and the rule of which samples each step takes.

Step ``t`` of a stage on rank ``r`` of ``world`` takes the samples at stream positions ``offset + (t * world
+ r) * batch ...`` of a :class:`~srlab.data.datasets.SampleStream` (a per-epoch permutation from the seed,
per-sample crops/flips seeded by the position), ``offset`` being the positions earlier stages consumed. The
data order is a function of the iteration alone, so resume and sharding need no sampler state.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from srlab.data.datasets import SampleStream, SRTrainSet, synthesize_lr
from srlab.data.degradations.pipeline import RealESRGANOptions, degrade_batch
from srlab.data.mixture import MixedTrainSet
from srlab.imaging.io import write_image
from srlab.train.config import TrainConfig
from srlab.train.validate import ValSet, resolve_data_path

__all__ = ["PREVIEW_NAME", "TrainBatches", "load_val_set"]

PREVIEW_NAME = "degradation_samples.png"


class TrainBatches:
    """The training images in memory (:class:`~srlab.data.datasets.SRTrainSet`) and their sample stream."""

    def __init__(
        self,
        cfg: TrainConfig,
        data_root: Path | str | None,
        *,
        log: Callable[[str], None] | None = None,
        preview: Path | bool | None = None,
    ) -> None:
        """``preview`` (a run folder, or False/None): with the realesrgan degradation, write
        ``degradation_samples.png`` there, a picture of what the random degradations make, to look at before
        trusting a run."""

        self.cfg = cfg
        d = cfg.data
        if isinstance(d.train, str):
            sources = [(d.train, 1.0, d.train_lr)]
        else:
            sources = [(s.path, s.weight, s.lr) for s in d.train]
        sets = []
        for path, _w, lr in sources:
            sets.append(
                SRTrainSet(
                    resolve_data_path(path, data_root),
                    scale=cfg.scale,
                    lr_dir=resolve_data_path(lr, data_root, hr=False) if lr else None,
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
            )
        if len(sets) == 1:
            self.data = sets[0]
        else:
            self.data = MixedTrainSet(sets, [w for _p, w, _l in sources], seed=cfg.seed, shuffle=d.shuffle)
            if log is not None:
                log(
                    "data: mixing "
                    + ", ".join(f"{p} ({q:.0%})" for (p, _w, _l), q in zip(sources, self.data.probs))
                )
        self.stream = SampleStream(len(self.data), cfg.seed, shuffle=d.shuffle)
        if preview and d.degradation == "realesrgan":
            grid = self.write_samples(Path(preview) / PREVIEW_NAME)
            if log is not None:
                log(f"degraded training samples (LR | target): {grid}")

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
        positions = range(start, start + batch_size)
        lr_b, hr_b = self.data.batch(self.stream, positions, seed=cfg.seed)
        hr_b = hr_b.to(device, non_blocking=True)
        if lr_b is None:
            d = cfg.data
            if d.degradation == "realesrgan":
                opts = d.realesrgan or RealESRGANOptions()
                return degrade_batch(hr_b, cfg.scale, opts, cfg.seed, list(positions))
            return synthesize_lr(hr_b, cfg.scale, d.degradation, quantize_lr=d.quantize_lr, color=d.color)
        return lr_b.to(device, non_blocking=True), hr_b

    def write_samples(self, path: Path, count: int = 8, device: torch.device | None = None) -> Path:
        """A PNG of the first ``count`` training samples of the run: each LR (nearest-upscaled to the HR
        size) beside its target, two pairs a row. Written atomically over any earlier one."""

        lr, hr = self.batch(count, 0, 0, rank=0, world=1, device=device or torch.device("cpu"))
        s = hr.shape[-1] // lr.shape[-1]
        up = lr.repeat_interleave(s, dim=-2).repeat_interleave(s, dim=-1)
        gap = 4
        pairs = [torch.cat([up[i], torch.ones_like(up[i][:, :, :gap]), hr[i]], dim=-1) for i in range(count)]
        if len(pairs) % 2:
            pairs.append(torch.ones_like(pairs[0]))
        rows = [
            torch.cat([pairs[i], torch.ones_like(pairs[i][:, :, : 2 * gap]), pairs[i + 1]], dim=-1)
            for i in range(0, len(pairs), 2)
        ]
        sep = torch.ones_like(rows[0][:, : 2 * gap])
        grid = torch.cat([t for r in rows for t in (r, sep)][:-1], dim=-2)
        if grid.shape[0] == 1:
            grid = grid.expand(3, -1, -1)
        px = (grid.float().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
        return write_image(path, np.ascontiguousarray(px), overwrite=True)


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
