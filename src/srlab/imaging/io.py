"""Robust image decoding and encoding.

:func:`read_image` turns any common image file into an :class:`Image`: ``pixels`` (H, W, C) with C = 1
(grayscale) or 3 (colour), dtype uint8 or uint16, plus ``alpha`` (H, W) or None. It

- applies the EXIF orientation (so pixels are the way a viewer shows them) and keeps the ICC profile;
- maps every Pillow mode to that shape: ``1``/``L``/``I;16*``/``I`` -> gray, ``RGB``/``YCbCr``/``CMYK``
  -> RGB (CMYK naively, without colour management), ``RGBA``/``LA``/``PA``/``P`` with transparency -> an
  alpha plane;
- keeps 16-bit PNG and TIFF at 16 bits, including RGB, RGBA and gray+alpha, which Pillow itself reduces
  to 8 bits (see :mod:`srlab.imaging.codecs16`);
- refuses, with one :class:`~srlab.errors.ImageError` line ``PATH: reason; fix``, missing and zero-byte
  files, files that are not images, truncated or corrupt data (the whole image is decoded, and Pillow's
  ``LOAD_TRUNCATED_IMAGES`` is forced off while it is), decompression bombs and absurd dimensions
  (``max_pixels``, default 200 Mpx), and modes it cannot represent (32-bit float, LAB, ...).

:func:`write_image` picks the format from the extension (png, jpg/jpeg, webp, bmp, tif/tiff), writes 16
bits only where the format has them (PNG, TIFF; others get 8 bits and a warning), never replaces an
existing file unless ``overwrite=True``, and writes atomically (a temporary file in the same folder,
then a link/rename), so a crash never leaves a half-written image behind.

:func:`from_pil` maps an in-memory PIL image the same way. The tensor and PIL conversions
(:func:`to_tensor`, :func:`from_tensor`, :func:`to_pil`) live in :mod:`srlab.imaging.arrays` and are part
of this module's API too.
"""

from __future__ import annotations

import contextlib
import errno
import io
import struct
import threading
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from srlab.atomic import write_stream
from srlab.errors import ImageError
from srlab.imaging import codecs16
from srlab.imaging.arrays import as_hwc, from_tensor, to_depth, to_pil, to_tensor
from srlab.imaging.capture import c_stderr
from srlab.imaging.modes import pil_to_arrays

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
_ANIMATED = {"GIF", "PNG", "WEBP"}
_ALPHA_FORMATS = {"PNG", "WEBP", "TIFF", "BMP"}

_PIL_LOCK = threading.Lock()  # guards Pillow's process-wide settings while we decode


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
    """Force a full decode; truncated or corrupt data raises ImageError (with what libtiff printed, if any)."""
    said: list[str] = []
    try:
        with c_stderr(said) if im.format == "TIFF" else contextlib.nullcontext():
            im.load()
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error, IndexError) as exc:
        text = _short(exc) + (f": {said[-1][:120].rstrip('.')}" if said else "")
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
        PILImage.MAX_IMAGE_PIXELS = None  # _open checks max_pixels instead: ours is per call, Pillow's global
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
        frames = _frame_count(data, label, max_pixels) if fmt in _ANIMATED else 1
        if fmt == "PNG":
            _verify_png(data, label, max_pixels)
        wide = codecs16.sixteen_bit_rawmode(im)  # before getexif(), which loads PNGs
        orientation = _orientation(im)
        if wide is not None:
            pixels, alpha = codecs16.decode_wide(
                wide, lambda: _open(data, label, max_pixels), lambda wide_im: _load(wide_im, label)
            )
            bit_depth = 16
        else:
            _load(im, label)
            pixels, alpha, bit_depth, icc = pil_to_arrays(im, label, icc)
    pixels, alpha = _apply_orientation(pixels, alpha, orientation)
    path = label if isinstance(label, Path) else None
    info.pop("icc_profile", None)
    info.pop("exif", None)
    if frames > 1:  # srlab upscale sends these to srlab.inference.animated; other callers get the first frame
        info["n_frames"] = frames
        warnings.warn(f"{label}: animated ({frames} frames); only the first frame is read", stacklevel=3)
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


def _frame_count(data: bytes, label, max_pixels) -> int:
    # a second handle: counting GIF frames seeks, and the still decode must not see that
    try:
        return int(getattr(_open(data, label, max_pixels), "n_frames", 1))
    except Exception:  # noqa: BLE001 - a broken later frame: the first one's decode says what is wrong
        return 1


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
        pixels, alpha, bit_depth, icc = pil_to_arrays(im, label, icc)
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


# --------------------------------------------------------------------------------------------- writing


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
    a = as_hwc(pixels)
    depth = bit_depth or (16 if a.dtype == np.uint16 else 8)
    if depth not in (8, 16):
        raise ValueError(f"bit_depth must be 8 or 16, not {depth}")
    if depth == 16 and fmt not in _SIXTEEN_BIT_FORMATS:
        warnings.warn(
            f"{p}: {fmt} has no 16-bit mode; writing 8 bits (use .png or .tif to keep 16)", stacklevel=2
        )
        depth = 8
    a = to_depth(a, depth)
    al = None
    if alpha is not None:
        al = np.asarray(alpha)
        if al.ndim == 3 and al.shape[2] == 1:
            al = al[..., 0]
        if al.shape != a.shape[:2]:
            raise ValueError(f"alpha shape {al.shape} does not match pixels {a.shape[:2]}")
        al = to_depth(al, depth)
        if fmt not in _ALPHA_FORMATS:
            warnings.warn(f"{p}: {fmt} has no alpha channel; flattening onto white", stacklevel=2)
            a = _flatten(a, al, depth)
            al = None
    if p.is_dir():
        raise _fail(p, "is a folder", "name an image file inside it, or choose another output name")
    if p.exists() and not overwrite:
        raise _fail(
            p, "already exists", "pass --force (overwrite=True) to replace it, or choose another name"
        )
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _fail(p, f"cannot create its folder {p.parent} ({_os_reason(exc)})", _write_fix(exc)) from None
    write = _encode(a, al, depth, fmt, icc_profile, quality, p)
    try:
        _atomic_write(p, write, overwrite)
    except OSError as exc:
        raise _fail(p, f"cannot write ({_os_reason(exc)})", _write_fix(exc)) from None
    return p


def _os_reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def _write_fix(exc: OSError) -> str:
    """What to do about a failed write, by its errno."""
    return {
        errno.ENOSPC: "free disk space or write to another disk",
        errno.EDQUOT: "free space in your quota or write to another disk",
        errno.EACCES: "check the folder's permissions or choose another output folder",
        errno.EPERM: "check the folder's permissions or choose another output folder",
        errno.EROFS: "the disk is read-only; choose another output folder",
        errno.EISDIR: "it is a folder; name an image file, or pass the folder as -o to write into it",
        errno.ENOTDIR: "a part of the path is a file, not a folder; choose another output path",
        errno.EEXIST: "a part of the path is a file, not a folder; choose another output path",
    }.get(exc.errno, "check the output path")


def _flatten(a: np.ndarray, al: np.ndarray, depth: int) -> np.ndarray:
    m = 65535.0 if depth == 16 else 255.0
    w = al.astype(np.float64)[..., None] / m
    out = a.astype(np.float64) * w + m * (1.0 - w)
    return np.floor(out + 0.5).astype(a.dtype)


def _encode(a, al, depth, fmt, icc, quality, label) -> Callable[[BinaryIO], None]:
    """A function writing the encoded image into a binary file: Pillow encodes straight into it, so a big
    image's encoded bytes are never held in memory as well."""
    from PIL import Image as PILImage

    if depth == 16 and (a.shape[2] == 3 or al is not None):  # Pillow has no 16-bit colour or alpha mode
        payload = codecs16.encode16(a, al, fmt, icc)
        return lambda f: f.write(payload)
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

    def save(f: BinaryIO) -> None:
        try:
            im.save(_PythonWrites(f), format=fmt, **kw)
        except OSError as exc:
            if exc.errno is not None:
                raise  # the disk, not the encoder (write_image says which)
            raise _fail(
                label, f"cannot encode as {fmt} ({_short(exc)})", "choose another output format"
            ) from None
        except (ValueError, KeyError) as exc:
            raise _fail(
                label, f"cannot encode as {fmt} ({_short(exc)})", "choose another output format"
            ) from None

    return save


class _PythonWrites:
    """A file without ``fileno``: Pillow then writes through Python, so a full disk raises OSError(ENOSPC)
    rather than an encoder error code that does not say why."""

    def __init__(self, f: BinaryIO) -> None:
        self._f = f

    def fileno(self) -> int:
        raise io.UnsupportedOperation("fileno")

    def __getattr__(self, name: str):
        return getattr(self._f, name)


def _atomic_write(p: Path, write: Callable[[BinaryIO], None], overwrite: bool) -> None:
    try:
        write_stream(p, write, overwrite=overwrite, suffix=".part")  # refuses a p that appeared meanwhile
    except FileExistsError:
        raise _fail(p, "already exists", "pass --force (overwrite=True) to replace it") from None
