"""SRVGGNetCompact: Real-ESRGAN's compact VGG-style network (realesr-animevideov3, realesr-general-x4v3).

A plain stack of 3x3 convs with PReLU, a final conv to ``out * s^2`` channels and pixel-shuffle, plus the
nearest-upsampled input as a residual. Keys: ``body.N.weight`` (convs and PReLU slopes interleaved).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from srlab.models.registry import Architecture, EngineHints, Preset, register
from srlab.models.srvgg_layouts import LAYOUTS, match_ncnn


class SRVGGNetCompact(nn.Module):
    arch = "srvgg"

    def __init__(
        self,
        *,
        scale: int = 4,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        num_feat: int = 64,
        num_conv: int = 16,
        act_type: str = "prelu",
    ) -> None:
        super().__init__()
        self.scale = int(scale)
        self.in_channels, self.out_channels = num_in_ch, num_out_ch
        self.hparams = dict(
            scale=scale,
            num_in_ch=num_in_ch,
            num_out_ch=num_out_ch,
            num_feat=num_feat,
            num_conv=num_conv,
            act_type=act_type,
        )
        self.receptive_radius = num_conv + 2

        def act() -> nn.Module:
            if act_type == "prelu":
                return nn.PReLU(num_parameters=num_feat)
            if act_type == "relu":
                return nn.ReLU(inplace=True)
            if act_type == "leakyrelu":
                return nn.LeakyReLU(negative_slope=0.1, inplace=True)
            raise ValueError(f"unknown act_type {act_type!r}")

        layers: list[nn.Module] = [nn.Conv2d(num_in_ch, num_feat, 3, 1, 1), act()]
        for _ in range(num_conv):
            layers += [nn.Conv2d(num_feat, num_feat, 3, 1, 1), act()]
        layers.append(nn.Conv2d(num_feat, num_out_ch * scale * scale, 3, 1, 1))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.pixel_shuffle(self.body(x), self.scale)
        return out + F.interpolate(x, scale_factor=self.scale, mode="nearest")


def build_srvgg(**kw) -> SRVGGNetCompact:
    return SRVGGNetCompact(**kw)


ARCHITECTURE = register(
    Architecture(
        family="srvgg",
        summary="SRVGGNetCompact: Real-ESRGAN's compact VGG-style network (realesr-animevideov3, general-x4v3)",
        source="Wang et al., Real-ESRGAN (ICCVW 2021); realesrgan/archs/srvgg_arch.py",
        builders={"srvgg": build_srvgg, "compact": build_srvgg},  # compact: the name spandrel uses
        constructor=SRVGGNetCompact,
        presets=(
            *(
                Preset(f"srvgg-animevideov3-x{s}", "srvgg", "realesr-animevideov3 layout", {"scale": s})
                for s in (2, 3, 4)
            ),
            Preset(
                "srvgg-general-x4v3", "srvgg", "realesr-general-x4v3 layout", {"scale": 4, "num_conv": 32}
            ),
        ),
        layouts=LAYOUTS,
        ncnn=match_ncnn,
        hints=EngineHints(ort_faster_on_cpu=True),
        weights=(
            "zoo:realesr-general-x4v3",
            "zoo:realesr-general-wdn-x4v3",
            "ncnn:realesr-animevideov3-x2",
            "ncnn:realesr-animevideov3-x3",
            "ncnn:realesr-animevideov3-x4",
        ),
    )
)
