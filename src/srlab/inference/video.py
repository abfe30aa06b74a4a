"""Video files through an :class:`~srlab.inference.Upscaler`, with PyAV (the ``video`` extra: ``pip install
'srlab[video]'``; its wheels bundle FFmpeg).

:func:`upscale_video` streams: packets are demuxed in file order, each video frame is decoded, converted to
RGB, upscaled with :meth:`Upscaler.upscale_image` (the same model, tiling and precision as a still image),
converted back and encoded at once, so memory holds a few frames (plus the encoder's own look-ahead), not
the film. What the output keeps:

- every frame with its own timestamp, in the source's time base, so the frame rate (constant or
  variable) and the duration stay as they were; the colour matrix, range and tags, the pixel aspect
  ratio and the display rotation are carried over;
- the audio and subtitle streams, copied packet by packet (no re-encoding); a stream the output container
  cannot hold (SubRip in .mp4, AAC in .webm) is left out with a warning naming a container that can;
- ``codec`` (default libx264, libvpx-vp9 for .webm) at constant quality ``crf`` (default 18) in yuv420p;
  an odd output width or height is cropped by one pixel, since 4:2:0 needs even sizes.

The output is written under a temporary name beside the target and renamed at the end: Ctrl-C, an error
or a full disk leaves no partial file under the real name, and an existing output is replaced only with
``overwrite`` (as still images). Progress is a tqdm bar in frames on a terminal, periodic lines in a log.
"""

from __future__ import annotations

import contextlib
import math
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from srlab.atomic import staged
from srlab.errors import ConfigError, ImageError
from srlab.imaging import io as imio
from srlab.inference.progress import frame_bar

__all__ = [
    "DEFAULT_CRF",
    "VIDEO_EXTENSIONS",
    "VideoResult",
    "is_video",
    "output_size",
    "staged_output",
    "upscale_video",
]

VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mkv", ".mov", ".webm", ".avi")
DEFAULT_CRF = 18
DEFAULT_CODEC = "libx264"
_CONTAINER_CODEC = {".webm": "libvpx-vp9"}  # WebM holds only VP8, VP9 and AV1
_CRF_MAX = {"libx264": 51, "libx265": 51, "libvpx-vp9": 63, "libvpx": 63, "libsvtav1": 63, "libaom-av1": 63}
_PIX_FMT = "yuv420p"  # what every player decodes
_MEDIA_ERRORS: tuple[type[BaseException], ...] = (OSError, ValueError, EOFError)  # PyAV's errors are these


@dataclass
class VideoResult:
    """What :func:`upscale_video` wrote."""

    path: Path
    width: int
    height: int
    frames: int
    fps: Fraction | None
    copied: list[str] = field(default_factory=list)  # "audio aac", "subtitle subrip", ...
    bit_depth: int = 8
    missing: int = 0  # frames the source's header or duration promised but that could not be decoded

    def summary(self) -> str:
        fps = f"{float(self.fps):.3g} fps" if self.fps else "fps unknown"
        extra = f", copied {', '.join(self.copied)}" if self.copied else ""
        return f"{self.width}x{self.height}, {self.frames} frames, {fps}{extra}"


def is_video(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a video container srlab upscales (by extension: :data:`VIDEO_EXTENSIONS`)."""
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def _require_av():
    try:
        import av
    except ImportError:
        raise ConfigError(
            "video needs PyAV: pip install 'srlab[video]' (or pip install av; its wheels bundle FFmpeg)"
        ) from None
    return av


def _short(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:160]


@contextlib.contextmanager
def staged_output(dst: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """A temporary path beside ``dst`` (same extension, so formats are guessed from it) that becomes ``dst``
    when the block succeeds and is deleted when it does not, Ctrl-C included (:func:`srlab.atomic.staged`).
    Without ``overwrite`` an existing ``dst`` is refused, also one that appeared while the block ran."""
    dst = Path(dst)
    exists = f"{dst}: already exists; pass --force (overwrite=True) to replace it"
    if dst.is_dir():
        raise ImageError(f"{dst}: is a folder; name a file, or pass the folder as -o to write into it")
    if dst.exists() and not overwrite:
        raise ImageError(exists)
    started = False
    try:
        with staged(dst, suffix=f".part{dst.suffix}", overwrite=overwrite) as tmp:
            started = True
            yield tmp
    except FileExistsError:
        raise ImageError(exists) from None
    except OSError as exc:
        if exc.errno is None:
            raise
        if not started:
            raise ImageError(
                f"{dst}: cannot write there ({exc.strerror or exc}); choose another folder"
            ) from None
        raise ImageError(f"{dst}: writing failed ({exc.strerror or exc}); nothing was written") from None


def _encoder(av, name: str | None, dst: Path):
    """(codec name, its pixel format) for ``name`` (None: the container's default), or one ConfigError line."""
    name = name or _CONTAINER_CODEC.get(dst.suffix.lower(), DEFAULT_CODEC)
    try:
        codec = av.codec.Codec(name, "w")
    except _MEDIA_ERRORS:
        codec = None
    if codec is None or codec.type != "video":
        have = sorted(c for c in _CRF_MAX if c in av.codecs_available)
        raise ConfigError(f"--codec {name}: not a video encoder of this FFmpeg; try one of {', '.join(have)}")
    formats = [f.name for f in codec.video_formats or ()]
    return name, (_PIX_FMT if not formats or _PIX_FMT in formats else formats[0])


def _open_input(av, src: Path):
    if not src.is_file():
        raise ImageError(f"{src}: no such file; check the path")
    try:
        inp = av.open(str(src), metadata_errors="replace")
    except _MEDIA_ERRORS as exc:
        raise ImageError(f"{src}: not a readable video ({_short(exc)}); check the file") from None
    if not inp.streams.video:
        inp.close()
        raise ImageError(f"{src}: has no video stream; pass a video file")
    return inp


def _frame_total(vs, inp, rate) -> int | None:
    """Frames expected (for the progress bar): the header's count, else duration x rate, else None."""
    if vs.frames:
        return int(vs.frames)
    if rate and vs.duration and vs.time_base:
        return max(1, round(float(vs.duration * vs.time_base * rate)))
    if rate and inp.duration:
        return max(1, round(inp.duration / 1_000_000 * float(rate)))
    return None


def _rotation(av, src: Path) -> int:
    """The display rotation of the first frame (degrees), read before the output's header is written."""
    try:
        with av.open(str(src)) as c:
            for frame in c.decode(video=0):
                return int(frame.rotation or 0)
    except (*_MEDIA_ERRORS, AttributeError):
        pass
    return 0


def _copy_streams(inp, out, dst: Path) -> dict:
    """Output streams for the input's audio and subtitle streams the container can hold (index -> stream)."""
    mapping = {}
    supported = out.supported_codecs
    for s in inp.streams:
        if s.type not in ("audio", "subtitle"):
            continue
        name = s.codec_context.name
        if name not in supported:
            where = "a .mkv output keeps it" if dst.suffix.lower() != ".mkv" else "no container fix known"
            warnings.warn(
                f"{s.type} stream #{s.index} ({name}) cannot be stored in {dst.suffix}; left out ({where})",
                stacklevel=3,
            )
            continue
        o = out.add_stream_from_template(s)
        for key in ("language", "title", "handler_name"):
            if key in s.metadata:
                o.metadata[key] = s.metadata[key]
        with contextlib.suppress(*_MEDIA_ERRORS, AttributeError):
            o.disposition = s.disposition
        mapping[s.index] = o
    return mapping


def upscale_video(
    up,
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    outscale: float | None = None,
    codec: str | None = None,
    crf: int | None = None,
    overwrite: bool = False,
    max_pixels: int | None = None,
    progress: bool = True,
) -> VideoResult:
    """Upscale the video ``src`` into ``dst`` (container from its extension) with the Upscaler ``up``.

    ``outscale``: final scale (default: the model's), as for images. ``codec``/``crf``: the video encoder
    and its constant-quality level (see the module docstring). ``max_pixels``: refuse larger frames.
    Raises :class:`~srlab.errors.ImageError` (bad input, unwritable output) or ConfigError (bad codec/crf).
    """
    av = _require_av()
    src, dst = Path(src), Path(dst)
    name, pix_fmt = _encoder(av, codec, dst)
    if crf is not None and not 0 <= crf <= _CRF_MAX.get(name, 63):
        raise ConfigError(
            f"--crf {crf}: out of range for {name} (0..{_CRF_MAX.get(name, 63)}; lower is better)"
        )
    if crf is not None and name not in _CRF_MAX:
        warnings.warn(f"--crf is not used by {name}; its own default quality applies", stacklevel=2)
    if dst.exists() and src.exists() and os.path.samefile(src, dst):
        raise ImageError(f"{dst}: is the input file; choose another output name")
    inp = _open_input(av, src)
    try:
        with staged_output(dst, overwrite=overwrite) as tmp:
            return _transcode(av, up, inp, src, tmp, dst, outscale, name, pix_fmt, crf, max_pixels, progress)
    finally:
        inp.close()


def output_size(up, h: int, w: int, outscale: float | None) -> tuple[int, int]:
    """(height, width) of an ``h`` x ``w`` frame upscaled by ``up`` to ``outscale`` (None: the Upscaler's
    options', else the model's)."""
    if outscale is None:
        outscale = up.options.outscale
    if outscale is None or math.isclose(outscale, up.scale):
        return h * up.scale, w * up.scale
    return max(1, round(h * outscale)), max(1, round(w * outscale))


def _transcode(av, up, inp, src, tmp, dst, outscale, name, pix_fmt, crf, max_pixels, progress):
    vs = inp.streams.video[0]
    vs.thread_type = "AUTO"
    cc = vs.codec_context
    h, w = cc.height, cc.width
    if max_pixels is not None and h * w > max_pixels:
        raise ImageError(
            f"{src}: {w}x{h} frames exceed the {max_pixels / 1e6:.0f} Mpx limit; raise --max-pixels"
        )
    rate = vs.average_rate or vs.guessed_rate or vs.base_rate
    oh, ow = output_size(up, h, w, outscale)
    fmt = av.VideoFormat(pix_fmt)
    eh = oh - oh % 2 if fmt.chroma_height(2) == 1 else oh  # 4:2:0 / 4:2:2 need even sizes
    ew = ow - ow % 2 if fmt.chroma_width(2) == 1 else ow
    if (eh, ew) != (oh, ow):
        warnings.warn(f"{src}: {ow}x{oh} cropped to {ew}x{eh} ({pix_fmt} needs even sizes)", stacklevel=3)
    if eh < 2 or ew < 2:
        raise ImageError(f"{src}: output {ow}x{oh} is too small to encode; use a larger --outscale")
    tb_in = vs.time_base or (1 / Fraction(rate) if rate else Fraction(1, 25))
    # AVI stores a frame rate, not timestamps: its time base must be one frame; others keep the source's
    tb = 1 / Fraction(rate) if dst.suffix.lower() == ".avi" and rate else tb_in
    step = max(1, round(1 / (rate * tb))) if rate else 1
    try:
        out = av.open(str(tmp), "w")
    except _MEDIA_ERRORS as exc:
        raise ImageError(f"{dst}: cannot write this container ({_short(exc)}); use .mp4 or .mkv") from None
    bar = None
    try:
        if name not in out.supported_codecs:
            raise ConfigError(
                f"--codec {name}: {dst.suffix} cannot hold it; use another codec (libvpx-vp9 for .webm) "
                "or container (.mkv holds most)"
            )
        ovs = out.add_stream(name, rate=rate)
        ovs.width, ovs.height, ovs.pix_fmt = ew, eh, pix_fmt
        occ = ovs.codec_context
        occ.time_base = tb
        for attr in ("colorspace", "color_range", "color_primaries", "color_trc"):
            with contextlib.suppress(*_MEDIA_ERRORS, AttributeError, TypeError):
                setattr(occ, attr, getattr(cc, attr))
        if vs.sample_aspect_ratio:
            ovs.sample_aspect_ratio = vs.sample_aspect_ratio
        opts = {}
        if name in _CRF_MAX:
            opts["crf"] = str(DEFAULT_CRF if crf is None else crf)
            if name == "libx265":  # x265 prints its banner itself, past FFmpeg's log level
                opts["x265-params"] = "log-level=error"
            if name.startswith("libvpx"):
                occ.bit_rate = 0  # constant quality: without it VP9 treats crf as a cap on a bit rate
        if dst.suffix.lower() == ".avi":
            occ.max_b_frames = 0  # no presentation timestamps: reordered frames would read back shuffled
        rotation = _rotation(av, src)
        if rotation:  # phone clips: the display matrix turns the picture, the pixels stay as shot
            ovs.set_display_rotation(rotation)
        ovs.options = opts
        for key in ("language", "title"):
            if key in vs.metadata:
                ovs.metadata[key] = vs.metadata[key]
        for k, v in inp.metadata.items():
            if k != "encoder":
                out.metadata[k] = v
        copies = _copy_streams(inp, out, dst)

        total = _frame_total(vs, inp, rate)
        bar = frame_bar(total, src.name, enabled=progress)  # periodic lines when not on a terminal
        frames, last = 0, None
        was_progress, up.progress = up.progress, False  # one bar in frames, not one tile bar per frame
        try:
            for pkt in inp.demux(vs, *(inp.streams[i] for i in copies)):
                if pkt.stream.index != vs.index:
                    if pkt.dts is not None:  # the empty packets at the end only flush decoders
                        pkt.stream = copies[pkt.stream.index]
                        out.mux(pkt)
                    continue
                try:
                    decoded = pkt.decode()
                except av.FFmpegError as exc:
                    raise ImageError(
                        f"{src}: corrupt video data after frame {frames} ({_short(exc)}); re-encode or repair it"
                    ) from None
                for frame in decoded:
                    pts = None if frame.pts is None else round(frame.pts * tb_in / tb)
                    if pts is None or (last is not None and pts <= last):
                        pts = 0 if last is None else last + step  # keep timestamps increasing
                    last = pts
                    rgb = frame.to_ndarray(format="rgb24", src_color_range=frame.color_range)
                    sr = up.upscale_image(imio.Image(pixels=rgb), outscale=outscale).pixels[:eh, :ew]
                    of = av.VideoFrame.from_ndarray(sr, format="rgb24").reformat(
                        format=pix_fmt, dst_colorspace=frame.colorspace, dst_color_range=frame.color_range
                    )
                    of.pts, of.time_base = pts, tb
                    out.mux(ovs.encode(of))
                    frames += 1
                    bar.update(1)
            out.mux(ovs.encode(None))
        finally:
            up.progress = was_progress
        if frames == 0:
            raise ImageError(f"{src}: no video frame could be decoded; check the file")
        missing = _missing(total, frames, exact=bool(vs.frames))
        if missing:
            warnings.warn(
                f"{src}: only {frames} of {total} frames could be decoded (the file looks truncated); "
                f"the output holds {frames}",
                stacklevel=2,
            )
        out.close()  # writes the trailer: a failure here is a failed write too
    except av.FFmpegError as exc:
        raise ImageError(
            f"{src}: video encoding failed ({_short(exc)}); try another --codec or container"
        ) from None
    finally:
        if bar is not None:
            bar.close()
        with contextlib.suppress(Exception):
            out.close()  # after an error: release the file (staged_output deletes it)
    kept = [f"{s.type} {s.codec_context.name}" for s in copies.values()]
    return VideoResult(path=dst, width=ew, height=eh, frames=frames, fps=rate, copied=kept, missing=missing)


def _missing(total: int | None, frames: int, *, exact: bool) -> int:
    """Frames short of ``total``: any, when the container counts its frames; more than rounding (2 frames
    or 2 %), when the total is estimated from a duration."""
    if not total or frames >= total:
        return 0
    short = total - frames
    return short if exact or short > max(2, total // 50) else 0
