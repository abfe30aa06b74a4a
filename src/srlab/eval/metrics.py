"""Image-quality metrics with the conventions of super-resolution papers.

- **PSNR** ``10 log10(L^2 / MSE)`` with ``L = data_range`` (255); for RGB the MSE is taken over all pixels of
  all channels (BasicSR's ``calculate_psnr``).
- **SSIM** (Wang et al. 2004, MATLAB ``ssim_index``): 11x11 Gaussian window with sigma 1.5, K = (0.01, 0.03),
  L = 255, population (biased) variances, the *valid* region of the filtered maps only (no padding), mean of
  the SSIM map; for RGB the mean of the three per-channel SSIMs (BasicSR's ``calculate_ssim``). It agrees with
  ``skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
  data_range=255)`` to rounding error. (torchmetrics averages the padded full map instead, which differs.)
- **Channels**: ``'y'`` is MATLAB ``rgb2ycbcr`` luma ``16 + 65.481 R + 128.553 G + 24.966 B`` (R, G, B in
  [0, 1]) *not* rounded; ``'rgb'`` the three channels. A one-channel (grayscale) image is measured on its own
  channel for both.
- **Border crop**: ``crop`` pixels are removed from each side first (the standard protocol uses the scale).

The caller rounds the SR image to the uint8 grid first (``srlab.imaging.resize.quantize``), as the papers'
MATLAB code does; :func:`evaluate_pair` expects that.

Inputs: a numpy array is ``HxW`` or ``HxWxC``; a torch tensor is ``CxHxW`` or batched ``NxCxHxW``. Values are
on the ``0..data_range`` scale. Everything is computed in float64 (exact on CPU; on CUDA float64 is still
fast for these element-wise maps and small separable convolutions). Batched tensors give a tensor of per-image
values; unbatched inputs give Python floats.

Perceptual metrics (LPIPS, DISTS, NIQE) live in :mod:`srlab.eval.perceptual` (plain torch, no optional
package); :func:`lpips_distance` is the short way to LPIPS.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from srlab.eval.perceptual import score
from srlab.runtime import one_thread

__all__ = [
    "SSIM_K",
    "SSIM_SIGMA",
    "SSIM_WINDOW",
    "evaluate_pair",
    "lpips_distance",
    "metrics_batch",
    "psnr",
    "ssim",
]

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K = (0.01, 0.03)
_Y_WEIGHTS = (65.481, 128.553, 24.966)  # MATLAB rgb2ycbcr, for R, G, B in [0, 1] -> Y in [16, 235]


def _to_batch(x: Any) -> tuple[torch.Tensor, bool]:
    """(N, C, H, W) float64 tensor and whether the input was a single image."""
    if isinstance(x, np.ndarray):
        arr = np.ascontiguousarray(x)
        t = torch.from_numpy(arr if arr.flags.writeable else arr.copy())
        if t.dim() == 2:
            t = t.unsqueeze(-1)
        if t.dim() != 3:
            raise ValueError(f"expected an HxW or HxWxC array, got shape {tuple(x.shape)}")
        t = t.permute(2, 0, 1).unsqueeze(0)
        single = True
    elif isinstance(x, torch.Tensor):
        t = x
        single = t.dim() <= 3
        if t.dim() == 2:
            t = t.unsqueeze(0)
        if t.dim() == 3:
            t = t.unsqueeze(0)
        if t.dim() != 4:
            raise ValueError(f"expected a CxHxW or NxCxHxW tensor, got shape {tuple(x.shape)}")
    else:
        raise TypeError(f"expected a numpy array or torch tensor, got {type(x).__name__}")
    dtype = torch.float32 if t.device.type == "mps" else torch.float64
    # A dense NCHW copy: permuted (channels-last) inputs make the strip filters several times slower.
    return t.to(dtype).contiguous(memory_format=torch.contiguous_format), single


def _luma(x: torch.Tensor, data_range: float) -> torch.Tensor:
    """MATLAB rgb2ycbcr Y of (N, 3, H, W) on the 0..data_range scale (unrounded)."""
    w = x.new_tensor(_Y_WEIGHTS).view(1, 3, 1, 1) / 255.0
    return (x * w).sum(dim=1, keepdim=True) + 16.0 * (data_range / 255.0)


def _grey_from_rgb(x: torch.Tensor) -> torch.Tensor:
    """Full-range BT.601 luma (exactly v for R = G = B = v): how an RGB output is read against a grey HR."""
    w = x.new_tensor(_Y_WEIGHTS).view(1, 3, 1, 1) / sum(_Y_WEIGHTS)
    return (x * w).sum(dim=1, keepdim=True)


def _select(x: torch.Tensor, channel: str, data_range: float) -> torch.Tensor:
    c = x.shape[1]
    if channel == "y":
        if c == 3:
            return _luma(x, data_range)
        if c == 1:
            return x
    elif channel == "rgb":
        if c in (1, 3):
            return x
    else:
        raise ValueError(f"channel must be 'y' or 'rgb', not {channel!r}")
    raise ValueError(f"expected 1 or 3 channels, got {c}")


def _crop(x: torch.Tensor, crop: int) -> torch.Tensor:
    if crop < 0:
        raise ValueError(f"crop must be >= 0, got {crop}")
    if crop == 0:
        return x
    h, w = x.shape[-2:]
    if h <= 2 * crop or w <= 2 * crop:
        raise ValueError(f"a border crop of {crop} leaves nothing of a {h}x{w} image")
    return x[..., crop : h - crop, crop : w - crop]


def _match(sr: torch.Tensor, hr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if sr.shape[-2:] != hr.shape[-2:]:
        raise ValueError(f"SR and HR sizes differ: {tuple(sr.shape[-2:])} vs {tuple(hr.shape[-2:])}")
    if sr.shape[1] != hr.shape[1]:
        if hr.shape[1] == 1 and sr.shape[1] == 3:  # grey ground truth, RGB output
            sr = _grey_from_rgb(sr)
        elif sr.shape[1] == 1 and hr.shape[1] == 3:
            raise ValueError("SR is one-channel but HR is RGB; combine SR-Y with CbCr first")
        else:
            raise ValueError(f"SR has {sr.shape[1]} channels, HR {hr.shape[1]}")
    if sr.shape[0] != hr.shape[0]:
        raise ValueError(f"batch sizes differ: {sr.shape[0]} vs {hr.shape[0]}")
    return sr, hr.to(sr.device)


def _psnr_from_mse(mse: torch.Tensor, data_range: float) -> torch.Tensor:
    out = 10.0 * torch.log10(data_range**2 / mse)
    return torch.where(mse == 0, torch.full_like(mse, math.inf), out)


def _gauss_1d() -> list[float]:
    """The normalised 1-D Gaussian taps (MATLAB ``fspecial('gaussian', 11, 1.5)`` is their outer product)."""
    r = SSIM_WINDOW // 2
    g = [math.exp(-(i * i) / (2 * SSIM_SIGMA**2)) for i in range(-r, r + 1)]
    s = math.fsum(g)
    return [v / s for v in g]


def _gauss_filter(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Valid-region 1-D Gaussian filtering along ``dim``, as a sum of symmetric shifted slices.

    In float64 on the CPU this is several times faster than a grouped ``conv2d`` (which has no fast
    double-precision kernel) and exact to the last bits; the window is symmetric so each pair of taps
    shares one multiply.
    """
    g = _gauss_1d()
    r = SSIM_WINDOW // 2
    n = x.shape[dim] - 2 * r
    out = torch.mul(x.narrow(dim, r, n), g[r])
    for k in range(r):
        out.add_(x.narrow(dim, k, n) + x.narrow(dim, 2 * r - k, n), alpha=g[k])
    return out


def _ssim_sum(x: torch.Tensor, y: torch.Tensor, c1: float, c2: float, shift: float) -> torch.Tensor:
    """Sum of the valid SSIM map over each (image, channel) of one row strip (rows include the 10-row halo).

    Filters four maps instead of the usual five: with ``s = x + y`` and ``d = x - y``,
    ``2 mu_x mu_y = (mu_s^2 - mu_d^2) / 2``, ``mu_x^2 + mu_y^2 = (mu_s^2 + mu_d^2) / 2``,
    ``2 cov_xy = (var_s - var_d) / 2`` and ``var_x + var_y = (var_s + var_d) / 2`` (exact identities).
    ``s`` is centred on ``2 * shift`` first so that ``E[s^2] - E[s]^2`` cancels less.
    """
    c = x.shape[1]
    sm = x + y - 2 * shift
    dm = x - y
    stack = torch.cat([sm, dm, sm * sm, dm * dm], dim=1)  # (N, 4C, h, W)
    stack = _gauss_filter(_gauss_filter(stack, -2), -1)
    mu_s, mu_d, ess, edd = stack.split(c, dim=1)
    var_s = ess - mu_s * mu_s
    var_d = edd - mu_d * mu_d
    mu_s = mu_s + 2 * shift
    ms2 = mu_s * mu_s
    md2 = mu_d * mu_d
    num = (ms2 - md2 + 2 * c1) * (var_s - var_d + 2 * c2)
    den = (ms2 + md2 + 2 * c1) * (var_s + var_d + 2 * c2)
    return (num / den).sum(dim=(-2, -1))


_STRIP_BYTES = 2 << 20  # working set of one strip (4 maps x channels x rows x W float64): about L2 size


def _ssim_per_channel(x: torch.Tensor, y: torch.Tensor, data_range: float) -> torch.Tensor:
    """Mean SSIM over the valid region for each (image, channel): (N, C, H, W) x2 -> (N, C)."""
    h, w = x.shape[-2:]
    if h < SSIM_WINDOW or w < SSIM_WINDOW:
        raise ValueError(f"SSIM needs at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels, got {h}x{w}")
    c1 = (SSIM_K[0] * data_range) ** 2
    c2 = (SSIM_K[1] * data_range) ** 2
    halo = SSIM_WINDOW - 1
    out_h, out_w = h - halo, w - halo
    # On the CPU, strips of rows whose 4 working maps fit in cache are several times faster than whole
    # planes (the filters are memory-bound); the GPU takes the whole image at once.
    per_row = 4 * x.shape[0] * x.shape[1] * w * x.element_size()
    cpu = x.device.type == "cpu"
    rows = max(8, _STRIP_BYTES // per_row - halo) if cpu else out_h
    total = None
    with one_thread(x.device):
        for r0 in range(0, out_h, rows):
            r1 = min(out_h, r0 + rows)
            part = _ssim_sum(x[..., r0 : r1 + halo, :], y[..., r0 : r1 + halo, :], c1, c2, data_range / 2.0)
            total = part if total is None else total + part
    return total / (out_h * out_w)


def _out(v: torch.Tensor, single: bool):
    return float(v[0]) if single else v


def psnr(sr: Any, hr: Any, *, crop: int = 0, channel: str = "y", data_range: float = 255.0):
    """PSNR in dB of ``sr`` against ``hr`` on the Y or RGB channel(s), after removing ``crop`` border pixels.

    ``inf`` where the images are identical.
    """
    a, single = _to_batch(sr)
    b, _ = _to_batch(hr)
    a, b = _match(a, b)
    a = _crop(_select(a, channel, data_range), crop)
    b = _crop(_select(b, channel, data_range), crop)
    mse = ((a - b) ** 2).mean(dim=(1, 2, 3))
    return _out(_psnr_from_mse(mse, data_range), single)


def ssim(sr: Any, hr: Any, *, crop: int = 0, channel: str = "y", data_range: float = 255.0):
    """SSIM (Wang et al., MATLAB ``ssim_index``) on the Y or RGB channel(s) after a ``crop`` border crop."""
    a, single = _to_batch(sr)
    b, _ = _to_batch(hr)
    a, b = _match(a, b)
    a = _crop(_select(a, channel, data_range), crop)
    b = _crop(_select(b, channel, data_range), crop)
    return _out(_ssim_per_channel(a, b, data_range).mean(dim=1), single)


def metrics_batch(
    sr: Any,
    hr: Any,
    *,
    crop: int = 0,
    channels: tuple[str, ...] = ("y", "rgb"),
    data_range: float = 255.0,
) -> dict[str, torch.Tensor]:
    """PSNR and SSIM on each requested channel in one pass: ``{'psnr_y': (N,), 'ssim_y': ..., 'psnr_rgb': ...}``.

    Y and RGB share one SSIM filtering pass (the maps of R, G, B and Y are filtered together).
    """
    for ch in channels:
        if ch not in ("y", "rgb"):
            raise ValueError(f"channel must be 'y' or 'rgb', not {ch!r}")
    a, _ = _to_batch(sr)
    b, _ = _to_batch(hr)
    with one_thread(a.device):
        return _metrics(a, b, crop, channels, data_range)


def _metrics(a, b, crop, channels, data_range) -> dict[str, torch.Tensor]:
    a, b = _match(a, b)
    a, b = _crop(a, crop), _crop(b, crop)
    c = a.shape[1]
    if c == 3 and "rgb" not in channels:
        a4, b4 = _luma(a, data_range), _luma(b, data_range)
        idx = {"y": slice(0, 1)}
    elif c == 3 and "y" in channels:
        a4 = torch.cat([a, _luma(a, data_range)], dim=1)
        b4 = torch.cat([b, _luma(b, data_range)], dim=1)
        idx = {"rgb": slice(0, 3), "y": slice(3, 4)}
    else:
        a4, b4 = a, b
        idx = {"rgb": slice(0, c), "y": slice(0, c)}
    sq = (a4 - b4) ** 2
    s = _ssim_per_channel(a4, b4, data_range)
    out: dict[str, torch.Tensor] = {}
    for ch in channels:
        mse = sq[:, idx[ch]].mean(dim=(1, 2, 3))
        out[f"psnr_{ch}"] = _psnr_from_mse(mse, data_range)
        out[f"ssim_{ch}"] = s[:, idx[ch]].mean(dim=1)
    return out


def evaluate_pair(
    sr_uint8: Any,
    hr_uint8: Any,
    scale: int,
    crop: int | None = None,
    channels: tuple[str, ...] = ("y", "rgb"),
) -> dict[str, float]:
    """Standard-protocol metrics of one SR image (already rounded to uint8 values) against its HR image.

    ``crop`` defaults to ``scale``. Returns ``{'psnr_y', 'ssim_y', 'psnr_rgb', 'ssim_rgb'}`` (those requested)
    as floats. A grey HR image is compared on its channel (an RGB SR is read back as grey with the
    full-range BT.601 weights, exact when R = G = B).
    """
    res = metrics_batch(sr_uint8, hr_uint8, crop=scale if crop is None else crop, channels=channels)
    return {k: float(v[0]) for k, v in res.items()}


# ------------------------------------------------------------------------------------------ perceptual
def lpips_distance(sr: Any, hr: Any, *, net: str = "alex", data_range: float = 255.0, device: str = "cpu"):
    """LPIPS v0.1 (Zhang et al. 2018) distance, lower is better; ``net`` is ``alex`` or ``vgg``. RGB (a grey
    image is replicated). srlab's own implementation (:mod:`srlab.eval.perceptual`); its weights are
    downloaded on first use, and offline a :class:`srlab.errors.WeightsError` says what to fetch and where.
    """

    if net not in ("alex", "vgg"):
        raise ValueError(f"LPIPS net must be 'alex' or 'vgg', not {net!r}")
    a, single = _to_batch(sr)
    b, _ = _to_batch(hr)
    d = score("lpips" if net == "alex" else "lpips_vgg", a, b, device=device, data_range=data_range)
    return _out(d, single)
