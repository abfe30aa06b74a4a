"""LPIPS v0.1 (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep Features as a Perceptual Metric").

The computation of the ``lpips`` package (``lpips.LPIPS(net=..., version='0.1')``, non-spatial): inputs in
[-1, 1] are shifted and scaled per channel, passed through the backbone, each tapped activation is
unit-normalised over channels (``x / (||x|| + 1e-10)``), the squared differences are weighted by the learned
1x1 linear head (no bias), averaged over space and summed over the layers. Weights: torchvision's ImageNet
backbone and the published linear heads (:mod:`srlab.eval.perceptual.assets`).
"""

from __future__ import annotations

import os

import torch
from torch import nn

from srlab.errors import WeightsError
from srlab.eval.perceptual.assets import require
from srlab.eval.perceptual.nets import (
    ALEX_TAPS,
    VGG16_TAPS,
    alexnet_features,
    load_features,
    vgg16_features,
)
from srlab.weights.io import read_state_dict

__all__ = ["LPIPS", "build_lpips"]

_NETS = {
    "alex": (alexnet_features, ALEX_TAPS, (64, 192, 384, 256, 256), "alexnet"),
    "vgg": (vgg16_features, VGG16_TAPS, (64, 128, 256, 512, 512), "vgg16"),
}
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)


class LPIPS(nn.Module):
    """LPIPS distance; ``forward(a, b)`` takes (N, 3, H, W) in [-1, 1] and returns (N,) distances."""

    def __init__(self, net: str = "alex") -> None:
        super().__init__()
        if net not in _NETS:
            raise ValueError(f"LPIPS net must be one of {', '.join(_NETS)}, not {net!r}")
        make, taps, chns, _ = _NETS[net]
        self.net_name = net
        self.features = make()
        self.taps = taps
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in chns)
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    def _feats(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = (x - self.shift) / self.scale
        out = []
        last = self.taps[-1]
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.taps:
                out.append(x)
            if i == last:
                break
        return out

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        total = None
        for fa, fb, lin in zip(self._feats(a), self._feats(b), self.lins):
            na = fa / (torch.sqrt(torch.sum(fa**2, dim=1, keepdim=True)) + 1e-10)
            nb = fb / (torch.sqrt(torch.sum(fb**2, dim=1, keepdim=True)) + 1e-10)
            d = lin((na - nb) ** 2).mean([2, 3], keepdim=True)
            total = d if total is None else total + d
        return total.flatten()

    def load_heads(self, path: str | os.PathLike) -> LPIPS:
        """Load the published heads (keys ``lin{k}.model.1.weight``, as the lpips package saves them)."""

        sd = read_state_dict(path)
        for k, lin in enumerate(self.lins):
            w = sd.get(f"lin{k}.model.1.weight")
            if w is None or tuple(w.shape) != tuple(lin.weight.shape):
                raise WeightsError(
                    f"{path}: not the LPIPS v0.1 {self.net_name} heads (lin{k}.model.1.weight missing or of "
                    "another shape); delete it and run the command again to download it"
                )
            lin.weight.data.copy_(w)
        return self


def build_lpips(
    net: str = "alex",
    *,
    backbone: str | os.PathLike | None = None,
    heads: str | os.PathLike | None = None,
    progress: bool = True,
) -> LPIPS:
    """LPIPS with the published weights; paths default to :func:`srlab.eval.perceptual.assets.require`."""

    model = LPIPS(net)
    label = "LPIPS" if net == "alex" else f"LPIPS-{net}"
    bb_name = _NETS[net][3]
    bb = backbone or require(bb_name, metric=label, progress=progress)
    hd = heads or require(f"lpips-{net}", metric=label, progress=progress)
    load_features(model.features, bb, what=bb_name)
    return model.load_heads(hd)
