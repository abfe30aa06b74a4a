"""Run a super-resolution model on images of any size, mode and bit depth.

:class:`Upscaler` holds a model, its descriptor, an engine (device, precision, backend, layout, compile)
and a tiling policy; the CLI (``srlab upscale``), the evaluation and the benchmarks all go through it.
:func:`upscale` is the one-call API (``srlab.upscale``): a PIL image or numpy array in, the same kind out.

- :mod:`~srlab.inference.resolve`: a name, path, module or ``(module, descriptor)`` -> module + descriptor;
- :mod:`~srlab.inference.tiling`: tiles, their context and the blend that hides their edges;
- :mod:`~srlab.inference.engine`: backend, device, precision, channels_last, fused blocks, torch.compile;
- :mod:`~srlab.inference.upscaler`: colour, alpha, 16-bit and ``outscale`` on top; files in and out;
- :mod:`~srlab.inference.api`: :func:`upscale`.
"""

from __future__ import annotations

from srlab.inference.api import upscale
from srlab.inference.resolve import DEFAULT_MODEL, resolve_model
from srlab.inference.tiling import AxisTile, TilePlan
from srlab.inference.upscaler import Upscaler

__all__ = ["DEFAULT_MODEL", "AxisTile", "TilePlan", "Upscaler", "resolve_model", "upscale"]
