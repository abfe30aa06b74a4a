"""Robust image decoding and encoding.

:func:`read_image` turns any common image file into an :class:`Image`: ``pixels`` (H, W, C) with C = 1
(grayscale) or 3 (colour), dtype uint8 or uint16, plus ``alpha`` (H, W) or None. It

- applies the EXIF orientation (so pixels are the way a viewer shows them) and keeps the ICC profile;
- maps every Pillow mode to that shape: ``1``/``L``/``I;16*``/``I`` -> gray, ``RGB``/``YCbCr``/``CMYK``
  -> RGB (CMYK naively, without colour management), ``RGBA``/``LA``/``PA``/``P`` with transparency -> an
  alpha plane;
- keeps 16-bit PNG and TIFF at 16 bits, including RGB, RGBA and gray+alpha, which Pillow itself reduces
  to 8 bits: the file is decoded twice by Pillow's own decoder (high bytes, then low bytes) and combined,
  so filters, interlacing and CRC checks stay Pillow's;
- refuses, with one :class:`~srlab.errors.ImageError` line ``PATH: reason; fix``, missing and zero-byte
  files, files that are not images, truncated or corrupt data (the whole image is decoded, and Pillow's
  ``LOAD_TRUNCATED_IMAGES`` is forced off while it is), decompression bombs and absurd dimensions
  (``max_pixels``, default 200 Mpx), and modes it cannot represent (32-bit float, LAB, ...).

:func:`write_image` picks the format from the extension (png, jpg/jpeg, webp, bmp, tif/tiff), writes 16
bits only where the format has them (PNG, TIFF; others get 8 bits and a warning), never replaces an
existing file unless ``overwrite=True``, and writes atomically (a temporary file in the same folder,
then a link/rename), so a crash never leaves a half-written image behind.

:func:`to_tensor` / :func:`from_tensor` convert between those arrays and float tensors (C, H, W) in
[0, 1]; :func:`from_tensor` clips and rounds to the integer grid (half up).

torch is imported only by the tensor helpers.
"""

from __future__ import annotations

import io
import os
import struct
import sys
import tempfile
import threading
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from srlab.errors import ImageError

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "WRITE_FORMATS",
    "Image",
    "from_pil",
    "from_tensor",
    "read_image",
    "to_pil",
    "to_tensor",
    "write_image",
]

DEFAULT_MAX_PIXELS = 200_000_000
"""Refuse images with more pixels than this (decompression bombs, absurd headers)."""

WRITE_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}
_SIXTEEN_BIT_FORMATS = {"PNG", "TIFF"}
_ALPHA_FORMATS = {"PNG", "WEBP", "TIFF", "BMP"}

_PIL_LOCK = threading.Lock()  # guards Pillow's process-wide settings while we decode


def _file_mode() -> int:
    """Permissions a plainly created file gets (0o666 minus the umask); mkstemp would give 0o600."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@dataclass
class Image:
    """A decoded image: ``pixels`` (H, W, C), C in {1, 3}, uint8 or uint16; ``alpha`` (H, W) or None."""

    pixels: np.ndarray
    alpha: np.ndarray | None = None
    bit_depth: int = 8
    mode: str = ""  # the source's Pillow mode (before conversion), for messages
    path: Path | None = None
    icc_profile: bytes | None = None
    format: str | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def channels(self) -> int:
        return int(self.pixels.shape[2])

    @property
    def is_gray(self) -> bool:
        return self.channels == 1


# --------------------------------------------------------------------------------------------- reading


def _fail(path, reason: str, fix: str) -> ImageError:
    return ImageError(f"{path}: {reason}; {fix}")


def read_image(path, *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Image:
    """Decode an image file fully (see the module docstring). Raises :class:`ImageError` on bad files."""
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise _fail(p, "no such file", "check the path") from None
    except OSError as exc:
        raise _fail(
            p, f"cannot access ({exc.strerror or exc})", "check the path and its permissions"
        ) from None
    if p.is_dir():
        raise _fail(p, "is a folder, not an image", "pass the files inside it")
    if st.st_size == 0:
        raise _fail(p, "empty file (0 bytes)", "re-export or re-download it")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise _fail(p, f"cannot read ({exc.strerror or exc})", "check its permissions") from None
    return _decode_bytes(data, p, max_pixels)


def _open(data: bytes, label, max_pixels: int | None):
    """Open (header only) with our bomb limit; returns a lazy PIL image."""
    from PIL import Image as PILImage
    from PIL import UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
            im = PILImage.open(io.BytesIO(data))
    except PILImage.DecompressionBombError as exc:
        raise _fail(
            label, f"decompression bomb refused ({exc})", "pass a larger max_pixels if you trust it"
        ) from None
    except UnidentifiedImageError:
        head = data[:16]
        kind = "text" if _looks_like_text(data[:512]) else f"starts with {head[:8]!r}"
        raise _fail(label, f"not an image ({kind})", "pass PNG, JPEG, WebP, BMP or TIFF files") from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:
        raise _fail(label, f"corrupt image header ({_short(exc)})", "re-export or re-download it") from None
    w, h = im.size
    if w <= 0 or h <= 0:
        raise _fail(label, f"invalid dimensions {w}x{h}", "re-export it")
    if max_pixels is not None and w * h > max_pixels:
        raise _fail(
            label,
            f"absurd dimensions {w}x{h} ({w * h / 1e6:.0f} Mpx > limit {max_pixels / 1e6:.0f} Mpx; "
            "decompression bomb?)",
            "raise max_pixels if the file is genuine",
        )
    return im


def _looks_like_text(b: bytes) -> bool:
    if not b:
        return False
    try:
        b.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(c >= 9 for c in b)


def _short(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()
    return (msg[0] if msg else type(exc).__name__)[:120]


def _load(im, label) -> None:
    """Force a full decode; truncated or corrupt data raises ImageError."""
    try:
        im.load()
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error, IndexError) as exc:
        text = _short(exc)
        reason = "truncated file" if "truncat" in text.lower() else "corrupt image data"
        raise _fail(label, f"{reason} ({text})", "re-export or re-download it") from None


class _PillowSettings:
    """Force strict decoding (no truncated images) and our own bomb limit while decoding."""

    def __enter__(self):
        from PIL import Image as PILImage
        from PIL import ImageFile

        _PIL_LOCK.acquire()
        self._saved = (ImageFile.LOAD_TRUNCATED_IMAGES, PILImage.MAX_IMAGE_PIXELS)
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        PILImage.MAX_IMAGE_PIXELS = (
            None  # our own check in _open (Pillow's fixed ~179 Mpx is not configurable)
        )
        return self

    def __exit__(self, *exc):
        from PIL import Image as PILImage
        from PIL import ImageFile

        ImageFile.LOAD_TRUNCATED_IMAGES, PILImage.MAX_IMAGE_PIXELS = self._saved
        _PIL_LOCK.release()
        return False


def _decode_bytes(data: bytes, label, max_pixels: int | None) -> Image:
    with _PillowSettings():
        im = _open(data, label, max_pixels)
        fmt = im.format
        mode = im.mode
        info = dict(im.info)
        icc = info.get("icc_profile") or None
        if fmt == "PNG":
            _verify_png(data, label, max_pixels)
        wide = _sixteen_bit_rawmode(im)  # before getexif(), which loads PNGs
        orientation = _orientation(im)
        if wide is not None:
            pixels, alpha = _decode_wide(data, label, max_pixels, wide)
            bit_depth = 16
        else:
            _load(im, label)
            pixels, alpha, bit_depth, icc = _pil_to_arrays(im, label, icc)
    pixels, alpha = _apply_orientation(pixels, alpha, orientation)
    path = label if isinstance(label, Path) else None
    info.pop("icc_profile", None)
    info.pop("exif", None)
    return Image(
        pixels=pixels,
        alpha=alpha,
        bit_depth=bit_depth,
        mode=mode,
        path=path,
        icc_profile=icc,
        format=fmt,
        info=info,
    )


def _verify_png(data: bytes, label, max_pixels) -> None:
    """Check every chunk's CRC (Pillow's decoder reads image data without checking it)."""
    im = _open(data, label, max_pixels)
    try:
        im.verify()
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:
        text = _short(exc)
        reason = "truncated file" if "truncat" in text.lower() else "corrupt image data"
        raise _fail(label, f"{reason} ({text})", "re-export or re-download it") from None


def from_pil(im, *, label: str = "<PIL image>") -> Image:
    """The :class:`Image` of an in-memory PIL image (same mode mapping as :func:`read_image`).

    EXIF orientation is *not* applied (a PIL image in memory is taken as shown); use
    ``PIL.ImageOps.exif_transpose`` first if you want it.
    """
    with _PillowSettings():
        _load(im, label)
        icc = im.info.get("icc_profile") or None
        pixels, alpha, bit_depth, icc = _pil_to_arrays(im, label, icc)
    return Image(
        pixels=pixels, alpha=alpha, bit_depth=bit_depth, mode=im.mode, icc_profile=icc, format=im.format
    )


def _orientation(im) -> int:
    try:
        value = int(im.getexif().get(0x0112, 1))
    except Exception:  # noqa: BLE001 - a broken EXIF block must not make a good image unreadable
        return 1
    return value if 1 <= value <= 8 else 1


def _orient(a: np.ndarray, o: int) -> np.ndarray:
    if o == 2:
        a = a[:, ::-1]
    elif o == 3:
        a = a[::-1, ::-1]
    elif o == 4:
        a = a[::-1]
    elif o == 5:
        a = a.swapaxes(0, 1)
    elif o == 6:
        a = np.rot90(a, k=-1)
    elif o == 7:
        a = a[::-1, ::-1].swapaxes(0, 1)
    elif o == 8:
        a = np.rot90(a, k=1)
    return np.ascontiguousarray(a)


def _apply_orientation(pixels, alpha, o: int):
    if o == 1:
        return pixels, alpha
    return _orient(pixels, o), (None if alpha is None else _orient(alpha, o))


def _pil_to_arrays(im, label, icc):
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


# Pillow decodes 16-bit colour (RGB, RGBA, gray+alpha) to 8 bits. Decode the same data with a raw mode
# that keeps the low bytes instead and combine: (rawmode for high bytes, rawmode for low bytes, channels).
_WIDE = {
    "RGB;16B": ("RGB;16B", "RGB;16L", 3),
    "RGB;16L": ("RGB;16L", "RGB;16B", 3),
    "RGBA;16B": ("RGBA;16B", "RGBA;16L", 4),
    "RGBA;16L": ("RGBA;16L", "RGBA;16B", 4),
    "LA;16B": (None, "RGBA", 2),  # 4 bytes/pixel read as 8-bit RGBA: (L hi, L lo, A hi, A lo)
}
# libtiff (compressed TIFF) hands over native-endian samples
_NATIVE_LO = "16B" if sys.byteorder == "little" else "16L"
_WIDE["RGB;16N"] = ("RGB;16N", f"RGB;{_NATIVE_LO}", 3)
_WIDE["RGBA;16N"] = ("RGBA;16N", f"RGBA;{_NATIVE_LO}", 4)


def _sixteen_bit_rawmode(im) -> str | None:
    if im.format not in ("PNG", "TIFF") or len(im.tile) != 1:
        return None
    args = im.tile[0].args
    rawmode = args if isinstance(args, str) else (args[0] if isinstance(args, tuple) and args else None)
    return rawmode if rawmode in _WIDE else None


def _decode_with_rawmode(data, label, max_pixels, rawmode, mode):
    from PIL import ImageFile

    im = _open(data, label, max_pixels)
    t = im.tile[0]
    args = t.args
    new_args = rawmode if isinstance(args, str) else (rawmode, *args[1:])
    im.tile = [ImageFile._Tile(t.codec_name, t.extents, t.offset, new_args)]
    if mode is not None and im.mode != mode:
        im._mode = mode
    _load(im, label)
    return np.asarray(im)


def _decode_wide(data, label, max_pixels, rawmode):
    hi_mode, lo_mode, channels = _WIDE[rawmode]
    if hi_mode is None:  # gray + alpha, 16 bits
        b = _decode_with_rawmode(data, label, max_pixels, lo_mode, "RGBA").astype(np.uint16)
        gray = (b[..., 0] << 8) | b[..., 1]
        alpha = (b[..., 2] << 8) | b[..., 3]
        return gray[..., None].copy(), alpha
    hi = _decode_with_rawmode(data, label, max_pixels, hi_mode, None).astype(np.uint16)
    lo = _decode_with_rawmode(data, label, max_pixels, lo_mode, None).astype(np.uint16)
    full = (hi << 8) | lo
    if channels == 4:
        return full[..., :3].copy(), full[..., 3].copy()
    return full[..., :3].copy(), None


# --------------------------------------------------------------------------------------------- writing


def _as_hwc(pixels: np.ndarray) -> np.ndarray:
    a = np.asarray(pixels)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[2] not in (1, 3):
        raise ValueError(f"pixels must be (H, W), (H, W, 1) or (H, W, 3); got shape {a.shape}")
    return a


def _to_depth(a: np.ndarray, bit_depth: int) -> np.ndarray:
    if a.dtype == np.uint8:
        return a if bit_depth == 8 else a.astype(np.uint16) * 257
    if a.dtype == np.uint16:
        if bit_depth == 16:
            return a
        return ((a.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    raise TypeError(f"pixels must be uint8 or uint16 (got {a.dtype}); use from_tensor() to convert floats")


def write_image(
    path,
    pixels: np.ndarray,
    *,
    alpha: np.ndarray | None = None,
    bit_depth: int | None = None,
    overwrite: bool = False,
    icc_profile: bytes | None = None,
    quality: int = 95,
) -> Path:
    """Write ``pixels`` (H, W[, C]) uint8/uint16 (+ optional ``alpha`` (H, W)) to ``path``.

    The format comes from the extension. ``bit_depth`` defaults to the dtype's; 16 bits are written for
    PNG and TIFF only (other formats: 8 bits and a :class:`UserWarning`). JPEG has no alpha: the image
    is flattened onto white (with a warning). Refuses to replace an existing file unless ``overwrite``.
    Returns the path written.
    """
    p = Path(path)
    fmt = WRITE_FORMATS.get(p.suffix.lower())
    if fmt is None:
        raise _fail(
            p,
            f"unknown output format {p.suffix or '(no extension)'!r}",
            "use .png, .jpg, .webp, .bmp or .tif",
        )
    a = _as_hwc(pixels)
    depth = bit_depth or (16 if a.dtype == np.uint16 else 8)
    if depth not in (8, 16):
        raise ValueError(f"bit_depth must be 8 or 16, not {depth}")
    if depth == 16 and fmt not in _SIXTEEN_BIT_FORMATS:
        warnings.warn(
            f"{p}: {fmt} has no 16-bit mode; writing 8 bits (use .png or .tif to keep 16)", stacklevel=2
        )
        depth = 8
    a = _to_depth(a, depth)
    al = None
    if alpha is not None:
        al = np.asarray(alpha)
        if al.ndim == 3 and al.shape[2] == 1:
            al = al[..., 0]
        if al.shape != a.shape[:2]:
            raise ValueError(f"alpha shape {al.shape} does not match pixels {a.shape[:2]}")
        al = _to_depth(al, depth)
        if fmt not in _ALPHA_FORMATS:
            warnings.warn(f"{p}: {fmt} has no alpha channel; flattening onto white", stacklevel=2)
            a = _flatten(a, al, depth)
            al = None
    if p.exists() and not overwrite:
        raise _fail(
            p, "already exists", "pass --force (overwrite=True) to replace it, or choose another name"
        )
    p.parent.mkdir(parents=True, exist_ok=True)
    payload = _encode(a, al, depth, fmt, icc_profile, quality, p)
    _atomic_write(p, payload, overwrite)
    return p


def _flatten(a: np.ndarray, al: np.ndarray, depth: int) -> np.ndarray:
    m = 65535.0 if depth == 16 else 255.0
    w = al.astype(np.float64)[..., None] / m
    out = a.astype(np.float64) * w + m * (1.0 - w)
    return np.floor(out + 0.5).astype(a.dtype)


def _encode(a, al, depth, fmt, icc, quality, label) -> bytes:
    from PIL import Image as PILImage

    c = a.shape[2]
    if depth == 16 and (c == 3 or al is not None):
        if fmt == "PNG":
            return _png16(a, al, icc)
        if c == 1:  # Pillow cannot read 16-bit gray+alpha TIFF: store it as RGBA
            a = np.repeat(a, 3, axis=2)
        return _tiff16(a, al)
    buf = io.BytesIO()
    if depth == 16:  # gray 16-bit, PNG or TIFF
        im = PILImage.fromarray(np.ascontiguousarray(a[..., 0]).astype(np.uint16))
    else:
        planes = a if al is None else np.concatenate([a, al[..., None]], axis=2)
        im = PILImage.fromarray(np.ascontiguousarray(planes if planes.shape[2] > 1 else planes[..., 0]))
        if fmt == "BMP" and im.mode == "LA":
            im = im.convert("RGBA")
    kw: dict[str, Any] = {}
    if icc and fmt in ("PNG", "JPEG", "WEBP", "TIFF"):
        kw["icc_profile"] = icc
    if fmt == "JPEG":
        kw.update(quality=quality, subsampling=0 if quality >= 90 else 2)
    elif fmt == "WEBP":
        kw.update(quality=quality)
    elif fmt == "TIFF":
        kw.update(compression="tiff_deflate")
    try:
        im.save(buf, format=fmt, **kw)
    except (OSError, ValueError, KeyError) as exc:
        raise _fail(
            label, f"cannot encode as {fmt} ({_short(exc)})", "choose another output format"
        ) from None
    return buf.getvalue()


def _png_chunk(tag: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)


def _png16(a: np.ndarray, al: np.ndarray | None, icc: bytes | None) -> bytes:
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


def _tiff16(a: np.ndarray, al: np.ndarray | None, *, compress: bool = True) -> bytes:
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


def _atomic_write(p: Path, payload: bytes, overwrite: bool) -> None:
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".part")
    try:
        os.chmod(tmp, _file_mode())
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        if overwrite:
            os.replace(tmp, p)
        else:
            try:
                os.link(tmp, p)  # atomic and fails if p appeared meanwhile
            except FileExistsError:
                raise _fail(p, "already exists", "pass --force (overwrite=True) to replace it") from None
            except OSError:  # no hard links on this file system
                if p.exists():
                    raise _fail(p, "already exists", "pass --force (overwrite=True) to replace it") from None
                os.replace(tmp, p)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def to_pil(pixels: np.ndarray, alpha: np.ndarray | None = None):
    """A PIL image of (pixels, alpha): L/LA/RGB/RGBA for uint8, ``I;16`` for 16-bit gray.

    Pillow has no 16-bit colour mode, so 16-bit colour is reduced to 8 bits (with a warning).
    """
    from PIL import Image as PILImage

    a = _as_hwc(pixels)
    if a.dtype == np.uint16 and a.shape[2] == 1 and alpha is None:
        return PILImage.fromarray(np.ascontiguousarray(a[..., 0]).astype(np.uint16))
    if a.dtype == np.uint16:
        warnings.warn("Pillow has no 16-bit colour mode; returning 8 bits per channel", stacklevel=2)
    a = _to_depth(a, 8)
    if alpha is not None:
        a = np.concatenate([a, _to_depth(np.asarray(alpha), 8)[..., None]], axis=2)
    return PILImage.fromarray(np.ascontiguousarray(a if a.shape[2] > 1 else a[..., 0]))


# --------------------------------------------------------------------------------------------- tensors


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
    # quantise on the tensor's device (a GPU result then crosses the bus as integers, not floats)
    x = torch.floor(x.float().clamp(0.0, 1.0) * m + 0.5)
    x = x.to(torch.uint8 if bit_depth == 8 else torch.int32).permute(1, 2, 0).cpu()
    dtype = np.uint8 if bit_depth == 8 else np.uint16
    return np.ascontiguousarray(x.numpy().astype(dtype, copy=False))
