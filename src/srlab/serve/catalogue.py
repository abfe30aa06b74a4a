"""The models the server accepts: the names ``srlab weights list`` knows (that can run here) and, with
``--models-dir``, the weight files directly in that folder (as ``file:NAME``). Nothing else reaches the
loader, so a request can never make the server open an arbitrary path.

Each entry carries a speed hint: the family's cost on a CPU relative to the others (what a user choosing a
model needs to know before waiting), not a measured time.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import srlab.models  # noqa: F401 - importing the package registers every architecture's presets
from srlab.errors import ConfigError
from srlab.models.registry import PRESETS
from srlab.weights.loader import known_names
from srlab.weights.ncnn import PACKAGE_MODELS, package_models_dir
from srlab.weights.shipped import SHIPPED, get_shipped
from srlab.weights.zoo import ZOO, local_path

__all__ = ["SPEED", "WEIGHT_SUFFIXES", "catalogue", "resolve_request"]

WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".ckpt")
SPEED = {
    "bicubic": "instant",
    "bilinear": "instant",
    "nearest": "instant",
    "srcnn": "fast",
    "srvgg": "medium",
    "rrdbnet": "slow",
}
_NOT_SR = ("vgg19",)  # zoo entries that are not super-resolution models (loss networks)


def _scale(name: str) -> int | None:
    m = re.search(r"x(\d+)", name.lower())
    return int(m.group(1)) if m else None


def _entry(name: str, kind: str, family: str, scale: Any, description: str, available: bool) -> dict:
    return {
        "name": name,
        "kind": kind,
        "family": family,
        "scale": int(scale) if scale else None,
        "speed": SPEED.get(family, "unknown"),
        "description": description,
        "available": available,
    }


def catalogue(models_dir: Path | None = None) -> list[dict[str, Any]]:
    """Every model name with its kind, family, scale, speed hint and whether it can run on this machine."""
    try:
        package_models_dir()
        ncnn_ok = True
    except Exception:  # noqa: BLE001 - any failure means the package models cannot run here
        ncnn_ok = False
    out = []
    names = known_names()
    for name in sorted(names, key=str.lower):
        if name in PACKAGE_MODELS:
            doc = PACKAGE_MODELS[name][1]
            family = "srvgg" if "SRVGG" in doc else "rrdbnet"
            out.append(_entry(name, "ncnn package", family, _scale(name), doc, ncnn_ok))
        elif name in ZOO:
            e = ZOO[name]
            if e.arch in _NOT_SR:
                continue
            scale = e.hparams.get("scale") or _scale(name)
            out.append(_entry(name, "zoo", e.arch, scale, e.description, local_path(e).is_file()))
        elif name in SHIPPED and get_shipped(name):
            out.append(
                _entry(name, "trained by srlab", "srcnn", _scale(name), SHIPPED[name].description, True)
            )
        elif name in PRESETS:
            arch, hp, doc = PRESETS[name]
            out.append(_entry(name, "parameter-free", arch, hp.get("scale") or _scale(name), doc, True))
    if models_dir is not None:
        for f in sorted(Path(models_dir).iterdir()):
            if f.is_file() and f.suffix.lower() in WEIGHT_SUFFIXES:
                out.append(_entry(f"file:{f.name}", "file", "unknown", None, f"weights file {f.name}", True))
    return out


def resolve_request(
    name: str, models_dir: Path | None = None, entries: list[dict] | None = None
) -> str | Path:
    """The model reference for a requested ``name`` (a known name, or ``file:NAME`` directly under
    ``models_dir``); ConfigError otherwise. Names are compared as they are: no path is ever built from
    anything but a file name found by listing ``models_dir``. ``entries``: a :func:`catalogue` already made."""
    if not isinstance(name, str) or not name or len(name) > 200:
        raise ConfigError("model: give a model name from GET /api/models")
    if name.startswith("file:"):
        if models_dir is None:
            raise ConfigError(
                f"model {name!r}: this server accepts no weight files (start it with --models-dir)"
            )
        wanted = name[5:]
        for f in Path(models_dir).iterdir():
            if f.name == wanted and f.is_file() and f.suffix.lower() in WEIGHT_SUFFIXES:
                return f
        raise ConfigError(f"model {name!r}: no such weights file in the models folder; see GET /api/models")
    e = {x["name"]: x for x in (entries if entries is not None else catalogue(None))}.get(name)
    if e is None:
        raise ConfigError(f"unknown model {name[:80]!r}; GET /api/models lists the names this server accepts")
    if not e["available"]:
        raise ConfigError(
            f"model {name!r} is not on this machine; `srlab weights fetch {name}` on the server installs it"
        )
    return name
