"""Validation during training: PSNR/SSIM of the generator on a small HR set under an evaluation protocol.

The HR/LR pairs are made exactly as ``srlab eval`` makes them (:mod:`srlab.eval.protocols`: the same reader, the
same HR preparation, degradation and rounding); an image the protocol refuses (too small) is skipped with
its reason, as ``srlab eval`` skips it. The score is the protocol's headline channel (``standard``: Y with a
border crop of the scale; ``study``: RGB, no crop) of the rounded (standard) or clipped (study) output; a
Y-channel model is scored on its own output channel. Metrics come from :mod:`srlab.eval.metrics`. Validation runs
in fp32, one image at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from srlab.data.catalog import get_spec
from srlab.data.find import find_dataset, resolve_data_root
from srlab.errors import DataError, ImageError
from srlab.eval.metrics import metrics_batch, psnr
from srlab.eval.protocols import Protocol, get_protocol, hr_tensor, model_input, read_hr, y_reference
from srlab.imaging.files import require_images
from srlab.imaging.io import write_image

__all__ = ["ValImage", "ValSet", "resolve_data_path", "run_validation"]


def resolve_data_path(path: str | Path, data_root: str | Path | None = None, *, hr: bool = True) -> Path:
    """A folder of images: an absolute path; else ``path`` under the data root (its ``HR/`` sub-folder when it
    has one); else a known set name found by :func:`srlab.data.find.find_dataset` (DataError saying where
    to get it when it is not there)."""

    p = Path(path).expanduser()
    if not p.is_absolute():
        root = resolve_data_root(data_root)
        cand = root / p
        if not cand.is_dir() and hr and get_spec(str(path)) is not None:
            return find_dataset(str(path), root).hr_dir
        p = cand
    if hr and (p / "HR").is_dir():
        p = p / "HR"
    return p


@dataclass
class ValImage:
    name: str
    inp: torch.Tensor  # (1, C, h, w) float32 in [0, 1], the model input
    hr: torch.Tensor  # (1, C, H, W) float64 on the 0-255 scale, the reference (RGB, grey or Y)


class ValSet:
    """HR images prepared once for a protocol and the model's colour (``rgb`` or ``y``).

    ``hr_crop`` and ``dataset`` choose the HR centre crop as :meth:`srlab.eval.protocols.Protocol.crop_size` does
    (None: the protocol's default; ``dataset``: a catalogued set name, for the sets a protocol uses whole).
    """

    def __init__(
        self,
        folder: Path,
        *,
        scale: int,
        protocol: str | Protocol,
        color: str,
        hr_crop: int | None = None,
        dataset: str | None = None,
        max_images: int = 0,
        log=None,
    ) -> None:
        self.scale, self.protocol, self.color = int(scale), get_protocol(protocol), color
        self.folder = Path(folder)
        self.dataset = _canonical(dataset)
        self.hr_crop = self.protocol.crop_size(hr_crop, self.dataset)
        self.images: list[ValImage] = []
        files = require_images(folder, what="validation folder")
        if max_images:
            files = files[:max_images]
        skipped: list[str] = []
        for f in files:
            item, reason = self._prepare(f, hr_crop)
            if item is None:
                skipped.append(f"{f.name} ({reason})")
            else:
                self.images.append(item)
        if not self.images:
            why = f"; e.g. {skipped[0]}" if skipped else ""
            raise DataError(f"no usable validation image in {folder} ({self.protocol.name} protocol){why}")
        if skipped and log:
            log(f"val: skipped {len(skipped)} images in {folder}: {'; '.join(skipped[:3])}")

    def _prepare(self, path: Path, hr_crop: int | None) -> tuple[ValImage | None, str | None]:
        try:
            pixels, _notes = read_hr(path)
        except ImageError as exc:
            return None, str(exc)
        proto = self.protocol
        hr_np, reason = proto.prepare_hr(pixels, self.scale, hr_crop=hr_crop, dataset=self.dataset)
        if hr_np is None:
            return None, reason
        hr = hr_tensor(hr_np)
        lr = proto.make_lr(hr, self.scale)
        inp = (model_input(lr, self.color) / 255.0).float().contiguous()
        ref = y_reference(hr) if self.color == "y" else hr
        return ValImage(path.stem, inp, ref), None

    def __len__(self) -> int:
        return len(self.images)


def _canonical(dataset: str | None) -> str | None:
    """A catalogued set's registry name (aliases resolved), else the name as given."""
    if not dataset:
        return None

    spec = get_spec(str(dataset))
    return spec.name if spec else str(dataset)


@torch.no_grad()
def run_validation(
    model,
    vset: ValSet,
    device,
    *,
    samples: int = 0,
    sample_dir: Path | None = None,
    tag: str = "",
    ssim: bool = True,
):
    """Per-image and mean PSNR/SSIM of ``model`` on ``vset``. Writes ``samples`` SR images to ``sample_dir``."""

    proto = vset.protocol
    crop, ch = proto.border_crop(vset.scale), proto.metric_channel
    was_training = model.training
    model.eval()
    rows = []
    try:
        for i, im in enumerate(vset.images):
            inp = im.inp.to(device)
            sr = proto.round_sr(model(inp).float().cpu().double() * 255.0)
            if ssim:
                m = metrics_batch(sr, im.hr, crop=crop, channels=(ch,))
                row = {"psnr": float(m[f"psnr_{ch}"][0]), "ssim": float(m[f"ssim_{ch}"][0])}
            else:
                row = {"psnr": float(psnr(sr, im.hr, crop=crop, channel=ch)), "ssim": float("nan")}
            rows.append({"image": im.name, **row})
            if sample_dir is not None and i < samples:
                _write_sample(sample_dir / f"{tag}_{im.name}.png", sr)
    finally:
        model.train(was_training)
    mean = {
        "psnr": float(np.mean([r["psnr"] for r in rows])),
        "ssim": float(np.mean([r["ssim"] for r in rows])),
    }
    return mean, rows


def _write_sample(path: Path, sr: torch.Tensor) -> None:
    arr = sr[0].clamp(0, 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_image(path, arr, overwrite=True)
