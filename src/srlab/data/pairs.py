"""Which files of a training folder are HR images and which LR image (if any) belongs to each.

Layouts recognised, in this order:

- an explicit LR folder (``data.train_lr`` / a source's ``lr``): LR files matched to HR files by stem, an
  ``x{s}`` / ``_x{s}`` / ``X{s}`` suffix of the LR stem ignored (DIV2K's ``0001x4.png``);
- one folder of ``NAME_HR.ext`` / ``NAME_LR{s}.ext`` pairs (RealSR): the HR files are the ``_HR`` ones;
- an HR folder with a sibling LR folder (``HR``/``LR``, ``train_HR``/``train_LR`` as DRealSR,
  ``X_HR``/``X_LR_bicubic``; the LR folder itself or its ``X{s}``/``x{s}``/``{s}`` sub-folder), matched the
  same way as an explicit LR folder;
- otherwise HR images alone (the LR is synthesised).

Sizes are checked where the images are decoded (:func:`srlab.data.datasets._check_pair`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from srlab.imaging.files import list_images, require_images

__all__ = ["PairedFiles", "find_pairs", "lr_stem"]


@dataclass(frozen=True)
class PairedFiles:
    """HR files in order, the LR file of each (None: synthesise), and how they were found."""

    hr: list[Path]
    lr: list[Path | None]
    layout: str  # "hr only" | "lr folder DIR" | "_HR/_LR{s} pairs" | "sibling LR folder DIR"

    @property
    def paired(self) -> bool:
        return self.layout != "hr only"


def lr_stem(stem: str, scale: int) -> str:
    """An LR file's stem without its scale suffix (``0001x4`` -> ``0001``)."""
    for suf in (f"x{scale}", f"_x{scale}", f"X{scale}"):
        if stem.endswith(suf) and len(stem) > len(suf):
            return stem[: -len(suf)].rstrip("_")
    return stem


def _match(hr: list[Path], lr_files: list[Path], scale: int) -> list[Path | None]:
    by_stem: dict[str, Path] = {}
    for p in lr_files:
        by_stem[p.stem] = p
    for p in lr_files:
        by_stem.setdefault(lr_stem(p.stem, scale), p)
    return [by_stem.get(f.stem) for f in hr]


def _sibling_lr(hr_dir: Path, scale: int) -> Path | None:
    name, parent = hr_dir.name, hr_dir.parent
    if "hr" not in name.lower():
        return None
    swapped = re.sub("hr", "LR", name, flags=re.IGNORECASE)
    same_case = name.replace("HR", "LR").replace("hr", "lr")
    bases = [parent / same_case, parent / swapped, parent / f"{swapped}_bicubic"]
    for base in dict.fromkeys(bases):
        for cand in (base / f"X{scale}", base / f"x{scale}", base / str(scale), base):
            if cand.is_dir() and cand.resolve() != hr_dir.resolve() and list_images(cand):
                return cand
    return None


def find_pairs(hr_dir: Path | str, scale: int, lr_dir: Path | str | None = None) -> PairedFiles:
    """The files of a training folder by the rules of the module docstring (DataError when there are none)."""
    hr_dir = Path(hr_dir)
    files = require_images(hr_dir, what="training folder")
    if lr_dir is not None:
        lr_files = require_images(lr_dir, what="LR folder")
        return PairedFiles(files, _match(files, lr_files, scale), f"lr folder {lr_dir}")
    hr_re, lr_re = re.compile(r"(.+)_HR$"), re.compile(rf"(.+)_LR{scale}$")
    hr_named = {m.group(1): f for f in files if (m := hr_re.match(f.stem))}
    if hr_named:
        lr_named = {m.group(1): f for f in files if (m := lr_re.match(f.stem))}
        hr = list(hr_named.values())
        if lr_named:
            return PairedFiles(hr, [lr_named.get(k) for k in hr_named], f"_HR/_LR{scale} pairs")
        # LR files of other scales only: train on the _HR files (the others are not HR images)
        return PairedFiles(hr, [None] * len(hr), "hr only")
    sib = _sibling_lr(hr_dir, scale)
    if sib is not None:
        return PairedFiles(files, _match(files, list_images(sib), scale), f"sibling LR folder {sib}")
    return PairedFiles(files, [None] * len(files), "hr only")
