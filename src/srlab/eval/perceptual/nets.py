"""AlexNet and VGG16 feature stacks in plain torch, with torchvision's layer indices (``features.N.*``).

torchvision cannot be imported here (no wheel works with the pinned CPU torch), and the perceptual metrics
need only the convolutional part of two of its networks. The layers are built exactly as
``torchvision.models.alexnet`` / ``vgg16`` build their ``features`` so that torchvision's ImageNet files
(``alexnet-owt-7be5be79.pth``, ``vgg16-397923af.pth``) load into them key for key; ``classifier.*`` tensors
are ignored.
"""

from __future__ import annotations

import os

from torch import nn

from srlab.errors import WeightsError
from srlab.weights.io import read_state_dict

__all__ = ["ALEX_TAPS", "VGG16_CFG", "VGG16_TAPS", "alexnet_features", "load_features", "vgg16_features"]

VGG16_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
ALEX_TAPS = (1, 4, 7, 9, 11)  # relu1 .. relu5 (LPIPS's slices end after these indices)
VGG16_TAPS = (3, 8, 15, 22, 29)  # relu1_2, relu2_2, relu3_3, relu4_3, relu5_3


def alexnet_features() -> nn.Sequential:
    """torchvision ``AlexNet().features`` (the "one weird trick" variant torchvision ships)."""
    return nn.Sequential(
        nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(64, 192, kernel_size=5, padding=2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(192, 384, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(256, 256, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
    )


def vgg16_features() -> nn.Sequential:
    """torchvision ``vgg16().features`` (configuration "D", no batch norm)."""
    layers: list[nn.Module] = []
    cin = 3
    for v in VGG16_CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(cin, int(v), kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            cin = int(v)
    return nn.Sequential(*layers)


def load_features(features: nn.Sequential, path: str | os.PathLike, *, what: str) -> nn.Sequential:
    """Load the ``features.*`` tensors of a torchvision checkpoint (weights_only) into ``features``."""

    sd = read_state_dict(path)
    feats = {k[len("features.") :]: v for k, v in sd.items() if k.startswith("features.")}
    want = features.state_dict()
    bad = [k for k in want if k not in feats or tuple(feats[k].shape) != tuple(want[k].shape)]
    if bad or len(feats) != len(want):
        raise WeightsError(
            f"{path}: not torchvision's {what} (features.{bad[0] if bad else '?'} missing or of another "
            f"shape); delete it and let srlab download torchvision's ImageNet {what} file"
        )
    features.load_state_dict(feats, strict=True)
    return features
