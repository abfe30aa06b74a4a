"""Running spandrel's upstream networks as srlab modules: importing one network's module (with or without
spandrel's top-level registry, which needs torchvision), :class:`SpandrelNet`, the wrapper that gives an
upstream network srlab's descriptor attributes and keeps the upstream key layout in its state dict, and
:func:`record`, which turns one :class:`Upstream` row of :mod:`srlab.models.spandrel_archs` into a registry
record.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from srlab.errors import ConfigError
from srlab.models.registry import Architecture, EngineHints, Preset

__all__ = [
    "INSTALL",
    "TORCHVISION",
    "SpandrelNet",
    "Upstream",
    "UpstreamClass",
    "import_arch_module",
    "pad_reflect",
    "realcugan_select",
    "record",
    "scales",
]

INSTALL = 'pip install "srlab[archs]"'
TORCHVISION = (
    "pip install torch torchvision --index-url https://download.pytorch.org/whl/cpu "
    "(README: More architectures)"
)


def import_arch_module(path: str):
    """``spandrel.architectures.<path>``, importing spandrel's top-level registry only where it works."""
    full = f"spandrel.architectures.{path}"
    if full in sys.modules:
        return sys.modules[full]
    try:
        import spandrel  # noqa: F401  (its registry imports torchvision, through LaMa)
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] == "spandrel":
            raise ConfigError(f"the spandrel backend is not installed: {INSTALL}") from None
        return _import_without_registry(full)
    except (ImportError, RuntimeError, AttributeError):  # a torchvision built for another torch
        return _import_without_registry(full)
    return importlib.import_module(full)


def _import_without_registry(full: str):
    spec = importlib.util.find_spec("spandrel")
    if spec is None:
        raise ConfigError(f"the spandrel backend is not installed: {INSTALL}")
    pkg = importlib.util.module_from_spec(spec)  # the package object; its __init__ is not run
    sys.modules["spandrel"] = pkg
    try:
        return importlib.import_module(full)
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] == "torchvision":
            raise ConfigError(f"spandrel's {full.split('.')[2]} needs torchvision: {TORCHVISION}") from None
        raise
    finally:
        if sys.modules.get("spandrel") is pkg:
            del sys.modules["spandrel"]


def pad_reflect(x: torch.Tensor, pad_w: int, pad_h: int) -> torch.Tensor:
    """Pad right/bottom: reflect as far as the image allows, then replicate (what spandrel's call does)."""
    rw, rh = min(pad_w, x.shape[-1] - 1), min(pad_h, x.shape[-2] - 1)
    if rw or rh:
        x = torch.nn.functional.pad(x, (0, rw, 0, rh), mode="reflect")
    if pad_w - rw or pad_h - rh:
        x = torch.nn.functional.pad(x, (0, pad_w - rw, 0, pad_h - rh), mode="replicate")
    return x


# ------------------------------------------------------------------------------------------- the wrapper
def _strip_prefix(module, state_dict, prefix, local_metadata) -> None:
    inner = prefix + "model."
    for k in [k for k in state_dict if k.startswith(inner)]:
        state_dict[prefix + k[len(inner) :]] = state_dict.pop(k)


def _add_prefix(module, state_dict, prefix, *args) -> None:
    for k in [k for k in state_dict if k.startswith(prefix) and not k.startswith(prefix + "model.")]:
        state_dict[prefix + "model." + k[len(prefix) :]] = state_dict.pop(k)


class SpandrelNet(nn.Module):
    """An upstream network built by srlab, with srlab's descriptor attributes.

    Its state dict has the upstream keys (no ``model.`` prefix). ``forward`` pads the input to the
    network's size requirements and crops the output back."""

    def __init__(self, arch: str, ident: str, net: nn.Module, hparams: Mapping[str, Any]) -> None:
        super().__init__()
        self.model = net
        self.arch = arch
        self.hparams = dict(hparams)
        desc = _spandrel_descriptor(ident, net)
        self.size_requirements = desc.size_requirements
        self.scale = int(desc.scale)
        self.in_channels = int(desc.input_channels)
        self.out_channels = int(desc.output_channels)
        self.color = "y" if self.in_channels == 1 else "rgb"
        self.supports_fp16 = bool(desc.supports_half)
        self.supports_bf16 = bool(desc.supports_bfloat16)
        self.size_multiple = int(desc.size_requirements.multiple_of)
        self.receptive_radius = 16 if getattr(desc.tiling, "name", "SUPPORTED") == "SUPPORTED" else 32
        # hyper-parameters the tensors do not record (CRAFT's window, ATD's category size, ...) are assumed
        # by spandrel's loader: say so when this network's differ, since spandrel would run its file otherwise
        theirs = getattr(desc.model, "hyperparameters", {}) or {}
        self.spandrel_reads_otherwise = {
            k: theirs[k] for k, v in self.hparams.items() if k in theirs and _plain(theirs[k]) != _plain(v)
        }
        if self.spandrel_reads_otherwise:
            warnings.warn(
                f"{arch}: spandrel's own loader reads this network's file with {self.spandrel_reads_otherwise} "
                "(the tensors do not record these); srlab loads it as built",
                stacklevel=3,
            )
        self.register_state_dict_post_hook(_strip_prefix)
        self.register_load_state_dict_pre_hook(_add_prefix)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        pad_w, pad_h = self.size_requirements.get_padding(int(w), int(h))
        # some upstream forwards work in place on their input (RCAN scales it by rgb_range): give them a
        # tensor of their own, never the caller's
        x = pad_reflect(x, pad_w, pad_h) if pad_w or pad_h else x.clone()
        y = self.model(x)
        if pad_w or pad_h:
            y = y[..., : h * self.scale, : w * self.scale]
        return y


def _plain(v: Any) -> Any:
    return [_plain(x) for x in v] if isinstance(v, (list, tuple)) else v


def _spandrel_descriptor(ident: str, net: nn.Module):
    """spandrel's descriptor of ``net``, read by spandrel's architecture from ``net``'s tensors (so a
    network spandrel could not load back is refused here, not after training)."""
    mod = import_arch_module(ident)
    arch = getattr(mod, f"{ident}Arch")()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return arch.load(dict(net.state_dict()))
    except Exception as exc:  # noqa: BLE001 - upstream code raises many kinds for odd sizes
        detail = " ".join(str(exc).split())[:120] or type(exc).__name__
        raise ConfigError(
            f"spandrel cannot read back this {ident} network ({type(exc).__name__}: {detail}); "
            "change its hyper-parameters"
        ) from None


class UpstreamClass:
    """The upstream class, imported when its signature is first asked for."""

    def __init__(self, up: Upstream) -> None:
        self.up = up

    def resolve(self):
        return getattr(import_arch_module(f"{self.up.ident}.__arch.{self.up.module}"), self.up.cls)

    @property
    def __signature__(self) -> inspect.Signature:
        return inspect.signature(self.up.select or self.resolve())

    def __call__(self, **hp: Any) -> nn.Module:
        cls_name, kw = self.up.select(**hp) if self.up.select else (self.up.cls, hp)
        cls = getattr(import_arch_module(f"{self.up.ident}.__arch.{self.up.module}"), cls_name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # upstream initialisers' and meshgrid's remarks
            return cls(**kw)


# ------------------------------------------------------------------------------------------- rows -> records
@dataclass(frozen=True)
class Upstream:
    name: str  # srlab's name (lower case)
    ident: str  # spandrel's architecture id and folder
    module: str  # the module under spandrel.architectures.<ident> holding the network
    cls: str
    summary: str
    source: str
    presets: tuple[Preset, ...] = ()
    select: Callable[..., tuple[str, dict[str, Any]]] | None = None  # hparams -> (class, kwargs)
    no_onnx: str = ""  # why it does not export to ONNX (torch.onnx, opset 17)


def realcugan_select(*, scale: int = 2, in_channels: int = 3, out_channels: int = 3, pro: bool = False):
    if scale not in (2, 3, 4):
        raise ConfigError(f"realcugan scale {scale} is not 2, 3 or 4")
    return f"UpCunet{scale}x", dict(in_channels=in_channels, out_channels=out_channels, pro=pro)


def scales(stem: str, doc: str, key: str, scales=(2, 3, 4), **hp: Any) -> tuple[Preset, ...]:
    """``<stem>-x2`` ... presets of the architecture ``stem`` names first, ``key`` its scale keyword."""
    arch = stem.split("-")[0]
    return tuple(Preset(f"{stem}-x{s}", arch, doc, {key: s, **hp}, scale=s) for s in scales)


def record(up: Upstream) -> Architecture:
    """The registry record of one table row."""
    ctor = UpstreamClass(up)

    def build(**hp: Any) -> SpandrelNet:
        return SpandrelNet(up.name, up.ident, ctor(**hp), hp)

    return Architecture(
        family=up.name,
        summary=up.summary,
        source=up.source,
        builders={up.name: build},
        constructor=ctor,
        presets=up.presets,
        hints=EngineHints(no_onnx=up.no_onnx),
        # the same network loaded from a foreign file (PLKSR's id covers RealPLKSR too: the first row keeps it)
        arch_ids=() if up.name == "realplksr" else (f"spandrel:{up.ident}",),
        backend="spandrel",
        meta_build=False,  # upstream constructors compute buffers and drop-path rates with real tensors
    )
