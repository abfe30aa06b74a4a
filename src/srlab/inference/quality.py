"""The reduced-precision check recorded for ``--precision auto`` on the CPU (:mod:`srlab.inference.cpu_choice`
reads the record; ``benchmarks/precision_check.py`` writes it with :func:`quality_check`)."""

from __future__ import annotations

from typing import Any

import torch

from srlab.eval.metrics import psnr
from srlab.inference.upscaler import Upscaler

__all__ = ["quality_check"]


def quality_check(model: Any, images: dict[str, Any], precisions=("bf16", "int8")) -> dict[str, dict]:
    """PSNR (dB, 8-bit RGB, srlab.eval.metrics) of each reduced precision's output against OpenVINO fp32's,
    per image: ``{precision: {"per_image": {name: dB}, "worst_db": min}}``. ``images``: name -> LR uint8
    array (H, W[, C]), upscaled whole through :class:`srlab.inference.Upscaler` (colour handling included)."""

    def run(p):
        up = Upscaler(model, backend="openvino", precision=p, tile=0, device="cpu")
        return {k: up(v) for k, v in images.items()}

    def u8(a):  # (H, W[, C]) uint8 -> (3, H, W) float: gray replicated, so one formula serves both
        t = torch.from_numpy(a.astype("float64"))
        t = t[..., None] if t.ndim == 2 else t
        return t.permute(2, 0, 1).expand(3, -1, -1)

    ref = run("fp32")
    out = {}
    for p in precisions:
        got = run(p)
        # identical outputs (inf dB) are recorded as 99 dB: JSON has no infinity
        per = {k: min(99.0, float(psnr(u8(got[k]), u8(ref[k]), channel="rgb"))) for k in images}
        out[p] = {"per_image": per, "worst_db": min(per.values())}
    return out
