"""16-bit colour PNG and TIFF: the encoders and the decoding trick Pillow itself lacks.

Written here because Pillow has no colour mode above 8 bits per channel (only ``I;16`` gray), so it can
neither write 16-bit RGB, RGBA or gray+alpha PNG/TIFF nor keep them at 16 bits when reading, and tifffile
would cover TIFF only, not PNG, at the price of a new dependency. Reading decodes the file twice with
Pillow's own decoder (raw modes that keep the high bytes, then the low bytes) and combines the two, so
filters, interlacing and CRC checks stay Pillow's.

This module only knows the formats; opening, loading and the safety checks stay in :mod:`srlab.imaging.io`,
which hands :func:`decode_wide` its own ``open`` and ``load``.
"""

from __future__ import annotations

import struct
import sys
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["WIDE_RAWMODES", "decode_wide", "encode16", "png16", "sixteen_bit_rawmode", "tiff16"]

# Decode the same data with a raw mode that keeps the low bytes and combine:
# (rawmode for the high bytes, rawmode for the low bytes, channels).
WIDE_RAWMODES: dict[str, tuple[str | None, str, int]] = {
    "RGB;16B": ("RGB;16B", "RGB;16L", 3),
    "RGB;16L": ("RGB;16L", "RGB;16B", 3),
    "RGBA;16B": ("RGBA;16B", "RGBA;16L", 4),
    "RGBA;16L": ("RGBA;16L", "RGBA;16B", 4),
    "LA;16B": (None, "RGBA", 2),  # 4 bytes/pixel read as 8-bit RGBA: (L hi, L lo, A hi, A lo)
}
# libtiff (compressed TIFF) hands over native-endian samples
_NATIVE_LO = "16B" if sys.byteorder == "little" else "16L"
WIDE_RAWMODES["RGB;16N"] = ("RGB;16N", f"RGB;{_NATIVE_LO}", 3)
WIDE_RAWMODES["RGBA;16N"] = ("RGBA;16N", f"RGBA;{_NATIVE_LO}", 4)


# --------------------------------------------------------------------------------------------- reading


def sixteen_bit_rawmode(im) -> str | None:
    """The raw mode of a lazily opened 16-bit colour PNG/TIFF that Pillow would reduce, else None."""
    if im.format not in ("PNG", "TIFF") or len(im.tile) != 1:
        return None
    args = im.tile[0].args
    rawmode = args if isinstance(args, str) else (args[0] if isinstance(args, tuple) and args else None)
    return rawmode if rawmode in WIDE_RAWMODES else None


def _with_rawmode(im, rawmode: str, mode: str | None):
    """Point a lazily opened image's single tile at ``rawmode`` (and ``mode``) before it is loaded."""
    from PIL import ImageFile

    t = im.tile[0]
    args = t.args
    new_args = rawmode if isinstance(args, str) else (rawmode, *args[1:])
    im.tile = [ImageFile._Tile(t.codec_name, t.extents, t.offset, new_args)]
    if mode is not None and im.mode != mode:
        im._mode = mode
    return im


def decode_wide(
    rawmode: str, open_image: Callable[[], Any], load: Callable[[Any], None]
) -> tuple[np.ndarray, np.ndarray | None]:
    """(pixels HxWxC uint16, alpha HxW uint16 | None) of a 16-bit colour file.

    ``open_image()`` opens the file afresh (header only) and ``load(im)`` decodes it fully, raising the
    caller's errors; each is called once per pass.
    """

    def decode(raw: str, mode: str | None) -> np.ndarray:
        im = _with_rawmode(open_image(), raw, mode)
        load(im)
        return np.asarray(im).astype(np.uint16)

    hi_mode, lo_mode, channels = WIDE_RAWMODES[rawmode]
    if hi_mode is None:  # gray + alpha, 16 bits
        b = decode(lo_mode, "RGBA")
        gray = (b[..., 0] << 8) | b[..., 1]
        alpha = (b[..., 2] << 8) | b[..., 3]
        return gray[..., None].copy(), alpha
    full = (decode(hi_mode, None) << 8) | decode(lo_mode, None)
    if channels == 4:
        return full[..., :3].copy(), full[..., 3].copy()
    return full[..., :3].copy(), None


# --------------------------------------------------------------------------------------------- writing


def encode16(a: np.ndarray, al: np.ndarray | None, fmt: str, icc: bytes | None) -> bytes:
    """A 16-bit ``fmt`` ('PNG' or 'TIFF') file of pixels ``a`` (H, W, C) uint16 and optional alpha."""
    if fmt == "PNG":
        return png16(a, al, icc)
    if a.shape[2] == 1:  # Pillow cannot read 16-bit gray+alpha TIFF: store it as RGBA
        a = np.repeat(a, 3, axis=2)
    return tiff16(a, al)


def _png_chunk(tag: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)


def png16(a: np.ndarray, al: np.ndarray | None, icc: bytes | None) -> bytes:
    """A 16-bit PNG (gray+alpha, RGB or RGBA), rows 'Up'-filtered, deflate level 6."""
    planes = a if al is None else np.concatenate([a, al[..., None]], axis=2)
    h, w, c = planes.shape
    color_type = {2: 4, 3: 2, 4: 6}[c]
    raw = np.ascontiguousarray(planes.astype(">u2")).view(np.uint8).reshape(h, w * c * 2)
    up = raw.copy()
    up[1:] = raw[1:] - raw[:-1]  # uint8 arithmetic wraps mod 256, as the Up filter wants
    rows = np.concatenate([np.full((h, 1), 2, np.uint8), up], axis=1)
    out = [b"\x89PNG\r\n\x1a\n", _png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0))]
    if icc:
        out.append(_png_chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(icc)))
    out.append(_png_chunk(b"IDAT", zlib.compress(rows.tobytes(), 6)))
    out.append(_png_chunk(b"IEND", b""))
    return b"".join(out)


def tiff16(a: np.ndarray, al: np.ndarray | None, *, compress: bool = True) -> bytes:
    """A little-endian 16-bit TIFF (gray+alpha, RGB or RGBA), one strip, deflate-compressed or not."""
    planes = a if al is None else np.concatenate([a, al[..., None]], axis=2)
    h, w, c = planes.shape
    data = np.ascontiguousarray(planes.astype("<u2")).tobytes()
    if compress:
        data = zlib.compress(data, 6)
    n_entries = 10 + (al is not None)
    ifd_off = 8
    ifd_size = 2 + 12 * n_entries + 4
    bps_off = ifd_off + ifd_size
    data_off = bps_off + 2 * c
    entries = [
        (256, 4, 1, w),  # ImageWidth (LONG)
        (257, 4, 1, h),  # ImageLength
        (258, 3, c, bps_off if c > 2 else (16 | (16 << 16) if c == 2 else 16)),  # BitsPerSample
        (259, 3, 1, 8 if compress else 1),  # Compression: Adobe deflate or none
        (262, 3, 1, 2 if c >= 3 else 1),  # Photometric: RGB or BlackIsZero
        (273, 4, 1, data_off),  # StripOffsets
        (277, 3, 1, c),  # SamplesPerPixel
        (278, 4, 1, h),  # RowsPerStrip
        (279, 4, 1, len(data)),  # StripByteCounts
        (284, 3, 1, 1),  # PlanarConfiguration: chunky
    ]
    if al is not None:
        entries.append((338, 3, 1, 2))  # ExtraSamples: unassociated alpha
    out = [b"II*\x00", struct.pack("<I", ifd_off), struct.pack("<H", len(entries))]
    for tag, typ, count, value in entries:
        if typ == 3 and count == 1:
            out.append(struct.pack("<HHIHH", tag, typ, count, value, 0))
        else:
            out.append(struct.pack("<HHII", tag, typ, count, value))
    out.append(struct.pack("<I", 0))
    out.append(struct.pack(f"<{c}H", *([16] * c)))
    out.append(data)
    return b"".join(out)
