"""Foreign checkpoints -> srlab models: layout detection from keys, hyper-parameters from shapes.

Layouts understood (bare, wrapped in ``params_ema`` / ``params`` / ``state_dict`` / ``model``, with or
without a DataParallel ``module.`` prefix; ``params_ema`` wins when both are present):

``rrdb-old``      original ESRGAN "old arch": one ``nn.Sequential`` called ``model``:
                  ``model.0`` first conv, ``model.1.sub.<i>.RDB<r>.conv<c>.0`` the blocks and
                  ``model.1.sub.<num_block>`` the trunk conv (inside the shortcut), then per upsampling
                  step [Upsample, conv, LeakyReLU] (convs at ``model.3``, ``model.6``, ...), then HR conv,
                  LeakyReLU, last conv: with ``n`` upsampling steps the HR conv is ``model.<3n+2>`` and the
                  last conv ``model.<3n+4>`` (x4: 3, 6, 8, 10; x2: 3, 5, 7; x1: 2, 4; x8: 3, 6, 9, 11, 13).
``rrdb-esrgan``   the official ESRGAN repository: ``conv_first``, ``RRDB_trunk.<i>.RDB<r>.conv<c>``,
                  ``trunk_conv``, ``upconv<k>``, ``HRconv``, ``conv_last``.
``rrdb-basicsr``  BasicSR / Real-ESRGAN and srlab: ``conv_first``, ``body.<i>.rdb<r>.conv<c>``,
                  ``conv_body``, ``conv_up<k>``, ``conv_hr``, ``conv_last``; Real-ESRGAN's x2/x1 models
                  pixel-unshuffle the input (``conv_first`` takes 4x / 16x the output channels).
``srvgg``         Real-ESRGAN's SRVGGNetCompact: ``body.<n>`` convs with PReLU slopes between them.
``span``          SPAN (upstream / spandrel): ``conv_1``, ``block_<1..6>.c<k>_r`` (re-parameterisable convs:
                  ``sk``, ``conv.<0..2>``, ``eval_conv``), ``conv_cat``, ``conv_2``, ``upsampler.0``; ``no_norm``
                  marks a network without input normalisation.
``srcnn``         ``conv1`` / ``conv2`` / ``conv3`` (kernel sizes and widths from the shapes).
``srcnn-study``   the study's SRCNN: ``block1`` / ``block2`` / ``block3`` -> ``srcnn`` with zero padding and
                  bilinear input, x2 (the only scale the study used) unless the caller says otherwise.
``study-rrdbnet`` the study's generator: ``conv0.0``, ``RRDB_layers.<i>.block<j>.conv<k>.0``, ``conv1.0``,
                  ``upSample0.0``, ``conv2.0``, ``conv3.0`` -> ``study_rrdbnet`` (x2).
``study-discriminator`` the study's discriminator: ``block1.0``, ``basicBlocks.<n>.block1.{0,1}``,
                  ``block2.{0,2}`` -> ``study_discriminator``.

Inferred: blocks, features, growth channels, in/out channels and scale (the number of upsampling
convs: 0/1/2/3 -> x1/x2/x4/x8; a single step cannot tell x2 from x3 -- pass ``scale=3``). ``scale`` is
checked against the file where the file can tell; ``scale_hint`` only fills in what it cannot (SRCNN, x3)
and is never an error, so a caller evaluating at several scales can pass its first one. A file that
matches no layout, or whose tensors do not fit the inferred network, gets one :class:`WeightsError`
naming the missing / unexpected / mis-shaped keys (the first few and the count).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from srlab.errors import WeightsError
from srlab.models.span import NUM_BLOCKS
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

LAYOUTS = (
    "rrdb-old",
    "rrdb-esrgan",
    "rrdb-basicsr",
    "srvgg",
    "span",
    "srcnn",
    "srcnn-study",
    "study-rrdbnet",
    "study-discriminator",
)


class UnknownLayoutError(WeightsError):
    """No srlab layout matches the keys (the loader then tries the optional spandrel backend)."""


_WRAPPERS = ("params_ema", "params", "state_dict", "model_state_dict", "model", "net_g", "generator")


def _is_tensor(x: Any) -> bool:
    import torch

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
_OLD_RDB = re.compile(r"^model\.1\.sub\.(\d+)\.RDB([123])\.conv([1-5])\.0\.(weight|bias)$")
_OLD_TRUNK = re.compile(r"^model\.1\.sub\.(\d+)\.(weight|bias)$")
_OLD_TOP = re.compile(r"^model\.(\d+)\.(weight|bias)$")
_ESR_RDB = re.compile(r"^RRDB_trunk\.(\d+)\.RDB([123])\.conv([1-5])\.(weight|bias)$")
_ESR_UP = re.compile(r"^upconv(\d+)\.(weight|bias)$")
_BSR_RDB = re.compile(r"^body\.(\d+)\.rdb([123])\.conv([1-5])\.(weight|bias)$")
_BSR_UP = re.compile(r"^conv_up(\d+)\.(weight|bias)$")
_VGG = re.compile(r"^body\.(\d+)\.(weight|bias)$")
_STUDY_RDB = re.compile(r"^RRDB_layers\.(\d+)\.block[012]\.conv[0-4]\.0\.(weight|bias)$")


def detect_layout(sd: Mapping, *, source: str = "checkpoint") -> str:
    """Name of the checkpoint layout (one of :data:`LAYOUTS`), from the keys alone."""
    keys = set(sd)
    if "model.0.weight" in keys and any(_OLD_RDB.match(k) for k in keys):
        return "rrdb-old"
    if "conv_first.weight" in keys and any(_ESR_RDB.match(k) for k in keys):
        return "rrdb-esrgan"
    if "conv_first.weight" in keys and any(_BSR_RDB.match(k) for k in keys):
        return "rrdb-basicsr"
    if "body.0.weight" in keys and all(_VGG.match(k) for k in keys):
        return "srvgg"
    if {"conv_1.sk.weight", "block_1.c1_r.eval_conv.weight", "conv_cat.weight", "upsampler.0.weight"} <= keys:
        return "span"
    if {"conv1.weight", "conv2.weight", "conv3.weight"} <= keys:
        return "srcnn"
    if "conv0.0.weight" in keys and any(_STUDY_RDB.match(k) for k in keys):
        return "study-rrdbnet"
    if any(k.startswith("RRDB_layers.") for k in keys):
        raise WeightsError(
            f"{source}: an early draft of the study's generator (RRDB_layers without the '.0' of its "
            "Sequential convs); srlab builds only the generator of the study's published checkpoints"
        )
    if "block1.0.weight" in keys and any(k.startswith("basicBlocks.") for k in keys):
        return "study-discriminator"
    if {"block1.weight", "block2.weight", "block3.weight"} <= keys:
        return "srcnn-study"
    first = ", ".join(sorted(keys)[:4])
    raise UnknownLayoutError(
        f"{source}: unknown checkpoint layout ({len(keys)} tensors; first keys: {first}); srlab reads RRDBNet "
        "(ESRGAN old/new arch, BasicSR/Real-ESRGAN), SRVGGNetCompact, SPAN, SRCNN and the study's checkpoints"
    )


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
    layout = detect_layout(sd, source=source)
    try:
        if layout.startswith("rrdb"):
            return _convert_rrdb(sd, layout, scale, scale_hint, source)
        if layout == "srvgg":
            return _convert_srvgg(sd, scale, source)
        if layout == "span":
            return _convert_span(sd, scale, source)
        if layout == "study-rrdbnet":
            return _convert_study_rrdbnet(sd, scale, source)
        if layout == "study-discriminator":
            return _convert_study_discriminator(sd, source)
        return _convert_srcnn(sd, layout, scale if scale is not None else scale_hint, source)
    except (IndexError, KeyError, ValueError, TypeError, ZeroDivisionError, AttributeError) as exc:
        # keys of a known layout with tensors of impossible ranks or sizes (a damaged or forged file)
        detail = " ".join(str(exc).split())[:120] or type(exc).__name__
        raise WeightsError(
            f"{source}: has {layout} keys but tensors of shapes that layout cannot have ({detail}); "
            "the file is damaged: get it again from its publisher"
        ) from None


def _convert_rrdb(sd: Mapping, layout: str, want: int | None, hint: int | None, source: str):
    # want: the caller's scale, checked; hint: used only for what the keys cannot tell (x3 vs x2)
    out: dict = {}
    unmapped: list[str] = []
    if layout == "rrdb-old":
        blocks = {int(m.group(1)) for k in sd if (m := _OLD_RDB.match(k))}
        nb = max(blocks) + 1
        top = sorted({int(m.group(1)) for k in sd if (m := _OLD_TOP.match(k))} - {0})
        if not top or (top[-1] - 4) % 3 or top[-1] < 4:
            raise WeightsError(
                f"{source}: ESRGAN old-arch checkpoint with unexpected layer indices model.{top} after the trunk"
            )
        n_up = (top[-1] - 4) // 3
        expected = [3 * (i + 1) for i in range(n_up)] + [3 * n_up + 2, 3 * n_up + 4]
        if top != expected:
            raise WeightsError(
                f"{source}: ESRGAN old-arch checkpoint with layers at model.{top}; expected model.{expected} "
                f"for {n_up} upsampling step(s)"
            )
        top_map = {3 * (i + 1): f"conv_up{i + 1}" for i in range(n_up)}
        top_map[3 * n_up + 2] = "conv_hr"
        top_map[3 * n_up + 4] = "conv_last"
        top_map[0] = "conv_first"
        for k, v in sd.items():
            if m := _OLD_RDB.match(k):
                out[f"body.{m.group(1)}.rdb{m.group(2)}.conv{m.group(3)}.{m.group(4)}"] = v
            elif (m := _OLD_TRUNK.match(k)) and int(m.group(1)) == nb:
                out[f"conv_body.{m.group(2)}"] = v
            elif (m := _OLD_TOP.match(k)) and int(m.group(1)) in top_map:
                out[f"{top_map[int(m.group(1))]}.{m.group(2)}"] = v
            else:
                unmapped.append(k)
    else:
        rdb, up = (_ESR_RDB, _ESR_UP) if layout == "rrdb-esrgan" else (_BSR_RDB, _BSR_UP)
        names = (
            {
                "conv_first": "conv_first",
                "trunk_conv": "conv_body",
                "HRconv": "conv_hr",
                "conv_last": "conv_last",
            }
            if layout == "rrdb-esrgan"
            else {n: n for n in ("conv_first", "conv_body", "conv_hr", "conv_last")}
        )
        for k, v in sd.items():
            stem, _, kind = k.rpartition(".")
            if m := rdb.match(k):
                out[f"body.{m.group(1)}.rdb{m.group(2)}.conv{m.group(3)}.{m.group(4)}"] = v
            elif m := up.match(k):
                out[f"conv_up{m.group(1)}.{m.group(2)}"] = v
            elif stem in names and kind in ("weight", "bias"):
                out[f"{names[stem]}.{kind}"] = v
            else:
                unmapped.append(k)
    for need in ("conv_first.weight", "conv_last.weight", "body.0.rdb1.conv1.weight"):
        if need not in out:
            raise WeightsError(
                f"{source}: RRDBNet checkpoint ({layout}) lacks {need!r}; the file is incomplete"
            )
    num_feat, first_in = int(out["conv_first.weight"].shape[0]), int(out["conv_first.weight"].shape[1])
    num_out = int(out["conv_last.weight"].shape[0])
    growth = int(out["body.0.rdb1.conv1.weight"].shape[0])
    num_block = max(int(k.split(".")[1]) for k in out if k.startswith("body.")) + 1
    n_up = len({k.split(".")[0] for k in out if k.startswith("conv_up")})
    hp: dict[str, Any] = dict(num_feat=num_feat, num_block=num_block, num_grow_ch=growth, num_out_ch=num_out)
    if n_up == 2 and first_in in (4 * num_out, 16 * num_out):
        # Real-ESRGAN x2 / x1: pixel-unshuffle by 2 / 4, then the usual two x2 steps.
        scale = 2 if first_in == 4 * num_out else 1
        hp.update(num_in_ch=num_out, pixel_unshuffle=True)
    else:
        hp.update(num_in_ch=first_in)
        if n_up not in (0, 1, 2, 3):
            raise WeightsError(
                f"{source}: RRDBNet with {n_up} upsampling convs; srlab supports x1/x2/x3/x4/x8"
            )
        scale = {0: 1, 1: 2, 2: 4, 3: 8}[n_up]
        if n_up == 1 and (want == 3 or (want is None and hint == 3)):
            scale = 3
    if want is not None and int(want) != scale:
        raise WeightsError(
            f"{source}: the file is a x{scale} RRDBNet ({n_up} upsampling convs, {first_in} input channels), "
            f"not x{want}"
        )
    hp["scale"] = scale
    return "rrdbnet", hp, out, unmapped


def _convert_srvgg(sd: Mapping, scale_hint: int | None, source: str):
    idx = sorted({int(_VGG.match(k).group(1)) for k in sd})
    convs = [i for i in idx if sd[f"body.{i}.weight"].ndim == 4]
    acts = [i for i in idx if sd[f"body.{i}.weight"].ndim == 1]
    if convs != list(range(0, 2 * len(convs), 2)) or len(convs) < 2:
        raise WeightsError(
            f"{source}: SRVGG checkpoint with convs at body.{convs}; expected body.0, body.2, ..."
        )
    first, last = sd["body.0.weight"], sd[f"body.{convs[-1]}.weight"]
    num_feat, num_in = int(first.shape[0]), int(first.shape[1])
    if acts:
        act = "prelu"
    else:
        raise WeightsError(
            f"{source}: SRVGG checkpoint without PReLU weights: its activation (relu or leakyrelu) is not "
            "recorded in the file; build the model with srlab.build_model('srvgg', act_type=...) and load the tensors"
        )
    num_out = num_in
    s2 = int(last.shape[0]) / num_out
    scale = int(round(math.sqrt(s2)))
    if scale * scale * num_out != int(last.shape[0]):
        raise WeightsError(
            f"{source}: SRVGG last conv has {int(last.shape[0])} outputs, not out_channels x scale^2 for {num_out} channels"
        )
    if scale_hint is not None and int(scale_hint) != scale:
        raise WeightsError(f"{source}: the file is a x{scale} SRVGG network, not x{scale_hint}")
    hp = dict(
        scale=scale,
        num_in_ch=num_in,
        num_out_ch=num_out,
        num_feat=num_feat,
        num_conv=len(convs) - 2,
        act_type=act,
    )
    return "srvgg", hp, dict(sd), []


_SPAN_BLOCK = re.compile(r"^block_(\d+)\.")


def _convert_span(sd: Mapping, want: int | None, source: str):
    blocks = sorted({int(m.group(1)) for k in sd if (m := _SPAN_BLOCK.match(k))})
    if blocks != list(range(1, NUM_BLOCKS + 1)):
        raise WeightsError(
            f"{source}: SPAN checkpoint with blocks {blocks[:8]}; the SPAN layout has block_1 .. block_{NUM_BLOCKS}"
        )
    feat, num_in = _shape(sd, "conv_1.sk.weight", 4, source)[:2]
    up = _shape(sd, "upsampler.0.weight", 4, source)[0]
    # the upsampler makes out_channels x scale^2 maps; out = in unless only 3 or 1 fits (as spandrel reads it)
    for num_out in dict.fromkeys((num_in, 3, 1)):
        scale = math.isqrt(up // num_out) if up % num_out == 0 else 0
        if scale >= 1 and scale * scale * num_out == up:
            break
    else:
        raise WeightsError(
            f"{source}: SPAN upsampler has {up} outputs, not out_channels x scale^2 for {num_in}, 3 or 1 channels"
        )
    if want is not None and int(want) != scale:
        raise WeightsError(f"{source}: the file is a x{scale} SPAN network, not x{want}")
    norm = "no_norm" not in sd
    if norm and num_in != 3:
        raise WeightsError(
            f"{source}: SPAN with {num_in} input channels but no 'no_norm' marker: normalisation needs RGB input"
        )
    hp = dict(scale=scale, num_in_ch=num_in, num_out_ch=num_out, feature_channels=feat, norm=norm)
    return "span", hp, dict(sd), []


def _convert_srcnn(sd: Mapping, layout: str, scale: int | None, source: str):
    study = layout == "srcnn-study"
    names = ("block1", "block2", "block3") if study else ("conv1", "conv2", "conv3")
    w1, w2, w3 = (sd[f"{n}.weight"] for n in names)
    if scale is None and not study:
        raise WeightsError(
            f"{source}: SRCNN checkpoints do not record their scale; pass it (srlab.load_model(path, scale=3); "
            "on the command line `srlab eval --scale 3` or `srlab weights convert --scale 3`)"
        )
    for n, w in zip(names, (w1, w2, w3)):
        if w.ndim != 4 or w.shape[-1] != w.shape[-2] or w.shape[-1] % 2 == 0:
            raise WeightsError(
                f"{source}: SRCNN {n}.weight has shape {tuple(w.shape)}; expected (out, in, k, k) with odd k"
            )
    hp: dict[str, Any] = dict(
        # The study worked at x2 only, so its files mean x2 unless the caller says otherwise.
        scale=int(scale) if scale is not None else 2,
        num_channels=int(w1.shape[1]),
        n1=int(w1.shape[0]),
        n2=int(w2.shape[0]),
        f1=int(w1.shape[-1]),
        f2=int(w2.shape[-1]),
        f3=int(w3.shape[-1]),
    )
    if study:
        hp.update(upsampler="bilinear", padding_mode="zeros")
    rename = {n: f"conv{i + 1}" for i, n in enumerate(names)}
    out, unmapped = {}, []
    for k, v in sd.items():
        stem, _, kind = k.partition(".")
        if stem in rename:
            out[f"{rename[stem]}.{kind}"] = v
        else:
            unmapped.append(k)
    return "srcnn", hp, out, unmapped


def _shape(sd: Mapping, key: str, ndim: int, source: str) -> tuple[int, ...]:
    if key not in sd:
        raise WeightsError(f"{source}: the study's checkpoint lacks {key!r}; the file is incomplete")
    shape = tuple(int(d) for d in sd[key].shape)
    if len(shape) != ndim:
        raise WeightsError(f"{source}: {key} has shape {shape}; expected {ndim} dimensions")
    return shape


def _convert_study_rrdbnet(sd: Mapping, scale: int | None, source: str):
    num_feat, num_in = _shape(sd, "conv0.0.weight", 4, source)[:2]
    num_out = _shape(sd, "conv3.0.weight", 4, source)[0]
    growth = _shape(sd, "RRDB_layers.0.block0.conv0.0.weight", 4, source)[0]
    num_block = max(int(m.group(1)) for k in sd if (m := _STUDY_RDB.match(k))) + 1
    if scale is not None and int(scale) != 2:
        raise WeightsError(
            f"{source}: the file is the study's x2 generator (one PixelShuffle(2)), not x{scale}"
        )
    hp = dict(
        scale=2,
        num_in_ch=num_in,
        num_out_ch=num_out,
        num_feat=num_feat,
        num_block=num_block,
        num_grow_ch=growth,
    )
    return "study_rrdbnet", hp, dict(sd), []


def _convert_study_discriminator(sd: Mapping, source: str):
    num_feat, num_in = _shape(sd, "block1.0.weight", 4, source)[:2]
    flat = _shape(sd, "block2.0.weight", 2, source)[1]
    side = math.isqrt(max(1, flat // (8 * num_feat)))
    if side * side * 8 * num_feat != flat:
        raise WeightsError(
            f"{source}: block2.0.weight takes {flat} inputs, not 8 x {num_feat} features x a square map"
        )
    return (
        "study_discriminator",
        dict(num_in_ch=num_in, num_feat=num_feat, input_size=32 * side),
        dict(sd),
        [],
    )


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
