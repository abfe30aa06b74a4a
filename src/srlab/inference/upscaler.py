""":class:`Upscaler`: a model ready to upscale images of any size, mode and bit depth.

``srlab upscale``, :func:`srlab.upscale`, the video and animation paths and the benchmarks go through it
(evaluation runs models through :mod:`srlab.eval.loop`). Options: one record, :class:`~srlab.inference.options.
UpscaleOptions`; where files go: :mod:`srlab.inference.outputs`. It runs an :class:`~srlab.inference.engine.
Engine` (backend, device, precision, layout, compile) over the tiles of :mod:`srlab.inference.tiling`, plus:

- gray input, RGB model: the channel is replicated to RGB and the output's channel mean is kept;
- Y models (``descriptor.color == 'y'``): RGB is converted to YCbCr (BT.601, MATLAB), the model runs on
  Y, Cb and Cr are MATLAB-bicubic upsampled, and the result is converted back; gray runs as is;
- alpha is upscaled separately with MATLAB bicubic (``alpha='bicubic'``, the default: a mask must not
  get GAN texture) or by the model itself on the alpha replicated to its channels (``alpha='model'``);
- 16-bit inputs are processed in float32 and returned at 16 bits; palette images come in as RGB/RGBA;
- ``outscale``: the model runs at its own scale, then the result is resized to ``outscale`` x the input
  size with MATLAB bicubic (:func:`srlab.imaging.resize.imresize`, ``size=``), which is antialiased when
  shrinking (outscale < model scale), so one kernel serves both directions.

Before any work, an image whose results would not fit in memory is refused with one line saying how many
GB it needs (:meth:`Upscaler.check_output_memory`), and float arrays must hold finite values in [0, 1]
(:mod:`srlab.inference.limits`). Tiled images on the CPU are quantised row block by row block as the tiles
finish, so the float result of a large image is never held whole.

Device faults are handled per tile batch (:mod:`srlab.inference.resilience`): out of memory retries with
half the tile size (remembered for later images), and a tile whose fp16/bf16 output overflowed is redone
in fp32; each is said once per image, as a warning. Which precision runs where: the engine
(:mod:`srlab.inference.cpu_choice` on the CPU, from the recorded quality check).
"""

from __future__ import annotations

import math
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image as PILImage
from tqdm.auto import tqdm

from srlab.errors import ConfigError
from srlab.imaging import io as imio
from srlab.imaging.color import rgb_to_ycbcr, ycbcr_to_rgb
from srlab.imaging.resize import imresize
from srlab.inference.engine import build_engine
from srlab.inference.limits import available_memory, check_float_range
from srlab.inference.options import UpscaleOptions
from srlab.inference.outputs import check_target
from srlab.inference.resilience import FaultState, TileRunner
from srlab.inference.resolve import DEFAULT_MODEL, resolve_model
from srlab.inference.tiling import (
    TilePlan,
    blend_tiles,
    default_overlap,
    make_plan,
    pad_to_multiple,
    warn_small_overlap,
)

__all__ = ["CPU_MEMORY_BUDGET", "Upscaler"]

CPU_MEMORY_BUDGET = 1 << 30
"""Activation memory automatic tiles may use on the CPU and MPS (the tile outputs, the streamed result and
the runtime's own buffers come on top): small enough that a 12 Mpx photo upscales in well under 2 GB,
large enough that tiles stay several times wider than their context."""


def _notice(line: str) -> None:
    """One line to stderr that keeps a progress bar intact (what the CLI prints besides its results)."""
    tqdm.write(f"srlab: {line}", file=sys.stderr)


class Upscaler:
    """A model ready to upscale images: device, precision and tiling fixed at construction.

    ``model``: name or path (loaded by :func:`srlab.load_model`), ``(module, descriptor)`` or a module.
    ``options``: an :class:`~srlab.inference.options.UpscaleOptions` (tile, overlap, batch, precision,
    device, backend, compile, fuse, channels_last, alpha, outscale: documented there); keyword arguments
    of those names set or change single fields (``Upscaler(model, tile=0, device="cpu")``).
    ``progress``: a tile progress bar for large images, or a function of (tiles done, tiles in all) called
    after each batch of tiles (see :func:`~srlab.inference.tiling.blend_tiles`). ``memory_budget``:
    activation bytes automatic tiles may use (``None``: half the free memory on CUDA,
    :data:`CPU_MEMORY_BUDGET` elsewhere).
    ``max_output_bytes``: refuse an image whose results would need more memory than this, before any work
    (``None``: the memory available when the image comes; see :meth:`output_bytes`).
    """

    def __init__(
        self,
        model: Any = DEFAULT_MODEL,
        options: UpscaleOptions | None = None,
        *,
        progress: bool | Callable[[int, int], None] = False,
        memory_budget: int | None = None,
        max_output_bytes: int | None = None,
        **changes: Any,
    ) -> None:
        self.options = opts = UpscaleOptions.make(options, **changes)
        module, desc = resolve_model(model)
        self.descriptor, self.scale = desc, int(desc.scale)
        self.progress, self.memory_budget = progress, memory_budget
        self.max_output_bytes = max_output_bytes
        self.faults = FaultState()
        self.engine = build_engine(
            module,
            desc,
            opts,
            caller_owned=not isinstance(model, (str, os.PathLike)),
            notify=_notice if progress is True else None,
        )
        warn_small_overlap(desc.name, int(desc.receptive_radius), opts.tile_overlap, opts.tile)

    tile = property(lambda self: self.options.tile)
    tile_overlap = property(lambda self: self.options.tile_overlap)
    batch_size = property(lambda self: self.options.batch_size)
    alpha_mode = property(lambda self: self.options.alpha)

    def _outscale(self, outscale: float | None) -> float | None:
        """A call's ``outscale``, else the options' (None: the model's scale)."""
        return self.options.outscale if outscale is None else outscale

    @property
    def device(self) -> torch.device:
        return self.engine.device

    @property
    def precision(self) -> str:
        return self.engine.precision

    @property
    def backend(self) -> str:
        return self.engine.backend

    # ---------------------------------------------------------------- planning
    def describe(self) -> str:
        t = "auto" if self.tile is None else self.tile
        return f"{self.descriptor.name} x{self.scale} on {self.engine.describe()}, tile {t}, backend {self.backend}"

    def _bytes_per_lr_pixel(self) -> int:
        hp = self.descriptor.hparams
        feats = max(int(hp.get("num_feat", 0) or 0), int(hp.get("n1", 0) or 0), 64)
        elem = 2 if self.engine.model_dtype in (torch.float16, torch.bfloat16) else 4
        # a few live feature maps at the output resolution dominate (upsampling convs, SRCNN at HR size)
        return elem * feats * max(1, self.scale) ** 2 * 4

    def _budget(self) -> int:
        if self.memory_budget:
            return int(self.memory_budget)
        if self.device.type == "cuda":
            return int(torch.cuda.mem_get_info(self.device)[0] * 0.5)
        return CPU_MEMORY_BUDGET

    def default_overlap(self, tile: int | None = None) -> int:
        return default_overlap(int(self.descriptor.receptive_radius), tile)

    def plan(self, height: int, width: int) -> TilePlan:
        """How an LR image of this size is tiled (sizes are of the image padded to size_multiple); after an
        out-of-memory retry, with tiles no larger than the size that fit."""
        tile, cap = self.tile, self.faults.tile_cap
        if cap is not None:
            tile = cap if not tile else min(tile, cap)
        return make_plan(
            height,
            width,
            mult=max(1, int(self.descriptor.size_multiple)),
            radius=int(self.descriptor.receptive_radius),
            tile=tile,
            overlap=self.tile_overlap,
            bytes_per_px=self._bytes_per_lr_pixel(),
            budget=self._budget(),
            batch_size=self.batch_size,
            on_cpu=self.device.type == "cpu",
        )

    def _accumulate_on_device(self, out_elems: int) -> bool:
        """On CUDA, keep the output on the GPU (no per-tile copies) when it takes under 1/4 of the budget."""
        return self.device.type == "cuda" and out_elems * 4 * 2 < self._budget() // 4

    # ---------------------------------------------------------------- core
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
        keep = on_device and self._accumulate_on_device(
            self.descriptor.out_channels * plan.height * plan.width * s * s
        )
        runner = TileRunner(self.engine, self.faults, overlap=plan.overlap, keep=keep)
        self.engine.expect(plan.n_tiles * plan.win_h * plan.win_w)
        padded = pad_to_multiple(x[None], max(1, int(self.descriptor.size_multiple)))
        try:
            if plan.n_tiles == 1:
                return runner(padded)[0][..., : h * s, : w * s]
            out = blend_tiles(
                padded[0],
                plan,
                s,
                runner,
                device=self.device if keep else torch.device("cpu"),
                progress=self.progress,
            )
            return out[..., : h * s, : w * s]
        finally:
            self.faults.report()

    def _stream_plan(self, img: imio.Image) -> TilePlan | None:
        """The tile plan of ``img.pixels`` when they can be streamed (see :meth:`_upscale_streamed`)."""
        if img.channels != self.descriptor.in_channels and not self._grey_on_rgb(img.channels):
            return None
        plan = self.plan(img.height, img.width)
        out_elems = self.descriptor.out_channels * plan.height * plan.width * self.scale**2
        if plan.n_tiles == 1 or self._accumulate_on_device(out_elems):
            return None
        return plan

    def _upscale_streamed(self, img: imio.Image) -> np.ndarray | None:
        """The model's output for ``img.pixels`` quantised straight into the result array, one block of
        rows at a time, so the float result is never held whole (see :func:`blend_tiles`'s ``sink``). None
        where that does not apply: colour conversions, a single tile, an output kept on the GPU."""
        plan = self._stream_plan(img)
        if plan is None:
            return None
        h, w, s = img.height, img.width, self.scale
        grey = self._grey_on_rgb(img.channels)
        cout = 1 if grey else self.descriptor.out_channels
        prep = None
        if img.pixels.dtype == np.uint8 and (plan.height, plan.width) == (h, w):
            # 8-bit windows become float one at a time (as to_tensor would: the same values), so the
            # image is never held as float32 as well
            pix = img.pixels if img.pixels.flags.writeable else img.pixels.copy()
            padded = torch.from_numpy(pix).permute(2, 0, 1)

            def prep(batch: torch.Tensor) -> torch.Tensor:
                batch = batch.float().div_(255.0)
                return batch.expand(-1, 3, -1, -1) if grey else batch
        else:
            x = imio.to_tensor(img.pixels)
            padded = pad_to_multiple(x[None], max(1, int(self.descriptor.size_multiple)))[0]
            del x
            if grey:  # the grey plane goes to the model as R = G = B one window at a time, never whole

                def prep(batch: torch.Tensor) -> torch.Tensor:
                    return batch.expand(-1, 3, -1, -1)

        result = np.empty((h * s, w * s, cout), dtype=np.uint16 if img.bit_depth == 16 else np.uint8)
        self.engine.expect(plan.n_tiles * plan.win_h * plan.win_w)

        def sink(row0: int, rows: torch.Tensor) -> None:
            row1 = min(h * s, row0 + rows.shape[1])  # rows of the padding are dropped
            if grey:  # back to grey as _run_channels does: the mean of the model's three channels
                rows = rows.mean(dim=0, keepdim=True)
            if row1 > row0:
                result[row0:row1] = imio.from_tensor(rows[:, : row1 - row0, : w * s], bit_depth=img.bit_depth)

        try:
            with torch.inference_mode():
                blend_tiles(
                    padded,
                    plan,
                    s,
                    TileRunner(self.engine, self.faults, overlap=plan.overlap, prep=prep),
                    device=torch.device("cpu"),
                    progress=self.progress,
                    sink=sink,
                )
        finally:
            self.faults.report()
        return result

    # ---------------------------------------------------------------- colour handling
    def _grey_on_rgb(self, channels: int) -> bool:
        """A grey image for an RGB model: it runs as R = G = B and comes back as the channels' mean."""
        return channels == 1 and self.descriptor.in_channels == 3 and self.descriptor.out_channels == 3

    def _model_planes(self, channels: int) -> int:
        """Float planes a whole (not streamed) run holds for an image of ``channels``: a grey image on an
        RGB model is three planes of model output, then their mean."""
        return 3 + 1 if self._grey_on_rgb(channels) else channels

    def _run_channels(self, x: torch.Tensor, *, on_device: bool = False) -> torch.Tensor:
        """Upscale a (C, H, W) image in [0, 1] with C in {1, 3} whatever the model's channels; returns C channels."""
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

    def _run_alpha(self, alpha: torch.Tensor) -> torch.Tensor:
        if self.alpha_mode == "model":
            return self._run_channels(alpha)
        return imresize(alpha, float(self.scale))

    def output_bytes(
        self,
        h: int,
        w: int,
        channels: int,
        outscale: float | None = None,
        bit_depth: int = 8,
        *,
        streamed: int = 0,
    ) -> int:
        """Memory the results of an ``h`` x ``w`` image with ``channels`` planes (alpha included) take: the
        float32 model output of the planes not ``streamed`` (quantised as the tiles finish), with
        ``outscale`` the float32 resized copies, then the quantised image and Pillow's copy of it when it
        is encoded (up to 4 bytes a pixel)."""
        s = self.scale
        size = self._out_size(h, w, outscale)
        oh, ow = size if size is not None else (h * s, w * s)
        need = 4 * (channels - streamed) * (h * s) * (w * s)
        if size is not None:
            need += 4 * channels * oh * ow
        return need + ((bit_depth // 8) * channels + 4) * oh * ow

    def check_output_memory(
        self,
        h: int,
        w: int,
        channels: int,
        outscale: float | None = None,
        bit_depth: int = 8,
        *,
        streamed: int = 0,
    ) -> None:
        """Refuse, before any work, an image whose results would not fit in memory (ImageError, one line)."""
        need = self.output_bytes(h, w, channels, outscale, bit_depth, streamed=streamed)
        limit = self.max_output_bytes if self.max_output_bytes is not None else available_memory()
        if limit is None or need <= limit:
            return
        size = self._out_size(h, w, outscale) or (h * self.scale, w * self.scale)
        raise imio.ImageError(
            f"a {w}x{h} image upscaled to {size[1]}x{size[0]} needs about {need / 1e9:.1f} GB of memory, "
            f"more than the {limit / 1e9:.1f} GB available; use a smaller --outscale or split the image"
        )

    def _out_size(self, h: int, w: int, outscale: float | None) -> tuple[int, int] | None:
        """The final size when ``outscale`` differs from the model's scale, else None (nothing to resize)."""
        if outscale is None or outscale <= 0 or math.isclose(outscale, self.scale):
            return None
        return max(1, round(h * outscale)), max(1, round(w * outscale))

    @staticmethod
    def _resize_to(t: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        if tuple(t.shape[-2:]) == size:
            return t
        out = t.new_empty((t.shape[0], *size))
        for c, ch in enumerate(t):  # per channel into one result: bounded temporaries, no concatenated copy
            out[c] = imresize(ch[None], size=size)[0]
        return out

    def upscale_image(self, img: imio.Image, *, outscale: float | None = None) -> imio.Image:
        """Upscale an :class:`srlab.imaging.io.Image` (pixels + optional alpha), keeping mode and bit depth."""
        outscale = self._outscale(outscale)
        planes = self._model_planes(img.channels) + (0 if img.alpha is None else 1)
        size = self._out_size(img.height, img.width, outscale)
        streamed = (
            self._model_planes(img.channels) if size is None and self._stream_plan(img) is not None else 0
        )
        self.check_output_memory(img.height, img.width, planes, outscale, img.bit_depth, streamed=streamed)
        depth = img.bit_depth
        pixels = self._upscale_streamed(img) if size is None else None
        if pixels is None:
            sr = self._run_channels(imio.to_tensor(img.pixels), on_device=size is None)
            if size is not None:
                sr = self._resize_to(sr, size)
            pixels = imio.from_tensor(sr, bit_depth=depth)  # quantised where sr is (GPU: 4x fewer bytes back)
            del sr
        a = None if img.alpha is None else self._run_alpha(imio.to_tensor(img.alpha))
        if size is not None and a is not None:
            a = self._resize_to(a, size)
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
        if isinstance(image, PILImage.Image):
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
        outscale = self._outscale(outscale)
        check_float_range(pix if alpha is None else np.concatenate([pix, alpha[..., None]], axis=2))
        held = self._model_planes(pix.shape[2]) + (alpha is not None)
        self.check_output_memory(pix.shape[0], pix.shape[1], held, outscale, 32)
        planes = [self._run_channels(imio.to_tensor(pix.astype(np.float32)))]
        if alpha is not None:
            planes.append(self._run_alpha(imio.to_tensor(alpha.astype(np.float32))))
        size = self._out_size(pix.shape[0], pix.shape[1], outscale)
        if size is not None:
            planes = [self._resize_to(p, size) for p in planes]
        out = torch.cat(planes).clamp(0, 1).permute(1, 2, 0).numpy().astype(pix.dtype)
        return out[..., 0] if squeeze else out

    def upscale_file(
        self,
        src: str | os.PathLike,
        dst: str | os.PathLike | Callable[[imio.Image], str | os.PathLike],
        *,
        outscale: float | None = None,
        overwrite: bool = False,
        max_pixels: int | None = None,
        quality: int = 95,
    ) -> imio.Image:
        """Read ``src``, upscale it, write ``dst`` (format from its extension); returns the image written
        (its ``path`` set).

        ``dst`` may be a function of the decoded input returning the output path: it runs before the
        upscaling, so it can choose the name from the image (a format that keeps its transparency) or
        refuse it by raising (:meth:`srlab.inference.outputs.OutputPlan.claim` is such a function for a
        batch). Never writes over ``src``; replaces an existing ``dst`` only with ``overwrite``: both are
        :func:`srlab.inference.outputs.check_target`'s rules, checked before the upscaling.
        ``max_pixels``: refuse larger inputs (default: :func:`srlab.imaging.io.read_image`'s).
        ``quality``: JPEG/WebP quality (1-100).
        """
        src = Path(src)
        kw = {} if max_pixels is None else {"max_pixels": max_pixels}
        img = imio.read_image(src, **kw)
        out_path = check_target(src, Path(dst(img) if callable(dst) else dst), overwrite=overwrite)
        try:
            out = self.upscale_image(img, outscale=outscale)
        except imio.ImageError as exc:
            raise imio.ImageError(f"{src}: {exc}") from None
        out.path = imio.write_image(
            out_path,
            out.pixels,
            alpha=out.alpha,
            bit_depth=out.bit_depth,
            overwrite=overwrite,
            icc_profile=out.icc_profile,
            quality=quality,
        )
        return out
