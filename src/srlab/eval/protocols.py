"""Evaluation protocols: how the ground truth, the LR input and the scored SR image are made.

A :class:`Protocol` is one frozen value; ``srlab eval`` (:mod:`srlab.eval.loop`), validation during training
(:mod:`srlab.train.validate`) and the study all read it from here, so they prepare the same HR/LR pair from
the same image.

- ``standard`` (papers' tables): HR modcropped to the scale; LR = MATLAB ``imresize(HR, 1/s, 'bicubic')``
  rounded to uint8; SR rounded to uint8; PSNR/SSIM on Y (BT.601 ``rgb2ycbcr``, unrounded) and on RGB with a
  border crop of ``s`` pixels.
- ``study`` (the study's notebook): HR = the 128x128 centre crop at ``x = W//2 - 64, y = H//2 - 64``; images
  already at or below that size, and the sets the study used whole (FFHQ 128x128 thumbnails, selfie2anime
  256x256: :attr:`Protocol.whole_sets`), are used whole; then modcropped. LR = the float HR resized to
  ``H/s x W/s`` bilinearly without antialiasing, not rounded; SR clipped to [0, 255], not rounded; no border
  crop; the headline metric is RGB.

Ground truth files (:func:`read_hr`): 16-bit images are reduced to 8 bits (``round(v / 257)``), alpha is
dropped, grey images keep their one channel. Images too small for the protocol are refused with a reason
(:meth:`Protocol.prepare_hr`), never silently resized.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from srlab.errors import ConfigError, ImageError
from srlab.eval.metrics import SSIM_WINDOW
from srlab.imaging.color import rgb_to_ycbcr
from srlab.imaging.io import read_image
from srlab.imaging.resize import get_degradation, modcrop, quantize

__all__ = [
    "PROTOCOLS",
    "Protocol",
    "centre_crop",
    "get_protocol",
    "hr_tensor",
    "model_input",
    "read_hr",
    "y_reference",
]

_Y_DEF = "Y = 16 + 65.481 R + 128.553 G + 24.966 B (R, G, B in [0, 1]; MATLAB rgb2ycbcr, BT.601), not rounded"
_RGB_DEF = "R, G, B: PSNR from the MSE over all three channels, SSIM = mean of the per-channel SSIMs"
_SSIM_DEF = (
    f"Wang et al. 2004 (MATLAB ssim_index): {SSIM_WINDOW}x{SSIM_WINDOW} Gaussian window, sigma 1.5, "
    "K = (0.01, 0.03), L = 255, valid region only, float64"
)
_GREY_DEF = (
    "grayscale ground truth: measured on its own channel (both columns); RGB models get it replicated to "
    "3 channels and their output is read back with full-range BT.601 weights (exact for R = G = B)"
)
_YMODEL_DEF = (
    "models with colour 'y' run on the Y of the LR (float); Y metrics on their rounded Y output; RGB "
    "metrics on SR-Y + CbCr interpolated from the LR (the protocol's upsampler), converted and rounded"
)
_CROP_TEXT = "border crop of {crop} pixels on each side before PSNR/SSIM"
_WHOLE_TEXT = "HR = the whole image (--hr-crop 0: no centre crop), modcropped to the scale"

_ROUNDINGS_LR = ("uint8", "none")
_ROUNDINGS_SR = ("uint8", "clip")
_BORDERS = ("scale", "none")


@dataclass(frozen=True)
class Protocol:
    """One evaluation protocol: HR preparation, degradation, rounding, metric channel and border crop.

    ``hr_crop`` is the default centre-crop size (None: this protocol always uses whole images and ignores a
    requested crop); ``whole_sets`` names the data sets (registry names) used whole by default.
    ``text`` holds the human-readable lines every result header repeats (``{crop}``, ``{c2}`` and
    ``{hr_crop}`` are filled in by :meth:`describe`).
    """

    name: str
    summary: str
    degradation: str  # a name srlab.imaging.resize.get_degradation knows
    interpolation: str  # upsampler for Y-models' chroma, SRCNN-style pre-upsampling and the baselines
    lr_rounding: str  # "uint8": LR rounded on 0-255; "none": the float32 [0, 1] LR is kept
    sr_rounding: str  # "uint8": SR rounded before the metrics; "clip": clipped to [0, 255] only
    metric_channel: str  # "y" or "rgb": the channel tables and validation report
    border: str  # "scale": border crop = the scale; "none": no border crop
    hr_crop: int | None = None
    whole_sets: tuple[str, ...] = ()
    text: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        get_degradation(self.degradation)  # ConfigError for an unknown name
        checks = (
            ("lr_rounding", self.lr_rounding, _ROUNDINGS_LR),
            ("sr_rounding", self.sr_rounding, _ROUNDINGS_SR),
            ("metric_channel", self.metric_channel, ("y", "rgb")),
            ("border", self.border, _BORDERS),
            ("interpolation", self.interpolation, ("bicubic", "bilinear")),
        )
        for field_name, value, allowed in checks:
            if value not in allowed:
                raise ConfigError(f"protocol {self.name}: {field_name} {value!r}; use {' or '.join(allowed)}")

    # ------------------------------------------------------------------------------------ sizes

    def border_crop(self, scale: int, crop: int | None = None) -> int:
        """Pixels removed from each side before the metrics: ``crop`` when given, else the protocol's rule."""
        if crop is not None:
            return int(crop)
        return int(scale) if self.border == "scale" else 0

    def crop_size(self, hr_crop: int | None = None, dataset: str | None = None) -> int | None:
        """The HR centre-crop size for a request: None means the whole image.

        ``hr_crop``: None for the protocol's default (the whole image for :attr:`whole_sets`), 0 for the whole
        image, else that size. Protocols without a centre crop always give None.
        """
        if self.hr_crop is None:
            return None
        if hr_crop is None:
            low = (dataset or "").lower()
            return None if any(low == s.lower() for s in self.whole_sets) else self.hr_crop
        return int(hr_crop) or None

    def prepare_hr(
        self,
        hr: np.ndarray,
        scale: int,
        *,
        hr_crop: int | None = None,
        dataset: str | None = None,
        crop: int | None = None,
    ) -> tuple[np.ndarray | None, str | None]:
        """The protocol's ground truth (HWC view of ``hr``) or ``(None, reason)`` when the image is too small.

        ``hr_crop``/``dataset`` as in :meth:`crop_size`; ``crop`` is the border crop (default: the protocol's
        rule). An image at or below the centre-crop size in both dimensions is used whole; one smaller in
        only one dimension is refused.
        """
        h, w = hr.shape[:2]
        size = self.crop_size(hr_crop, dataset)
        if size and not (h <= size and w <= size):
            if h < size or w < size:
                return None, f"{w}x{h} is smaller than the {size}x{size} centre crop"
            hr = centre_crop(hr, size)
        hr = modcrop(hr, scale)
        hh, ww = hr.shape[:2]
        bcrop = self.border_crop(scale, crop)
        need = max(2 * bcrop + SSIM_WINDOW, scale)
        if hh < need or ww < need:
            return None, (
                f"{w}x{h} is too small for x{scale} with a {bcrop}-pixel border crop "
                f"(needs at least {need}x{need} after modcrop)"
            )
        return hr, None

    # ------------------------------------------------------------------------------ LR and SR

    def make_lr(self, hr: torch.Tensor, scale: int) -> torch.Tensor:
        """LR (N, C, h, w) float64 on 0-255 from HR (N, C, H, W) float64 on 0-255."""
        deg = get_degradation(self.degradation)
        if self.lr_rounding == "uint8":
            return quantize(deg(hr, scale))
        # The study resized float32 tensors in [0, 1]: the same arithmetic gives the same LR.
        return deg((hr / 255.0).float(), scale).double() * 255.0

    def round_sr(self, sr: torch.Tensor) -> torch.Tensor:
        """The SR image as it is scored (0-255 scale): rounded to uint8 values, or clipped only."""
        return quantize(sr) if self.sr_rounding == "uint8" else sr.clamp(0, 255)

    # ------------------------------------------------------------------------------ description

    def describe(self, *, crop: int | None = None, hr_crop: int | None = None) -> dict[str, str]:
        """The protocol's lines for a results header, with the run's border crop and centre crop filled in."""
        out = {"name": self.name, "summary": self.summary, **dict(self.text)}
        if crop is None and self.border == "scale":
            crop_txt = "s (the scale)"
        else:
            crop_txt = str(self.border_crop(0, crop))
        out["crop"] = _CROP_TEXT.format(crop=crop_txt)
        if self.hr_crop is not None:
            hc = self.hr_crop if hr_crop is None else hr_crop
            out["hr"] = out["hr"].format(c2=hc // 2, hr_crop=f"{hc}x{hc}") if hc else _WHOLE_TEXT
        return out


def _lines(**kw: str) -> tuple[tuple[str, str], ...]:
    common = {
        "crop": _CROP_TEXT,
        "y_channel": _Y_DEF,
        "rgb": _RGB_DEF,
        "ssim": _SSIM_DEF,
        "grayscale": _GREY_DEF,
        "y_models": _YMODEL_DEF,
    }
    order = ("hr", "degradation", "lr_rounding", "sr_rounding", "crop", *list(common)[1:])
    merged = {**common, **kw}
    return tuple((k, merged[k]) for k in order)


STANDARD = Protocol(
    name="standard",
    summary="papers' protocol: MATLAB bicubic LR, uint8 rounding, PSNR/SSIM on Y and RGB, border crop = scale",
    degradation="bicubic",
    interpolation="bicubic",
    lr_rounding="uint8",
    sr_rounding="uint8",
    metric_channel="y",
    border="scale",
    text=_lines(
        hr="HR modcropped to a multiple of the scale (16-bit images reduced to 8 bits: round(v/257); alpha "
        "dropped)",
        degradation="LR = MATLAB imresize(HR, 1/s, 'bicubic') (antialiased Keys cubic a=-0.5, symmetric border)",
        lr_rounding="LR rounded to uint8 (clip to [0, 255], round half away from zero)",
        sr_rounding="SR clipped to [0, 255] and rounded to uint8 before the metrics",
    ),
)

STUDY = Protocol(
    name="study",
    summary="the study's notebook: 128x128 centre crop, bilinear LR without antialiasing, float metrics, no crop",
    degradation="study",
    interpolation="bilinear",
    lr_rounding="none",
    sr_rounding="clip",
    metric_channel="rgb",
    border="none",
    hr_crop=128,
    # The study evaluated these sets' images whole: FFHQ's 128x128 thumbnails and selfie2anime's 256x256.
    whole_sets=("FFHQ_thumbnails128", "selfie2anime"),
    text=_lines(
        hr="HR = centre crop at x = W//2 - {c2}, y = H//2 - {c2} of size {hr_crop} (images no larger than "
        "that, and the sets the study used whole, FFHQ_thumbnails128 and selfie2anime, are used whole), "
        "modcropped to the scale",
        degradation="LR = the float HR resized to (H/s, W/s) bilinearly, align_corners=False, no antialiasing "
        "(torchvision Resize on tensors, 2022); SRCNN interpolates it back up the same way",
        lr_rounding="none (the LR stays a float tensor)",
        sr_rounding="none: prediction clipped to [0, 1], metrics on x255 floats",
    ),
)

PROTOCOLS: dict[str, Protocol] = {p.name: p for p in (STANDARD, STUDY)}


def get_protocol(name: str | Protocol) -> Protocol:
    """The protocol called ``name`` (a :class:`Protocol` is returned as is); ConfigError for an unknown one."""
    if isinstance(name, Protocol):
        return name
    try:
        return PROTOCOLS[str(name)]
    except KeyError:
        raise ConfigError(f"unknown protocol {name!r}; use {' or '.join(PROTOCOLS)}") from None


# ---------------------------------------------------------------------------------------------- images


def centre_crop(a: np.ndarray, size: int) -> np.ndarray:
    """The study's OpenCV centre crop: ``x = W // 2 - size // 2``, ``y = H // 2 - size // 2`` (HWC array)."""
    h, w = a.shape[:2]
    x, y = w // 2 - size // 2, h // 2 - size // 2
    return a[y : y + size, x : x + size]


def read_hr(path: str | Path) -> tuple[np.ndarray, list[str]]:
    """uint8 HxWxC (C = 1 or 3) ground truth and notes on conversions. Raises ImageError."""

    img = read_image(Path(path))
    notes = []
    px = img.pixels
    if px.ndim == 2:
        px = px[..., None]
    if px.dtype == np.uint16 or img.bit_depth == 16:
        px = np.round(px.astype(np.float64) / 257.0).astype(np.uint8)
        notes.append("16-bit image evaluated at 8 bits (round(v/257))")
    elif px.dtype != np.uint8:
        raise ImageError(f"{path}: unsupported pixel type {px.dtype}; convert it to 8-bit PNG")
    if img.alpha is not None:
        notes.append("alpha channel ignored")
    if px.shape[2] not in (1, 3):
        raise ImageError(f"{path}: {px.shape[2]} channels; expected gray or RGB")
    return np.ascontiguousarray(px), notes


def hr_tensor(hr: np.ndarray, device: str | torch.device = "cpu") -> torch.Tensor:
    """A prepared HWC uint8 array as a (1, C, H, W) float64 tensor on the 0-255 scale."""
    return torch.from_numpy(hr).permute(2, 0, 1).unsqueeze(0).to(device, torch.float64).contiguous()


def model_input(lr: torch.Tensor, color: str) -> torch.Tensor:
    """What a model of colour ``color`` is given of an LR (N, 1|3, h, w) on 0-255 (same scale, float64):
    the Y of an RGB LR for ``y`` models (a grey LR as is), RGB otherwise (a grey LR replicated)."""
    if color == "y":
        return rgb_to_ycbcr(lr)[:, :1] if lr.shape[1] == 3 else lr
    return lr.expand(-1, 3, -1, -1) if lr.shape[1] == 1 else lr


def y_reference(hr: torch.Tensor) -> torch.Tensor:
    """The ground truth a Y-channel output is scored against: the Y of an RGB HR, a grey HR as is."""
    return rgb_to_ycbcr(hr)[:, :1] if hr.shape[1] == 3 else hr
