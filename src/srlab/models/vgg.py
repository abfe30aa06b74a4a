"""VGG19 feature network with torchvision-compatible keys (``features.N.weight``), without torchvision.

Layer names follow the usual convention (``conv5_4``, ``relu3_4``, ``pool3``); :data:`VGG19_LAYERS` maps
them to indices in ``features``. ImageNet weights come from the zoo (torchvision's ``vgg19-dcbb9e9d.pth``)
through :func:`srlab.weights` -- this module only defines the network.
"""

from __future__ import annotations

import torch
from torch import nn

from srlab.models.registry import Architecture, register

_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _layer_names() -> list[str]:
    names, block, conv = [], 1, 1
    for v in _CFG:
        if v == "M":
            names.append(f"pool{block}")
            block, conv = block + 1, 1
        else:
            names += [f"conv{block}_{conv}", f"relu{block}_{conv}"]
            conv += 1
    return names


VGG19_LAYERS: dict[str, int] = {n: i for i, n in enumerate(_layer_names())}


class VGG19(nn.Module):
    """VGG19 convolutional features; ``forward(x, layers)`` returns a dict of the named activations."""

    arch = "vgg19"

    def __init__(self) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.scale = 3, 512, 1
        self.hparams: dict = {}
        layers: list[nn.Module] = []
        cin = 3
        for v in _CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU(inplace=False)]
                cin = v
        self.features = nn.Sequential(*layers)

    def truncate(self, last_layer: str) -> None:
        """Drop every layer after ``last_layer`` (saves compute for perceptual losses)."""
        idx = layer_index(last_layer)
        self.features = nn.Sequential(*list(self.features.children())[: idx + 1])

    def forward(self, x: torch.Tensor, layers: list[str] | None = None) -> dict[str, torch.Tensor]:
        wanted = {layer_index(n): n for n in (layers or ["conv5_4"])}
        last = max(wanted)
        out: dict[str, torch.Tensor] = {}
        for i, mod in enumerate(self.features):
            x = mod(x)
            if i in wanted:
                out[wanted[i]] = x
            if i >= last:
                break
        return out


def layer_index(name: str | int) -> int:
    if isinstance(name, int):
        return name
    if name not in VGG19_LAYERS:
        raise ValueError(f"unknown VGG19 layer {name!r}; use e.g. conv5_4, relu3_4, pool3")
    return VGG19_LAYERS[name]


def build_vgg19(**kw) -> VGG19:
    return VGG19(**kw)


ARCHITECTURE = register(
    Architecture(
        family="vgg19",
        summary="VGG19 features for perceptual losses (torchvision key layout)",
        source="Simonyan & Zisserman 2015; torchvision's vgg19 weights",
        builders={"vgg19": build_vgg19},
        constructor=VGG19,
        purpose="features",
        weights=("zoo:vgg19",),
        trainable=False,
    )
)
