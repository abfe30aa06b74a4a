"""Perceptual image-quality metrics in plain torch/numpy: LPIPS (AlexNet, VGG16), DISTS, NIQE.

No optional package is needed (``lpips``, ``DISTS_pytorch`` and ``pyiqa`` all import torchvision, which has
no wheel that works with srlab's pinned CPU torch); the networks are srlab's own code, checked against the
reference implementations in ``tests/test_perceptual.py``. Their weights are published files fetched on
first use (:mod:`srlab.eval.perceptual.assets`), hash-checked, into srlab's weights cache.

:data:`PERCEPTUAL` describes each metric; :func:`score` computes one on (N, C, H, W) float tensors on the
0-255 scale (grey images are replicated to RGB for the networks; NIQE reads the Y channel and ignores the
reference). Built networks are kept per (metric, device) for the life of the process.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from srlab.errors import ConfigError
from srlab.eval.perceptual.assets import require
from srlab.eval.perceptual.dists import build_dists
from srlab.eval.perceptual.lpips import build_lpips
from srlab.eval.perceptual.niqe import NIQE
from srlab.imaging.color import rgb_to_y

__all__ = ["PERCEPTUAL", "PerceptualMetric", "clear_cache", "load", "parse_metrics", "score"]


@dataclass(frozen=True)
class PerceptualMetric:
    name: str  # the result column
    title: str
    description: str
    reference: bool  # compares against the ground truth (full-reference) or scores SR alone
    assets: tuple[str, ...]


PERCEPTUAL: dict[str, PerceptualMetric] = {
    m.name: m
    for m in (
        PerceptualMetric(
            "lpips",
            "LPIPS",
            "LPIPS v0.1, AlexNet (Zhang et al. 2018): RGB in [-1, 1], same border crop; lower is better",
            True,
            ("alexnet", "lpips-alex"),
        ),
        PerceptualMetric(
            "lpips_vgg",
            "LPIPS-VGG",
            "LPIPS v0.1, VGG16 (Zhang et al. 2018): RGB in [-1, 1], same border crop; lower is better",
            True,
            ("vgg16", "lpips-vgg"),
        ),
        PerceptualMetric(
            "dists",
            "DISTS",
            "DISTS (Ding et al. 2020), VGG16: RGB in [0, 1], same border crop; lower is better",
            True,
            ("vgg16", "dists"),
        ),
        PerceptualMetric(
            "niqe",
            "NIQE",
            "NIQE (Mittal et al. 2013, MATLAB release's model): no reference, Y channel rounded, same border "
            "crop, 96x96 blocks; lower is better",
            False,
            ("niqe",),
        ),
    )
}
_ALIASES = {"lpips_alex": "lpips", "lpips-alex": "lpips", "lpips-vgg": "lpips_vgg"}
_BASE = ("psnr", "ssim")

_MODELS: dict[tuple[str, str], Any] = {}


def parse_metrics(names: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """The perceptual metrics named in ``names`` (``psnr``/``ssim`` are accepted: always computed).

    ConfigError for an unknown name, listing the known ones.
    """
    out: list[str] = []
    for raw in names:
        n = _ALIASES.get(raw.strip().lower(), raw.strip().lower())
        if n in _BASE:
            continue
        if n not in PERCEPTUAL:
            known = ", ".join([*_BASE, *PERCEPTUAL])
            raise ConfigError(f"unknown metric {raw!r}; use a comma-separated list of {known}")
        if n not in out:
            out.append(n)
    return tuple(out)


def load(name: str, device: str | torch.device = "cpu", *, progress: bool = True):
    """The metric's model on ``device`` (downloads its weights on first use; WeightsError offline)."""
    key = (name, str(device))
    if key not in _MODELS:
        if name == "lpips":
            model = build_lpips("alex", progress=progress).to(device)
        elif name == "lpips_vgg":
            model = build_lpips("vgg", progress=progress).to(device)
        elif name == "dists":
            model = build_dists(progress=progress).to(device)
        elif name == "niqe":
            model = NIQE.load(require("niqe", metric="NIQE", progress=progress))
        else:
            raise ConfigError(f"unknown perceptual metric {name!r}; use one of {', '.join(PERCEPTUAL)}")
        _MODELS[key] = model
    return _MODELS[key]


def clear_cache() -> None:
    _MODELS.clear()


def _rgb(x: torch.Tensor) -> torch.Tensor:
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


def score(
    name: str,
    sr: torch.Tensor,
    hr: torch.Tensor | None = None,
    *,
    device: str | torch.device = "cpu",
    data_range: float = 255.0,
    model: Any = None,
) -> torch.Tensor:
    """Metric ``name`` of ``sr`` (against ``hr`` for full-reference metrics): (N,) float64 on the CPU.

    ``sr``/``hr`` are (N, C, H, W), C in {1, 3}, on ``0..data_range``. NIQE raises ValueError for an image
    with fewer than two 96x96 blocks. ``model`` overrides the cached published-weights model (tests).
    """
    m = model if model is not None else load(name, device)
    if name == "niqe":
        vals = []
        for img in sr.to("cpu", torch.float64) * (255.0 / data_range):
            y = rgb_to_y(img) if img.shape[0] == 3 else img
            # rounded as BasicSR and MATLAB's niqe read a uint8 image; np.round like BasicSR
            vals.append(m(np.round(y[0].numpy())))
        return torch.tensor(vals, dtype=torch.float64)
    if hr is None:
        raise ValueError(f"{name} compares against a reference image; give hr")
    dev = next(m.parameters()).device
    a = _rgb(sr).to(dev, torch.float32) / data_range
    b = _rgb(hr).to(dev, torch.float32) / data_range
    if name in ("lpips", "lpips_vgg"):
        a, b = a * 2 - 1, b * 2 - 1
    with torch.inference_mode():
        d = m(a, b)
    return d.flatten().to("cpu", torch.float64)
