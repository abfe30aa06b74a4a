"""The image operations of Real-ESRGAN's degradation model on float tensors in [0, 1], (N, C, H, W).

Device-agnostic torch: the arithmetic runs on the tensors' device. The random fields (noise) are drawn on
the CPU from per-sample ``torch.Generator`` objects and moved to the device, so a sample's noise is the same
on any device. JPEG is real JPEG: each image is encoded and decoded by Pillow at an integer quality on the
CPU, on a GPU too (the image goes to the host and back), instead of a differentiable approximation.
"""

from __future__ import annotations

import io
import math

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

__all__ = [
    "RESIZE_MODES",
    "add_gaussian_noise",
    "add_poisson_noise",
    "filter2d",
    "gaussian_1d",
    "jpeg",
    "resize",
    "to_uint8_levels",
    "usm_sharpen",
]

RESIZE_MODES = ("area", "bilinear", "bicubic")
# ITU-R BT.601 luma weights (the grey image Poisson noise is drawn from when it is grey)
_LUMA = (0.299, 0.587, 0.114)


def _pad(x: torch.Tensor, ph: int, pw: int) -> torch.Tensor:
    """Reflect padding, or edge replication where the image is too small to reflect that far."""
    if ph == 0 and pw == 0:
        return x
    mode = "reflect" if ph < x.shape[-2] and pw < x.shape[-1] else "replicate"
    return F.pad(x, (pw, pw, ph, ph), mode=mode)


def filter2d(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Correlate each image with its own kernel (``kernel`` (N, k, k), or (k, k) for all), reflect padding."""
    n, c, h, w = x.shape
    if kernel.dim() == 2:
        kernel = kernel.expand(n, -1, -1)
    k = kernel.shape[-1]
    if kernel.shape != (n, k, k) or k % 2 == 0:
        raise ValueError(f"filter2d: kernels {tuple(kernel.shape)} do not fit a batch of {n}")
    xp = _pad(x, k // 2, k // 2).reshape(1, n * c, h + k - 1, w + k - 1)
    weight = kernel.to(x.dtype).repeat_interleave(c, dim=0).unsqueeze(1)
    return F.conv2d(xp, weight, groups=n * c).reshape(n, c, h, w)


def gaussian_1d(size: int, sigma: float = 0.0) -> np.ndarray:
    """Normalised 1-D Gaussian; ``sigma <= 0`` takes OpenCV's default for the size,
    ``0.3 ((size - 1) / 2 - 1) + 0.8``."""
    if sigma <= 0:
        sigma = 0.3 * ((size - 1) * 0.5 - 1) + 0.8
    ax = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(ax**2) / (2 * sigma * sigma))
    return g / g.sum()


def _blur_matrix(n: int, g: torch.Tensor) -> torch.Tensor:
    """The (n, n) matrix of a 1-D correlation with ``g`` including the border padding of :func:`_pad`
    (row i = output i): the padded correlation applied to each unit vector."""
    k = g.numel()
    eye = torch.eye(n, dtype=torch.float64).view(n, 1, 1, n)  # n signals of length n along the last axis
    cols = F.conv2d(
        _pad(eye, 0, k // 2), g.to(torch.float64).view(1, 1, 1, k)
    )  # (n, 1, 1, n): unit j -> outputs
    return cols.view(n, n).T


def _blur_separable(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Blur with the outer product of ``g`` (1-D, odd) with the borders of :func:`_pad`, as two matrix
    products with the padded 1-D correlations (exact; much faster than wide convolutions on a CPU)."""
    h, w = x.shape[-2:]
    mh = _blur_matrix(h, g).to(x.device, x.dtype)
    mw = _blur_matrix(w, g).to(x.device, x.dtype)
    return mh @ x @ mw.T


def usm_sharpen(
    x: torch.Tensor, *, radius: int = 50, weight: float = 0.5, threshold: float = 10.0
) -> torch.Tensor:
    """Unsharp masking as Real-ESRGAN sharpens its ground truth.

    ``blur`` = Gaussian of size ``2 radius + 1`` (OpenCV's sigma for that size), ``r = x - blur``; pixels
    with ``|r| * 255 > threshold`` form a mask, softened by the same blur; the output is
    ``m * clip(x + weight r, 0, 1) + (1 - m) * x``.
    """
    g = torch.from_numpy(gaussian_1d(2 * radius + 1))
    blur = _blur_separable(x, g)
    residual = x - blur
    mask = (residual.abs() * 255 > threshold).to(x.dtype)
    soft = _blur_separable(mask, g)
    sharp = (x + weight * residual).clamp(0, 1)
    return soft * sharp + (1 - soft) * x


def resize(x: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    """``F.interpolate`` to ``size`` with ``area``, ``bilinear`` or ``bicubic`` (no antialiasing: these
    are the kernels and aliasing of common resizers that the model should learn to undo)."""
    if mode not in RESIZE_MODES:
        raise ValueError(f"unknown resize mode {mode!r}; use {', '.join(RESIZE_MODES)}")
    size = (max(1, int(size[0])), max(1, int(size[1])))
    if tuple(x.shape[-2:]) == size:
        return x
    if mode == "area":
        return F.interpolate(x, size=size, mode="area")
    return F.interpolate(x, size=size, mode=mode, align_corners=False)


def add_gaussian_noise(
    x: torch.Tensor, sigma: torch.Tensor, gray: torch.Tensor, generators: list[torch.Generator]
) -> torch.Tensor:
    """``x + σ z`` clipped to [0, 1], ``σ`` (N,) on the [0, 1] scale, ``z`` standard normal drawn per image
    from its generator: one field for all channels where ``gray`` (N,) is true, one per channel otherwise."""
    n, c, h, w = x.shape
    fields = []
    for i in range(n):
        z = torch.randn((1 if bool(gray[i]) else c, h, w), generator=generators[i], dtype=torch.float32)
        fields.append(z.expand(c, h, w))
    noise = torch.stack(fields).to(x.device, x.dtype) * sigma.to(x.device, x.dtype).view(n, 1, 1, 1)
    return (x + noise).clamp(0, 1)


def to_uint8_levels(x: torch.Tensor) -> torch.Tensor:
    """``x`` clipped to [0, 1] and rounded to the 256 levels of 8 bits (still float on [0, 1])."""
    return (x.clamp(0, 1) * 255).round() / 255


def add_poisson_noise(
    x: torch.Tensor, scale: torch.Tensor, gray: torch.Tensor, generators: list[torch.Generator]
) -> torch.Tensor:
    """Shot noise: the image rounded to 8 bits has ``v`` distinct values, ``v`` raised to a power of two;
    ``noise = Poisson(x v) / v - x`` (from the BT.601 grey image, shared by the channels, where ``gray``);
    the output is ``x + scale * noise`` clipped to [0, 1]. The noise variance is ``scale² x / v``:
    proportional to the intensity."""
    n, c, h, w = x.shape
    img = to_uint8_levels(x)
    out = []
    for i in range(n):
        xi = img[i].detach().to("cpu", torch.float64)
        if bool(gray[i]) and c == 3:
            xi = (torch.tensor(_LUMA, dtype=torch.float64).view(3, 1, 1) * xi).sum(0, keepdim=True)
            xi = to_uint8_levels(xi)
        v = 2 ** math.ceil(math.log2(max(2, int(torch.unique(xi).numel()))))
        noisy = torch.poisson(xi * v, generator=generators[i]) / v
        out.append((noisy - xi).expand(c, h, w))
    noise = torch.stack(out).to(x.device, x.dtype) * scale.to(x.device, x.dtype).view(n, 1, 1, 1)
    return (img + noise).clamp(0, 1)


def jpeg(x: torch.Tensor, quality: list[int]) -> torch.Tensor:
    """Each image encoded as baseline JPEG by Pillow at its integer ``quality`` (4:2:0 chroma, Pillow's
    default) and decoded; input clipped and rounded to 8 bits first. Grey (C = 1) images stay grey."""

    n, c = x.shape[:2]
    u8 = (x.detach().clamp(0, 1) * 255).round().to("cpu", torch.uint8).permute(0, 2, 3, 1).numpy()
    out = []
    for i in range(n):
        a = u8[i, :, :, 0] if c == 1 else u8[i]
        buf = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(a)).save(buf, format="JPEG", quality=int(quality[i]))
        buf.seek(0)
        with Image.open(buf) as im:
            d = np.asarray(im.convert("L" if c == 1 else "RGB"))
        out.append(d.reshape(d.shape[0], d.shape[1], c))
    back = torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2)
    return back.to(x.device, x.dtype) / 255
