"""Run a super-resolution model on images of any size, mode and bit depth.

:class:`Upscaler` holds a model, its descriptor, an engine (device, precision, backend, layout, compile)
and a tiling policy; the CLI (``srlab upscale``) and the benchmarks go through it. :func:`upscale` is the
one-call API (``srlab.upscale``): a PIL image or numpy array in, the same kind out.

- :mod:`~srlab.inference.options`: :class:`UpscaleOptions`, the tuning options declared once;
- :mod:`~srlab.inference.outputs`: output names, collisions, no overwrites, resume (CLI, API, service);
- :mod:`~srlab.inference.resolve`: a name, path, module or ``(module, descriptor)`` -> module + descriptor;
- :mod:`~srlab.inference.tiling`: tiles, their context and the blend that hides their edges;
- :mod:`~srlab.inference.engine`: backend, device, precision, channels_last, fused blocks, torch.compile;
- :mod:`~srlab.inference.upscaler`: colour, alpha, 16-bit and ``outscale`` on top; files in and out;
- :mod:`~srlab.inference.api`: :func:`upscale`.

The names below are imported on first use, so that ``srlab.inference.options`` and ``.outputs`` (which
``srlab upscale`` builds its parser from) come without torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from srlab.inference.api import upscale
    from srlab.inference.options import UpscaleOptions
    from srlab.inference.resolve import DEFAULT_MODEL, resolve_model
    from srlab.inference.tiling import AxisTile, TilePlan
    from srlab.inference.upscaler import Upscaler

_HOMES = {
    "upscale": "api",
    "UpscaleOptions": "options",
    "DEFAULT_MODEL": "resolve",
    "resolve_model": "resolve",
    "AxisTile": "tiling",
    "TilePlan": "tiling",
    "Upscaler": "upscaler",
}

__all__ = [
    "DEFAULT_MODEL",
    "AxisTile",
    "TilePlan",
    "UpscaleOptions",
    "Upscaler",
    "resolve_model",
    "upscale",
]


def __getattr__(name: str):
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'srlab.inference' has no attribute {name!r}")
    return getattr(importlib.import_module(f"srlab.inference.{home}"), name)
