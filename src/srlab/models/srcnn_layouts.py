"""SRCNN checkpoint layouts: the usual ``conv1``/``conv2``/``conv3`` and the study's ``block1``/``2``/``3``.

``srcnn``         ``conv1`` / ``conv2`` / ``conv3`` (kernel sizes and widths from the shapes).
``srcnn-study``   the study's SRCNN: ``block1`` / ``block2`` / ``block3`` -> ``srcnn`` with zero padding and
                  bilinear input, x2 (the only scale the study used) unless the caller says otherwise.
SRCNN files do not record their scale: the caller passes it (``scale`` or ``scale_hint``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from srlab.errors import WeightsError
from srlab.models.registry import Layout


def _layout(name: str, doc: str, names: tuple[str, str, str]) -> Layout:
    need = frozenset(f"{n}.weight" for n in names)

    def detect(keys: frozenset[str]) -> bool:
        return need <= keys

    def convert(sd: Mapping, *, scale: int | None, scale_hint: int | None, source: str):
        return _convert_srcnn(sd, name, scale if scale is not None else scale_hint, source)

    return Layout(name, doc, detect, convert)


LAYOUTS = (
    _layout("srcnn", "conv1 / conv2 / conv3", ("conv1", "conv2", "conv3")),
    _layout(
        "srcnn-study",
        "the study's block1 / block2 / block3 (zero padding, bilinear input)",
        ("block1", "block2", "block3"),
    ),
)


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
