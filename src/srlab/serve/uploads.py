"""Uploads: a multipart body read with a byte limit, and its files identified by their content.

The body is counted as it arrives (``Content-Length`` is checked first but not trusted), so an oversize
upload is refused with 413 without being held. Each file is then decoded by srlab's own reader
(:func:`srlab.imaging.io.read_image`, with the server's pixel limit: the same decompression-bomb guards as
``srlab upscale``) or, when it is not a still image, probed as a video with PyAV. It is stored under a name
the server makes from the detected format (``input.png``, ``truth.jpg``, ``input.mp4``): the client's file
name is never used as a path.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from starlette.formparsers import MultiPartException, MultiPartParser

from srlab.atomic import move, write_bytes
from srlab.errors import SrlabError
from srlab.imaging import io as imio
from srlab.serve.errors import ApiError

__all__ = ["Sniffed", "read_multipart", "sniff", "store_upload"]

_IMAGE_EXT = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "BMP": ".bmp", "TIFF": ".tif", "GIF": ".gif"}
_VIDEO_EXT = {"mp4": ".mp4", "mov": ".mov", "matroska": ".mkv", "webm": ".webm", "avi": ".avi"}
_MAX_FIELD_BYTES = 4096


@dataclass(frozen=True)
class Sniffed:
    kind: str  # "image", "animation" or "video"
    ext: str  # what the stored file is called by: ".png", ".mp4", ...
    width: int
    height: int
    alpha: bool = False
    frames: int = 1


async def read_multipart(request, max_bytes: int, *, max_files: int = 2) -> tuple[dict, dict]:
    """(fields, files) of a ``multipart/form-data`` request: text fields as ``str``, files as ``(bytes, the
    client's file name)`` (the name is for display only).
    ApiError 413 past ``max_bytes`` of body, 415 for another content type, 400 for a malformed body."""
    ctype = request.headers.get("content-type", "")
    if not ctype.startswith("multipart/form-data"):
        raise ApiError(415, "send the upload as multipart/form-data (curl -F file=@photo.png -F model=NAME)")
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > max_bytes:
        raise ApiError(413, f"upload of {int(length):,} bytes is over this server's {max_bytes:,}-byte limit")

    async def limited() -> AsyncIterator[bytes]:
        seen = 0
        async for chunk in request.stream():
            seen += len(chunk)
            if seen > max_bytes:
                raise ApiError(413, f"upload is over this server's {max_bytes:,}-byte limit")
            yield chunk

    parser = MultiPartParser(
        request.headers, limited(), max_files=max_files, max_fields=16, max_part_size=_MAX_FIELD_BYTES
    )
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise ApiError(400, f"malformed upload ({exc.message})") from None
    fields: dict[str, str] = {}
    files: dict[str, tuple[bytes, str]] = {}
    try:
        for key, value in form.multi_items():
            if isinstance(value, str):
                fields[key] = value
            else:
                files[key] = (await value.read(), value.filename or "")
    finally:
        await form.close()
    return fields, files


def _too_large(message: str) -> bool:
    # the reader's one-line errors for images over the pixel limit (srlab.imaging.io._open)
    return "decompression bomb" in message or "Mpx" in message


def sniff(path: Path, max_pixels: int) -> Sniffed:
    """What the uploaded file at ``path`` is, decoded in full by srlab's reader (ApiError 400/413 when it is
    not a usable image or video)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "animated; only the first frame is read": handled below
            img = imio.read_image(path, max_pixels=max_pixels)
    except SrlabError as exc:
        msg = str(exc).replace(str(path), "upload")
        if _too_large(msg):
            raise ApiError(413, msg) from None
        if "not an image" not in msg:
            raise ApiError(400, msg) from None
        return _sniff_video(path, max_pixels, msg)
    ext = _IMAGE_EXT.get(img.format or "", ".png")
    frames = int(img.info.get("n_frames", 1))
    kind = "animation" if frames > 1 and ext in (".gif", ".png", ".webp") else "image"
    return Sniffed(kind, ext, img.width, img.height, img.alpha is not None, frames)


def _sniff_video(path: Path, max_pixels: int, image_msg: str) -> Sniffed:
    try:
        import av
    except ImportError:
        raise ApiError(400, image_msg) from None
    try:
        with av.open(str(path), metadata_errors="replace") as c:
            fmt = c.format.name.split(",")
            vs = c.streams.video[0] if c.streams.video else None
            w, h = (vs.codec_context.width, vs.codec_context.height) if vs is not None else (0, 0)
            frames = int(vs.frames or 0) if vs is not None else 0
    except (OSError, ValueError, EOFError, IndexError):
        raise ApiError(400, image_msg + " (nor a video)") from None
    ext = next((e for name, e in _VIDEO_EXT.items() if name in fmt), None)  # "mov,mp4,...": mp4 first
    if vs is None or ext is None or w <= 0 or h <= 0:
        raise ApiError(400, "upload: neither an image nor a video srlab reads (mp4, mov, mkv, webm, avi)")
    if w * h > max_pixels:
        raise ApiError(
            413, f"upload: {w}x{h} video frames exceed this server's {max_pixels / 1e6:g} Mpx limit"
        )
    return Sniffed("video", ext, w, h, False, frames)


def store_upload(data: bytes, folder: Path, stem: str, max_pixels: int) -> tuple[str, Sniffed]:
    """Write ``data`` into ``folder`` under ``stem`` + the extension its content calls for; returns that
    file name and what it is. Nothing is left behind when it is refused."""
    if not data:
        raise ApiError(400, f"{stem}: empty file (0 bytes)")
    probe = write_bytes(folder / f"{stem}.upload", data)
    try:
        info = sniff(probe, max_pixels)
    except BaseException:
        with contextlib.suppress(OSError):
            probe.unlink()
        raise
    name = f"{stem}{info.ext}"
    move(probe, folder / name)
    return name, info
