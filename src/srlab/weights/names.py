"""The one table of model names: trained weights (shipped, zoo, ncnn), parameter-free interpolation,
untrained presets, bare architectures and the architectures srlab refuses, each with its family and backend.

``srlab models`` and ``srlab weights list`` print from it (its ``kind`` column says which names carry
trained weights and which build an untrained network); :func:`srlab.weights.loader.known_names` is its
loadable part. Families and presets come from :mod:`srlab.models.registry`; weights from the zoo, the ncnn
package table and the shipped models, whose family the registry's ``weights`` pointers give.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

import srlab.models  # noqa: F401  (fills the registry)
from srlab.models.registry import ARCHS, PRESETS, REFUSED, family_of, weights_family
from srlab.weights.ncnn import PACKAGE_MODELS
from srlab.weights.shipped import SHIPPED, get_shipped
from srlab.weights.zoo import ZOO

__all__ = ["KINDS", "NameEntry", "catalog"]

KINDS = ("trained", "parameter-free", "preset", "architecture", "refused")


@dataclass(frozen=True)
class NameEntry:
    name: str
    kind: str  # one of KINDS
    source: str  # shipped / zoo / ncnn for trained weights, else "registry"
    family: str  # the registry family ("" for a builder registered without a record)
    backend: str  # native / spandrel
    description: str


def _family(pointer: str, arch: str | None = None) -> tuple[str, str]:
    rec = weights_family(pointer) or family_of(arch)
    return (rec.family, rec.backend) if rec is not None else ("", "native")


def catalog(pattern: str = "*", *, kinds: tuple[str, ...] = KINDS) -> list[NameEntry]:
    """Every name matching the glob ``pattern``, trained weights first, then presets and architectures."""

    rows: list[NameEntry] = []
    for n, m in SHIPPED.items():
        if get_shipped(n):
            rows.append(NameEntry(n, "trained", "shipped", *_family(f"shipped:{n}"), m.description))
    for n, e in ZOO.items():
        rows.append(NameEntry(n, "trained", "zoo", *_family(f"zoo:{n}", e.arch), e.description))
    for n, (_, doc) in PACKAGE_MODELS.items():
        rows.append(NameEntry(n, "trained", "ncnn", *_family(f"ncnn:{n}"), doc))
    for n, (arch, _, doc) in sorted(PRESETS.items()):
        rec = family_of(arch)
        kind = "parameter-free" if rec is not None and rec.purpose == "interpolation" else "preset"
        rows.append(NameEntry(n, kind, "registry", *_family("", arch), doc))
    for n in sorted(set(ARCHS) - set(PRESETS)):
        rec = family_of(n)
        rows.append(NameEntry(n, "architecture", "registry", *_family("", n), rec.summary if rec else ""))
    for n, why in sorted(REFUSED.items()):  # spandrel architectures srlab will not build, and why
        rows.append(NameEntry(n, "refused", "registry", "", "spandrel", why))
    return [r for r in rows if r.kind in kinds and fnmatch.fnmatch(r.name, pattern)]
