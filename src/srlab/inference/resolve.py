"""What to run: a model name or path, a module or ``(module, descriptor)`` -> module and descriptor."""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn

from srlab.errors import ConfigError
from srlab.inference.realesrgan import REALESRGAN_MODELS
from srlab.models.registry import ModelDescriptor, describe
from srlab.weights.loader import load_model

__all__ = ["DEFAULT_MODEL", "canonical_name", "resolve_model"]

DEFAULT_MODEL = "realesrgan-x4plus"


def canonical_name(model: str | os.PathLike) -> str | os.PathLike:
    """srlab's name for a Real-ESRGAN model name (``realesr-animevideov3`` -> ``realesr-animevideov3-x4``):
    the one alias table (:data:`srlab.inference.realesrgan.REALESRGAN_MODELS`) for every command that takes
    a model; paths and other names are returned as they are."""
    if isinstance(model, str) and not os.path.exists(model):
        target = REALESRGAN_MODELS.get(model)
        if target is not None:
            return target[0]
    return model


def resolve_model(model: Any) -> tuple[nn.Module, ModelDescriptor]:
    """(module, descriptor) from a name, a path, a ``(module, descriptor)`` pair or a module.

    Names and paths are loaded by :func:`srlab.load_model` (on the CPU); a module brings its own
    ``descriptor`` or is described from its attributes, and a foreign module (not an srlab model) gets
    one inferred by :func:`_infer_descriptor`.
    """
    if isinstance(model, tuple) and len(model) == 2 and isinstance(model[0], nn.Module):
        return model[0], model[1]
    if isinstance(model, nn.Module):
        desc = getattr(model, "descriptor", None)
        if isinstance(desc, ModelDescriptor):
            return model, desc
        try:
            return model, describe(model)
        except ConfigError:
            return model, _infer_descriptor(model)
    if isinstance(model, (str, os.PathLike)):
        return load_model(canonical_name(model), device="cpu")
    raise TypeError(
        f"model must be a name, a path, an nn.Module or (module, descriptor); got {type(model).__name__}"
    )


def _infer_descriptor(model: nn.Module) -> ModelDescriptor:
    """Descriptor of a foreign module: channels from its first conv, scale by running a 16x16 input."""
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    cin = convs[0].in_channels if convs else 3
    p = next(model.parameters(), None)
    with torch.inference_mode():
        x = torch.zeros(1, cin, 16, 16, device=p.device if p is not None else "cpu")
        y = model.eval()(x)
    scale = max(1, round(y.shape[-1] / 16))
    return ModelDescriptor(
        name=type(model).__name__,
        arch=type(model).__name__,
        scale=scale,
        in_channels=cin,
        out_channels=int(y.shape[1]),
        params=sum(q.numel() for q in model.parameters()),
        color="y" if cin == 1 else "rgb",
        receptive_radius=16,
    )
