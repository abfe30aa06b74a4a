"""Parameter-free interpolation 'models' with the SR model interface: MATLAB bicubic and the study's bilinear."""

from __future__ import annotations

import torch
from torch import nn

from srlab.imaging.resize import upsample
from srlab.models.registry import Architecture, EngineHints, Preset, register


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


def build_bicubic(**kw) -> Interpolation:
    return Interpolation(method="bicubic", **kw)


def build_bilinear(**kw) -> Interpolation:
    return Interpolation(method="bilinear", **kw)


ARCHITECTURE = register(
    Architecture(
        family="interpolation",
        summary="parameter-free interpolation: MATLAB bicubic and the study's bilinear",
        source="MATLAB imresize (bicubic, antialiased); torch interpolate (bilinear, no antialias)",
        builders={"bicubic": build_bicubic, "bilinear": build_bilinear},
        constructor=Interpolation,
        presets=tuple(
            p
            for s in (2, 3, 4, 8)
            for p in (
                Preset(f"bicubic-x{s}", "bicubic", "MATLAB bicubic interpolation", {"scale": s}),
                Preset(f"bilinear-x{s}", "bilinear", "bilinear interpolation (the study's)", {"scale": s}),
            )
        ),
        hints=EngineHints(precisions=("fp32",)),
        purpose="interpolation",
        arch_ids=("nearest",),
        trainable=False,
    )
)
