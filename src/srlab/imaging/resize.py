"""HR -> LR degradations and the interpolation used to upsample inputs.

- :func:`imresize`: MATLAB ``imresize(x, scale, 'bicubic')`` -- Keys cubic (a = -0.5), antialiased kernel
  widening when shrinking, symmetric border, output size ``ceil(in * scale)``. Works on any tensor whose last
  two dimensions are H and W (so batches on the GPU too); computed per axis as a dense matrix product for
  small sizes, and from banded weights (a few taps per output pixel) for large ones, so memory stays linear
  in the image instead of growing with the square of its long side.
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


_TAPS_CACHE: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}
_MATRIX_CACHE: dict[tuple, torch.Tensor] = {}

DENSE_MAX_ELEMENTS = 1 << 22
"""Sizes whose out x in matrix has at most this many entries are resized with a dense matrix product (fast
for small images, and the reference the banded path is checked against); larger ones with banded weights,
so that memory stays linear in the image."""

_BAND_BLOCK = 128  # outputs per block of the banded path: small blocks, yet each one a BLAS call
_MATRIX_CACHE_BYTES = 256 << 20


def _resize_taps(
    in_len: int, out_len: int, scale: float, antialias: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """MATLAB's bicubic contributions along one dimension as bands: (out_len, P) source indices (0-based,
    symmetric border applied) and float64 weights, P = ceil(kernel width) + 2 taps per output pixel."""
    key = (in_len, out_len, float(scale), antialias)
    hit = _TAPS_CACHE.get(key)
    if hit is not None:
        return hit
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
    if sum(t.numel() for pair in _TAPS_CACHE.values() for t in pair) > (1 << 24):
        _TAPS_CACHE.clear()  # bounded by size, not count: one huge image must not pin its bands forever
    _TAPS_CACHE[key] = (src, w)
    return src, w


def _resize_matrix(in_len: int, out_len: int, scale: float, antialias: bool, dtype, device) -> torch.Tensor:
    """Dense (out_len, in_len) matrix of the same contributions (small sizes only)."""
    key = (in_len, out_len, float(scale), antialias, dtype, str(device))
    m = _MATRIX_CACHE.get(key)
    if m is not None:
        return m
    src, w = _resize_taps(in_len, out_len, scale, antialias)
    mat = torch.zeros(out_len, in_len, dtype=torch.float64)
    mat.scatter_add_(1, src, w)
    m = mat.to(dtype=dtype, device=device)
    cached = sum(t.numel() * t.element_size() for t in _MATRIX_CACHE.values())
    if len(_MATRIX_CACHE) > 64 or cached + m.numel() * m.element_size() > _MATRIX_CACHE_BYTES:
        _MATRIX_CACHE.clear()
    _MATRIX_CACHE[key] = m
    return m


def _resize_dim(x: torch.Tensor, dim: int, out_len: int, scale: float, antialias: bool) -> torch.Tensor:
    """Resize ``x`` along ``dim`` (-2 or -1) to ``out_len``."""
    in_len = x.shape[dim]
    if out_len * in_len <= DENSE_MAX_ELEMENTS:
        m = _resize_matrix(in_len, out_len, scale, antialias, x.dtype, x.device)
        return m @ x if dim == -2 else x @ m.T
    # Banded: each block of outputs reads one contiguous span of inputs (the symmetric border only reflects
    # indices next to the edge, inside the first and last spans), so a small dense block per span does it.
    src, w = _resize_taps(in_len, out_len, scale, antialias)
    shape = list(x.shape)
    shape[dim] = out_len
    out = x.new_empty(shape)
    for o0 in range(0, out_len, _BAND_BLOCK):
        o1 = min(out_len, o0 + _BAND_BLOCK)
        s = src[o0:o1]
        lo, hi = int(s.min()), int(s.max()) + 1
        block = torch.zeros(o1 - o0, hi - lo, dtype=torch.float64)
        block.scatter_add_(1, s - lo, w[o0:o1])
        block = block.to(dtype=x.dtype, device=x.device)
        seg = x.narrow(dim, lo, hi - lo)
        out.narrow(dim, o0, o1 - o0).copy_(block @ seg if dim == -2 else seg @ block.T)
    return out


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
    float32 (the GPU path) agrees up to float32 rounding. Memory is linear in the image: each output pixel
    has at most ``ceil(4 / scale) + 2`` taps, applied as bands for large sizes.
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
    # MATLAB resizes the dimension with the larger reduction first (rows first on ties).
    if sw < sh:
        return _resize_dim(_resize_dim(x, -1, ow, sw, antialias), -2, oh, sh, antialias)
    return _resize_dim(_resize_dim(x, -2, oh, sh, antialias), -1, ow, sw, antialias)


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
