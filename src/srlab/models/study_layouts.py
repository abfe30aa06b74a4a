"""The study's checkpoint layouts (its generator and discriminator, as its notebook saved them).

``study-rrdbnet`` the study's generator: ``conv0.0``, ``RRDB_layers.<i>.block<j>.conv<k>.0``, ``conv1.0``,
                  ``upSample0.0``, ``conv2.0``, ``conv3.0`` -> ``study_rrdbnet`` (x2).
``study-discriminator`` the study's discriminator: ``block1.0``, ``basicBlocks.<n>.block1.{0,1}``,
                  ``block2.{0,2}`` -> ``study_discriminator``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

from srlab.errors import WeightsError
from srlab.models.registry import Layout, tensor_shape

WHAT = "study's checkpoint"  # how a missing tensor names the file

_STUDY_RDB = re.compile(r"^RRDB_layers\.(\d+)\.block[012]\.conv[0-4]\.0\.(weight|bias)$")


def _detect_generator(keys: frozenset[str]) -> bool:
    if "conv0.0.weight" in keys and any(_STUDY_RDB.match(k) for k in keys):
        return True
    if any(k.startswith("RRDB_layers.") for k in keys):
        raise WeightsError(
            "an early draft of the study's generator (RRDB_layers without the '.0' of its "
            "Sequential convs); srlab builds only the generator of the study's published checkpoints"
        )
    return False


def _detect_discriminator(keys: frozenset[str]) -> bool:
    return "block1.0.weight" in keys and any(k.startswith("basicBlocks.") for k in keys)


def _generator(sd: Mapping, *, scale: int | None, scale_hint: int | None, source: str):
    return _convert_study_rrdbnet(sd, scale, source)


def _discriminator(sd: Mapping, *, scale: int | None, scale_hint: int | None, source: str):
    return _convert_study_discriminator(sd, source)


LAYOUTS = (
    Layout(
        "study-rrdbnet",
        "the study's generator (conv0.0, RRDB_layers.N.blockJ.convK.0)",
        _detect_generator,
        _generator,
    ),
    Layout(
        "study-discriminator",
        "the study's discriminator (block1.0, basicBlocks.N)",
        _detect_discriminator,
        _discriminator,
    ),
)


def _convert_study_rrdbnet(sd: Mapping, scale: int | None, source: str):
    num_feat, num_in = tensor_shape(sd, "conv0.0.weight", 4, source, WHAT)[:2]
    num_out = tensor_shape(sd, "conv3.0.weight", 4, source, WHAT)[0]
    growth = tensor_shape(sd, "RRDB_layers.0.block0.conv0.0.weight", 4, source, WHAT)[0]
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
    num_feat, num_in = tensor_shape(sd, "block1.0.weight", 4, source, WHAT)[:2]
    flat = tensor_shape(sd, "block2.0.weight", 2, source, WHAT)[1]
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
