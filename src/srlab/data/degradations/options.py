"""The options record of the Real-ESRGAN degradation pipeline (pydantic only, so the training-config schema
imports it without torch). Defaults: the published ``options/train_realesrgan_x4plus.yml`` of Real-ESRGAN."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic_core import PydanticCustomError

__all__ = ["RealESRGANOptions"]

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
            raise PydanticCustomError("realesrgan_option", "{key}: {why}", {"key": key, "why": why})

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
