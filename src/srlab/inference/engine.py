"""How a model runs: backend, device, precision, memory layout, fused dense blocks and ``torch.compile``.

:func:`build_engine` makes every one of these choices in one place (:func:`engine_settings` for the
choices, then the module is placed accordingly); :meth:`Engine.run` is the forward pass: pad to the
model's size multiple, run on the device, clamp if asked, crop.

- device and precision follow :func:`srlab.runtime.resolve_device` / :func:`~srlab.runtime.resolve_precision`
  (``auto``: cuda, else mps, else cpu; fp32 on the CPU, fp16 on CUDA/MPS where the model supports it; a
  precision the model or device cannot run falls back to fp32 with a warning). fp16/bf16 on a GPU convert
  the model; on the CPU they autocast.
- backend ``auto``: on the CPU, OpenVINO or ONNX Runtime for the families whose registry hints say an
  exported graph beats PyTorch there, in fp32, bf16 or int8, as :mod:`srlab.inference.cpu_choice` rules
  (exported/converted once into the cache by :func:`srlab.export.cached_onnx` /
  :func:`srlab.inference.openvino_backend.cached_openvino`; a failure falls back to PyTorch with a
  warning), else PyTorch.
- channels_last (``None``: on for CUDA and the CPU with the torch backend): on CUDA the weights are
  converted too (tensor-core layouts); on the CPU only the input is, since the layout propagates through
  the convolutions and the caller's module can stay as it is.
- fused blocks (``None``: on for CUDA): the blocks a family's hints name as fusable (RRDBNet's dense blocks,
  evaluated without concatenations: the same function, wider GEMMs; :func:`srlab.models.registry.set_fused_blocks`).
- compile: :func:`srlab.runtime.compile_module`; torch.compile fails on the first call, not at wrap time
  (e.g. no C++ compiler), so that call falls back to eager once, with one warning.
- ``run(..., fp32=True)``: the same batch in full precision, for the tiles whose fp16/bf16 output
  overflowed (:mod:`srlab.inference.resilience`). On the CPU that is the same module without autocast; on a
  GPU a float32 copy made from the weights as loaded (kept on the host, moved to the device on first use),
  so the redone tile equals an fp32 run rather than fp32 arithmetic on fp16-rounded weights.

The caller's module is never moved, converted or switched: it is copied first when anything would change.
"""

from __future__ import annotations

import copy
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

import srlab.models  # noqa: F401  (fills the registry the hints come from)
from srlab import runtime
from srlab.errors import ConfigError
from srlab.export import cached_onnx
from srlab.inference import cpu_choice, openvino_backend
from srlab.inference.options import UpscaleOptions
from srlab.inference.tiling import pad_to_multiple
from srlab.models.registry import ModelDescriptor, fusable_blocks, hints_for, set_fused_blocks

__all__ = [
    "SLOW_NOTICE_S",
    "Engine",
    "EngineSettings",
    "build_engine",
    "engine_settings",
    "ort_faster_on_cpu",
]

# A run the user would rather be warned about (and offered a faster model for), in seconds per image.
SLOW_NOTICE_S = 60.0
# Above this many parameters a slow model is offered the compact SRVGG models (about 1.2 M parameters).
COMPACT_PARAMS = 3_000_000


def ort_faster_on_cpu(arch: str | None) -> bool:
    """Whether an exported graph (OpenVINO, ONNX Runtime) beats PyTorch on a CPU for this family, so that
    ``backend='auto'`` uses one (the family's registry hint, from benchmarks/infer_bench.py; README has the
    figures)."""
    return hints_for(arch).ort_faster_on_cpu


@dataclass(frozen=True)
class EngineSettings:
    """The resolved choices: nothing here touches the module or the device."""

    backend: str  # 'torch', 'onnxruntime' or 'openvino'
    device: torch.device
    precision: str  # 'fp32', 'fp16', 'bf16' or (openvino) 'int8'
    channels_last: bool
    fuse: bool
    compile_mode: str | None
    auto_backend: bool  # the backend was chosen, not asked for: a failed ONNX export falls back

    @property
    def model_dtype(self) -> torch.dtype:
        """The model's dtype: converted on a GPU, float32 on the CPU (which autocasts instead)."""
        gpu = self.device.type in ("cuda", "mps")
        return runtime.torch_dtype(self.precision) if gpu else torch.float32

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        if self.backend != "torch":  # ONNX Runtime / OpenVINO run their own precision
            return None
        return runtime.amp_dtype(self.precision) if self.device.type == "cpu" else None


def engine_settings(
    module: nn.Module, desc: ModelDescriptor, options: UpscaleOptions | None = None, **changes: Any
) -> EngineSettings:
    """Resolve the engine fields of ``options`` (device, precision, backend, compile, fuse, channels_last;
    ``changes`` set single fields, as for ``Upscaler``) for this model (see :mod:`srlab.inference.engine`)."""
    options = UpscaleOptions.make(options, **changes)
    compile_mode = options.compile_mode
    device, precision, backend = options.device, options.precision, options.backend
    auto = backend == "auto"
    if compile_mode and backend in ("onnxruntime", "openvino"):
        raise ConfigError("compile needs the torch backend; use --backend torch (or auto)")
    if compile_mode and str(precision).lower() == "int8":
        raise ConfigError("int8 runs with OpenVINO, which compiles by itself; drop --compile")
    choice = None if compile_mode else cpu_choice.choose(module, device, precision, backend)
    if choice is not None:
        backend, prec = choice
        dev = torch.device("cpu")
    else:
        backend = "torch"
        dev = runtime.resolve_device(device)
        prec = runtime.resolve_precision(precision, dev, desc)
    channels_last, fuse = options.channels_last, options.fuse
    torch_cl = dev.type in ("cuda", "cpu") if channels_last is None else bool(channels_last)
    return EngineSettings(
        backend=backend,
        device=dev,
        precision=prec,
        channels_last=torch_cl and backend == "torch",
        fuse=(dev.type == "cuda" if fuse is None else bool(fuse)) and backend == "torch",
        compile_mode=compile_mode,
        auto_backend=auto,
    )


def build_engine(
    module: nn.Module,
    desc: ModelDescriptor,
    options: UpscaleOptions,
    *,
    caller_owned: bool,
    notify: Callable[[str], None] | None = None,
) -> Engine:
    """The :class:`Engine` for ``module`` with the engine fields of ``options``. ``caller_owned``: the
    module belongs to the caller (it is copied before anything changes it). ``notify``: told of one-off
    work (an OpenVINO conversion or int8 quantization) and, after the first call, of a run that will take
    long."""
    settings = engine_settings(module, desc, options)
    if settings.backend in ("onnxruntime", "openvino"):
        try:
            if settings.backend == "onnxruntime":
                runner = cached_onnx(module.eval())
            else:
                runner = openvino_backend.cached_openvino(module.eval(), settings.precision, notify=notify)
            return Engine(runner, desc, settings, caller_owned=False, notify=notify)
        except Exception as exc:  # noqa: BLE001 - auto falls back; an explicit request reports
            if not settings.auto_backend or str(options.precision).lower() == "int8":
                raise
            warnings.warn(f"{settings.backend} failed ({exc}); running with PyTorch", stacklevel=3)
            settings = engine_settings(module, desc, options.replace(backend="torch"))
    return Engine(module, desc, settings, caller_owned=caller_owned, notify=notify)


class Engine:
    """A module placed as :class:`EngineSettings` say, and its forward pass (see :meth:`run`)."""

    def __init__(
        self,
        module: nn.Module,
        desc: ModelDescriptor,
        settings: EngineSettings,
        *,
        caller_owned: bool,
        notify: Callable[[str], None] | None = None,
    ) -> None:
        s = self.settings = settings
        self.notify = notify
        self._expected, self._told = 0, False  # see expect()
        self.descriptor = desc
        self.device = s.device
        convert_weights = s.channels_last and s.device.type == "cuda"
        torch_backend = s.backend == "torch"
        moves = torch_backend and (
            s.device.type != "cpu" or s.model_dtype != torch.float32 or convert_weights
        )
        blocks = fusable_blocks(module) if torch_backend else []
        switch = any(b.fused != s.fuse for b in blocks)
        reduced_weights = torch_backend and s.model_dtype != torch.float32
        # the weights as loaded, for full-precision redos (the caller's module is never changed, so it
        # can serve as it is; a module srlab loaded is converted in place, so keep a host copy first)
        self._fp32_source = (module if caller_owned else copy.deepcopy(module)) if reduced_weights else None
        self._fp32_module: nn.Module | None = None
        if caller_owned and (moves or switch):
            module = copy.deepcopy(module)  # never move, convert or switch the caller's module
        module = module.eval()
        if moves:
            module = module.to(s.device, s.model_dtype)
            if convert_weights:
                module = module.to(memory_format=torch.channels_last)
        if switch:
            set_fused_blocks(module, s.fuse)
        for p in module.parameters():
            p.requires_grad_(False)
        self.fused = bool(blocks) and s.fuse
        self.module = module
        self.compile_mode = s.compile_mode
        self.model = runtime.compile_module(module, s.compile_mode) if s.compile_mode else module

    # settings, for describe() and callers
    backend = property(lambda self: self.settings.backend)
    precision = property(lambda self: self.settings.precision)
    channels_last = property(lambda self: self.settings.channels_last)
    model_dtype = property(lambda self: self.settings.model_dtype)
    autocast_dtype = property(lambda self: self.settings.autocast_dtype)

    def describe(self) -> str:
        """``cuda fp16 channels_last fused-RDB compiled(default)``: what runs."""
        return (
            f"{self.device.type} {self.precision}{' channels_last' if self.channels_last else ''}"
            f"{' fused-RDB' if self.fused else ''}"
            f"{f' compiled({self.compile_mode})' if self.compile_mode else ''}"
        )

    @property
    def reduced_precision(self) -> bool:
        """fp16/bf16 arithmetic (converted weights or autocast): outputs can overflow."""
        return self.backend == "torch" and self.precision in ("fp16", "bf16")

    def run(
        self, x: torch.Tensor, *, keep: bool = False, clamp: bool = False, fp32: bool = False
    ) -> torch.Tensor:
        """The model's output for a float (N, C, H, W) batch: padded to the model's size multiple, run on
        the device, clamped to [0, 1] with ``clamp``, cropped to (H s, W s). float32, on the CPU, or with
        ``keep`` on the device it ran on. ``fp32``: in full precision whatever the engine's precision."""
        h, w = x.shape[-2:]
        s = int(self.descriptor.scale)
        y = self.forward(pad_to_multiple(x, max(1, int(self.descriptor.size_multiple))), keep=keep, fp32=fp32)
        if clamp:
            y = y.clamp(0, 1)
        return y[..., : h * s, : w * s]

    def forward(self, batch: torch.Tensor, *, keep: bool = False, fp32: bool = False) -> torch.Tensor:
        """The model on ``batch`` as it is (no padding): moved to the device, dtype and layout, and back."""
        if self.device.type == "cuda" and not batch.is_cuda:
            batch = batch.pin_memory()
        full = fp32 and self.reduced_precision
        x = batch.to(self.device, torch.float32 if full else self.model_dtype, non_blocking=True)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if full:
            y = self._full_precision_module()(x)
            return y.float() if keep else y.to("cpu", torch.float32)
        try:
            t0 = time.perf_counter()
            y = self._call(x)
            if self._expected and self.notify and self.device.type == "cpu":
                self._tell_duration(time.perf_counter() - t0, x.shape[0] * x.shape[-2] * x.shape[-1])
        except (KeyboardInterrupt, MemoryError):
            raise
        except Exception as exc:  # noqa: BLE001 - dynamo/inductor raise many kinds (e.g. no C++ compiler)
            oom = isinstance(exc, getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError))
            if oom or not self.compile_mode or self.model is self.module:
                raise
            lines = [ln for ln in str(exc).splitlines() if ln.strip()]
            warnings.warn(
                f"torch.compile failed ({type(exc).__name__}: {lines[0][:160] if lines else ''}); "
                "running without it",
                stacklevel=4,
            )
            self.model, self.compile_mode = self.module, None
            y = self._call(x)
        if keep:
            return y.float()
        return y.to("cpu", torch.float32)

    def expect(self, lr_pixels: int) -> None:
        """The LR pixels (tile windows with their context) the next image runs. With ``notify``, the first
        call then estimates the image's time from its own speed and, when that is long, says so with the
        faster options to try (once per engine: a batch of photos is told once)."""
        if not self._told:
            self._expected = int(lr_pixels)

    def _tell_duration(self, seconds: float, pixels: int) -> None:
        self._told, self._expected, expected = True, 0, self._expected
        estimate = seconds / max(1, pixels) * expected
        if estimate < SLOW_NOTICE_S:
            return
        mins = f"{estimate / 60:.0f} min" if estimate >= 90 else f"{estimate:.0f} s"
        line = (
            f"{self.descriptor.name} on the CPU ({self.describe()}, {self.backend}): "
            f"about {mins} per image like this one"
        )
        if self.backend == "openvino" and self.precision == "fp32" and runtime.cpu_native_bf16():
            line += (
                "; --precision bf16 runs it about twice as fast on this CPU (output within a few grey levels)"
            )
        if int(getattr(self.descriptor, "params", 0) or 0) > COMPACT_PARAMS:
            line += (
                "; a compact SRVGG model is many times faster: --model realesr-general-x4v3 (photos) or "
                "realesr-animevideov3-x4 (drawings)"
            )
        self.notify(line)

    def _full_precision_module(self) -> nn.Module:
        """The module in float32 on the device, without autocast (eager: a redo is a few tiles)."""
        if self._fp32_source is None:  # weights are float32 already: only the autocast goes
            return self.module
        if self._fp32_module is None:
            m = copy.deepcopy(self._fp32_source).eval().to(self.device, torch.float32)
            if self.channels_last and self.device.type == "cuda":
                m = m.to(memory_format=torch.channels_last)
            if fusable_blocks(m):
                set_fused_blocks(m, self.fused)
            for q in m.parameters():
                q.requires_grad_(False)
            self._fp32_module = m
        return self._fp32_module

    def _call(self, x: torch.Tensor) -> torch.Tensor:
        if self.autocast_dtype is not None:
            with torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype):
                return self.model(x)
        return self.model(x)
