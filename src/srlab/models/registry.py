"""One table of architectures: what srlab can build, read, run and where each family's weights come from.

Every architecture *family* (SRCNN, RRDBNet, SRVGG, the study's networks, interpolation, VGG19, the
resize wrapper, and each spandrel-backed network) registers one :class:`Architecture` record here:

- ``builders``: architecture name -> builder taking keyword hyper-parameters (``rrdbnet``, ``srvgg``, ...);
  ``constructor`` the class whose signature says which keywords are valid;
- ``presets``: :class:`Preset` names with fixed hyper-parameters and a one-line doc (untrained networks);
- ``layouts``: :class:`Layout` checkpoint layouts the family reads (detection from the keys,
  hyper-parameters from the shapes; :mod:`srlab.weights.convert` asks every registered layout);
- ``ncnn``: the family's ncnn graph matcher, if Real-ESRGAN exports it to ncnn (:mod:`srlab.weights.ncnn`);
- ``hints``: :class:`EngineHints` for :mod:`srlab.inference.engine` (size multiple, precisions, whether ONNX
  Runtime beats PyTorch on a CPU, the blocks that have a fused evaluation);
- ``weights``: pointers to its trained weights (``zoo:NAME``, ``ncnn:NAME``, ``shipped:NAME``; the entries
  themselves live in :mod:`srlab.weights.zoo`, :mod:`~srlab.weights.ncnn`, :mod:`~srlab.weights.shipped`);
- ``backend``: ``native`` (srlab's own code) or ``spandrel`` (spandrel's vendored upstream code).

This module is a leaf: it imports no architecture. ``srlab.models`` (the package) imports every family
module, which registers itself here, so importing anything under ``srlab.models`` fills the registry.

Adding a family (e.g. srlab's own SPAN)::

    # src/srlab/models/span.py: the network, then its record
    register(Architecture(family="span", summary="SPAN (Wan et al. 2024)", source="<paper / repo>",
                          builders={"span": build_span}, constructor=SPAN,
                          presets=(Preset("span-x4", "span", "...", {"scale": 4}),),
                          layouts=(Layout("span", "...", detect=..., convert=...),),
                          hints=EngineHints(ort_faster_on_cpu=False)))
    # src/srlab/models/__init__.py: add ``span`` to the imported family modules (the one registration line)

A large family keeps its checkpoint layouts in ``<family>_layouts.py`` (no torch modules, only key maps).
A spandrel-backed family is one ``Upstream`` row in :mod:`srlab.models.spandrel_archs` (spandrel's module and
class, the paper's presets); the row becomes the same kind of record, with ``backend="spandrel"``.
A native family registered under a name a spandrel-backed record also claims wins: spandrel records skip
names already taken (:func:`register` with ``yield_to_native=True``).

:func:`build_model` returns ``(module, ModelDescriptor)``; :func:`describe` makes the descriptor of any
srlab module.
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import inspect
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from srlab.errors import ConfigError, WeightsError


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


@dataclass(frozen=True)
class Preset:
    """An architecture with fixed hyper-parameters: an untrained network with a name."""

    name: str
    arch: str
    doc: str
    hparams: Mapping[str, Any] = field(default_factory=dict)
    scale: int = 0  # its scale where listing it must not build it (0: read it from the built network)


@dataclass(frozen=True)
class Layout:
    """A checkpoint layout a family reads.

    ``detect(keys)``: whether a state dict with these keys is in this layout (it may raise a
    :class:`srlab.errors.WeightsError` for a variant it recognises but refuses). ``convert(sd, *, scale,
    scale_hint, source)`` returns ``(arch, hparams, state_dict in srlab keys, unmapped keys)``."""

    name: str
    doc: str
    detect: Callable[[frozenset[str]], bool]
    convert: Callable[..., tuple[str, dict[str, Any], dict, list[str]]]


def tensor_shape(sd: Mapping, key: str, ndim: int, source: str, what: str = "checkpoint") -> tuple[int, ...]:
    """The shape of ``sd[key]`` for a layout's hyper-parameter inference: a missing key or a wrong number of
    dimensions is one WeightsError line naming the file (``what`` names the kind of checkpoint)."""
    if key not in sd:
        raise WeightsError(f"{source}: the {what} lacks {key!r}; the file is incomplete")
    shape = tuple(int(d) for d in sd[key].shape)
    if len(shape) != ndim:
        raise WeightsError(f"{source}: {key} has shape {shape}; expected {ndim} dimensions")
    return shape


@dataclass(frozen=True)
class EngineHints:
    """How the inference engine may run a family's networks."""

    size_multiple: int = 1  # input sides the network needs a multiple of (the engine pads)
    precisions: tuple[str, ...] = ("fp32", "fp16", "bf16")
    ort_faster_on_cpu: bool = False  # ONNX Runtime beats PyTorch on a CPU in fp32 (benchmarks/infer_bench.py)
    fusable: Callable[[Any], list[Any]] | None = None  # module -> its blocks with a ``fused`` switch
    no_onnx: str = ""  # why the family's networks do not export to ONNX ("" when they do)


PURPOSES = ("sr", "interpolation", "wrapper", "features", "discriminator")
BACKENDS = ("native", "spandrel")


@dataclass(frozen=True)
class Architecture:
    """One architecture family (see the module docstring for each field)."""

    family: str
    summary: str
    source: str  # the paper / upstream repository the code follows
    builders: Mapping[str, Callable[..., Any]] = field(default_factory=dict)
    constructor: Callable[..., Any] | None = None
    presets: tuple[Preset, ...] = ()
    layouts: tuple[Layout, ...] = ()
    ncnn: Callable[..., Any] | None = None  # (layers, source) -> (arch, hparams, state_dict) or None
    hints: EngineHints = field(default_factory=EngineHints)
    weights: tuple[str, ...] = ()
    backend: str = "native"
    purpose: str = "sr"
    wrappers: Mapping[str, Callable[..., Any]] = field(
        default_factory=dict
    )  # name -> (inner, **hp) -> module
    arch_ids: tuple[str, ...] = ()  # the ``module.arch`` values of its networks, when not the builder names
    trainable: bool = True  # `model.name` in a training config may name it
    meta_build: bool = True  # can be built on the meta device (weights loaded right after)

    @property
    def names(self) -> tuple[str, ...]:
        return (*self.builders, *self.wrappers, *self.arch_ids)

    def missing(self) -> list[str]:
        """What a complete record lacks (empty when complete)."""
        out = []
        if not self.summary or not self.source:
            out.append("summary/source")
        if not self.builders and not self.wrappers:
            out.append("builders")
        if self.purpose not in PURPOSES:
            out.append(f"purpose {self.purpose!r}")
        if self.backend not in BACKENDS:
            out.append(f"backend {self.backend!r}")
        if self.builders and self.constructor is None:
            out.append("constructor")
        if self.purpose == "sr" and not self.presets:
            out.append("presets")
        if not set(self.hints.precisions) >= {"fp32"}:
            out.append("precisions")
        return out


ARCHS: dict[str, Callable[..., Any]] = {}
PRESETS: dict[str, tuple[str, dict[str, Any], str]] = {}
FAMILIES: dict[str, Architecture] = {}
REFUSED: dict[str, str] = {}  # names srlab knows and will not build -> why (one line)
_BY_NAME: dict[str, Architecture] = {}
_CONSTRUCTORS: dict[str, Callable[..., Any]] = {}


def register_arch(name: str):
    """Decorator registering a bare builder (no family record); a name already taken is an error (as
    torchvision's ``register_model``), so two modules can never silently shadow each other."""

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


def register(record: Architecture, *, yield_to_native: bool = False) -> Architecture:
    """Register a family: its builders, presets and the record itself. A name already taken is an error,
    unless ``yield_to_native`` (spandrel-backed records), where the names already taken are left out."""
    taken = [n for n in (*record.builders, *(p.name for p in record.presets)) if n in ARCHS or n in PRESETS]
    if yield_to_native and record.family in FAMILIES:
        return FAMILIES[record.family]
    if record.family in FAMILIES or (taken and not yield_to_native):
        raise ValueError(
            f"model name {record.family if record.family in FAMILIES else taken[0]!r} is already registered"
        )
    builders = {n: b for n, b in record.builders.items() if n not in taken}
    presets = tuple(p for p in record.presets if p.name not in taken and p.arch in builders)
    if taken:
        record = _replace(record, builders=builders, presets=presets)
    if yield_to_native and not builders:
        return record
    for n, b in builders.items():
        register_arch(n)(b)
        if record.constructor is not None:
            _CONSTRUCTORS[n] = record.constructor
    for p in presets:
        register_preset(p.name, p.arch, p.doc, **dict(p.hparams))
    FAMILIES[record.family] = record
    for n in record.names:
        _BY_NAME.setdefault(n, record)
    return record


def _replace(record: Architecture, **changes: Any) -> Architecture:
    return dataclasses.replace(record, **changes)


def refuse(name: str, why: str) -> None:
    """Record a name srlab will not build (a spandrel architecture that is no plain SR network)."""
    REFUSED[name] = why


def family_of(arch: str | None) -> Architecture | None:
    """The record of the family an architecture name (or a module's ``arch``) belongs to."""
    return _BY_NAME.get(arch) if isinstance(arch, str) else None


def hints_for(arch: str | None) -> EngineHints:
    rec = family_of(arch)
    return rec.hints if rec is not None else EngineHints()


def all_layouts() -> list[Layout]:
    """Every registered checkpoint layout, in registration order."""
    return [lay for rec in FAMILIES.values() for lay in rec.layouts]


def ncnn_matchers() -> list[tuple[str, Callable[..., Any]]]:
    return [(rec.family, rec.ncnn) for rec in FAMILIES.values() if rec.ncnn is not None]


def fusable_blocks(module: Any) -> list[Any]:
    """The blocks of ``module`` that some family can evaluate fused (each has a ``fused`` switch)."""
    return [
        b for rec in FAMILIES.values() if rec.hints.fusable is not None for b in rec.hints.fusable(module)
    ]


def set_fused_blocks(module: Any, on: bool = True) -> int:
    """Switch every fusable block of ``module``; returns how many there are."""
    blocks = fusable_blocks(module)
    for b in blocks:
        b.fused = bool(on)
    return len(blocks)


def weights_family(pointer: str) -> Architecture | None:
    """The family whose ``weights`` list ``pointer`` (``zoo:NAME``, ``ncnn:NAME``, ``shipped:NAME``)."""
    return next((rec for rec in FAMILIES.values() if pointer in rec.weights), None)


def wrapper_for(arch: str) -> Callable[..., Any] | None:
    rec = family_of(arch)
    return rec.wrappers.get(arch) if rec is not None else None


def check_hparams(arch: str, hparams: Mapping[str, Any]) -> None:
    """One-line ConfigError naming unknown hyper-parameters and listing the valid ones."""
    ctor = _CONSTRUCTORS.get(arch)
    if ctor is None:
        return
    try:
        params = inspect.signature(ctor).parameters
    except (TypeError, ValueError):
        return
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    valid = [
        n for n, p in params.items() if n != "self" and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    unknown = [k for k in hparams if k not in valid]
    if unknown:
        raise ConfigError(
            f"unknown hyper-parameter{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} for "
            f"{arch!r}; valid: {', '.join(valid)}"
        )


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
    if name.lower() in REFUSED:
        raise ConfigError(f"srlab does not build {name!r}: {REFUSED[name.lower()]}")
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
    check_hparams(arch, hp)
    try:
        rec = family_of(arch)
        if init_weights or (rec is not None and not rec.meta_build):
            model = ARCHS[arch](**hp)
            if not init_weights and device not in ("cpu", "meta"):
                model = model.to(device)
        else:

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
