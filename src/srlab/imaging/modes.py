"""Pillow modes -> srlab's arrays: (H, W, C) pixels with C in {1, 3}, an optional alpha plane, 8 or 16 bits.

Used by :func:`srlab.imaging.io.read_image` and :func:`~srlab.imaging.io.from_pil` after a full decode: palette
and transparency keys become an alpha plane, CMYK/YCbCr/HSV become RGB, 32-bit integer images are kept
when their values fit 16 bits, and any other mode is refused with one :class:`~srlab.errors.ImageError` line.
"""

from __future__ import annotations

import numpy as np

from srlab.errors import ImageError

__all__ = ["pil_to_arrays"]


def _fail(path, reason: str, fix: str) -> ImageError:
    return ImageError(f"{path}: {reason}; {fix}")


def pil_to_arrays(im, label, icc):
    """(pixels HxWxC, alpha HxW|None, bit_depth, icc) of a loaded PIL image."""
    mode = im.mode
    alpha = None
    if mode == "1":
        im = im.convert("L")
        mode = "L"
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        mode = im.mode
    elif mode == "PA":
        im = im.convert("RGBA")
        mode = "RGBA"
    elif mode in ("La",):
        im = im.convert("LA")
        mode = "LA"
    elif mode in ("RGBa",):
        im = im.convert("RGBA")
        mode = "RGBA"
    elif mode == "L" and "transparency" in im.info:
        im = im.convert("LA")
        mode = "LA"
    elif mode == "RGB" and "transparency" in im.info:
        im = im.convert("RGBA")
        mode = "RGBA"
    elif mode in ("CMYK", "YCbCr", "RGBX", "HSV"):
        try:
            im = im.convert("RGB")
        except ValueError:
            raise _fail(label, f"unsupported colour mode {mode}", "convert it to RGB first") from None
        if mode == "CMYK":
            icc = None  # a CMYK profile does not describe the converted RGB values
        mode = "RGB"

    if mode == "L":
        return np.asarray(im, dtype=np.uint8)[..., None].copy(), None, 8, icc
    if mode == "LA":
        a = np.asarray(im, dtype=np.uint8)
        return a[..., :1].copy(), a[..., 1].copy(), 8, icc
    if mode == "RGB":
        return np.asarray(im, dtype=np.uint8).copy(), None, 8, icc
    if mode == "RGBA":
        a = np.asarray(im, dtype=np.uint8)
        return a[..., :3].copy(), a[..., 3].copy(), 8, icc
    if mode.startswith("I;16"):
        a = np.asarray(im)
        return a.astype(np.uint16)[..., None].copy(), alpha, 16, icc
    if mode == "I":
        a = np.asarray(im)
        lo, hi = (int(a.min()), int(a.max())) if a.size else (0, 0)
        if lo < 0 or hi > 65535:
            raise _fail(
                label,
                f"32-bit integer image with values {lo}..{hi} outside 0..65535",
                "convert it to a 16-bit PNG or TIFF",
            )
        return a.astype(np.uint16)[..., None].copy(), None, 16, icc
    raise _fail(label, f"unsupported image mode {mode!r}", "convert it to 8- or 16-bit RGB or grayscale")
