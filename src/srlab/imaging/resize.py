"""HR -> LR degradations and the interpolation used to upsample inputs.

- :func:`imresize`: MATLAB ``imresize(x, scale, 'bicubic')`` -- Keys cubic (a = -0.5), antialiased kernel
  widening when shrinking, symmetric border, output size ``ceil(in * scale)``. Works on any tensor whose last
  two dimensions are H and W (so batches on the GPU too); computed as two small dense matrix products.
  Written here rather than taken from a library: bicubic-pytorch / resize-right are single-file ports with
  the same math but add a dependency (and resize-right is exact only on numpy); the test suite pins this one
  to MATLAB's own output (``golden/lq_matlab_x4``) bit-exactly after rounding.
- :func:`study_resize`: what the study's torchvision ``Resize`` did to a float tensor (before torchvision
  made antialiasing its default) -- bilinear, ``align_corners=False``, no antialiasing.
- :class:`Degradation` and :func:`get_degradation`: named HR -> LR maps (``bicubic`` = standard protocol,
  ``study`` = the study's bilinear), with a registry for more (blur kernels, noise, JPEG) later.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from srlab.errors import ConfigError

__all__ = [
    "Degradation",
    "DEGRADATIONS",
    "get_degradation",
    "imresize",
    "modcrop",
    "quantize",
    "register_degradation",
    "study_resize",
    "upsample",
]


def _cubic(x: torch.Tensor) -> torch.Tensor:
    absx = x.abs()
    absx2 = absx * absx
    absx3 = absx2 * absx
    return (1.5 * absx3 - 2.5 * absx2 + 1) * (absx <= 1).to(x.dtype) + (
        -0.5 * absx3 + 2.5 * absx2 - 4 * absx + 2
    ) * ((absx > 1) & (absx <= 2)).to(x.dtype)


_MATRIX_CACHE: dict[tuple, torch.Tensor] = {}


def _resize_matrix(in_len: int, out_len: int, scale: float, antialias: bool, dtype, device) -> torch.Tensor:
    """Dense (out_len, in_len) matrix of MATLAB's bicubic contributions along one dimension."""
    key = (in_len, out_len, float(scale), antialias, dtype, str(device))
    m = _MATRIX_CACHE.get(key)
    if m is not None:
        return m
    kernel_width = 4.0
    shrink_aa = scale < 1 and antialias
    if shrink_aa:
        kernel_width = kernel_width / scale
    x = torch.arange(1, out_len + 1, dtype=torch.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = torch.floor(u - kernel_width / 2)
    p = int(math.ceil(kernel_width)) + 2
    idx = left[:, None] + torch.arange(p, dtype=torch.float64)[None, :]  # 1-based source positions
    dist = u[:, None] - idx
    w = scale * _cubic(scale * dist) if shrink_aa else _cubic(dist)
    w = w / w.sum(dim=1, keepdim=True)
    # symmetric border: ... 2 1 | 1 2 ... n | n n-1 ...
    aux = torch.cat([torch.arange(in_len), torch.arange(in_len - 1, -1, -1)])
    src = aux[((idx - 1).long()) % (2 * in_len)]
    mat = torch.zeros(out_len, in_len, dtype=torch.float64)
    mat.scatter_add_(1, src, w)
    m = mat.to(dtype=dtype, device=device)
    if len(_MATRIX_CACHE) > 64:
        _MATRIX_CACHE.clear()
    _MATRIX_CACHE[key] = m
    return m


def imresize(
    x: torch.Tensor,
    scale: float | None = None,
    *,
    size: tuple[int, int] | None = None,
    antialias: bool = True,
) -> torch.Tensor:
    """MATLAB-compatible bicubic resize of the last two dimensions (H, W) of a float tensor.

    Give ``scale`` (e.g. ``1/4`` or ``2``) or ``size=(H, W)``. The result is not rounded or clipped:
    call :func:`quantize` for MATLAB's uint8 behaviour. Float64 inputs give MATLAB's double results;
    float32 (the GPU path) agrees up to float32 rounding.
    """
    if not torch.is_floating_point(x):
        raise TypeError("imresize expects a floating-point tensor; convert uint8 with .float() first")
    h, w = x.shape[-2:]
    if size is None:
        if scale is None:
            raise ValueError("imresize needs scale or size")
        sh = sw = float(scale)
        oh, ow = math.ceil(h * sh), math.ceil(w * sw)
    else:
        oh, ow = int(size[0]), int(size[1])
        sh, sw = oh / h, ow / w
    if oh < 1 or ow < 1:
        raise ValueError(f"imresize output would be empty ({h}x{w} -> {oh}x{ow})")
    mh = _resize_matrix(h, oh, sh, antialias, x.dtype, x.device)
    mw = _resize_matrix(w, ow, sw, antialias, x.dtype, x.device)
    # MATLAB resizes the dimension with the larger reduction first (rows first on ties).
    if sw < sh:
        return mh @ (x @ mw.T)
    return (mh @ x) @ mw.T


def quantize(x: torch.Tensor, data_range: float = 255.0) -> torch.Tensor:
    """Round to the uint8 grid like MATLAB's uint8 conversion (clip, round half away from zero)."""
    # torch.round is half-to-even; after the clamp the values are >= 0, so floor(x + 0.5) is MATLAB's rounding.
    if data_range == 255.0:
        return torch.floor(x.clamp(0, 255) + 0.5)
    return torch.floor(x.clamp(0, data_range) * (255.0 / data_range) + 0.5) * (data_range / 255.0)


def study_resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The study's resize: bilinear, align_corners=False, no antialiasing (the study's torchvision Resize)."""
    squeeze = x.dim() == 3
    if squeeze:
        x = x.unsqueeze(0)
    y = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=False)
    return y.squeeze(0) if squeeze else y


def modcrop(x, scale: int):
    """Crop the last two dims (tensor) or first two dims (numpy HWC) to a multiple of ``scale``."""
    if isinstance(x, torch.Tensor):
        h, w = x.shape[-2:]
        return x[..., : h - h % scale, : w - w % scale]
    h, w = x.shape[:2]
    return x[: h - h % scale, : w - w % scale, ...]


def upsample(x: torch.Tensor, scale: int, method: str = "bicubic") -> torch.Tensor:
    """Upsample the last two dims by an integer factor: ``bicubic`` (MATLAB) or ``bilinear`` (study)."""
    h, w = x.shape[-2:]
    if method == "bicubic":
        return imresize(x, scale)
    if method == "bilinear":
        return study_resize(x, (h * scale, w * scale))
    if method == "nearest":
        return F.interpolate(
            x if x.dim() == 4 else x.unsqueeze(0), scale_factor=scale, mode="nearest"
        ).reshape(*x.shape[:-2], h * scale, w * scale)
    raise ConfigError(f"unknown upsampling method {method!r}; use bicubic, bilinear or nearest")


@dataclass(frozen=True)
class Degradation:
    """A named HR -> LR map on float tensors (…, C, H, W), values in [0, 255] or [0, 1]."""

    name: str
    fn: Callable[[torch.Tensor, int], torch.Tensor]
    interpolation: str  # the matching upsampler for interpolation baselines and SRCNN inputs
    description: str

    def __call__(self, hr: torch.Tensor, scale: int) -> torch.Tensor:
        return self.fn(hr, scale)


DEGRADATIONS: dict[str, Degradation] = {}


def register_degradation(deg: Degradation) -> Degradation:
    DEGRADATIONS[deg.name] = deg
    return deg


def _bicubic_down(hr: torch.Tensor, scale: int) -> torch.Tensor:
    return imresize(hr, 1.0 / scale)


def _study_down(hr: torch.Tensor, scale: int) -> torch.Tensor:
    h, w = hr.shape[-2:]
    return study_resize(hr, (h // scale, w // scale))


register_degradation(
    Degradation(
        "bicubic",
        _bicubic_down,
        "bicubic",
        "MATLAB imresize(HR, 1/s, 'bicubic') (antialiased Keys cubic, symmetric border)",
    )
)
register_degradation(
    Degradation(
        "study",
        _study_down,
        "bilinear",
        "bilinear resize to H/s x W/s without antialiasing (the study's torchvision Resize on float tensors)",
    )
)


def get_degradation(name: str) -> Degradation:
    try:
        return DEGRADATIONS[name]
    except KeyError:
        raise ConfigError(f"unknown degradation {name!r}; known: {', '.join(sorted(DEGRADATIONS))}") from None
