""":func:`upscale` (``srlab.upscale``): a PIL image or numpy array in, the same kind out, in one call."""

from __future__ import annotations

import os
from typing import Any

from srlab.inference.options import UpscaleOptions
from srlab.inference.resolve import DEFAULT_MODEL
from srlab.inference.upscaler import Upscaler

__all__ = ["upscale"]

_CACHE: dict[tuple, Upscaler] = {}


def upscale(image, model: Any = DEFAULT_MODEL, *, progress: bool = False, **options: Any):
    """Upscale a PIL image or numpy array with ``model``; returns the same kind (see :class:`Upscaler`).

    ``options``: the fields of :class:`~srlab.inference.options.UpscaleOptions` (``outscale``, ``tile``,
    ``tile_overlap``, ``batch_size``, ``precision``, ``device``, ``backend``, ``compile``, ``fuse``,
    ``channels_last``, ``alpha``); another name is a TypeError, a bad value a ConfigError, before any
    model is loaded. Models given by name or path are loaded once and cached (one entry) for repeated calls.
    """
    opts = UpscaleOptions.make(**options)
    engine = opts.replace(outscale=None)  # the outscale is per call: no new model for another one
    if isinstance(model, (str, os.PathLike)):
        key = (str(model), engine, progress)
        up = _CACHE.get(key)
        if up is None:
            _CACHE.clear()
            up = _CACHE[key] = Upscaler(model, engine, progress=progress)
    else:
        up = Upscaler(model, engine, progress=progress)
    return up(image, outscale=opts.outscale)
