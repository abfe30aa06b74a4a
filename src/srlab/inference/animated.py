"""Animated GIF, APNG and WebP through an :class:`~srlab.inference.Upscaler`: every frame, with Pillow.

:func:`upscale_animation` decodes each frame as the viewer shows it (Pillow composites GIF disposal and
APNG blending onto the full canvas), upscales it with :meth:`Upscaler.upscale_image` (transparency as for
still images: MATLAB bicubic by default), and writes all frames with their own durations, the loop count
and the transparency:

- GIF keeps 1-bit transparency (upscaled alpha below 128 becomes the transparent palette index; each frame
  gets its own 255-colour palette) and clears each frame before the next (disposal 2) when any pixel is
  transparent, so no earlier frame shows through;
- APNG frames replace the canvas whole (blend "source"), WebP frames are written at ``quality`` (alpha
  lossless);
- the output format comes from the extension (.gif, .png, .webp); a format without animation (JPEG, BMP,
  TIFF) is refused with one line. Loop counts are kept as the number of plays (GIF counts repeats: converted).

:func:`is_animated` is the cheap test ``srlab upscale`` dispatches on (header only; a still image goes the
still-image way, unchanged). Pillow's writers need every frame at once, so the output frames are held in
memory: an animation whose upscaled frames would not fit is refused before any work.
"""

from __future__ import annotations

import io
import os
import struct
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

from srlab.errors import ImageError
from srlab.imaging import io as imio
from srlab.inference.limits import available_memory
from srlab.inference.progress import frame_bar
from srlab.inference.video import output_size, staged_output

__all__ = ["ANIMATION_EXTENSIONS", "AnimationResult", "frame_count", "is_animated", "upscale_animation"]

ANIMATION_EXTENSIONS = (".gif", ".png", ".apng", ".webp")
_WRITE = {".gif": "GIF", ".png": "PNG", ".apng": "PNG", ".webp": "WEBP"}
_READ = ("GIF", "PNG", "WEBP")
_DECODE_ERRORS = (OSError, EOFError, ValueError, SyntaxError, struct.error, zlib.error, IndexError)


@dataclass
class AnimationResult:
    """What :func:`upscale_animation` wrote."""

    path: Path
    width: int
    height: int
    frames: int
    durations: list[int] = field(default_factory=list)  # milliseconds, per frame
    plays: int = 0  # how many times it plays; 0: forever
    transparent: bool = False
    bit_depth: int = 8

    def summary(self) -> str:
        plays = "loops forever" if self.plays == 0 else f"plays {self.plays}x"
        return f"{self.width}x{self.height}, {self.frames} frames, {sum(self.durations)} ms, {plays}"


def _open(data: bytes):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
        return PILImage.open(io.BytesIO(data))


def frame_count(path: str | os.PathLike) -> int:
    """Frames of the GIF/PNG/WebP ``path``: 1 for stills, other formats and unreadable files (the
    still-image reader then says what is wrong), at least 2 when a second frame starts but a later one is
    broken (so the animation path names the bad frame instead of a still path taking frame one)."""
    p = Path(path)
    if p.suffix.lower() not in ANIMATION_EXTENSIONS:
        return 1
    for attempt in ("count", "second frame"):
        try:
            with open(p, "rb") as f, _open_lazy(f) as im:
                if im.format not in _READ:
                    return 1
                if attempt == "count":
                    return int(getattr(im, "n_frames", 1))
                im.seek(1)
                return 2
        except Exception:  # noqa: BLE001 - hostile or broken input: try the next, cheaper question
            continue
    return 1


def _open_lazy(f):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
        return PILImage.open(f)


def is_animated(path: str | os.PathLike) -> bool:
    """Whether ``path`` is an animated GIF, APNG or WebP (more than one frame)."""
    return frame_count(path) > 1


def _read(src: Path, max_pixels: int | None):
    try:
        data = src.read_bytes()
    except OSError as exc:
        raise ImageError(
            f"{src}: cannot read ({exc.strerror or exc}); check the path and its permissions"
        ) from None
    try:
        im = _open(data)
        n = int(getattr(im, "n_frames", 1))
    except Exception as exc:  # noqa: BLE001 - Pillow raises many kinds on hostile headers
        raise ImageError(
            f"{src}: corrupt animation ({type(exc).__name__}); re-export or re-download it"
        ) from None
    if im.format not in _READ:
        raise ImageError(f"{src}: {im.format} is not an animation format; pass GIF, APNG or WebP")
    w, h = im.size
    if max_pixels is not None and w * h > max_pixels:
        raise ImageError(
            f"{src}: {w}x{h} frames exceed the {max_pixels / 1e6:.0f} Mpx limit; raise --max-pixels"
        )
    return im, n


def _frames(im, n: int, src: Path):
    """(RGB (H, W, 3) uint8, alpha (H, W) or None, duration ms) of each frame, as shown."""
    for i in range(n):
        try:
            im.seek(i)
            rgba = np.asarray(im.convert("RGBA"))
        except _DECODE_ERRORS as exc:
            text = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
            raise ImageError(
                f"{src}: frame {i + 1} of {n} is corrupt ({text}); re-export or re-download it"
            ) from None
        alpha = rgba[..., 3]
        yield rgba[..., :3].copy(), (None if alpha.min() == 255 else alpha.copy()), im.info.get("duration", 0)


def _to_gif_frame(pixels: np.ndarray, alpha: np.ndarray | None):
    """A palette frame: 256 colours, or 255 plus a transparent index 255 for alpha < 128."""

    rgb = PILImage.fromarray(pixels)
    if alpha is None:
        return rgb.quantize(colors=256)
    q = rgb.quantize(colors=255)
    idx = np.asarray(q).copy()
    idx[alpha < 128] = 255
    out = PILImage.fromarray(idx, mode="P")
    palette = q.getpalette()[: 255 * 3]
    out.putpalette(palette + [0] * (768 - len(palette)))
    out.info["transparency"] = 255
    return out


def _plays(fmt: str, loop) -> int:
    """How many times an animation plays (0: forever). GIF's loop field counts repeats after the first
    play and is absent for "once"; APNG's and WebP's count plays."""
    if loop is None:
        return 1
    loop = int(loop)
    return loop + 1 if fmt == "GIF" and loop > 0 else loop


def _save(frames: list, durations: list[int], plays: int, fmt: str, tmp: Path, quality: int, gif_alpha: bool):
    first, rest = frames[0], frames[1:]
    kw: dict = {"save_all": True, "append_images": rest, "duration": durations}
    if fmt == "GIF":
        kw.update(optimize=False, disposal=2 if gif_alpha else 1)
        if gif_alpha:
            kw["transparency"] = 255
        if plays != 1:
            kw["loop"] = 0 if plays == 0 else plays - 1
    elif fmt == "PNG":
        kw.update(loop=plays, disposal=0, blend=0)  # blend 0: each frame replaces the canvas whole
    else:
        kw.update(loop=plays, quality=quality, alpha_quality=100, method=4)
    first.save(tmp, format=fmt, **kw)


def upscale_animation(
    up,
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    outscale: float | None = None,
    overwrite: bool = False,
    max_pixels: int | None = None,
    quality: int = 95,
    progress: bool = True,
) -> AnimationResult:
    """Upscale every frame of the animated GIF/APNG/WebP ``src`` into ``dst`` (format from its extension)."""

    src, dst = Path(src), Path(dst)
    fmt = _WRITE.get(dst.suffix.lower())
    if fmt is None:
        raise ImageError(
            f"{src}: is animated, and {dst.suffix or 'no extension'} cannot hold an animation; "
            "write .gif, .png (APNG) or .webp"
        )
    if dst.exists() and src.exists() and os.path.samefile(src, dst):
        raise ImageError(f"{dst}: is the input file; choose another output name")
    if dst.exists() and not overwrite:
        raise ImageError(f"{dst}: already exists; pass --force (overwrite=True) to replace it")
    im, n = _read(src, max_pixels)
    oh, ow = output_size(up, im.size[1], im.size[0], outscale)
    need = n * oh * ow * 4 * 2  # our RGBA frames, and the writer's converted copies
    limit = available_memory()
    if limit is not None and need > limit:
        raise ImageError(
            f"{src}: {n} frames of {ow}x{oh} need about {need / 1e9:.1f} GB of memory, more than the "
            f"{limit / 1e9:.1f} GB available; use a smaller --outscale or fewer frames"
        )
    plays = _plays(im.format, im.info.get("loop"))
    frames, durations, any_alpha = [], [], False
    was_progress, up.progress = up.progress, False  # one bar in frames, not one tile bar per frame
    try:
        bar = frame_bar(n, src.name, enabled=progress)  # periodic lines when not on a terminal
        for pixels, alpha, duration in _frames(im, n, src):
            out = up.upscale_image(imio.Image(pixels=pixels, alpha=alpha), outscale=outscale)
            any_alpha |= out.alpha is not None
            frames.append((out.pixels, out.alpha))
            durations.append(int(round(float(duration or 0))))
            bar.update(1)
        bar.close()
    finally:
        up.progress = was_progress
    if fmt == "GIF":
        images = [_to_gif_frame(p, a) for p, a in frames]
    else:
        images = [
            PILImage.fromarray(
                p
                if not any_alpha
                else np.dstack([p, np.full(p.shape[:2], 255, np.uint8) if a is None else a])
            )
            for p, a in frames
        ]
    del frames
    with staged_output(dst, overwrite=overwrite) as tmp:
        try:
            _save(images, durations, plays, fmt, tmp, quality, any_alpha)
        except (ValueError, KeyError) as exc:
            raise ImageError(f"{dst}: cannot encode as {fmt} ({exc}); choose another output format") from None
    return AnimationResult(
        path=dst, width=ow, height=oh, frames=n, durations=durations, plays=plays, transparent=any_alpha
    )
