"""Validation during training: PSNR/SSIM of the generator on a small HR set under an evaluation protocol.

- ``standard``: HR modcropped to the scale; LR = MATLAB bicubic ``imresize(HR, 1/s)`` rounded to uint8; the
  SR output rounded to uint8; PSNR/SSIM on Y (MATLAB BT.601) with a border crop of ``s``. A Y-channel model
  gets the LR's luma and is scored on its own output channel.
- ``study``: HR = 128x128 centre crop; LR = bilinear resize to half size without antialiasing (float, not
  rounded); PSNR/SSIM on RGB 0-255 of the clipped output, no crop.

Metrics come from :mod:`srlab.metrics` (MATLAB-consistent). Validation runs in fp32, one image at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from srlab.errors import DataError

__all__ = ["ValImage", "ValSet", "resolve_data_root", "resolve_data_path", "run_validation"]


def resolve_data_root(data_root: str | Path | None = None) -> Path:
    """The data root: the argument, else $SRLAB_DATA_ROOT, else ../shared/data, else the cache."""
    from srlab.data.registry import resolve_data_root as _resolve

    return Path(_resolve(data_root))


def resolve_data_path(path: str | Path, data_root: str | Path | None = None, *, hr: bool = True) -> Path:
    """A folder of images: an absolute path; else ``path`` under the data root (its ``HR/`` sub-folder when it
    has one); else a known set name found by :func:`srlab.data.registry.find_dataset` (DataError saying where
    to get it when it is not there)."""
    from srlab.data.registry import find_dataset, get_spec

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
    inp: torch.Tensor  # (1, C, h, w) float in [0, 1], the model input
    hr: torch.Tensor  # (1, C, H, W) float on the 0-255 scale, the reference (RGB or Y)


class ValSet:
    """HR images prepared once for a protocol and the model's colour (``rgb`` or ``y``)."""

    def __init__(
        self,
        folder: Path,
        *,
        scale: int,
        protocol: str,
        color: str,
        max_images: int = 0,
        log=None,
    ) -> None:
        from srlab.data.datasets import list_images, load_rgb_uint8
        from srlab.errors import ImageError
        from srlab.imaging.color import rgb_to_y
        from srlab.imaging.resize import imresize, modcrop, quantize, study_resize

        if protocol not in ("standard", "study"):
            raise DataError(f"unknown validation protocol {protocol!r}; use standard or study")
        self.scale, self.protocol, self.color = scale, protocol, color
        self.folder = Path(folder)
        self.images: list[ValImage] = []
        files = list_images(folder, what="validation folder")
        if max_images:
            files = files[:max_images]
        skipped = []
        for f in files:
            try:
                a = load_rgb_uint8(f)
            except ImageError:
                skipped.append(f.name)
                continue
            hr = torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1))).to(torch.float64)[None]
            if protocol == "standard":
                hr = modcrop(hr, scale)
                lr = quantize(imresize(hr, 1.0 / scale))
            else:
                c = 128
                h, w = hr.shape[-2:]
                if h >= c and w >= c:
                    y0, x0 = h // 2 - c // 2, w // 2 - c // 2
                    hr = hr[..., y0 : y0 + c, x0 : x0 + c]
                else:
                    hr = modcrop(hr, scale)
                h, w = hr.shape[-2:]
                lr = study_resize((hr / 255.0).float(), (h // scale, w // scale)).double() * 255.0
            if color == "y":
                lr, hr = rgb_to_y(lr), rgb_to_y(hr)
            self.images.append(ValImage(f.stem, (lr / 255.0).float(), hr))
        if not self.images:
            raise DataError(f"no readable validation image in {folder}")
        if skipped and log:
            log(f"val: skipped {len(skipped)} unreadable images in {folder}: {', '.join(skipped[:3])}")

    def __len__(self) -> int:
        return len(self.images)


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
    from srlab.imaging.resize import quantize
    from srlab.metrics import metrics_batch, psnr

    was_training = model.training
    model.eval()
    rows = []
    try:
        for i, im in enumerate(vset.images):
            inp = im.inp.to(device)
            sr = model(inp).float().cpu().double() * 255.0
            if vset.protocol == "standard":
                sr, crop, ch = quantize(sr), vset.scale, "y"
            else:
                sr, crop, ch = sr.clamp(0, 255), 0, "rgb"
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
    try:
        from srlab.imaging.io import write_image

        write_image(path, arr, overwrite=True)
    except ImportError:  # pragma: no cover
        from PIL import Image

        Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr).save(path)
