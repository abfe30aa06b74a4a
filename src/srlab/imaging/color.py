"""Colour conversions with MATLAB's conventions (``rgb2ycbcr``: BT.601, studio range).

Y = 16 + 65.481 R + 128.553 G + 24.966 B with R, G, B in [0, 1] (so Y is on the 0-255 scale, 16-235).
Functions take float tensors (..., 3, H, W) on the 0-255 scale unless ``data_range`` says otherwise and
return the same scale.
"""

from __future__ import annotations

import torch

_RGB2YCBCR = torch.tensor(
    [[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]], dtype=torch.float64
)
_OFFSET = torch.tensor([16.0, 128.0, 128.0], dtype=torch.float64)


def rgb_to_y(x: torch.Tensor, data_range: float = 255.0) -> torch.Tensor:
    """Luma (…, 1, H, W) of an RGB tensor (…, 3, H, W), on the same scale as the input."""
    w = _RGB2YCBCR[0].to(x.dtype).to(x.device) / 255.0
    y = (x * w.view(3, 1, 1)).sum(dim=-3, keepdim=True) / data_range * 255.0 + 16.0
    return y * (data_range / 255.0)


def rgb_to_ycbcr(x: torch.Tensor, data_range: float = 255.0) -> torch.Tensor:
    m = _RGB2YCBCR.to(x.dtype).to(x.device) / 255.0
    off = _OFFSET.to(x.dtype).to(x.device)
    xs = x * (255.0 / data_range)
    out = torch.einsum("ij,...jhw->...ihw", m, xs) + off.view(3, 1, 1)
    return out * (data_range / 255.0)


def ycbcr_to_rgb(x: torch.Tensor, data_range: float = 255.0) -> torch.Tensor:
    m = torch.linalg.inv(_RGB2YCBCR / 255.0).to(x.dtype).to(x.device)
    off = _OFFSET.to(x.dtype).to(x.device)
    xs = x * (255.0 / data_range) - off.view(3, 1, 1)
    out = torch.einsum("ij,...jhw->...ihw", m, xs)
    return out * (data_range / 255.0)
