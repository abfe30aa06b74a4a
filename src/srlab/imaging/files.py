"""The one image lister: training sets, evaluation sets and ``srlab upscale`` folders see the same files
of a folder, in the same order.

An image file is a regular, non-hidden file whose extension (any case) is in :data:`IMAGE_EXTENSIONS`;
files are sorted by folder, then by *natural* name order (``img2`` before ``img10``, case-insensitive),
which is also the order data sets number their images in.

Glob patterns (:func:`glob_images`) list the same way; :func:`glob_root` is a pattern's fixed folder, the root
that ``srlab upscale`` mirrors the matched tree under (``photos/**/*.jpg`` keeps ``photos/a/b/x.jpg`` as
``a/b/x``), so a recursive pattern no longer flattens a tree into one folder.
"""

from __future__ import annotations

import glob
import os
import re
import stat
from pathlib import Path

from srlab.errors import DataError

__all__ = [
    "IMAGE_EXTENSIONS",
    "glob_images",
    "glob_root",
    "has_magic",
    "is_image_file",
    "list_images",
    "natural_key",
    "not_a_regular_file",
    "require_images",
]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".gif")
_DIGITS = re.compile(r"(\d+)")
_MAGIC = re.compile(r"[*?[]")


def not_a_regular_file(st: os.stat_result) -> str | None:
    """Why a path with this ``stat`` is not an image file srlab can read, or None for a regular file. Judged
    from the file type before anything opens it: opening a FIFO with no writer blocks forever."""
    mode = st.st_mode
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISFIFO(mode):
        return (
            "is a pipe (a FIFO, or <(...) process substitution), not a file; srlab reads image files only: "
            "save the data to a file first"
        )
    if stat.S_ISDIR(mode):
        return "is a folder, not an image; pass the files inside it"
    kind = (
        "a socket"
        if stat.S_ISSOCK(mode)
        else "a device"
        if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
        else "not a regular file"
    )
    return f"is {kind}, not an image file; pass a regular file"


def natural_key(p: Path) -> tuple:
    """Sort key: folder, then the name with digit runs compared as numbers, then the exact path."""
    name = [(0, int(t), "") if t.isdigit() else (1, 0, t.lower()) for t in _DIGITS.split(p.name) if t]
    return (str(p.parent), name, str(p))


def is_image_file(p: Path) -> bool:
    return p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") and p.is_file()


def list_images(folder: str | os.PathLike, pattern: str = "*", *, recursive: bool = False) -> list[Path]:
    """Image files in ``folder`` matching ``pattern`` (sub-folders too with ``recursive``), in natural order.
    A missing folder gives an empty list; :func:`require_images` says why instead."""
    d = Path(folder)
    if not d.is_dir():
        return []
    found = d.rglob(pattern) if recursive else d.glob(pattern)
    # a hidden sub-folder (.git, .cache, ...) is hidden with everything in it
    keep = (
        p for p in found if is_image_file(p) and not any(s.startswith(".") for s in p.relative_to(d).parts)
    )
    return sorted(keep, key=natural_key)


def has_magic(pattern: str) -> bool:
    """Whether ``pattern`` holds a glob wildcard (``*``, ``?``, ``[``)."""
    return _MAGIC.search(pattern) is not None


def glob_root(pattern: str | os.PathLike) -> Path:
    """The fixed folder of a glob pattern: its leading components without a wildcard, the file-name
    component excluded (``in/2024/**/*.png`` -> ``in/2024``; ``*.png`` -> ``.``)."""
    parts = Path(pattern).parts
    fixed: list[str] = []
    for part in parts[:-1]:
        if has_magic(part):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")


def glob_images(pattern: str) -> tuple[list[Path], int]:
    """(image files matching ``pattern``, number of paths it matched at all): ``**`` spans folders, the
    files are those :func:`list_images` would keep (hidden ones and those in hidden folders below
    :func:`glob_root` excluded), in natural order. The count tells "no match" from "no image"."""
    matches = [Path(m) for m in glob.glob(os.fspath(pattern), recursive=True)]
    root = glob_root(pattern)

    def shown(p: Path) -> bool:
        try:
            below = p.relative_to(root).parts
        except ValueError:
            below = p.parts
        return not any(s.startswith(".") and s not in (".", "..") for s in below)

    images = [m for m in matches if is_image_file(m) and shown(m)]
    return sorted(images, key=natural_key), len(matches)


def require_images(
    folder: str | os.PathLike, *, what: str = "image folder", recursive: bool = False
) -> list[Path]:
    """:func:`list_images`, or one-line :class:`DataError` naming the folder and the fix when it is missing,
    not a folder, or holds no image."""
    d = Path(folder)
    if not d.exists():
        raise DataError(f"{what} {d} does not exist; check the path, --data-root or $SRLAB_DATA_ROOT")
    if not d.is_dir():
        raise DataError(f"{what} {d} is not a folder; give a folder of images")
    files = list_images(d, recursive=recursive)
    if not files:
        raise DataError(f"{what} {d} holds no image files ({', '.join(IMAGE_EXTENSIONS)}); put images in it")
    return files
