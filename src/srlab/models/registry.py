"""Build models by name and describe them.

Two kinds of names live here:

- *architectures* (``srcnn``, ``rrdbnet``, ``srvgg``, ``bicubic``, ...): a builder taking keyword
  hyper-parameters;
- *presets* (``srcnn-955-x2``, ``rrdbnet-x4``, ...): an architecture plus fixed hyper-parameters.

This module is a leaf: it imports no architecture. ``srlab.models`` (the package) imports every
architecture module, which registers itself here, so importing anything under ``srlab.models`` fills the
registry. Pretrained weights (the zoo, ncnn packages) are resolved by :func:`srlab.load_model`, which builds the
network through this registry.

:func:`build_model` returns ``(module, ModelDescriptor)``; :func:`describe` makes the descriptor of any
srlab module.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from srlab.errors import ConfigError


@dataclass(frozen=True)
class ModelDescriptor:
    """What a caller needs to know to run a model without reading its code."""

    name: str
    arch: str
    scale: int
    in_channels: int
    out_channels: int
    params: int
    color: str = (
        "rgb"  # "rgb": works on RGB; "y": works on the Y channel of YCbCr (grayscale images: their channel)
    )
    supports_fp16: bool = True
    supports_bf16: bool = True
    size_multiple: int = 1  # input H and W must be a multiple of this (pad otherwise)
    receptive_radius: int = 0  # LR pixels of context each output pixel depends on (tiling overlap hint)
    hparams: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


ARCHS: dict[str, Callable[..., Any]] = {}
PRESETS: dict[str, tuple[str, dict[str, Any], str]] = {}


def register_arch(name: str):
    """Decorator registering an architecture builder; a name already taken is an error (as torchvision's
    ``register_model``), so two modules can never silently shadow each other."""

    def deco(builder):
        if name in ARCHS or name in PRESETS:
            raise ValueError(f"model name {name!r} is already registered")
        ARCHS[name] = builder
        return builder

    return deco


def register_preset(name: str, arch: str, doc: str = "", **hparams: Any) -> None:
    if name in PRESETS or name in ARCHS:
        raise ValueError(f"model name {name!r} is already registered")
    PRESETS[name] = (arch, hparams, doc)


def list_models(pattern: str = "*", *, include_archs: bool = True) -> list[str]:
    """Registered preset (and architecture) names matching a glob pattern."""
    names = set(PRESETS)
    if include_archs:
        names |= set(ARCHS)
    return sorted(n for n in names if fnmatch.fnmatch(n, pattern))


def resolve(name: str, **overrides: Any) -> tuple[str, dict[str, Any]]:
    """(architecture, hyper-parameters) for a preset or architecture name."""
    if name in PRESETS:
        arch, hp, _ = PRESETS[name]
        return arch, {**hp, **overrides}
    if name in ARCHS:
        return name, dict(overrides)
    close = difflib.get_close_matches(name, list(PRESETS) + list(ARCHS), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ConfigError(f"unknown model {name!r}{hint}; `srlab models` lists the known names")


# Initialisers (torch.nn.init and the in-place tensor methods they call) that a meta-device build skips.
_INIT_OPS = frozenset(
    {
        "normal_",
        "uniform_",
        "zero_",
        "fill_",
        "zeros_",
        "ones_",
        "constant_",
        "kaiming_normal_",
        "kaiming_uniform_",
        "xavier_uniform_",
        "xavier_normal_",
        "trunc_normal_",
        "orthogonal_",
        "copy_",
        "mul_",
        "add_",
        "clamp_",
        "dirac_",
        "eye_",
    }
)


def build_model(name: str, *, init_weights: bool = True, device: str = "cpu", **hparams: Any):
    """Build a model by preset or architecture name. Returns ``(module, descriptor)``.

    ``init_weights=False`` skips the random initialisation (the module is built on the meta device and
    given uninitialised storage on ``device``): use it only when every tensor is loaded right after, as the
    weight loaders do: random initialisation of a large RRDBNet is slow on a CPU. ``device="meta"`` (with
    ``init_weights=False``) keeps the module without storage: enough for its descriptor.
    """
    arch, hp = resolve(name, **hparams)
    try:
        if init_weights:
            model = ARCHS[arch](**hp)
        else:
            import torch
            from torch.overrides import TorchFunctionMode

            class _SkipInit(TorchFunctionMode):
                # In-place initialisers on meta tensors still run PyTorch's Python decompositions (slow, and
                # pointless: every tensor is overwritten); they return their tensor unchanged here.
                def __torch_function__(self, func, types, args=(), kwargs=None):
                    kwargs = kwargs or {}
                    t = args[0] if args else kwargs.get("tensor")
                    if (
                        getattr(func, "__name__", "") in _INIT_OPS
                        and isinstance(t, torch.Tensor)
                        and t.is_meta
                    ):
                        return t
                    return func(*args, **kwargs)

            with torch.device("meta"), _SkipInit():
                model = ARCHS[arch](**hp)
            if device != "meta":
                model = model.to_empty(device=device)
    except TypeError as exc:  # unknown keyword
        raise ConfigError(f"bad hyper-parameters for {arch!r}: {exc}") from None
    return model, describe(model, name=name)


def describe(model, name: str | None = None) -> ModelDescriptor:
    """Descriptor of an srlab model (any module with ``arch`` and ``hparams`` attributes)."""
    arch = getattr(model, "arch", None)
    if arch is None:
        raise ConfigError(f"{type(model).__name__} is not an srlab model (no 'arch' attribute)")
    params = sum(p.numel() for p in model.parameters())
    return ModelDescriptor(
        name=name or arch,
        arch=arch,
        scale=int(getattr(model, "scale", 1)),
        in_channels=int(getattr(model, "in_channels", 3)),
        out_channels=int(getattr(model, "out_channels", 3)),
        params=params,
        color=getattr(model, "color", "rgb"),
        supports_fp16=bool(getattr(model, "supports_fp16", True)),
        supports_bf16=bool(getattr(model, "supports_bf16", True)),
        size_multiple=int(getattr(model, "size_multiple", 1)),
        receptive_radius=int(getattr(model, "receptive_radius", 0)),
        hparams=dict(getattr(model, "hparams", {})),
    )
