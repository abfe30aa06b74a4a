"""Real-ESRGAN's second-order degradation: options, per-sample parameters, and the pipeline on a batch.

From an HR crop (N, 3, H, W) in [0, 1] and the scale ``s`` (Wang et al., Real-ESRGAN, ICCVW 2021; the
published training options of ``train_realesrgan_x4plus.yml`` are the defaults of :class:`RealESRGANOptions`):

1. optionally unsharp-mask the HR (Real-ESRGAN degrades its sharpened ground truth);
2. first order: blur (one of six kernel shapes, or a sinc with ``sinc_prob``), resize up/down/keep by a
   random factor with area/bilinear/bicubic, Gaussian or Poisson noise (colour or grey), JPEG;
3. second order, the same with its own ranges, the blur only with ``second_blur_prob``, the resize to
   ``H/s * factor``;
4. in random order, [resize to exactly H/s x W/s + final sinc filter (with ``final_sinc_prob``)] and JPEG;
5. rounded to 8 bits. The target is the HR, unsharp-masked when ``usm_target``.

Every random choice of sample ``key`` (an int, the sample's stream position) comes from a generator seeded by
``(seed, key)`` in :func:`draw_params`: a sample's degradation depends on nothing else, so resume and
multi-process training reproduce it, and a different iteration gets different parameters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from srlab.data.degradations import kernels as K
from srlab.data.degradations import ops
from srlab.data.degradations.options import RealESRGANOptions

__all__ = ["RealESRGANOptions", "SampleParams", "degrade_batch", "draw_params"]


@dataclass(frozen=True)
class Order:
    """One order's parameters: blur kernel (None = no blur), resize, noise, JPEG quality."""

    kernel: np.ndarray | None  # (kernel_size, kernel_size), normalised
    kernel_type: str  # one of kernels.KERNEL_TYPES, "sinc", or "none"
    resize_factor: float
    resize_mode: str
    noise: str  # gaussian | poisson
    noise_level: float  # Gaussian sigma (0-255 scale) or Poisson scale
    gray_noise: bool
    jpeg_quality: int


@dataclass(frozen=True)
class SampleParams:
    """Every random choice of one sample's degradation."""

    first: Order
    second: Order
    resize_then_jpeg: bool  # final step: [resize back + sinc] then JPEG (else JPEG first)
    final_mode: str
    final_sinc: np.ndarray | None  # the final sinc kernel, or None
    final_sinc_cutoff: float  # 0 without it
    final_jpeg_quality: int
    noise_seed: int


def _blur_kernel(rng: np.random.Generator, o: RealESRGANOptions, second: bool) -> tuple[np.ndarray, str]:
    sfx = "2" if second else ""
    kl, kp = getattr(o, "kernel_list" + sfx), getattr(o, "kernel_prob" + sfx)
    sigma, betag, betap = (getattr(o, n + sfx) for n in ("blur_sigma", "betag_range", "betap_range"))
    size = int(rng.choice(np.arange(7, o.kernel_size + 1, 2)))
    if rng.uniform() < getattr(o, "sinc_prob" + sfx):
        # small kernels cannot hold a very low cut-off: Real-ESRGAN's bound
        cutoff = rng.uniform(math.pi / 3, math.pi) if size < 13 else rng.uniform(math.pi / 5, math.pi)
        return K.pad_kernel(K.sinc_kernel(size, cutoff), o.kernel_size), "sinc"
    kind = str(kl[int(rng.choice(len(kl), p=np.asarray(kp) / np.sum(kp)))])
    sx = rng.uniform(*sigma)
    if kind.endswith("aniso"):
        sy, theta = rng.uniform(*sigma), rng.uniform(-math.pi, math.pi)
    else:
        sy, theta = sx, 0.0

    def beta(lo: float, hi: float) -> float:
        # half the draws below 1 (heavier tails), half above (flatter tops), as Real-ESRGAN draws them
        return rng.uniform(lo, 1.0) if rng.uniform() < 0.5 else rng.uniform(1.0, hi)

    if kind.startswith("generalized"):
        k = K.generalized_gaussian_kernel(size, sx, sy, theta, beta(*betag))
    elif kind.startswith("plateau"):
        k = K.plateau_kernel(size, sx, sy, theta, beta(*betap))
    else:
        k = K.gaussian_kernel(size, sx, sy, theta)
    return K.pad_kernel(k, o.kernel_size), kind


def _order(rng: np.random.Generator, o: RealESRGANOptions, second: bool) -> Order:
    sfx = "2" if second else ""
    kernel, ktype = _blur_kernel(rng, o, second)
    if second and rng.uniform() >= o.second_blur_prob:
        kernel, ktype = None, "none"
    lo, hi = getattr(o, "resize_range" + sfx)
    updown = int(
        rng.choice(3, p=np.asarray(getattr(o, "resize_prob" + sfx)) / sum(getattr(o, "resize_prob" + sfx)))
    )
    factor = rng.uniform(1.0, hi) if updown == 0 else rng.uniform(lo, 1.0) if updown == 1 else 1.0
    mode = str(o.resize_modes[int(rng.integers(len(o.resize_modes)))])
    if rng.uniform() < getattr(o, "gaussian_noise_prob" + sfx):
        noise, level = "gaussian", rng.uniform(*getattr(o, "noise_range" + sfx))
    else:
        noise, level = "poisson", rng.uniform(*getattr(o, "poisson_scale_range" + sfx))
    gray = bool(rng.uniform() < getattr(o, "gray_noise_prob" + sfx))
    q = int(round(rng.uniform(*getattr(o, "jpeg_range" + sfx))))
    return Order(kernel, ktype, float(factor), mode, noise, float(level), gray, q)


def draw_params(options: RealESRGANOptions, seed: int, key: int) -> SampleParams:
    """The degradation of sample ``key`` under ``seed`` (a pure function of the two)."""
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, int(key), 0xE5A6])
    o = options
    first, second = _order(rng, o, False), _order(rng, o, True)
    resize_then_jpeg = bool(rng.uniform() < 0.5)
    final_mode = str(o.resize_modes[int(rng.integers(len(o.resize_modes)))])
    sinc, cutoff = None, 0.0
    if rng.uniform() < o.final_sinc_prob:
        size = int(rng.choice(np.arange(7, o.kernel_size + 1, 2)))
        cutoff = float(rng.uniform(math.pi / 3, math.pi))
        sinc = K.pad_kernel(K.sinc_kernel(size, cutoff), o.kernel_size)
    # the second order's JPEG is the final one
    q = second.jpeg_quality
    return SampleParams(
        first, second, resize_then_jpeg, final_mode, sinc, cutoff, q, int(rng.integers(2**62))
    )


def _noise(x: torch.Tensor, order: Order, gen: torch.Generator) -> torch.Tensor:
    level = torch.tensor([order.noise_level])
    gray = torch.tensor([order.gray_noise])
    if order.noise == "gaussian":
        return ops.add_gaussian_noise(x, level / 255.0, gray, [gen])
    return ops.add_poisson_noise(x, level, gray, [gen])


def _degrade_blurred(x: torch.Tensor, scale: int, size: tuple[int, int], p: SampleParams) -> torch.Tensor:
    """One image (1, C, H, W) after the first blur -> LR (1, C, H/s, W/s) rounded to 8-bit levels."""
    h, w = size
    gen = torch.Generator().manual_seed(p.noise_seed)
    dev = x.device
    f = p.first.resize_factor
    x = ops.resize(x, (int(h * f), int(w * f)), p.first.resize_mode)
    x = _noise(x, p.first, gen)
    x = ops.jpeg(x, [p.first.jpeg_quality])
    if p.second.kernel is not None:
        x = ops.filter2d(x, torch.from_numpy(p.second.kernel).to(dev))
    f = p.second.resize_factor
    x = ops.resize(x, (int(h / scale * f), int(w / scale * f)), p.second.resize_mode)
    x = _noise(x, p.second, gen)

    def back_and_sinc(t: torch.Tensor) -> torch.Tensor:
        t = ops.resize(t, (h // scale, w // scale), p.final_mode)
        return t if p.final_sinc is None else ops.filter2d(t, torch.from_numpy(p.final_sinc).to(dev))

    if p.resize_then_jpeg:
        x = ops.jpeg(back_and_sinc(x), [p.final_jpeg_quality])
    else:
        x = back_and_sinc(ops.jpeg(x, [p.final_jpeg_quality]))
    return ops.to_uint8_levels(x)


def degrade_batch(
    hr: torch.Tensor, scale: int, options: RealESRGANOptions, seed: int, keys: list[int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(lr, target)`` for an HR batch (N, C, H, W) in [0, 1] on any device; ``keys[i]`` names sample i
    (its stream position). H and W must be multiples of ``scale``.

    The sharpening and the first blur run on the whole batch (one grouped convolution, a kernel per image);
    from the first resize on each image has its own size, so the rest runs image by image.
    """
    n, _, h, w = hr.shape
    if len(keys) != n:
        raise ValueError(f"{len(keys)} keys for a batch of {n}")
    if h % scale or w % scale:
        raise ValueError(f"HR crops {w}x{h} are not a multiple of the scale {scale}")
    hr = hr.float()
    sharp = None
    if options.usm_input or options.usm_target:
        sharp = ops.usm_sharpen(
            hr, radius=options.usm_radius, weight=options.usm_weight, threshold=options.usm_threshold
        )
    src = sharp if options.usm_input else hr
    params = [draw_params(options, seed, k) for k in keys]
    k1 = torch.from_numpy(np.stack([p.first.kernel for p in params])).to(hr.device)
    blurred = ops.filter2d(src, k1)
    lr = torch.cat([_degrade_blurred(blurred[i : i + 1], scale, (h, w), p) for i, p in enumerate(params)])
    return lr, (sharp if options.usm_target else hr)
