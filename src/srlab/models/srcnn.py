"""SRCNN (Dong et al., 2014/2016): patch extraction, non-linear mapping, reconstruction.

The network works on an image already interpolated to the target size. So that every srlab model has the
same interface (``model(lr) -> sr``), :class:`SRCNN` does that interpolation itself (``upsampler``:
``bicubic`` = MATLAB, the papers' choice; ``bilinear`` = the study's) unless ``scale == 1``; call
:meth:`SRCNN.forward_upsampled` to run the three convolutions on an input you interpolated yourself.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from srlab.imaging.resize import upsample
from srlab.models.registry import Architecture, EngineHints, Preset, register
from srlab.models.srcnn_layouts import LAYOUTS


class SRCNN(nn.Module):
    arch = "srcnn"

    def __init__(
        self,
        *,
        scale: int = 2,
        num_channels: int = 3,
        n1: int = 64,
        n2: int = 32,
        f1: int = 9,
        f2: int = 5,
        f3: int = 5,
        upsampler: str = "bicubic",
        padding_mode: str = "replicate",
    ) -> None:
        super().__init__()
        if upsampler not in ("bicubic", "bilinear"):
            raise ValueError(f"SRCNN upsampler must be 'bicubic' or 'bilinear', not {upsampler!r}")
        self.scale = int(scale)
        self.in_channels = self.out_channels = int(num_channels)
        self.color = "y" if num_channels == 1 else "rgb"
        self.upsampler = upsampler
        self.hparams = dict(
            scale=scale,
            num_channels=num_channels,
            n1=n1,
            n2=n2,
            f1=f1,
            f2=f2,
            f3=f3,
            upsampler=upsampler,
            padding_mode=padding_mode,
        )
        # 'same' padding so the output has the input's size (the paper used valid convolutions and
        # compared the centre; replicate padding keeps borders close to that). The study padded with zeros
        # (``padding_mode="zeros"``), which changes its border pixels, so its weights need that mode.
        self.conv1 = nn.Conv2d(num_channels, n1, f1, padding=f1 // 2, padding_mode=padding_mode)
        self.conv2 = nn.Conv2d(n1, n2, f2, padding=f2 // 2, padding_mode=padding_mode)
        self.conv3 = nn.Conv2d(n2, num_channels, f3, padding=f3 // 2, padding_mode=padding_mode)
        self.relu = nn.ReLU(inplace=True)
        # Each output pixel sees (f1 + f2 + f3 - 3) / 2 upsampled pixels on each side, plus the 2-pixel
        # reach of the bicubic kernel, in LR pixels.
        self.receptive_radius = (f1 + f2 + f3 - 3) // 2 // max(1, self.scale) + 3
        self._init_weights()

    def _init_weights(self) -> None:
        for conv in (self.conv1, self.conv2):
            nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
            nn.init.zeros_(conv.bias)
        nn.init.normal_(self.conv3.weight, std=1e-3)
        nn.init.zeros_(self.conv3.bias)

    def forward_upsampled(self, x: torch.Tensor, *, padded: bool = True) -> torch.Tensor:
        """The three convolutions; ``padded=False``: without padding (the paper's training), so the output
        is ``f1 + f2 + f3 - 3`` pixels smaller than ``x`` in each dimension."""
        if not padded:
            x = self.relu(F.conv2d(x, self.conv1.weight, self.conv1.bias))
            x = self.relu(F.conv2d(x, self.conv2.weight, self.conv2.bias))
            return F.conv2d(x, self.conv3.weight, self.conv3.bias)
        x = self.relu(self.conv1(x))
        x = self.relu(self.conv2(x))
        return self.conv3(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.scale != 1:
            x = upsample(x, self.scale, self.upsampler)
        # Residual-free SRCNN as in the paper: predict the HR image from the interpolated one.
        return self.forward_upsampled(x)


def build_srcnn(**kw) -> SRCNN:
    return SRCNN(**kw)


def _presets() -> tuple[Preset, ...]:
    out = []
    for s in (2, 3, 4):
        out += [
            Preset(f"srcnn-955-x{s}", "srcnn", "SRCNN 9-5-5, RGB, MATLAB-bicubic input", {"scale": s}),
            Preset(
                f"srcnn-955-y-x{s}",
                "srcnn",
                "SRCNN 9-5-5 on Y (the paper's setting)",
                {"scale": s, "num_channels": 1},
            ),
            Preset(
                f"srcnn-915-y-x{s}", "srcnn", "SRCNN 9-1-5 on Y", {"scale": s, "num_channels": 1, "f2": 1}
            ),
        ]
    out.append(
        Preset(
            "srcnn-study-x2",
            "srcnn",
            "SRCNN 9-5-5, RGB, bilinear input, zero padding (the study's)",
            {"scale": 2, "upsampler": "bilinear", "padding_mode": "zeros"},
        )
    )
    return tuple(out)


ARCHITECTURE = register(
    Architecture(
        family="srcnn",
        summary="SRCNN: three convolutions on the interpolated image",
        source="Dong et al., SRCNN (ECCV 2014 / TPAMI 2016)",
        builders={"srcnn": build_srcnn},
        constructor=SRCNN,
        presets=_presets(),
        layouts=LAYOUTS,
        hints=EngineHints(ort_faster_on_cpu=True),
        weights=(
            "shipped:srcnn-x2",
            "shipped:srcnn-x3",
            "shipped:srcnn-x4",
            "shipped:srcnn-study-x2-recipe",
            "shipped:srcnn-study-improved-x2",
        ),
    )
)
