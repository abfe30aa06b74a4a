"""Models as ``srlab eval`` runs them: interpolation baselines, checkpoints and zoo models, in-memory modules.

``bicubic``/``bilinear`` are the interpolation baselines, rebuilt at every requested scale; any other name or
path goes through :func:`srlab.weights.loader.load_model`, and the result records the file its weights came
from with its sha256 so a results header pins exactly what was measured.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from srlab.errors import SrlabError
from srlab.models.registry import build_model, describe
from srlab.weights import ncnn, zoo
from srlab.weights.download import sha256_file
from srlab.weights.loader import load_model

__all__ = ["INTERPOLATION_MODELS", "EvalModel", "load_eval_model", "wrap_module"]

INTERPOLATION_MODELS = ("bicubic", "bilinear")


@dataclass
class EvalModel:
    """A model ready to evaluate: ``module(lr) -> sr`` on float NCHW in [0, 1]."""

    label: str
    spec: str
    module: Any
    descriptor: Any
    checkpoint: str | None = None
    sha256: str | None = None
    per_scale: bool = False  # interpolation baselines: rebuilt for every scale

    def info(self) -> dict:
        d = self.descriptor.to_dict() if hasattr(self.descriptor, "to_dict") else dict(self.descriptor)
        if self.per_scale:
            d["scale"] = "each requested scale"
        return {
            "label": self.label,
            "spec": self.spec,
            "descriptor": d,
            "checkpoint": self.checkpoint,
            "sha256": self.sha256,
        }


def _weights_file(spec: str, path: Path) -> Path | None:
    """The file a model's weights came from: the path itself, the cached zoo file or the packaged ncnn .bin."""
    if path.is_file():
        return path

    try:
        if spec in zoo.ZOO:
            return zoo.require(spec, verify=False)
        if spec in ncnn.PACKAGE_MODELS:
            return ncnn.package_model_files(spec)[1]
    except SrlabError:
        return None
    return None


def load_eval_model(spec: str, scale: int, device: str | torch.device = "cpu") -> EvalModel:
    """``bicubic``/``bilinear`` at ``scale``, else a checkpoint path or zoo name through the weights loader.

    For a checkpoint ``scale`` is a hint (a file that does not record its scale, as SRCNN's, is built at
    it); a file that records another scale loads as what it is and the caller skips it at ``scale``.
    """

    low = spec.lower()
    if low in INTERPOLATION_MODELS:
        module, desc = build_model(low, scale=scale)
        return EvalModel(low, spec, module.eval(), desc, per_scale=True)  # runs on the CPU in float64
    module, desc = load_model(spec, device=str(device), scale_hint=scale)
    path = Path(spec).expanduser()
    ckpt = sha = None
    file = _weights_file(spec, path)
    if file is not None:
        ckpt, sha = str(file.resolve()), sha256_file(file)
    label = path.stem if path.suffix else spec
    if hasattr(module, "eval"):
        module = module.eval()
    return EvalModel(label, spec, module, desc, checkpoint=ckpt, sha256=sha)


def wrap_module(label: str, module: Any, device: torch.device) -> EvalModel:
    """An in-memory srlab model (e.g. during training) as an :class:`EvalModel`."""

    return EvalModel(str(label), str(label), module.to(device).eval(), describe(module, name=str(label)))
