"""The three names spandrel imports from torchvision.transforms.functional; none may be called."""

from __future__ import annotations

import enum


class InterpolationMode(enum.Enum):
    NEAREST = "nearest"
    BILINEAR = "bilinear"
    BICUBIC = "bicubic"


def _unavailable(name: str):
    def fn(*args, **kwargs):
        raise NotImplementedError(f"torchvision.transforms.functional.{name} is a test stand-in")

    fn.__name__ = name
    return fn


rotate = _unavailable("rotate")
normalize = _unavailable("normalize")
