""":class:`UpscaleOptions`: the upscale tuning options, declared once.

:class:`~srlab.inference.Upscaler` is built from it (``Upscaler(model, options)`` or ``Upscaler(model,
tile=..., ...)``), :func:`srlab.upscale` checks its keyword arguments against it,
:func:`~srlab.inference.engine.engine_settings` resolves its engine fields, and ``srlab upscale`` generates
its flags from the :class:`Flag` each field carries (:func:`cli_flags`, :func:`from_flags`), so a new option
is one field here. Values are checked when the record is made: a bad one is a one-line
:class:`~srlab.errors.ConfigError` before any model is loaded.

This module imports neither torch nor the rest of :mod:`srlab.inference`: the command line builds its
parser from it and ``srlab --help`` stays fast.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from srlab.errors import ConfigError

__all__ = [
    "ALPHA_MODES",
    "BACKENDS",
    "COMPILE_MODES",
    "PRECISIONS",
    "Flag",
    "UpscaleOptions",
    "cli_flags",
    "from_flags",
]

# the choices; srlab.runtime has the same precisions and compile modes (tests/test_upscale_options.py checks)
PRECISIONS = ("auto", "fp32", "fp16", "bf16", "int8")
BACKENDS = ("auto", "torch", "onnxruntime", "openvino")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
ALPHA_MODES = ("bicubic", "model")
_SWITCH = {"auto": None, "on": True, "off": False}


@dataclass(frozen=True)
class Flag:
    """A command-line flag of a field: ``names`` and the argparse keywords (``kw``); ``dest`` is the
    attribute argparse stores it under."""

    names: tuple[str, ...]
    kw: Mapping[str, Any]
    convert: Callable[[Mapping[str, Any]], Any] | None = None

    @property
    def dest(self) -> str:
        return self.kw.get("dest") or self.names[-1].lstrip("-").replace("-", "_")


def _flags(*flags: Flag, convert: Callable[[Mapping[str, Any]], Any] | None = None) -> dict:
    return {"flags": flags, "convert": convert}


def _switch(name: str, help: str) -> dict:
    flag = Flag((f"--{name.replace('_', '-')}",), dict(default="auto", choices=list(_SWITCH), help=help))
    return _flags(flag, convert=lambda ns: _SWITCH[ns[name]])


@dataclass(frozen=True)
class UpscaleOptions:
    """How a model upscales: the same fields whether set in Python, by ``srlab upscale`` or by a service.

    ``outscale``: final scale (``None``: the model's; otherwise the model's output is resized with MATLAB
    bicubic); a call's own ``outscale`` wins. ``tile``: tile side in LR pixels, without its context (as
    Real-ESRGAN's ``--tile``; ``None``: chosen from the device memory and the image; ``0``: never tile).
    ``tile_overlap``: context added on each side in LR pixels, so a window is ``tile + 2 overlap``
    (``None``: ``max(8, 2 R)`` where R is the descriptor's receptive radius, at most ``max(R, tile / 2)``).
    ``batch_size``: windows per device call (``None``: 1 on CPU, as many as fit the memory budget on a GPU,
    at most 16). ``precision``: one of :data:`PRECISIONS`. ``device``: ``'auto'``, ``'cpu'``, ``'cuda'``,
    ``'cuda:N'``, ``'mps'`` or a ``torch.device``. ``backend``: ``'auto'``, ``'torch'``, ``'onnxruntime'``
    (CPU, fp32, via :mod:`srlab.export`) or ``'openvino'`` (CPU, fp32/bf16/int8). ``compile``: wrap the model with ``torch.compile`` (``True`` or a
    mode of :data:`COMPILE_MODES`; ``'reduce-overhead'`` is CUDA graphs). ``fuse``: RRDBNet dense blocks
    without concatenations (``None``: on for CUDA). ``channels_last``: NHWC layout (``None``: on for CUDA
    and CPU with the torch backend). ``alpha``: ``'bicubic'`` (a mask must not get GAN texture) or
    ``'model'``. :mod:`srlab.inference.engine` says how the engine fields are chosen.
    """

    outscale: float | None = field(
        default=None,
        metadata=_flags(
            Flag(
                ("-s", "--outscale"),
                dict(type=float, default=None, help="final scale (default: the model's)"),
            )
        ),
    )
    tile: int | None = field(
        default=None,
        metadata=_flags(
            Flag(
                ("--tile",),
                dict(
                    type=int,
                    default=None,
                    metavar="N",
                    help="tile size in input pixels (0: no tiling; default: auto)",
                ),
            )
        ),
    )
    tile_overlap: int | None = field(
        default=None,
        metadata=_flags(
            Flag(
                ("--tile-overlap",),
                dict(type=int, default=None, metavar="P", help="context pixels added on each tile side"),
            )
        ),
    )
    batch_size: int | None = field(
        default=None,
        metadata=_flags(
            Flag(
                ("--batch-size",),
                dict(type=int, default=None, metavar="B", help="tiles per device call (default: auto)"),
            )
        ),
    )
    precision: str = field(
        default="auto",
        metadata=_flags(
            Flag(
                ("--precision",),
                dict(
                    default="auto",
                    choices=list(PRECISIONS),
                    help="auto: fp16 on a GPU; on the CPU bf16/int8 (OpenVINO) where the CPU has them and the "
                    "model's recorded check keeps its output within 50 dB of fp32, else fp32. int8: CPU only",
                ),
            )
        ),
    )
    device: Any = field(
        default="auto",
        metadata=_flags(
            Flag(("--device",), dict(default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)"))
        ),
    )
    backend: str = field(
        default="auto",
        metadata=_flags(
            Flag(
                ("--backend",),
                dict(
                    default="auto",
                    choices=list(BACKENDS),
                    help="auto: on the CPU OpenVINO for SRCNN, SRVGG and RRDBNet (else ONNX Runtime when only "
                    "that is installed; measured faster, converted once into the cache); else PyTorch",
                ),
            )
        ),
    )
    compile: bool | str = field(
        default=False,
        metadata=_flags(
            Flag(
                ("--compile",),
                dict(
                    action="store_true",
                    help="torch.compile the model: slow first image (cached on disk for later runs), faster after",
                ),
            ),
            Flag(
                ("--compile-mode",),
                dict(
                    default=None,
                    choices=list(COMPILE_MODES),
                    help="torch.compile mode (implies --compile; reduce-overhead = CUDA graphs)",
                ),
            ),
            convert=lambda ns: ns["compile_mode"] or ns["compile"],
        ),
    )
    fuse: bool | None = field(
        default=None,
        metadata=_switch(
            "fuse", "RRDBNet dense blocks without concatenations (same function; auto: on for CUDA)"
        ),
    )
    channels_last: bool | None = field(
        default=None,
        metadata=_switch(
            "channels_last",
            "NHWC memory layout for the torch backend (auto: on; measured faster on CUDA and CPU)",
        ),
    )
    alpha: str = field(
        default="bicubic",
        metadata=_flags(
            Flag(
                ("--alpha",),
                dict(default="bicubic", choices=list(ALPHA_MODES), help="how to upscale transparency"),
            )
        ),
    )

    def __post_init__(self) -> None:
        o = self.outscale
        if o is not None and not (isinstance(o, numbers.Real) and o > 0 and math.isfinite(o)):
            raise ConfigError(f"--outscale must be a number > 0, not {o}")
        for name, low, what in (
            ("tile", 0, "tile must be >= 0 (0 = no tiling)"),
            ("tile_overlap", 0, "tile overlap must be >= 0"),
            ("batch_size", 1, "batch size must be >= 1"),
        ):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < low):
                raise ConfigError(f"{what}, not {v!r}")
        if self.alpha not in ALPHA_MODES:
            raise ConfigError(f"alpha must be 'bicubic' or 'model', not {self.alpha!r}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"unknown precision {self.precision!r}; use one of {', '.join(PRECISIONS)}")
        if self.backend not in BACKENDS:
            raise ConfigError(f"unknown backend {self.backend!r}; use {', '.join(map(repr, BACKENDS))}")
        if self.compile not in (True, False) and self.compile not in COMPILE_MODES:
            raise ConfigError(f"unknown compile mode {self.compile!r}; use one of {', '.join(COMPILE_MODES)}")
        if self.compile and self.backend == "onnxruntime":
            raise ConfigError("compile needs the torch backend; use --backend torch (or auto)")
        for name in ("fuse", "channels_last"):
            if getattr(self, name) not in (None, True, False):
                raise ConfigError(f"{name} must be None (auto), True or False, not {getattr(self, name)!r}")

    @property
    def compile_mode(self) -> str | None:
        """The torch.compile mode, or None when the model is not compiled."""
        if not self.compile:
            return None
        return "default" if self.compile is True else str(self.compile)

    @classmethod
    def make(cls, options: UpscaleOptions | None = None, /, **changes: Any) -> UpscaleOptions:
        """``options`` (default: the defaults) with ``changes``; an unknown name is a TypeError naming the
        known ones."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            known = ", ".join(f.name for f in dataclasses.fields(cls))
            raise TypeError(f"unknown upscale option(s) {', '.join(unknown)}; the options are: {known}")
        base = cls() if options is None else options
        if not isinstance(base, cls):
            raise TypeError(f"options must be an UpscaleOptions, not {type(base).__name__}")
        return dataclasses.replace(base, **changes) if changes else base

    def replace(self, **changes: Any) -> UpscaleOptions:
        return UpscaleOptions.make(self, **changes)


def cli_flags() -> Iterator[tuple[str, Flag]]:
    """(field name, flag) for every flag of every field, in declaration order (the order of ``--help``)."""
    for f in dataclasses.fields(UpscaleOptions):
        for flag in f.metadata["flags"]:
            yield f.name, flag


def from_flags(values: Mapping[str, Any]) -> UpscaleOptions:
    """The options from parsed flag values (``vars(args)`` of a parser that took :func:`cli_flags`)."""
    kw = {}
    for f in dataclasses.fields(UpscaleOptions):
        convert = f.metadata["convert"]
        kw[f.name] = convert(values) if convert else values[f.metadata["flags"][0].dest]
    return UpscaleOptions(**kw)
