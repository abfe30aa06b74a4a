"""DISTS (Ding et al. 2020, "Image Quality Assessment: Unifying Structure and Texture Similarity").

The authors' ``DISTS_pytorch`` computation: VGG16 with its max-pools replaced by L2 pooling (a 3x3 Hann
window, stride 2), ImageNet normalisation, and per channel of the input and of five stages a texture term
(means) and a structure term (variances, covariance) weighted by the learned ``alpha``/``beta``;
``1 - (sum alpha*S1 + sum beta*S2)``, lower is better. Inputs (N, 3, H, W) in [0, 1].
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn

from srlab.errors import WeightsError
from srlab.eval.perceptual.assets import require
from srlab.eval.perceptual.nets import VGG16_CFG, VGG16_TAPS, load_features
from srlab.weights.io import read_state_dict

__all__ = ["DISTS", "build_dists"]

_CHNS = (3, 64, 128, 256, 512, 512)
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


class L2Pool(nn.Module):
    """sqrt(conv(x^2, hann) + 1e-12), stride 2, per channel (the reference's ``L2pooling``)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        a = torch.tensor([0.5, 1.0, 0.5])  # numpy.hanning(5)[1:-1]
        g = a[:, None] * a[None, :]
        g = g / g.sum()
        # not persistent: the filter is fixed, and torchvision's VGG16 file has no such key
        self.register_buffer("filter", g[None, None].repeat(channels, 1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.conv2d(x**2, self.filter, stride=2, padding=1, groups=x.shape[1])
        return (out + 1e-12).sqrt()


def _features() -> nn.Sequential:
    layers: list[nn.Module] = []
    cin = 3
    for v in VGG16_CFG[:-1]:  # DISTS stops at relu5_3 (index 29)
        if v == "M":
            layers.append(L2Pool(cin))
        else:
            layers += [nn.Conv2d(cin, int(v), kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            cin = int(v)
    return nn.Sequential(*layers)


class DISTS(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = _features()
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1))
        self.alpha = nn.Parameter(torch.full((1, sum(_CHNS), 1, 1), 0.1))
        self.beta = nn.Parameter(torch.full((1, sum(_CHNS), 1, 1), 0.1))
        self.requires_grad_(False)
        self.eval()

    def _feats(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = [x]
        h = (x - self.mean) / self.std
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in VGG16_TAPS:
                out.append(h)
        return out

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        f0, f1 = self._feats(x), self._feats(y)
        c1 = c2 = 1e-6
        w_sum = self.alpha.sum() + self.beta.sum()
        alpha = torch.split(self.alpha / w_sum, list(_CHNS), dim=1)
        beta = torch.split(self.beta / w_sum, list(_CHNS), dim=1)
        dist1 = dist2 = 0
        for k in range(len(_CHNS)):
            xm = f0[k].mean([2, 3], keepdim=True)
            ym = f1[k].mean([2, 3], keepdim=True)
            s1 = (2 * xm * ym + c1) / (xm**2 + ym**2 + c1)
            dist1 = dist1 + (alpha[k] * s1).sum(1, keepdim=True)
            xv = ((f0[k] - xm) ** 2).mean([2, 3], keepdim=True)
            yv = ((f1[k] - ym) ** 2).mean([2, 3], keepdim=True)
            cov = (f0[k] * f1[k]).mean([2, 3], keepdim=True) - xm * ym
            s2 = (2 * cov + c2) / (xv + yv + c2)
            dist2 = dist2 + (beta[k] * s2).sum(1, keepdim=True)
        return (1 - (dist1 + dist2)).flatten()

    def load_weights(self, path: str | os.PathLike) -> DISTS:
        sd = read_state_dict(path)
        for key in ("alpha", "beta"):
            w = sd.get(key)
            if w is None or tuple(w.shape) != tuple(getattr(self, key).shape):
                raise WeightsError(
                    f"{path}: not the DISTS weights ({key} missing or of another shape); delete it and run "
                    "the command again to download it"
                )
            getattr(self, key).data.copy_(w)
        return self


def build_dists(
    *,
    backbone: str | os.PathLike | None = None,
    weights: str | os.PathLike | None = None,
    progress: bool = True,
) -> DISTS:
    """DISTS with torchvision's VGG16 and the published alpha/beta (paths default to the assets)."""

    model = DISTS()
    bb = backbone or require("vgg16", metric="DISTS", progress=progress)
    wt = weights or require("dists", metric="DISTS", progress=progress)
    load_features(model.features, bb, what="vgg16")
    return model.load_weights(wt)
