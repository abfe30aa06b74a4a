"""Foreign checkpoints -> srlab models: unwrap, then ask every registered family's layouts.

Layouts live with their family (``srlab.models.<family>_layouts``, registered as
:class:`srlab.models.registry.Layout`): detection from the keys, hyper-parameters from the shapes. This
module unwraps a checkpoint (bare, wrapped in ``params_ema`` / ``params`` / ``state_dict`` / ``model``,
with or without a DataParallel ``module.`` prefix; ``params_ema`` wins when both are present), finds the
one layout that claims its keys and builds the network for the converted tensors.

``scale`` is checked against the file where the file can tell; ``scale_hint`` only fills in what it
cannot (SRCNN, x3) and is never an error, so a caller evaluating at several scales can pass its first
one. A file that matches no layout, or whose tensors do not fit the inferred network, gets one
:class:`WeightsError` naming the missing / unexpected / mis-shaped keys (the first few and the count).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

import srlab.models  # noqa: F401  (fills the registry: every family's layouts)
from srlab.errors import WeightsError
from srlab.models.registry import FAMILIES, Layout, all_layouts
from srlab.weights.build import build_and_load, build_from_spec, load_into

__all__ = [
    "LAYOUTS",
    "UnknownLayoutError",
    "build_from_spec",
    "convert_state_dict",
    "detect_layout",
    "load_into",
    "model_from_state_dict",
    "unwrap_state_dict",
]

LAYOUTS = tuple(lay.name for lay in all_layouts())


class UnknownLayoutError(WeightsError):
    """No srlab layout matches the keys (the loader then tries the optional spandrel backend)."""


_WRAPPERS = ("params_ema", "params", "state_dict", "model_state_dict", "model", "net_g", "generator")


def _is_tensor(x: Any) -> bool:
    return isinstance(x, torch.Tensor)


# --------------------------------------------------------------------------------------------- unwrap
def unwrap_state_dict(obj: Any, *, source: str = "checkpoint") -> dict:
    """Find the parameter dict inside a loaded checkpoint and normalise its keys."""
    for _ in range(4):
        if not isinstance(obj, Mapping):
            raise WeightsError(f"{source}: holds a {type(obj).__name__}, not a dict of tensors")
        if obj and all(_is_tensor(v) for v in obj.values()):
            break
        inner = next(
            (obj[k] for k in _WRAPPERS if isinstance(obj.get(k), Mapping) and _has_tensors(obj[k])), None
        )
        if inner is None:
            break
        obj = inner
    sd = {str(k): v for k, v in obj.items() if _is_tensor(v)}
    if not sd:
        keys = ", ".join(list(map(str, obj))[:5]) if isinstance(obj, Mapping) else ""
        raise WeightsError(
            f"{source}: no tensors found (top-level keys: {keys or 'none'}); not a model checkpoint"
        )
    for prefix in ("module.",):
        if all(k.startswith(prefix) for k in sd):
            sd = {k[len(prefix) :]: v for k, v in sd.items()}
    return sd


def _has_tensors(d: Mapping) -> bool:
    return any(_is_tensor(v) for v in d.values()) or any(
        isinstance(v, Mapping) and any(_is_tensor(x) for x in v.values()) for v in d.values()
    )


# --------------------------------------------------------------------------------------------- detect
def _find_layout(sd: Mapping, source: str) -> Layout:
    keys = frozenset(sd)
    for lay in all_layouts():
        try:
            if lay.detect(keys):
                return lay
        except WeightsError as exc:  # a variant the family recognises and refuses
            raise WeightsError(f"{source}: {exc}") from None
    first = ", ".join(sorted(keys)[:4])
    families = ", ".join(sorted({rec.family for rec in FAMILIES.values() if rec.layouts}))
    raise UnknownLayoutError(
        f"{source}: unknown checkpoint layout ({len(keys)} tensors; first keys: {first}); srlab reads the "
        f"layouts of {families} (`srlab models` lists them)"
    )


def detect_layout(sd: Mapping, *, source: str = "checkpoint") -> str:
    """Name of the checkpoint layout (one of :data:`LAYOUTS`), from the keys alone."""
    return _find_layout(sd, source).name


# --------------------------------------------------------------------------------------------- convert
def convert_state_dict(
    sd: Mapping,
    *,
    scale: int | None = None,
    scale_hint: int | None = None,
    source: str = "checkpoint",
) -> tuple[str, dict[str, Any], dict, list[str]]:
    """Map a foreign state dict onto srlab keys.

    Returns ``(arch, hparams, converted_state_dict, unmapped_keys)``. ``scale`` says what the keys cannot
    (x3 vs x2, SRCNN's scale) and is checked where they can; ``scale_hint`` is used only where they cannot.
    """
    layout = _find_layout(sd, source)
    try:
        return layout.convert(sd, scale=scale, scale_hint=scale_hint, source=source)
    except (IndexError, KeyError, ValueError, TypeError, ZeroDivisionError, AttributeError) as exc:
        # keys of a known layout with tensors of impossible ranks or sizes (a damaged or forged file)
        detail = " ".join(str(exc).split())[:120] or type(exc).__name__
        raise WeightsError(
            f"{source}: has {layout.name} keys but tensors of shapes that layout cannot have ({detail}); "
            "the file is damaged: get it again from its publisher"
        ) from None


# --------------------------------------------------------------------------------------------- build
def model_from_state_dict(
    sd: Mapping,
    *,
    scale: int | None = None,
    scale_hint: int | None = None,
    source: str = "checkpoint",
    name: str | None = None,
):
    """Detect, convert, build and load: ``(model, descriptor)`` for a foreign state dict."""
    arch, hp, converted, unmapped = convert_state_dict(sd, scale=scale, scale_hint=scale_hint, source=source)
    return build_and_load(
        arch, hp, converted, source=source, name=name, unmapped=unmapped, origin="its tensors suggest"
    )
