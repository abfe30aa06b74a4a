"""A stand-in ``torchvision`` with only the network definitions the reference LPIPS and DISTS code builds.

The reference packages (``lpips`` 0.1.4, ``DISTS_pytorch`` 0.1) import torchvision, which has no wheel that
works with the pinned CPU torch. Their code only calls ``models.alexnet(...).features`` and
``models.vgg16(...).features``; these are torchvision's layer lists written out in plain torch (independently
of srlab's own copies in ``srlab.eval.perceptual.nets``), randomly initialised: ImageNet weights cannot
be downloaded here, so the equality tests copy one random backbone into both implementations.

:func:`install` puts the stand-in into ``sys.modules`` through a pytest ``monkeypatch`` (undone after the
test); nothing in ``src/`` imports it. (``tests/stubs/torchvision/`` is a different stand-in, for spandrel.)
"""

from __future__ import annotations

import importlib.machinery
import sys
import types

from torch import nn


class _Net(nn.Module):
    def __init__(self, features: nn.Sequential) -> None:
        super().__init__()
        self.features = features


def alexnet(pretrained: bool = False, weights=None, **kwargs) -> _Net:
    return _Net(
        nn.Sequential(
            nn.Conv2d(3, 64, 11, 4, 2),
            nn.ReLU(True),
            nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2),
            nn.ReLU(True),
            nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1),
            nn.ReLU(True),
            nn.Conv2d(384, 256, 3, padding=1),
            nn.ReLU(True),
            nn.Conv2d(256, 256, 3, padding=1),
            nn.ReLU(True),
            nn.MaxPool2d(3, 2),
        )
    )


def vgg16(pretrained: bool = False, weights=None, **kwargs) -> _Net:
    cfg = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
    layers: list[nn.Module] = []
    c = 3
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU(True)]
            c = v
    return _Net(nn.Sequential(*layers))


def install(monkeypatch) -> None:
    """Make ``import torchvision`` / ``from torchvision import models, transforms`` give this stand-in."""
    tv = types.ModuleType("torchvision")
    tv.__spec__ = importlib.machinery.ModuleSpec("torchvision", None)
    models = types.ModuleType("torchvision.models")
    models.alexnet, models.vgg16 = alexnet, vgg16
    transforms = types.ModuleType("torchvision.transforms")  # DISTS_pt imports it for its own __main__
    tv.models, tv.transforms = models, transforms
    for name, mod in (
        ("torchvision", tv),
        ("torchvision.models", models),
        ("torchvision.transforms", transforms),
    ):
        monkeypatch.setitem(sys.modules, name, mod)
    for name in [n for n in sys.modules if n == "lpips" or n.startswith(("lpips.", "DISTS_pytorch"))]:
        monkeypatch.delitem(sys.modules, name)  # re-import the references against this stand-in
