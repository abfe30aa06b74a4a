"""Models srlab trained itself and ships inside the package (``srlab/weights/trained/*.safetensors``).

Each file is an srlab safetensors checkpoint written by ``srlab train``; ``scripts/release_model.py``
adds a ``release`` record to its metadata: the recipe (the resolved config and its SHA-256), the training
data, iterations, wall time, the machine, and the metrics measured at release under the recipe's protocol.
``srlab weights list`` prints those numbers, ``srlab.load_model("srcnn-x2")`` loads a model by name, and
``tests/test_shipped.py`` re-makes every recorded Set5 number. ``docs/models.md`` is the model card.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from srlab.errors import WeightsError

__all__ = ["SHIPPED", "ShippedModel", "get_shipped", "release_info", "shipped_dir", "shipped_path"]


@dataclass(frozen=True)
class ShippedModel:
    name: str
    description: str
    recipe: str  # the packaged training config that made it (configs/<recipe>.yaml)
    protocol: str  # the protocol its recorded metrics use

    @property
    def filename(self) -> str:
        return f"{self.name}.safetensors"


SHIPPED: dict[str, ShippedModel] = {
    m.name: m
    for m in (
        ShippedModel(
            "srcnn-x2", "SRCNN 9-5-5 on Y, x2 (T91, srlab's release recipe)", "srcnn_x2_release", "standard"
        ),
        ShippedModel(
            "srcnn-x3", "SRCNN 9-5-5 on Y, x3 (T91, fine-tuned from srcnn-x2)", "srcnn_x3_release", "standard"
        ),
        ShippedModel(
            "srcnn-x4", "SRCNN 9-5-5 on Y, x4 (T91, fine-tuned from srcnn-x2)", "srcnn_x4_release", "standard"
        ),
        ShippedModel(
            "srcnn-study-x2-recipe",
            "SRCNN 9-5-5 RGB x2 as the study trained it (DIV2K 128 crops, bilinear LR, 1,600 steps)",
            "srcnn_x2_study",
            "study",
        ),
        ShippedModel(
            "srcnn-study-improved-x2",
            "SRCNN 9-5-5 RGB x2 on the study's data and degradation, srlab's schedule",
            "srcnn_x2_study_improved",
            "study",
        ),
        ShippedModel(
            "span-x2",
            "SPAN (48 channels, 6 blocks) RGB x2 (DIV2K 128 crops, srlab's one-hour CPU recipe)",
            "span_x2_release",
            "standard",
        ),
    )
}


def shipped_dir() -> Path:
    return Path(__file__).resolve().parent / "trained"


def get_shipped(name: str) -> ShippedModel | None:
    """The shipped model called ``name`` when its file is in this install (None otherwise)."""
    m = SHIPPED.get(name)
    return m if m is not None and (shipped_dir() / m.filename).is_file() else None


def shipped_path(name: str) -> Path:
    m = SHIPPED.get(name)
    if m is None:
        raise WeightsError(f"{name!r} is not a model srlab ships; `srlab weights list` shows them")
    path = shipped_dir() / m.filename
    if not path.is_file():
        raise WeightsError(f"{path}: the shipped model {name} is missing from this install; reinstall srlab")
    return path


def release_info(name: str) -> dict[str, Any]:
    """The ``release`` record of a shipped model's metadata ({} when it has none)."""
    from srlab.weights.io import read_metadata

    meta = read_metadata(shipped_path(name)) or {}
    rel = meta.get("release")
    return rel if isinstance(rel, dict) else {}


def recorded_metrics(name: str) -> list[dict[str, Any]]:
    """The release's metric rows: ``{"dataset", "scale", "protocol", "psnr_y"|"psnr_rgb", "ssim_*", ...}``."""
    rows = release_info(name).get("metrics")
    return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []


def summary_line(name: str) -> str:
    """``Set5 x2 standard: Y 36.52 dB / 0.9530 | Set14 ...``: the recorded PSNR/SSIM per data set."""
    m = SHIPPED[name]
    ch = "y" if m.protocol == "standard" else "rgb"
    parts = []
    for r in recorded_metrics(name):
        psnr, ssim = r.get(f"psnr_{ch}"), r.get(f"ssim_{ch}")
        if isinstance(psnr, (int, float)):
            ss = f" / {ssim:.4f}" if isinstance(ssim, (int, float)) else ""
            parts.append(f"{r.get('dataset')} {ch.upper()} {psnr:.2f}{ss}")
    return f"{m.protocol} protocol: " + (", ".join(parts) if parts else "no metrics recorded")
