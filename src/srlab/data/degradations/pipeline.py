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
from typing import Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, model_validator

from srlab.data.degradations import kernels as K
from srlab.data.degradations import ops

__all__ = ["RealESRGANOptions", "SampleParams", "degrade_batch", "draw_params"]

KernelName = Literal["iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso"]
Mode = Literal["area", "bilinear", "bicubic"]
_KERNELS6 = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso")
_PROB6 = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)


class RealESRGANOptions(BaseModel):
    """The ranges and probabilities of the pipeline (``data.realesrgan.<key>`` in a training config)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kernel_size: int = 21  # the largest blur kernel; sizes are drawn from the odd 7..kernel_size
    kernel_list: tuple[KernelName, ...] = _KERNELS6
    kernel_prob: tuple[float, ...] = _PROB6
    sinc_prob: float = 0.1
    blur_sigma: tuple[float, float] = (0.2, 3.0)
    betag_range: tuple[float, float] = (0.5, 4.0)
    betap_range: tuple[float, float] = (1.0, 2.0)
    resize_prob: tuple[float, float, float] = (0.2, 0.7, 0.1)  # up, down, keep
    resize_range: tuple[float, float] = (0.15, 1.5)
    gaussian_noise_prob: float = 0.5  # else Poisson
    noise_range: tuple[float, float] = (1.0, 30.0)  # Gaussian sigma on the 0-255 scale
    poisson_scale_range: tuple[float, float] = (0.05, 3.0)
    gray_noise_prob: float = 0.4
    jpeg_range: tuple[float, float] = (30.0, 95.0)

    second_blur_prob: float = 0.8
    kernel_list2: tuple[KernelName, ...] = _KERNELS6
    kernel_prob2: tuple[float, ...] = _PROB6
    sinc_prob2: float = 0.1
    blur_sigma2: tuple[float, float] = (0.2, 1.5)
    betag_range2: tuple[float, float] = (0.5, 4.0)
    betap_range2: tuple[float, float] = (1.0, 2.0)
    resize_prob2: tuple[float, float, float] = (0.3, 0.4, 0.3)
    resize_range2: tuple[float, float] = (0.3, 1.2)
    gaussian_noise_prob2: float = 0.5
    noise_range2: tuple[float, float] = (1.0, 25.0)
    poisson_scale_range2: tuple[float, float] = (0.05, 2.5)
    gray_noise_prob2: float = 0.4
    jpeg_range2: tuple[float, float] = (30.0, 95.0)

    final_sinc_prob: float = 0.8
    resize_modes: tuple[Mode, ...] = ("area", "bilinear", "bicubic")
    usm_input: bool = True  # degrade the unsharp-masked HR (Real-ESRGAN's model code does)
    usm_target: bool = True  # train against the unsharp-masked HR (its l1/percep_gt_usm)
    usm_radius: int = 50
    usm_weight: float = 0.5
    usm_threshold: float = 10.0

    @model_validator(mode="after")
    def _check(self) -> RealESRGANOptions:
        def fail(key: str, why: str):
            raise ValueError(f"data.realesrgan.{key}: {why}")

        if self.kernel_size < 7 or self.kernel_size % 2 == 0:
            fail("kernel_size", f"must be an odd number >= 7, not {self.kernel_size}")
        for key in (
            "blur_sigma", "betag_range", "betap_range", "resize_range", "noise_range", "poisson_scale_range",
            "jpeg_range", "blur_sigma2", "betag_range2", "betap_range2", "resize_range2", "noise_range2",
            "poisson_scale_range2", "jpeg_range2",
        ):  # fmt: skip
            lo, hi = getattr(self, key)
            if not 0 <= lo <= hi:
                fail(key, f"needs 0 <= low <= high, not [{lo}, {hi}]")
        for key in (
            "blur_sigma",
            "blur_sigma2",
            "betag_range",
            "betag_range2",
            "betap_range",
            "betap_range2",
        ):
            if getattr(self, key)[0] <= 0:
                fail(key, "must be > 0")
        for key in ("jpeg_range", "jpeg_range2"):
            lo, hi = getattr(self, key)
            if lo < 1 or hi > 100:
                fail(key, f"JPEG qualities lie in [1, 100], not [{lo}, {hi}]")
        for key in ("resize_range", "resize_range2"):
            lo, hi = getattr(self, key)
            if not lo <= 1 <= hi:
                fail(key, f"must contain 1 (down below it, up above it), not [{lo}, {hi}]")
        for key in (
            "sinc_prob", "sinc_prob2", "gaussian_noise_prob", "gaussian_noise_prob2", "gray_noise_prob",
            "gray_noise_prob2", "second_blur_prob", "final_sinc_prob",
        ):  # fmt: skip
            if not 0 <= getattr(self, key) <= 1:
                fail(key, f"a probability lies in [0, 1], not {getattr(self, key)}")
        for names, probs, kl, kp in (
            ("kernel_list", "kernel_prob", self.kernel_list, self.kernel_prob),
            ("kernel_list2", "kernel_prob2", self.kernel_list2, self.kernel_prob2),
        ):
            if len(kl) != len(kp) or not kl:
                fail(probs, f"needs one probability per entry of {names} ({len(kl)}), has {len(kp)}")
            if min(kp) < 0 or abs(sum(kp) - 1) > 1e-6:
                fail(probs, f"probabilities must be >= 0 and sum to 1, not {list(kp)}")
        for key in ("resize_prob", "resize_prob2"):
            p = getattr(self, key)
            if min(p) < 0 or abs(sum(p) - 1) > 1e-6:
                fail(key, f"the up/down/keep probabilities must be >= 0 and sum to 1, not {list(p)}")
        if not self.resize_modes:
            fail("resize_modes", "name at least one of area, bilinear, bicubic")
        return self


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
    q = int(round(rng.uniform(*o.jpeg_range2)))
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
