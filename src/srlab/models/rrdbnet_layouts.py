"""RRDBNet checkpoint layouts (ESRGAN old arch, official ESRGAN, BasicSR / Real-ESRGAN) and its ncnn graph.

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

Inferred: blocks, features, growth channels, in/out channels and scale (the number of upsampling
convs: 0/1/2/3 -> x1/x2/x4/x8; a single step cannot tell x2 from x3 -- pass ``scale=3``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from srlab.errors import WeightsError
from srlab.models.registry import Layout

_OLD_RDB = re.compile(r"^model\.1\.sub\.(\d+)\.RDB([123])\.conv([1-5])\.0\.(weight|bias)$")
_OLD_TRUNK = re.compile(r"^model\.1\.sub\.(\d+)\.(weight|bias)$")
_OLD_TOP = re.compile(r"^model\.(\d+)\.(weight|bias)$")
_ESR_RDB = re.compile(r"^RRDB_trunk\.(\d+)\.RDB([123])\.conv([1-5])\.(weight|bias)$")
_ESR_UP = re.compile(r"^upconv(\d+)\.(weight|bias)$")
_BSR_RDB = re.compile(r"^body\.(\d+)\.rdb([123])\.conv([1-5])\.(weight|bias)$")
_BSR_UP = re.compile(r"^conv_up(\d+)\.(weight|bias)$")


def _layout(name: str, doc: str, first: str, block: re.Pattern) -> Layout:
    def detect(keys: frozenset[str]) -> bool:
        return first in keys and any(block.match(k) for k in keys)

    def convert(sd: Mapping, *, scale: int | None, scale_hint: int | None, source: str):
        return _convert_rrdb(sd, name, scale, scale_hint, source)

    return Layout(name, doc, detect, convert)


LAYOUTS = (
    _layout("rrdb-old", "original ESRGAN old arch (model.N Sequential)", "model.0.weight", _OLD_RDB),
    _layout("rrdb-esrgan", "official ESRGAN repository (RRDB_trunk, HRconv)", "conv_first.weight", _ESR_RDB),
    _layout("rrdb-basicsr", "BasicSR / Real-ESRGAN / srlab (body.N.rdbR)", "conv_first.weight", _BSR_RDB),
)


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


# --------------------------------------------------------------------------------------------- ncnn
def match_ncnn(layers: list, src: str):
    """``(arch, hparams, state_dict)`` for Real-ESRGAN's RRDBNet ncnn graph (dense concatenations and the
    0.2-scaled residual sums), None for a graph of another kind."""
    kinds = {ly.type for ly in layers}
    if not {"Concat", "Eltwise"} <= kinds or "PixelShuffle" in kinds:
        return None
    return _map_rrdb(layers, src)


def _map_rrdb(layers: list, src: str):
    convs = [ly for ly in layers if ly.type == "Convolution"]
    ups = [ly for ly in layers if ly.type == "Interp"]
    for ly in ups:
        if int(ly.p(0)) != 1 or float(ly.p(1)) != float(ly.p(2)) or float(ly.p(1)) not in (2.0, 3.0):
            raise WeightsError(f"{src}: {ly.name} is not a nearest x2/x3 upsampling; not an RRDBNet graph")
    n_up = len(ups)
    if (len(convs) - 4 - n_up) % 15 or len(convs) < 19 + n_up:
        raise WeightsError(
            f"{src}: {len(convs)} convolutions do not form an RRDBNet with {n_up} upsampling steps"
        )
    nb = (len(convs) - 4 - n_up) // 15
    names = ["conv_first"]
    acts = ["none"]
    for b in range(nb):
        for r in (1, 2, 3):
            for c in range(1, 6):
                names.append(f"body.{b}.rdb{r}.conv{c}")
                acts.append("leaky" if c < 5 else "none")
    names += ["conv_body"] + [f"conv_up{k + 1}" for k in range(n_up)] + ["conv_hr", "conv_last"]
    acts += ["none"] + ["leaky"] * n_up + ["leaky", "none"]
    sd = {}
    cin0 = 0
    for ly, name, want in zip(convs, names, acts, strict=True):
        ly.check_conv3x3(src)
        kind, slope = ly.activation()
        if kind != want or (kind == "leaky" and abs(slope - 0.2) > 1e-6):
            raise WeightsError(
                f"{src}: {ly.name} ({name}) has activation {kind} {slope or ''}, expected {want}"
            )
        t, cin = ly.conv_tensors()
        cin0 = cin0 or cin
        for k, v in t.items():
            sd[f"{name}.{k}"] = v
    for ly in layers:
        if ly.type == "Eltwise":
            coeffs = [float(c) for c in ly.p(1, [])]
            if (
                int(ly.p(0)) != 1
                or len(coeffs) != 2
                or abs(coeffs[0] - 0.2) > 1e-6
                or abs(coeffs[1] - 1.0) > 1e-6
            ):
                raise WeightsError(f"{src}: {ly.name} is not the 0.2-scaled residual sum of an RRDB")
    if any(ly.type in ("Reshape", "Permute", "PixelShuffle") for ly in layers):
        raise WeightsError(f"{src}: pixel-(un)shuffle RRDBNet ncnn graphs are not supported")
    factors = [int(float(ly.p(1))) for ly in ups]
    if factors not in ([], [2], [3], [2, 2], [2, 2, 2]):
        raise WeightsError(f"{src}: upsampling steps {factors} are not an RRDBNet scale")
    scale = math.prod(factors) if factors else 1
    hp = dict(
        scale=scale,
        num_in_ch=cin0,
        num_out_ch=int(convs[-1].p(0)),
        num_feat=int(convs[0].p(0)),
        num_block=nb,
        num_grow_ch=int(convs[1].p(0)),
    )
    return "rrdbnet", hp, sd
