"""Network interpolation: the parameters of two checkpoints of one architecture, blended.

``(1 - alpha) * A + alpha * B`` for every floating-point tensor (ESRGAN's ``net_interp.py``: alpha 0 is the
PSNR-oriented network A, 1 the GAN network B, in between a continuous perception-distortion trade-off).
alpha 0 and 1 return A and B bit for bit; in between the blend is computed in float64 and stored in the
tensor's own dtype. Integer and boolean buffers (index tables, counters) must be equal in both networks.
The two must be the same architecture with the same hyper-parameters, the same keys and the same shapes;
otherwise one :class:`~srlab.errors.WeightsError` names the first mismatch. alpha outside [0, 1]
extrapolates, which ESRGAN's script also allows; it is accepted within [-1, 2] and refused beyond.

Real-ESRGAN's ``--denoise_strength`` for ``realesr-general-x4v3`` is the special case
:func:`denoise_model`: strength s blends its weak-denoise companion ``realesr-general-wdn-x4v3`` (s = 0)
with ``realesr-general-x4v3`` itself (s = 1), i.e. ``s * x4v3 + (1 - s) * wdn`` as Real-ESRGAN's ``dni``.
"""

from __future__ import annotations

import copy
import math
import os
from pathlib import Path
from typing import Any

import torch

from srlab.errors import ConfigError, WeightsError
from srlab.models.registry import ModelDescriptor, describe
from srlab.weights.io import save_model
from srlab.weights.loader import load_model

__all__ = ["DENOISE_PAIR", "denoise_model", "interpolate", "interpolate_state_dicts", "save_interpolated"]

DENOISE_PAIR = ("realesr-general-wdn-x4v3", "realesr-general-x4v3")  # (strength 0, strength 1)
_ALPHA_RANGE = (-1.0, 2.0)


def _check_alpha(alpha: float) -> float:
    try:
        a = float(alpha)
    except (TypeError, ValueError):
        raise ConfigError(f"alpha must be a number, not {alpha!r}") from None
    if not math.isfinite(a) or not _ALPHA_RANGE[0] <= a <= _ALPHA_RANGE[1]:
        raise ConfigError(
            f"alpha {alpha} is outside [{_ALPHA_RANGE[0]:g}, {_ALPHA_RANGE[1]:g}]; 0 gives A, 1 gives B"
        )
    return a


def interpolate_state_dicts(a: dict, b: dict, alpha: float, *, names: tuple[str, str] = ("A", "B")) -> dict:
    """``(1 - alpha) a + alpha b`` key by key (see the module text); both dicts are left untouched."""
    alpha = _check_alpha(alpha)
    na, nb = names
    only_a, only_b = [k for k in a if k not in b], [k for k in b if k not in a]
    if only_a or only_b:
        key, side = (only_a[0], na) if only_a else (only_b[0], nb)
        raise WeightsError(
            f"{na} and {nb} are not the same network: {key!r} is only in {side} "
            f"({len(only_a)} keys only in {na}, {len(only_b)} only in {nb})"
        )
    out = {}
    for k, ta in a.items():
        tb = b[k]
        if tuple(ta.shape) != tuple(tb.shape):
            raise WeightsError(
                f"{na} and {nb} are not the same network: {k!r} is {tuple(ta.shape)} in {na} but "
                f"{tuple(tb.shape)} in {nb}"
            )
        if not ta.is_floating_point():
            if ta.dtype != tb.dtype or not torch.equal(ta, tb):
                raise WeightsError(
                    f"{na} and {nb} differ in the non-weight tensor {k!r} ({ta.dtype}); they cannot be blended"
                )
            out[k] = ta.clone()
        elif alpha == 0.0:
            out[k] = ta.clone()
        elif alpha == 1.0:
            out[k] = tb.to(ta.dtype).clone()
        else:
            mixed = (1.0 - alpha) * ta.to(torch.float64) + alpha * tb.to(torch.float64)
            out[k] = mixed.to(ta.dtype)
    return out


def _load(model: Any, label: str):
    if isinstance(model, tuple) and len(model) == 2 and isinstance(model[0], torch.nn.Module):
        return model
    if isinstance(model, torch.nn.Module):
        return model, describe(model, name=label)

    return load_model(model)


def _label(model: Any, fallback: str) -> str:
    if isinstance(model, (str, os.PathLike)):
        return str(model)
    return fallback


def interpolate(
    a: Any, b: Any, alpha: float, *, name: str | None = None
) -> tuple[torch.nn.Module, ModelDescriptor]:
    """``(model, descriptor)``: network A blended towards B by ``alpha`` (0: A, 1: B).

    ``a`` / ``b``: anything :func:`srlab.load_model` takes (names, paths, ``hf://``), a module or a
    ``(module, descriptor)`` pair. They must be one architecture with equal hyper-parameters.
    """
    alpha = _check_alpha(alpha)
    la, lb = _label(a, "A"), _label(b, "B")
    ma, da = _load(a, la)
    mb, db = _load(b, lb)
    if da.arch != db.arch or da.hparams != db.hparams:
        diff = [
            k for k in sorted(set(da.hparams) | set(db.hparams)) if da.hparams.get(k) != db.hparams.get(k)
        ]
        detail = (
            f"{da.arch} vs {db.arch}"
            if da.arch != db.arch
            else ", ".join(f"{k}: {da.hparams.get(k)!r} vs {db.hparams.get(k)!r}" for k in diff[:3])
        )
        raise WeightsError(
            f"{la} and {lb} are not the same architecture ({detail}); only one network's "
            "checkpoints can be interpolated"
        )
    sd = interpolate_state_dicts(ma.state_dict(), mb.state_dict(), alpha, names=(la, lb))
    model = copy.deepcopy(ma)
    model.load_state_dict(sd, strict=True)
    model.interpolation = {"a": la, "b": lb, "alpha": alpha}
    return model.eval(), describe(model, name=name or f"interp({Path(la).stem},{Path(lb).stem},{alpha:g})")


def save_interpolated(
    a: Any, b: Any, alpha: float, out: str | os.PathLike, *, metadata: dict | None = None
) -> Path:
    """Interpolate and write an srlab safetensors file whose metadata records both inputs and alpha."""

    model, _ = interpolate(a, b, alpha)
    meta = {"interpolation": dict(model.interpolation)}
    meta.update(metadata or {})
    return save_model(out, model, metadata=meta)


def denoise_model(strength: float) -> tuple[torch.nn.Module, ModelDescriptor]:
    """``realesr-general-x4v3`` at a denoise strength in [0, 1] (Real-ESRGAN's ``--denoise_strength``).

    0 keeps noise (the weak-denoise ``realesr-general-wdn-x4v3``), 1 is ``realesr-general-x4v3`` itself.
    Needs both zoo files (``srlab weights fetch realesr-general-x4v3 realesr-general-wdn-x4v3``).
    """
    try:
        s = float(strength)
    except (TypeError, ValueError):
        raise ConfigError(f"denoise strength must be a number from 0 to 1, not {strength!r}") from None
    if not 0.0 <= s <= 1.0:
        raise ConfigError(f"denoise strength {strength} is outside [0, 1] (0: keep noise, 1: strongest)")
    wdn, full = DENOISE_PAIR
    return interpolate(wdn, full, s, name=f"{full}-dn{s:g}")
