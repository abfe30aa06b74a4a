"""srlab: train, evaluate, compare and run single-image super-resolution models.

``import srlab`` is light: it imports no optional dependency and does not import torch until a
function that needs it is used. The public API:

- :func:`srlab.load_model` -- a model by registered name, zoo name or file path, with its descriptor.
- :func:`srlab.upscale` -- upscale a PIL image or numpy array, returning the same kind.
- :func:`srlab.build_model` / :func:`srlab.list_models` -- architectures by name.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "build_model", "list_models", "load_model", "upscale", "SrlabError"]

from srlab.errors import SrlabError  # noqa: E402  (tiny module, no dependencies)


def __getattr__(name: str):
    if name in ("build_model", "list_models"):
        from srlab.models import registry

        return getattr(registry, name)
    if name == "load_model":
        from srlab.weights.loader import load_model

        return load_model
    if name == "upscale":
        from srlab.inference import upscale

        return upscale
    raise AttributeError(f"module 'srlab' has no attribute {name!r}")
