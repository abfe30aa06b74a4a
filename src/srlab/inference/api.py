""":func:`upscale` (``srlab.upscale``): a PIL image or numpy array in, the same kind out, in one call."""

from __future__ import annotations

import os
from typing import Any

from srlab.inference.resolve import DEFAULT_MODEL
from srlab.inference.upscaler import Upscaler

__all__ = ["upscale"]

_CACHE: dict[tuple, Upscaler] = {}


def upscale(
    image,
    model: Any = DEFAULT_MODEL,
    *,
    outscale: float | None = None,
    tile: int | None = None,
    tile_overlap: int | None = None,
    precision: str = "auto",
    device: str = "auto",
    batch_size: int | None = None,
    progress: bool = False,
    alpha: str = "bicubic",
):
    """Upscale a PIL image or numpy array with ``model``; returns the same kind (see :class:`Upscaler`).

    Models given by name or path are loaded once and cached (one entry) for repeated calls.
    """
    settings = dict(
        tile=tile,
        tile_overlap=tile_overlap,
        precision=precision,
        device=device,
        batch_size=batch_size,
        progress=progress,
        alpha=alpha,
    )
    if isinstance(model, (str, os.PathLike)):
        key = (str(model), tuple(sorted(settings.items())))
        up = _CACHE.get(key)
        if up is None:
            _CACHE.clear()
            up = _CACHE[key] = Upscaler(model, **settings)
    else:
        up = Upscaler(model, **settings)
    return up(image, outscale=outscale)
