"""SPAN checkpoint layout (upstream / spandrel): ``conv_1``, ``block_<1..6>.c<k>_r`` (re-parameterisable convs:
``sk``, ``conv.<0..2>``, ``eval_conv``), ``conv_cat``, ``conv_2``, ``upsampler.0``; ``no_norm`` marks a
network without input normalisation. Hyper-parameters come from the shapes."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

from srlab.errors import WeightsError
from srlab.models.registry import Layout, tensor_shape

WHAT = "SPAN checkpoint"  # how a missing tensor names the file

NUM_BLOCKS = 6  # the layout (and spandrel) has exactly six SPABs
_BLOCK = re.compile(r"^block_(\d+)\.")
_MARKERS = frozenset(
    {"conv_1.sk.weight", "block_1.c1_r.eval_conv.weight", "conv_cat.weight", "upsampler.0.weight"}
)


def _detect(keys: frozenset[str]) -> bool:
    return _MARKERS <= keys


def _convert(sd: Mapping, *, scale: int | None, scale_hint: int | None, source: str):
    blocks = sorted({int(m.group(1)) for k in sd if (m := _BLOCK.match(k))})
    if blocks != list(range(1, NUM_BLOCKS + 1)):
        raise WeightsError(
            f"{source}: SPAN checkpoint with blocks {blocks[:8]}; the SPAN layout has block_1 .. block_{NUM_BLOCKS}"
        )
    feat, num_in = tensor_shape(sd, "conv_1.sk.weight", 4, source, WHAT)[:2]
    up = tensor_shape(sd, "upsampler.0.weight", 4, source, WHAT)[0]
    # the upsampler makes out_channels x scale^2 maps; out = in unless only 3 or 1 fits (as spandrel reads it)
    for num_out in dict.fromkeys((num_in, 3, 1)):
        found = math.isqrt(up // num_out) if up % num_out == 0 else 0
        if found >= 1 and found * found * num_out == up:
            break
    else:
        raise WeightsError(
            f"{source}: SPAN upsampler has {up} outputs, not out_channels x scale^2 for {num_in}, 3 or 1 channels"
        )
    if scale is not None and int(scale) != found:
        raise WeightsError(f"{source}: the file is a x{found} SPAN network, not x{scale}")
    norm = "no_norm" not in sd
    if norm and num_in != 3:
        raise WeightsError(
            f"{source}: SPAN with {num_in} input channels but no 'no_norm' marker: normalisation needs RGB input"
        )
    hp = dict(scale=found, num_in_ch=num_in, num_out_ch=num_out, feature_channels=feat, norm=norm)
    return "span", hp, dict(sd), []


LAYOUTS = (
    Layout(
        "span",
        "SPAN (upstream / spandrel): conv_1, block_1..6 (Conv3XC), conv_cat, conv_2, upsampler",
        _detect,
        _convert,
    ),
)
