"""The optional spandrel backend: about 40 more architectures (SwinIR, HAT, DAT, SPAN, OmniSR, ...).

:func:`srlab.load_model` tries srlab's own layouts first (:mod:`srlab.weights.convert`); a state dict
that matches none of them comes here. srlab has already read the file safely (safetensors, or
``torch.load(weights_only=True)``): spandrel only ever sees tensors, never a file, so it unpickles
nothing. Its architecture detection and hyper-parameter inference then build the network, inside the
same construction budget as srlab's own builds (:func:`srlab.weights.build.budget_for`), so a state
dict whose key indices claim a huge network is refused before it is allocated.

The network is wrapped in :class:`SpandrelModel`, which carries srlab's descriptor attributes (scale,
channels, fp16/bf16 support and size multiple from spandrel's descriptor) and pads inputs to spandrel's
size requirements, so evaluation, upscaling, ONNX export and the study treat it like any srlab model.
Saved with :func:`srlab.weights.io.save_model` it becomes an srlab safetensors file whose ``arch`` is
``spandrel:<id>``; :func:`srlab.weights.loader.load_file` sends such files back here.

The networks srlab *builds* from spandrel's code (to train them by name: ``swinir``, ``hat``, ...) are
registry records in :mod:`srlab.models.spandrel_archs`; a file loaded here whose architecture has such a
record finds it under ``spandrel:<id>`` (:func:`srlab.models.registry.family_of`).

Install: ``pip install "srlab[archs]"``. spandrel imports torchvision when it is imported (its LaMa
inpainting model uses it); on a CPU-only machine take torch and torchvision from PyTorch's CPU index.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from srlab.errors import WeightsError
from srlab.models.registry import describe
from srlab.models.spandrel_net import pad_reflect
from srlab.weights.build import MAX_PARAMS, OverBudget, budget_for

__all__ = [
    "ARCH_PREFIX",
    "NotRecognisedError",
    "SpandrelModel",
    "available",
    "from_state_dict",
    "import_spandrel",
    "inner_state_dict",
    "is_spandrel_arch",
]

ARCH_PREFIX = "spandrel:"
_INSTALL = 'pip install "srlab[archs]"'
_TORCHVISION = (
    "spandrel imports torchvision, which is missing or broken here; install torch and torchvision as a "
    "matching pair (on a CPU-only machine: pip install torch torchvision --index-url "
    "https://download.pytorch.org/whl/cpu)"
)
# Purposes srlab can run as image -> image at a fixed scale; face restorers need aligned face crops and
# inpainting needs a mask, neither fits the upscaler or the benchmarks.
_PURPOSES = ("SR", "Restoration")


class NotRecognisedError(WeightsError):
    """spandrel knows no architecture with these keys."""


def is_spandrel_arch(arch: Any) -> bool:
    return isinstance(arch, str) and arch.startswith(ARCH_PREFIX)


def import_spandrel():
    """The spandrel module, or a WeightsError saying how to install it (one line)."""
    try:
        import spandrel
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] == "spandrel":
            raise WeightsError(f"the spandrel backend is not installed: {_INSTALL}") from None
        raise WeightsError(f"{_TORCHVISION} ({exc})") from None
    except (ImportError, RuntimeError, AttributeError) as exc:  # a torchvision built for another torch
        detail = " ".join(str(exc).split())[:120]
        raise WeightsError(f"{_TORCHVISION} ({type(exc).__name__}: {detail})") from None
    return spandrel


def available() -> tuple[bool, str]:
    """``(True, version)`` when spandrel imports, else ``(False, why)``."""
    try:
        return True, import_spandrel().__version__
    except WeightsError as exc:
        return False, str(exc)


class SpandrelModel(nn.Module):
    """A network spandrel built, with srlab's descriptor attributes.

    ``forward`` pads the input to spandrel's size requirements (minimum side, multiple, square) the way
    spandrel's own call does (reflect, then replicate) and crops the output back; it does not clamp, as
    no srlab network does (the engine and the metrics decide that).
    """

    def __init__(self, descriptor: Any) -> None:
        super().__init__()
        self.model = descriptor.model
        self.size_requirements = descriptor.size_requirements
        # DnCNN, FBCNN, DRUNet and a few others run through their own call function (noise level input,
        # ...); it is spandrel's private attribute, so fall back to a plain call if a release renames it.
        self._call = getattr(descriptor, "_call_fn", None) or _plain_call
        ident = str(descriptor.architecture.id)
        self.arch = ARCH_PREFIX + ident
        self.scale = int(descriptor.scale)
        self.in_channels = int(descriptor.input_channels)
        self.out_channels = int(descriptor.output_channels)
        self.color = "y" if self.in_channels == 1 else "rgb"
        self.supports_fp16 = bool(descriptor.supports_half)
        self.supports_bf16 = bool(descriptor.supports_bfloat16)
        self.size_multiple = int(descriptor.size_requirements.multiple_of)
        tiling = getattr(getattr(descriptor, "tiling", None), "name", "SUPPORTED")
        # a tiling hint only: attention models see far; spandrel says when tiling is discouraged
        self.receptive_radius = 16 if tiling == "SUPPORTED" else 32
        req = descriptor.size_requirements
        self.hparams = {
            "architecture": ident,
            "purpose": str(descriptor.purpose),
            "tags": [str(t) for t in descriptor.tags],
            "size_requirements": {
                "minimum": int(req.minimum),
                "multiple_of": int(req.multiple_of),
                "square": bool(req.square),
            },
            "tiling": tiling.lower(),
        }

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        pad_w, pad_h = self.size_requirements.get_padding(int(w), int(h))
        if pad_w or pad_h:
            x = pad_reflect(x, pad_w, pad_h)
        y = self._call(self.model, x)
        if pad_w or pad_h:
            y = y[..., : h * self.scale, : w * self.scale]
        return y


def _plain_call(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return model(x)


def from_state_dict(
    sd: Mapping[str, Any],
    *,
    source: str = "checkpoint",
    name: str | None = None,
    scale: int | None = None,
    expect: str | None = None,
):
    """``(SpandrelModel, descriptor)`` for a state dict spandrel recognises (float32, CPU, not yet eval()).

    ``expect``: the architecture id an srlab file recorded (``spandrel:<id>`` metadata); a state dict
    that spandrel now detects as something else is refused. ``scale`` is checked against the network.
    """
    spandrel = import_spandrel()
    tensors = {str(k): v for k, v in sd.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise WeightsError(f"{source}: no tensors for spandrel to read")
    n_values = sum(int(t.numel()) for t in tensors.values())
    try:
        with budget_for(len(tensors), n_values), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter(
                "ignore"
            )  # initialisers' and meshgrid's remarks are not the user's business
            # spandrel may add or rewrite entries of the dict it is given: give it its own copy
            loaded = spandrel.MAIN_REGISTRY.load(dict(tensors))
    except spandrel.UnsupportedModelError:
        raise NotRecognisedError(
            f"{source}: spandrel {spandrel.__version__} does not recognise this state dict either"
        ) from None
    except OverBudget as exc:
        raise WeightsError(
            f"{source}: spandrel's reading of these keys builds a network with {exc.what}, but the file holds "
            f"{len(tensors)} tensors ({n_values:,} values); refusing it (damaged or forged key indices)"
        ) from None
    except (RecursionError, MemoryError):
        raise WeightsError(
            f"{source}: the network spandrel infers is too large to build; refusing it"
        ) from None
    except Exception as exc:  # noqa: BLE001 - spandrel raises many kinds for tensors of impossible shapes
        detail = " ".join(str(exc).split())[:160] or type(exc).__name__
        raise WeightsError(
            f"{source}: spandrel recognised an architecture but could not build it ({type(exc).__name__}: "
            f"{detail}); the file is damaged or from an unsupported variant"
        ) from None
    ident = str(loaded.architecture.id)
    if expect is not None and ident != expect:
        raise WeightsError(
            f"{source}: recorded as spandrel architecture {expect}, but spandrel reads its tensors as {ident}; "
            "re-save the model"
        )
    purpose = str(getattr(loaded, "purpose", ""))
    if purpose not in _PURPOSES:
        raise WeightsError(
            f"{source}: a spandrel {ident} model for {purpose or 'another task'}, not super-resolution or "
            "restoration; srlab runs image -> image models only"
        )
    model = SpandrelModel(loaded).float()
    desc = describe(model, name=name or ident)
    if desc.params > MAX_PARAMS:
        raise WeightsError(f"{source}: {ident} has {desc.params:,} parameters, over srlab's {MAX_PARAMS:,}")
    if scale is not None and int(scale) != desc.scale:
        raise WeightsError(f"{source}: the file is a x{desc.scale} {ident} network, not x{scale}")
    return model, desc


def inner_state_dict(sd: Mapping[str, Any]) -> dict:
    """The upstream keys of a saved :class:`SpandrelModel` (its state dict without the ``model.`` prefix)."""
    return {k[len("model.") :]: v for k, v in sd.items() if k.startswith("model.")}
