"""Run a super-resolution model on images of any size, mode and bit depth.

:class:`Upscaler` holds a model, its descriptor, a device, a precision and a tiling policy; the CLI
(``srlab upscale``), the evaluation and the benchmarks all go through it. :func:`upscale` is the one-call
API (``srlab.upscale``): a PIL image or numpy array in, the same kind out.

Tiling
------
The image stays on the CPU. It is cut into equally sized windows (so they batch), ``batch_size`` windows
go to the device at a time, and each result comes back to the CPU where it is accumulated with a weight,
then divided by the weight sum. Memory on the device is bounded by the tile size, not the image size.

Along each axis the image is split into *cores* that partition it; each window is its core plus
``tile_overlap`` = P LR pixels of context on each side (more at the image borders, where windows are
shifted inwards so that all have the same size). Around each core boundary the two neighbouring tiles
cross-fade with a raised-cosine ramp. Each tile's weight is exactly zero in the ``m = min(P, R)``
outermost pixels of its context, where R is ``descriptor.receptive_radius`` (the LR distance over which
a pixel depends on its neighbours): those are the pixels a tile computes wrongly, because it cannot see
beyond its window. The ramp spans the remaining ``2 (P - m)`` pixels. Hence:

- if P >= R the tiled result equals the untiled one up to float rounding (a hard cut when P == R, a
  smooth cross-fade beyond). Tested with SRCNN (R is exact there): max difference < 1e-5.
- for RRDBNet the true receptive field is far larger than its hint R = 16 (23 blocks x 15 convs), and
  influence decays slowly. Max abs difference tiled vs untiled on [0, 1] output, measured on an H200 in
  fp32 (TF32 convolutions; fp16 vs fp32 itself differs by 0.013) with Real-ESRGAN x4plus (ncnn weights), Set5 baby bicubic-halved to 256x256, tile 64
  (16 tiles): overlap 8: 0.19 (49 grey levels after rounding), 16: 0.175, 24: 0.088, **32: 0.062 (16
  levels; mean 0.001, 20 % of uint8 pixels off by >= 1)**, 48: 0.027 (7 levels). The differences are
  spread smoothly over the ramp, not a seam line. A tiny random RRDBNet (1 block, x4) is exact at 32
  (test). The default overlap is ``max(8, 2 R)`` = 32 for RRDBNet; pass ``tile_overlap=48`` or more when
  it matters (for comparison: Real-ESRGAN pastes tiles with 10 pixels of padding and no blending).
  On a GPU the automatic tile usually covers the whole image (1536x1024 -> x4 in fp16: one call,
  6.8 GiB peak, 0.59 s on an H200), so there are no tiles at all.

Windows start at multiples of ``descriptor.size_multiple`` and the image is reflect-padded to a multiple
of it (cropped afterwards), so pixel-unshuffle models see the same phase in every tile.

Colour
------
- gray input, RGB model: the channel is replicated to RGB and the output's channel mean is kept;
- Y models (``descriptor.color == 'y'``): RGB is converted to YCbCr (BT.601, MATLAB), the model runs on
  Y, Cb and Cr are MATLAB-bicubic upsampled, and the result is converted back; gray runs as is;
- alpha is upscaled separately with MATLAB bicubic (``alpha='bicubic'``, the default: a mask must not
  get GAN texture) or by the model itself on the alpha replicated to its channels (``alpha='model'``);
- 16-bit inputs are processed in float32 and returned at 16 bits; palette images come in as RGB/RGBA.

``outscale``: the model runs at its own scale, then the result is resized to ``outscale`` x the input
size with MATLAB bicubic (:func:`srlab.imaging.resize.imresize`, ``size=``), which is antialiased when
shrinking (outscale < model scale), so one kernel serves both directions.

Precision and device
--------------------
``device='auto'``: cuda, else mps, else cpu. ``precision='auto'``: fp32 on CPU; on CUDA/MPS fp16 where
``descriptor.supports_fp16``, else fp32 (bf16 only when asked: its 8-bit mantissa costs up to a grey level
near white). Against fp32 on a real photo with Real-ESRGAN x4plus, fp16 with fused dense blocks (the CUDA
default) scores 60.3 dB PSNR and bf16 53.3 dB (tests/test_precision.py; the bar is 50 dB). fp16/bf16 on
the GPU convert the model; on the CPU they use autocast. CUDA runs channels_last (the CPU's torch
backend too, on the input only). A precision the model (or device) does not support falls back to fp32
with a warning.
"""

from __future__ import annotations

import copy
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from srlab.errors import ConfigError
from srlab.imaging import io as imio
from srlab.models.registry import ModelDescriptor, describe

__all__ = ["DEFAULT_MODEL", "AxisTile", "TilePlan", "Upscaler", "resolve_model", "upscale"]

DEFAULT_MODEL = "realesrgan-x4plus"
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
DEVICES = ("auto", "cpu", "cuda", "mps")
_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


# ----------------------------------------------------------------------------------------- model spec


def resolve_model(model: Any) -> tuple[nn.Module, ModelDescriptor]:
    """(module, descriptor) from a name, a path, a ``(module, descriptor)`` pair or a module."""
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
        try:
            from srlab.weights.loader import load_model
        except ImportError:  # the weights package is optional at this layer
            load_model = None
        if load_model is not None:
            return load_model(model, device="cpu")
        from srlab.models.registry import build_model

        if Path(model).suffix or os.sep in str(model):
            raise ConfigError(
                f"{model}: loading weight files needs srlab.weights.loader, which is not installed"
            )
        return build_model(str(model))
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


# ----------------------------------------------------------------------------------------- tiling plan


@dataclass(frozen=True)
class AxisTile:
    """One tile along one axis, in LR pixels of the padded image: window [start, start + size), core [c0, c1)."""

    start: int
    c0: int
    c1: int


@dataclass(frozen=True)
class TilePlan:
    height: int  # padded LR size
    width: int
    win_h: int  # window size (all windows equal)
    win_w: int
    overlap: int
    margin: int
    rows: tuple[AxisTile, ...]
    cols: tuple[AxisTile, ...]
    batch_size: int

    @property
    def n_tiles(self) -> int:
        return len(self.rows) * len(self.cols)


def _axis_tiles(length: int, tile: int, overlap: int, mult: int) -> tuple[int, tuple[AxisTile, ...]]:
    """Window size and tiles covering ``length`` (a multiple of ``mult``): cores <= ``tile``, + ``overlap`` a side."""
    if tile <= 0 or length <= tile:
        return length, (AxisTile(0, 0, length),)
    core_max = tile
    n = math.ceil(length / core_max)
    bounds = [round(k * length / n) for k in range(n + 1)]
    core = max(b - a for a, b in zip(bounds, bounds[1:]))
    win = min(length, -(-(core + 2 * overlap + mult - 1) // mult) * mult)
    tiles = []
    for a, b in zip(bounds, bounds[1:]):
        start = min(max(a - overlap, 0), length - win)
        start -= start % mult
        tiles.append(AxisTile(start, a, b))
    return win, tuple(tiles)


def _ramp(x: torch.Tensor, boundary: float, half: float) -> torch.Tensor:
    """0 before ``boundary - half``, 1 after ``boundary + half``, raised cosine between (step if half=0)."""
    if half <= 0:
        return (x >= boundary).to(torch.float32)
    t = ((x - (boundary - half)) / (2 * half)).clamp(0, 1)
    return 0.5 - 0.5 * torch.cos(math.pi * t)


def _axis_weights(
    tiles: tuple[AxisTile, ...], win: int, scale: int, overlap: int, margin: int
) -> list[torch.Tensor]:
    """Per tile, the HR weight of each output pixel of its window along this axis."""
    u = (torch.arange(win * scale, dtype=torch.float64) + 0.5) / scale
    half = overlap - margin
    out = []
    for i, t in enumerate(tiles):
        x = u + t.start
        w = torch.ones_like(x)
        if i > 0:
            w = w * _ramp(x, t.c0, half)
        if i < len(tiles) - 1:
            w = w * (1 - _ramp(x, t.c1, half))
        out.append(w.to(torch.float32))
    return out


# ----------------------------------------------------------------------------------------- device & precision


def pick_device(device: str | torch.device = "auto") -> torch.device:
    if isinstance(device, torch.device):
        return device
    d = str(device).lower()
    if d == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if d.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' requested but no CUDA device is available; use --device cpu or auto")
    if d == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("device 'mps' requested but MPS is not available; use --device cpu or auto")
    try:
        return torch.device(d)
    except RuntimeError:
        raise ConfigError(f"unknown device {device!r}; use one of {', '.join(DEVICES)}") from None


def pick_precision(precision: str, device: torch.device, desc: ModelDescriptor) -> str:
    p = str(precision).lower()
    if p not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    gpu = device.type in ("cuda", "mps")

    def bf16_ok() -> bool:
        if device.type == "cpu":
            return True
        return device.type == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported()

    if p == "auto":
        if not gpu:
            return "fp32"
        # bf16 keeps only 8 mantissa bits (output steps of 1/256 near 1.0): only when asked for
        return "fp16" if desc.supports_fp16 else "fp32"
    if p == "fp16" and not desc.supports_fp16:
        warnings.warn(f"model {desc.name} does not support fp16; running fp32", stacklevel=3)
        return "fp32"
    if p == "bf16" and not (desc.supports_bf16 and bf16_ok()):
        warnings.warn(
            f"bf16 is not supported by model {desc.name} on {device.type}; running fp32", stacklevel=3
        )
        return "fp32"
    return p


# Architectures that ONNX Runtime runs faster than PyTorch on a CPU, as measured by
# benchmarks/infer_bench.py on the 2-core development CPU (benchmarks/results/cpu/, 2 threads, PyTorch
# already in channels_last; interleaved repeats): through the Upscaler SRCNN x2 640x480 1451 vs 1849 ms,
# 128x128 81 vs 140 ms; SRVGG x4 128x96 137 vs 174 ms; RRDBNet about equal to 1.2x. ``backend='auto'``
# uses ONNX Runtime for these when it is installed and fp32 is asked for.
ORT_FASTER_ON_CPU = frozenset({"rrdbnet", "srvgg", "srcnn"})


def _auto_backend(module, desc: ModelDescriptor, device, precision: str) -> str:
    if precision not in ("auto", "fp32") or getattr(module, "arch", None) not in ORT_FASTER_ON_CPU:
        return "torch"
    if pick_device(device).type != "cpu":
        return "torch"
    from srlab.export import onnxruntime_available

    return "onnxruntime" if onnxruntime_available() else "torch"


# ----------------------------------------------------------------------------------------- the upscaler


class Upscaler:
    """A model ready to upscale images: device, precision and tiling fixed at construction.

    ``model``: name or path (loaded by :func:`srlab.load_model`), ``(module, descriptor)`` or a module.
    ``tile``: tile side in LR pixels, without its context (as Real-ESRGAN's ``--tile``; ``None``: chosen
    from the device memory and the image; ``0``: never tile). ``tile_overlap``: context added on each
    side in LR pixels, so a window is ``tile + 2 overlap`` (``None``: ``max(8, 2 R)`` where R is the
    descriptor's receptive radius, at most ``max(R, tile / 2)``). ``batch_size``: windows per device
    call (``None``: 1 on CPU, as many as fit the memory budget on a GPU, at most 16). ``alpha``:
    ``'bicubic'`` or ``'model'``. ``backend``: ``'auto'``, ``'torch'`` or ``'onnxruntime'`` (CPU, fp32, via
    :mod:`srlab.export`). ``compile``: wrap the model with ``torch.compile`` (``True`` or a mode name:
    ``'default'``, ``'reduce-overhead'`` (CUDA graphs), ``'max-autotune'``...). ``fuse``: RRDBNet dense
    blocks without concatenations (``None``: on for CUDA). ``channels_last``: NHWC layout (``None``: on for
    CUDA and CPU with the torch backend).
    """

    def __init__(
        self,
        model: Any = DEFAULT_MODEL,
        *,
        tile: int | None = None,
        tile_overlap: int | None = None,
        precision: str = "auto",
        device: str | torch.device = "auto",
        batch_size: int | None = None,
        alpha: str = "bicubic",
        backend: str = "auto",
        compile: bool | str = False,
        fuse: bool | None = None,
        channels_last: bool | None = None,
        progress: bool = False,
        memory_budget: int | None = None,
    ) -> None:
        module, desc = resolve_model(model)
        caller_owned = not isinstance(model, (str, os.PathLike))
        self.descriptor = desc
        self.scale = int(desc.scale)
        if alpha not in ("bicubic", "model"):
            raise ConfigError(f"alpha must be 'bicubic' or 'model', not {alpha!r}")
        self.alpha_mode = alpha
        if tile is not None and tile < 0:
            raise ConfigError(f"tile must be >= 0 (0 = no tiling), not {tile}")
        if tile_overlap is not None and tile_overlap < 0:
            raise ConfigError(f"tile overlap must be >= 0, not {tile_overlap}")
        if batch_size is not None and batch_size < 1:
            raise ConfigError(f"batch size must be >= 1, not {batch_size}")
        self.tile = tile
        self.tile_overlap = tile_overlap
        self.batch_size = batch_size
        self.progress = progress
        from srlab.runtime import check_compile_mode as check_mode

        compile_mode = check_mode("default" if compile is True else str(compile)) if compile else None
        auto = backend == "auto"
        if auto:
            backend = "torch" if compile else _auto_backend(module, desc, device, precision)
        elif compile and backend == "onnxruntime":
            raise ConfigError("compile needs the torch backend; use --backend torch (or auto)")
        if backend == "onnxruntime":
            from srlab.export import cached_onnx

            if str(device) not in ("auto", "cpu"):
                raise ConfigError("the onnxruntime backend runs on the CPU; use --device cpu")
            try:
                onnx_module = cached_onnx(module.eval())
            except Exception as exc:  # noqa: BLE001 - auto falls back; an explicit request reports
                if not auto:
                    raise
                warnings.warn(f"ONNX export failed ({exc}); running with PyTorch", stacklevel=2)
                backend = "torch"
            else:
                self.device = torch.device("cpu")
                self.precision = "fp32"
                module = onnx_module
                caller_owned = False
        self.backend = backend
        if backend == "torch":
            self.device = pick_device(device)
            self.precision = pick_precision(precision, self.device, desc)
        elif backend != "onnxruntime":  # onnxruntime set device and precision above
            raise ConfigError(f"unknown backend {backend!r}; use 'auto', 'torch' or 'onnxruntime'")
        gpu = self.device.type in ("cuda", "mps")
        self.model_dtype = _DTYPES[self.precision] if gpu else torch.float32
        self.autocast_dtype = _DTYPES[self.precision] if (not gpu and self.precision != "fp32") else None
        # channels_last: on CUDA (tensor-core layouts; weights converted too) and on CPU, where oneDNN's NHWC
        # convolutions measured faster than NCHW for SRVGG and RRDBNet (benchmarks/infer_bench.py, 2-core
        # CPU). On CPU only the input is converted -- the layout propagates through the convolutions and
        # the caller's module is left as it is (measured the same speed as converting the weights).
        auto_cl = self.device.type in ("cuda", "cpu")
        self.channels_last = (
            auto_cl if channels_last is None else bool(channels_last)
        ) and backend == "torch"
        convert_weights = self.channels_last and self.device.type == "cuda"
        needs_change = self.device.type != "cpu" or self.model_dtype != torch.float32 or convert_weights
        if caller_owned and needs_change:
            module = copy.deepcopy(module)  # never move or convert the caller's module
        module = module.eval()
        if needs_change and backend == "torch":
            module = module.to(self.device, self.model_dtype)
            if convert_weights:
                module = module.to(memory_format=torch.channels_last)
        for p in module.parameters():
            p.requires_grad_(False)
        # RRDBNet: evaluate its dense blocks without concatenations (same function; see
        # srlab.models.rrdbnet.FusedResidualDenseBlock). Auto: on for CUDA, where it was measured faster.
        if fuse is None:
            fuse = self.device.type == "cuda"
        self.fused = False
        if (
            fuse
            and backend == "torch"
            and any(type(m).__name__ == "ResidualDenseBlock" for m in module.modules())
        ):
            from srlab.models.rrdbnet import fuse_rdb

            if not needs_change and caller_owned:
                module = copy.deepcopy(module)
            module = fuse_rdb(module)
            if convert_weights:
                module = module.to(memory_format=torch.channels_last)
            self.fused = True
        self.module = module
        self.compile_mode = compile_mode
        self.model = module
        if compile_mode:
            from srlab.runtime import compile_module

            self.model = compile_module(module, compile_mode)
        self.memory_budget = memory_budget

    # ---------------------------------------------------------------- planning
    def describe(self) -> str:
        t = "auto" if self.tile is None else self.tile
        return (
            f"{self.descriptor.name} x{self.scale} on {self.device.type} {self.precision}"
            f"{' channels_last' if self.channels_last else ''}{' fused-RDB' if self.fused else ''}"
            f"{f' compiled({self.compile_mode})' if self.compile_mode else ''}, tile {t}, backend {self.backend}"
        )

    def _bytes_per_lr_pixel(self) -> int:
        hp = self.descriptor.hparams
        feats = max(int(hp.get("num_feat", 0) or 0), int(hp.get("n1", 0) or 0), 64)
        elem = 2 if self.model_dtype in (torch.float16, torch.bfloat16) else 4
        # a few live feature maps at the output resolution dominate (upsampling convs, SRCNN at HR size)
        return elem * feats * max(1, self.scale) ** 2 * 4

    def _budget(self) -> int:
        if self.memory_budget:
            return int(self.memory_budget)
        if self.device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(self.device)
            return int(free * 0.5)
        if self.device.type == "mps":
            return 2 << 30
        return 2 << 30  # CPU: 2 GiB of activations

    def default_overlap(self, tile: int | None = None) -> int:
        r = int(self.descriptor.receptive_radius)
        p = max(8, 2 * r)
        if tile:  # small tiles: less context (still >= R, so still exact)
            p = min(p, max(r, tile // 2))
        return p

    def plan(self, height: int, width: int) -> TilePlan:
        """How an LR image of this size is tiled (sizes are of the image padded to size_multiple)."""
        mult = max(1, int(self.descriptor.size_multiple))
        hp, wp = -(-height // mult) * mult, -(-width // mult) * mult
        per_px = self._bytes_per_lr_pixel()
        budget = self._budget()
        tile = self.tile
        if tile is None:
            overlap = self.tile_overlap if self.tile_overlap is not None else self.default_overlap()
            if hp * wp * per_px <= budget:
                tile = 0  # the whole image fits
            else:
                side = int(math.sqrt(budget / per_px)) - 2 * overlap - mult
                tile = max(32, min(2048, side - side % 8))
        else:
            overlap = self.tile_overlap if self.tile_overlap is not None else self.default_overlap(tile)
        margin = min(overlap, int(self.descriptor.receptive_radius))
        win_h, rows = _axis_tiles(hp, tile, overlap, mult)
        win_w, cols = _axis_tiles(wp, tile, overlap, mult)
        bs = self.batch_size
        if bs is None:
            if self.device.type == "cpu":
                bs = 1
            else:
                bs = int(max(1, min(16, budget // max(1, win_h * win_w * per_px))))
        return TilePlan(hp, wp, win_h, win_w, overlap, margin, rows, cols, bs)

    # ---------------------------------------------------------------- core
    def _forward(self, batch: torch.Tensor, *, keep: bool = False) -> torch.Tensor:
        if self.device.type == "cuda" and not batch.is_cuda:
            batch = batch.pin_memory()
        x = batch.to(self.device, self.model_dtype, non_blocking=True)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        try:
            y = self._run(x)
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
                stacklevel=3,
            )
            self.model, self.compile_mode = self.module, None
            y = self._run(x)
        if keep:
            return y.float()
        return y.to("cpu", torch.float32)

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        if self.autocast_dtype is not None:
            with torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype):
                return self.model(x)
        return self.model(x)

    def _accumulate_on_device(self, out_elems: int) -> bool:
        """On CUDA, keep the output on the GPU (no per-tile copies) when it takes under 1/4 of the budget."""
        return self.device.type == "cuda" and out_elems * 4 * 2 < self._budget() // 4

    @torch.inference_mode()
    def upscale_tensor(self, x: torch.Tensor, *, on_device: bool = False) -> torch.Tensor:
        """Model output for a float (C, H, W) or (N, C, H, W) tensor in [0, 1]: tiled, not clipped.

        The result is on the CPU, or with ``on_device=True`` wherever it was accumulated (the GPU when the
        output fits comfortably: the post-processing then runs there too).
        """
        if x.ndim == 4:
            return torch.stack([self.upscale_tensor(xi) for xi in x])
        if x.ndim != 3:
            raise ValueError(f"expected a (C, H, W) tensor, got shape {tuple(x.shape)}")
        x = x.detach().to("cpu", torch.float32)
        c, h, w = x.shape
        if c != self.descriptor.in_channels:
            raise ConfigError(
                f"model {self.descriptor.name} takes {self.descriptor.in_channels} channels, got {c}"
            )
        s = self.scale
        plan = self.plan(h, w)
        if plan.height != h or plan.width != w:
            mode = "reflect" if (plan.height - h < h and plan.width - w < w) else "replicate"
            x = torch.nn.functional.pad(x[None], (0, plan.width - w, 0, plan.height - h), mode=mode)[0]
        keep = on_device and self._accumulate_on_device(
            self.descriptor.out_channels * plan.height * plan.width * s * s
        )
        if plan.n_tiles == 1:
            return self._forward(x[None], keep=keep)[0][..., : h * s, : w * s]
        wy = _axis_weights(plan.rows, plan.win_h, s, plan.overlap, plan.margin)
        wx = _axis_weights(plan.cols, plan.win_w, s, plan.overlap, plan.margin)
        out = None
        acc_dev = self.device if keep else torch.device("cpu")
        sum_y = torch.zeros(plan.height * s)
        sum_x = torch.zeros(plan.width * s)
        for i, r in enumerate(plan.rows):
            sum_y[r.start * s : (r.start + plan.win_h) * s] += wy[i]
        for j, col in enumerate(plan.cols):
            sum_x[col.start * s : (col.start + plan.win_w) * s] += wx[j]
        jobs = [(i, j) for i in range(len(plan.rows)) for j in range(len(plan.cols))]
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(jobs), desc="tiles", unit="tile", leave=False, disable=None)
        try:
            for k in range(0, len(jobs), plan.batch_size):
                chunk = jobs[k : k + plan.batch_size]
                batch = torch.stack(
                    [
                        x[:, plan.rows[i].start : plan.rows[i].start + plan.win_h,
                          plan.cols[j].start : plan.cols[j].start + plan.win_w]
                        for i, j in chunk
                    ]
                )  # fmt: skip
                sr = self._forward(batch, keep=keep)
                if out is None:
                    out = torch.zeros(sr.shape[1], plan.height * s, plan.width * s, device=acc_dev)
                for (i, j), tile_out in zip(chunk, sr):
                    y0, x0 = plan.rows[i].start * s, plan.cols[j].start * s
                    wgt = (wy[i][:, None] * wx[j][None, :]).to(acc_dev)
                    out[:, y0 : y0 + tile_out.shape[1], x0 : x0 + tile_out.shape[2]] += tile_out * wgt
                if bar is not None:
                    bar.update(len(chunk))
        finally:
            if bar is not None:
                bar.close()
        out /= (sum_y[:, None] * sum_x[None, :]).clamp_min(1e-12).to(acc_dev)
        return out[..., : h * s, : w * s]

    # ---------------------------------------------------------------- colour handling
    def _run_channels(self, x: torch.Tensor, *, on_device: bool = False) -> torch.Tensor:
        """Upscale a (C, H, W) image in [0, 1] with C in {1, 3} whatever the model's channels; returns C channels."""
        from srlab.imaging.color import rgb_to_ycbcr, ycbcr_to_rgb
        from srlab.imaging.resize import imresize

        c = x.shape[0]
        cin = self.descriptor.in_channels
        if cin == c:
            return self.upscale_tensor(x, on_device=on_device)
        if cin == 3 and c == 1:
            return self.upscale_tensor(x.expand(3, -1, -1)).mean(dim=0, keepdim=True)
        if cin == 1 and c == 3:
            ycc = rgb_to_ycbcr(x.double(), data_range=1.0).float()
            y = self.upscale_tensor(ycc[:1])
            cbcr = imresize(ycc[1:], float(self.scale))
            return ycbcr_to_rgb(torch.cat([y, cbcr]).double(), data_range=1.0).float()
        raise ConfigError(
            f"model {self.descriptor.name} takes {cin} channels; cannot run it on {c}-channel images"
        )

    def _resize_to(self, t: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        from srlab.imaging.resize import imresize

        if tuple(t.shape[-2:]) == size:
            return t
        return torch.cat([imresize(ch[None], size=size) for ch in t])  # per channel: bounded temporaries

    def upscale_image(self, img: imio.Image, *, outscale: float | None = None) -> imio.Image:
        """Upscale an :class:`srlab.imaging.io.Image` (pixels + optional alpha), keeping mode and bit depth."""
        from srlab.imaging.resize import imresize

        h, w = img.height, img.width
        x = imio.to_tensor(img.pixels)
        direct = outscale is None or outscale <= 0 or math.isclose(outscale, self.scale)
        sr = self._run_channels(x, on_device=direct)
        a = None
        if img.alpha is not None:
            at = imio.to_tensor(img.alpha)
            if self.alpha_mode == "model":
                a = self._run_channels(at)
            else:
                a = imresize(at, float(self.scale))
        if outscale is not None and outscale > 0 and not math.isclose(outscale, self.scale):
            size = (max(1, round(h * outscale)), max(1, round(w * outscale)))
            sr = self._resize_to(sr, size)
            if a is not None:
                a = self._resize_to(a, size)
        depth = img.bit_depth
        pixels = imio.from_tensor(sr, bit_depth=depth)  # quantised where sr is (GPU: 4x fewer bytes back)
        alpha = None if a is None else imio.from_tensor(a, bit_depth=depth)[..., 0]
        return imio.Image(
            pixels=pixels,
            alpha=alpha,
            bit_depth=depth,
            mode=img.mode,
            path=None,
            icc_profile=img.icc_profile,
            format=img.format,
        )

    # ---------------------------------------------------------------- front doors
    def __call__(self, image, *, outscale: float | None = None):
        """Upscale a PIL image, a numpy array (H, W[, C]) or an :class:`srlab.imaging.io.Image`; same kind out.

        Arrays: C = 1, 2 (gray + alpha), 3 or 4 (RGBA); uint8, uint16 or float in [0, 1] (float out,
        clipped, not rounded). PIL: L/LA/RGB/RGBA/I;16 out (palette images come back RGB/RGBA).
        """
        if isinstance(image, imio.Image):
            return self.upscale_image(image, outscale=outscale)
        if isinstance(image, np.ndarray):
            return self._upscale_array(image, outscale)
        if isinstance(image, torch.Tensor):
            raise TypeError("use Upscaler.upscale_tensor for tensors")
        try:
            from PIL import Image as PILImage
        except ImportError:  # pragma: no cover
            PILImage = None
        if PILImage is not None and isinstance(image, PILImage.Image):
            out = self.upscale_image(imio.from_pil(image), outscale=outscale)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return imio.to_pil(out.pixels, out.alpha)
        raise TypeError(f"cannot upscale a {type(image).__name__}; pass a PIL image or a numpy array")

    def _upscale_array(self, arr: np.ndarray, outscale: float | None) -> np.ndarray:
        a = arr
        squeeze = a.ndim == 2
        if squeeze:
            a = a[..., None]
        if a.ndim != 3 or a.shape[2] not in (1, 2, 3, 4):
            raise ValueError(f"expected an (H, W) or (H, W, C) array with C in 1..4, got shape {arr.shape}")
        is_float = np.issubdtype(a.dtype, np.floating)
        if not is_float and a.dtype not in (np.uint8, np.uint16):
            raise TypeError(f"unsupported array dtype {a.dtype}; use uint8, uint16 or float in [0, 1]")
        alpha_in = a.shape[2] in (2, 4)
        pix, alpha = (a[..., :-1], a[..., -1]) if alpha_in else (a, None)
        if is_float:
            return self._upscale_float(pix, alpha, outscale, squeeze)
        img = imio.Image(pixels=pix, alpha=alpha, bit_depth=16 if a.dtype == np.uint16 else 8)
        out = self.upscale_image(img, outscale=outscale)
        res = out.pixels if out.alpha is None else np.concatenate([out.pixels, out.alpha[..., None]], axis=2)
        return res[..., 0] if squeeze else res

    def _upscale_float(self, pix, alpha, outscale, squeeze):
        from srlab.imaging.resize import imresize

        h, w = pix.shape[:2]
        sr = self._run_channels(imio.to_tensor(pix.astype(np.float32)))
        planes = [sr]
        if alpha is not None:
            at = imio.to_tensor(alpha.astype(np.float32))
            planes.append(
                self._run_channels(at) if self.alpha_mode == "model" else imresize(at, float(self.scale))
            )
        if outscale is not None and outscale > 0 and not math.isclose(outscale, self.scale):
            size = (max(1, round(h * outscale)), max(1, round(w * outscale)))
            planes = [self._resize_to(p, size) for p in planes]
        out = torch.cat(planes).clamp(0, 1).permute(1, 2, 0).numpy().astype(pix.dtype)
        return out[..., 0] if squeeze else out

    def upscale_file(
        self,
        src,
        dst,
        *,
        outscale: float | None = None,
        overwrite: bool = False,
        max_pixels: int | None = None,
    ) -> Path:
        """Read ``src``, upscale, write ``dst`` (format from its extension). Never writes over ``src``."""
        src, dst = Path(src), Path(dst)
        if dst.exists() and src.exists() and os.path.samefile(src, dst):
            raise imio.ImageError(f"{dst}: is the input file; choose another output name")
        kw = {} if max_pixels is None else {"max_pixels": max_pixels}
        img = imio.read_image(src, **kw)
        out = self.upscale_image(img, outscale=outscale)
        return imio.write_image(
            dst,
            out.pixels,
            alpha=out.alpha,
            bit_depth=out.bit_depth,
            overwrite=overwrite,
            icc_profile=out.icc_profile,
        )

    def tiles_for(self, height: int, width: int) -> int:
        return self.plan(height, width).n_tiles


_CACHE: dict[tuple, Upscaler] = {}


def upscale(
    image,
    model: Any = DEFAULT_MODEL,
    *,
    outscale: float | None = None,
    tile: int | None = None,
    tile_overlap: int | None = None,
    precision: str = "auto",
    device: str = "auto",
    batch_size: int | None = None,
    progress: bool = False,
    alpha: str = "bicubic",
):
    """Upscale a PIL image or numpy array with ``model``; returns the same kind (see :class:`Upscaler`).

    Models given by name or path are loaded once and cached (one entry) for repeated calls.
    """
    settings = dict(
        tile=tile,
        tile_overlap=tile_overlap,
        precision=precision,
        device=device,
        batch_size=batch_size,
        progress=progress,
        alpha=alpha,
    )
    if isinstance(model, (str, os.PathLike)):
        key = (str(model), tuple(sorted(settings.items())))
        up = _CACHE.get(key)
        if up is None:
            _CACHE.clear()
            up = _CACHE[key] = Upscaler(model, **settings)
    else:
        up = Upscaler(model, **settings)
    return up(image, outscale=outscale)
