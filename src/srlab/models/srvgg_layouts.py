"""SRVGGNetCompact checkpoint layout (Real-ESRGAN's ``body.<n>`` convs with PReLU slopes) and ncnn graph."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

from srlab.errors import WeightsError
from srlab.models.registry import Layout

_VGG = re.compile(r"^body\.(\d+)\.(weight|bias)$")


def _detect(keys: frozenset[str]) -> bool:
    return "body.0.weight" in keys and all(_VGG.match(k) for k in keys)


def _convert(sd: Mapping, *, scale: int | None, scale_hint: int | None, source: str):
    return _convert_srvgg(sd, scale, source)


LAYOUTS = (Layout("srvgg", "Real-ESRGAN SRVGGNetCompact: body.N convs, PReLU between", _detect, _convert),)


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


def match_ncnn(layers: list, src: str):
    """``(arch, hparams, state_dict)`` for the SRVGG ncnn graph (one PixelShuffle), None otherwise."""
    if not any(ly.type == "PixelShuffle" for ly in layers):
        return None
    return _map_srvgg(layers, src)


def _map_srvgg(layers: list, src: str):
    convs = [ly for ly in layers if ly.type == "Convolution"]
    prelus = [ly for ly in layers if ly.type == "PReLU"]
    shuffles = [ly for ly in layers if ly.type == "PixelShuffle"]
    interps = [ly for ly in layers if ly.type == "Interp"]
    if len(shuffles) != 1 or len(convs) < 2:
        raise WeightsError(f"{src}: not an SRVGG graph (needs one PixelShuffle after the conv stack)")
    s = int(shuffles[0].p(0))
    if len(interps) != 1 or int(interps[0].p(0)) != 1 or float(interps[0].p(1)) != s:
        raise WeightsError(f"{src}: SRVGG graph without the nearest x{s} residual of its input")
    if prelus and len(prelus) == len(convs) - 1:
        act = "prelu"
    elif not prelus and all(c.activation()[0] == "relu" for c in convs[:-1]):
        act = "relu"
    elif not prelus and all(
        c.activation()[0] == "leaky" and abs(c.activation()[1] - 0.1) < 1e-6 for c in convs[:-1]
    ):
        act = "leakyrelu"
    else:
        raise WeightsError(
            f"{src}: SRVGG graph with {len(prelus)} PReLU layers for {len(convs)} convolutions"
        )
    last_act = convs[-1].activation()[0]
    if last_act != "none":  # SRVGG ends on a linear conv before its pixel shuffle; a fused one differs
        raise WeightsError(
            f"{src}: the last convolution ({convs[-1].name}) has a fused {last_act} activation; SRVGGNetCompact's "
            "last conv is linear, so srlab would compute a different function: not imported"
        )
    sd = {}
    cin0 = 0
    for i, ly in enumerate(convs):
        ly.check_conv3x3(src)
        t, cin = ly.conv_tensors()
        cin0 = cin0 or cin
        for k, v in t.items():
            sd[f"body.{2 * i}.{k}"] = v
    num_feat = int(convs[0].p(0))
    for i, ly in enumerate(prelus):
        slope = ly.tensor("slope")
        if slope.numel() == 1:
            slope = slope.expand(num_feat).clone()
        sd[f"body.{2 * i + 1}.weight"] = slope
    last_out = int(convs[-1].p(0))
    if last_out % (s * s):
        raise WeightsError(f"{src}: last conv has {last_out} outputs, not a multiple of {s}^2")
    hp = dict(
        scale=s,
        num_in_ch=cin0,
        num_out_ch=last_out // (s * s),
        num_feat=num_feat,
        num_conv=len(convs) - 2,
        act_type=act,
    )
    return "srvgg", hp, sd
