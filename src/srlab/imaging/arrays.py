"""Conversions between image arrays, float tensors and PIL images.

Arrays are (H, W, C) with C = 1 or 3, dtype uint8 or uint16 (what :func:`srlab.imaging.io.read_image`
returns and :func:`~srlab.imaging.io.write_image` takes). :func:`to_tensor` / :func:`from_tensor` convert
them to and from float tensors (C, H, W) in [0, 1]; :func:`from_tensor` clips and rounds to the integer grid
(half up). :func:`to_pil` makes a PIL image of them; its inverse, :func:`srlab.imaging.io.from_pil`, lives
with the decoder because it shares its mode mapping.

torch is imported only by the tensor helpers.
"""

from __future__ import annotations

import warnings

import numpy as np

__all__ = ["as_hwc", "from_tensor", "to_depth", "to_pil", "to_tensor"]


def as_hwc(pixels: np.ndarray) -> np.ndarray:
    """``pixels`` as (H, W, C), C in {1, 3}; ValueError for any other shape."""
    a = np.asarray(pixels)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[2] not in (1, 3):
        raise ValueError(f"pixels must be (H, W), (H, W, 1) or (H, W, 3); got shape {a.shape}")
    return a


def to_depth(a: np.ndarray, bit_depth: int) -> np.ndarray:
    """uint8/uint16 ``a`` at ``bit_depth`` bits (8 -> 16: x257; 16 -> 8: rounded); TypeError for floats."""
    if a.dtype == np.uint8:
        return a if bit_depth == 8 else a.astype(np.uint16) * 257
    if a.dtype == np.uint16:
        if bit_depth == 16:
            return a
        return ((a.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    raise TypeError(f"pixels must be uint8 or uint16 (got {a.dtype}); use from_tensor() to convert floats")


def to_pil(pixels: np.ndarray, alpha: np.ndarray | None = None):
    """A PIL image of (pixels, alpha): L/LA/RGB/RGBA for uint8, ``I;16`` for 16-bit gray.

    Pillow has no 16-bit colour mode, so 16-bit colour is reduced to 8 bits (with a warning).
    """
    from PIL import Image as PILImage

    a = as_hwc(pixels)
    if a.dtype == np.uint16 and a.shape[2] == 1 and alpha is None:
        return PILImage.fromarray(np.ascontiguousarray(a[..., 0]).astype(np.uint16))
    if a.dtype == np.uint16:
        warnings.warn("Pillow has no 16-bit colour mode; returning 8 bits per channel", stacklevel=2)
    a = to_depth(a, 8)
    if alpha is not None:
        a = np.concatenate([a, to_depth(np.asarray(alpha), 8)[..., None]], axis=2)
    return PILImage.fromarray(np.ascontiguousarray(a if a.shape[2] > 1 else a[..., 0]))


def _writable(a: np.ndarray) -> np.ndarray:
    """``a``, or a copy when it is read-only (``np.asarray(PIL image)``, memory maps): torch.from_numpy
    warns on read-only arrays, and the caller's data must never be written through the tensor."""
    return a if a.flags.writeable else a.copy()


def to_tensor(arr: np.ndarray):
    """(H, W[, C]) uint8/uint16 (or float in [0, 1]) -> float32 tensor (C, H, W) in [0, 1]."""
    import torch

    a = np.asarray(arr)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3:
        raise ValueError(f"expected an (H, W) or (H, W, C) array, got shape {a.shape}")
    if a.dtype == np.uint8:
        t = torch.from_numpy(_writable(np.ascontiguousarray(a))).float().div_(255.0)
    elif a.dtype == np.uint16:
        t = torch.from_numpy(a.astype(np.float32)).div_(65535.0)
    elif np.issubdtype(a.dtype, np.floating):
        t = torch.from_numpy(_writable(np.ascontiguousarray(a, dtype=np.float32)))
    else:
        raise TypeError(f"unsupported array dtype {a.dtype}; expected uint8, uint16 or float")
    return t.permute(2, 0, 1).contiguous()


def from_tensor(t, bit_depth: int = 8) -> np.ndarray:
    """Float tensor (C, H, W) / (1, C, H, W) / (H, W) in [0, 1] -> (H, W, C) uint8 or uint16.

    Values are clipped to [0, 1], scaled to 255 or 65535 and rounded half up to the integer grid.
    """
    import torch

    if bit_depth not in (8, 16):
        raise ValueError(f"bit_depth must be 8 or 16, not {bit_depth}")
    x = t.detach()
    if x.ndim == 4:
        if x.shape[0] != 1:
            raise ValueError(f"from_tensor takes one image; got a batch of {x.shape[0]}")
        x = x[0]
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3:
        raise ValueError(f"expected a (C, H, W) tensor, got shape {tuple(x.shape)}")
    m = 255.0 if bit_depth == 8 else 65535.0
    dtype = np.uint8 if bit_depth == 8 else np.uint16
    c, h, w = x.shape
    out = np.empty((h, w, c), dtype=dtype)
    # Row blocks bound the float temporaries of a huge image; quantised on the tensor's device (a GPU
    # result then crosses the bus as integers, not floats).
    rows = max(1, (1 << 22) // max(1, c * w))
    for r0 in range(0, h, rows):
        q = torch.floor(x[:, r0 : r0 + rows].float().clamp(0.0, 1.0) * m + 0.5)
        q = q.to(torch.uint8 if bit_depth == 8 else torch.int32).permute(1, 2, 0).cpu()
        out[r0 : r0 + rows] = q.numpy()
    return out
