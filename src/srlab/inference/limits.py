"""Checks made before an image is upscaled: float input values, and the memory its results need.

- :func:`check_float_range`: float arrays stand for [0, 1]; values outside it (8-bit data passed as float,
  200.0) would be clipped without a word, and NaN or inf would pass through the model, so both are refused
  with one :class:`~srlab.errors.ImageError` line naming the range found.
- :func:`available_memory`: what the machine can give now (Linux ``MemAvailable``, else the physical
  memory; ``None`` where neither is known), against which :meth:`Upscaler.check_output_memory` refuses an
  output (``--outscale 1000``, a huge image) before allocating it.
"""

from __future__ import annotations

import os

import numpy as np

from srlab.errors import ImageError

__all__ = ["FLOAT_TOLERANCE", "available_memory", "check_float_range"]

FLOAT_TOLERANCE = 1e-3
"""How far outside [0, 1] float input may stray (rounding in the caller's own arithmetic) before it is refused."""


def check_float_range(a: np.ndarray, *, tolerance: float = FLOAT_TOLERANCE) -> None:
    """Raise ImageError unless every value of the float array ``a`` is finite and in [0, 1] (+- tolerance)."""
    if a.size == 0:
        return
    finite = np.isfinite(a)
    if not finite.all():
        bad = int(a.size - np.count_nonzero(finite))
        raise ImageError(
            f"float image has {bad} non-finite value(s) (NaN or inf) in {a.shape[0]}x{a.shape[1]} pixels; "
            "replace them (e.g. numpy.nan_to_num) before upscaling"
        )
    lo, hi = float(a.min()), float(a.max())
    if lo < -tolerance or hi > 1 + tolerance:
        raise ImageError(
            f"float image values range {lo:g}..{hi:g}, outside [0, 1]; scale them to [0, 1] "
            "(8-bit data: divide by 255) or pass uint8/uint16 arrays"
        )


def available_memory() -> int | None:
    """Bytes of memory available now: Linux ``MemAvailable``, else the physical memory, else None."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None
