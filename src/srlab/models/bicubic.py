"""Parameter-free interpolation 'models' with the SR model interface: MATLAB bicubic and the study's bilinear."""

from __future__ import annotations

import torch
from torch import nn

from srlab.imaging.resize import upsample
from srlab.models.registry import register_arch, register_preset


class Interpolation(nn.Module):
    arch = "interpolation"

    def __init__(self, *, scale: int = 4, method: str = "bicubic", num_channels: int = 3) -> None:
        super().__init__()
        if method not in ("bicubic", "bilinear", "nearest"):
            raise ValueError(f"unknown interpolation {method!r}")
        self.arch = method
        self.scale = int(scale)
        self.method = method
        self.in_channels = self.out_channels = num_channels
        self.hparams = dict(scale=scale, method=method, num_channels=num_channels)
        self.receptive_radius = 4
        self.supports_fp16 = False  # computed in fp32 whatever the requested precision

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        return upsample(x.float(), self.scale, self.method).to(dtype)


@register_arch("bicubic")
def build_bicubic(**kw) -> Interpolation:
    return Interpolation(method="bicubic", **kw)


@register_arch("bilinear")
def build_bilinear(**kw) -> Interpolation:
    return Interpolation(method="bilinear", **kw)


for _s in (2, 3, 4, 8):
    register_preset(f"bicubic-x{_s}", "bicubic", "MATLAB bicubic interpolation", scale=_s)
    register_preset(f"bilinear-x{_s}", "bilinear", "bilinear interpolation (the study's)", scale=_s)
