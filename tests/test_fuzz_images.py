"""Fuzzing the decoder: random bytes, truncations and bit flips of real PNG/JPEG/TIFF/WebP/BMP files.

Whatever the bytes, :func:`srlab.imaging.io.read_image` either returns a well-formed image or raises
:class:`srlab.errors.ImageError` with one line naming the file -- never another exception type -- and a
header that claims a huge image is refused by the pixel limit before anything that size is allocated.
"""

from __future__ import annotations

import io
import os
import resource
import struct
import zlib

import numpy as np
import pytest
from PIL import Image as PILImage

from srlab.errors import ImageError
from srlab.imaging.io import read_image

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

MAX_PIXELS = 1 << 18  # a fuzzed header may claim any size: this refuses big ones before they are decoded
BUDGET_MB = 300  # peak RSS growth allowed over all examples (a decoded image here is at most ~2 MB)
_SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _encode(fmt: str, mode: str, **kw) -> bytes:
    rng = np.random.default_rng(len(fmt) + len(mode))
    shape = {"L": (23, 17), "RGB": (23, 17, 3), "RGBA": (23, 17, 4), "I;16": (23, 17)}[mode]
    if mode == "I;16":
        im = PILImage.fromarray(rng.integers(0, 65536, shape, dtype=np.uint16))
    else:
        im = PILImage.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode=mode)
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


SEEDS = {
    "png-rgb": _encode("PNG", "RGB"),
    "png-rgba": _encode("PNG", "RGBA"),
    "png-16": _encode("PNG", "I;16"),
    "jpeg": _encode("JPEG", "RGB", quality=90),
    "jpeg-gray-progressive": _encode("JPEG", "L", progressive=True),
    "tiff-deflate": _encode("TIFF", "RGB", compression="tiff_deflate"),
    "tiff-raw-rgba": _encode("TIFF", "RGBA"),
    "webp-lossy": _encode("WEBP", "RGB", quality=80),
    "webp-lossless": _encode("WEBP", "RGBA", lossless=True),
    "bmp": _encode("BMP", "RGB"),
}
NAMES = sorted(SEEDS)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kB


@pytest.fixture(scope="module")
def rss_guard():
    """Fail the module if decoding fuzzed files made the process grow by more than the budget."""
    start = _peak_mb()
    yield
    grown = _peak_mb() - start
    assert grown < BUDGET_MB, f"peak RSS grew by {grown:.0f} MB while fuzzing the decoder"


def _check(tmp_path, data: bytes, name: str = "fuzz.img") -> None:
    p = tmp_path / name
    p.write_bytes(data)
    try:
        img = read_image(p, max_pixels=MAX_PIXELS)
    except ImageError as exc:
        msg = str(exc)
        assert "\n" not in msg and msg.startswith(str(p)), msg
        return
    # decoded: a well-formed image within the limit
    assert img.pixels.ndim == 3 and img.pixels.shape[2] in (1, 3)
    assert img.pixels.dtype in (np.uint8, np.uint16) and img.bit_depth in (8, 16)
    assert img.height * img.width <= MAX_PIXELS
    if img.alpha is not None:
        assert img.alpha.shape == img.pixels.shape[:2]


def test_seed_files_decode(tmp_path):
    for name in NAMES:
        img = read_image_bytes(tmp_path, SEEDS[name])
        assert img.pixels.shape[:2] == (23, 17), name


def read_image_bytes(tmp_path, data):
    p = tmp_path / "seed.img"
    p.write_bytes(data)
    return read_image(p, max_pixels=MAX_PIXELS)


@settings(max_examples=60, **_SETTINGS)
@given(data=st.binary(min_size=0, max_size=2048))
def test_random_bytes(tmp_path, rss_guard, data):
    _check(tmp_path, data)


@settings(max_examples=60, **_SETTINGS)
@given(name=st.sampled_from(NAMES), magic_only=st.booleans(), data=st.binary(max_size=512))
def test_real_magic_then_garbage(tmp_path, rss_guard, name, magic_only, data):
    seed = SEEDS[name]
    head = seed[:8] if magic_only else seed[: len(seed) // 3]
    _check(tmp_path, head + data)


@settings(max_examples=100, **_SETTINGS)
@given(name=st.sampled_from(NAMES), frac=st.floats(0.0, 1.0, exclude_max=True))
def test_truncations(tmp_path, rss_guard, name, frac):
    seed = SEEDS[name]
    _check(tmp_path, seed[: int(len(seed) * frac)])


@settings(max_examples=160, **_SETTINGS)
@given(
    name=st.sampled_from(NAMES),
    flips=st.lists(
        st.tuples(st.floats(0.0, 1.0, exclude_max=True), st.integers(0, 7)), min_size=1, max_size=8
    ),
    head_bias=st.booleans(),
)
def test_bit_flips(tmp_path, rss_guard, name, flips, head_bias):
    data = bytearray(SEEDS[name])
    for pos, bit in flips:
        # half the examples aim at the first 64 bytes, where the headers and their sizes live
        i = int(pos * (min(64, len(data)) if head_bias else len(data)))
        data[i] ^= 1 << bit
    _check(tmp_path, bytes(data))


def _chunk(kind: bytes, body: bytes) -> bytes:
    return (
        struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    )


@settings(max_examples=40, **_SETTINGS)
@given(w=st.integers(1, 2**31 - 1), h=st.integers(1, 2**31 - 1), depth=st.sampled_from([1, 8, 16]))
def test_png_headers_claiming_any_size(tmp_path, rss_guard, w, h, depth):
    """A valid IHDR (good CRC) claiming up to 2^31 x 2^31 pixels over a tiny IDAT: a bomb or a truncation."""
    data = (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, 0, 0, 0, 0))
        + _chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + _chunk(b"IEND", b"")
    )
    p = tmp_path / "claim.png"
    p.write_bytes(data)
    if w * h > MAX_PIXELS:
        with pytest.raises(ImageError, match="absurd dimensions"):
            read_image(p, max_pixels=MAX_PIXELS)
    else:
        _check(tmp_path, data, "claim.png")


# --------------------------------------------------------------------------------------------- grey images
@pytest.fixture(scope="module")
def rgb_upscaler():
    import torch

    from srlab.inference.upscaler import Upscaler
    from srlab.models.registry import build_model

    torch.manual_seed(0)
    net, desc = build_model("srvgg", scale=2, num_feat=4, num_conv=1)
    up = Upscaler((net.eval(), desc), device="cpu", tile=128)
    up.model = (net, desc)
    return up


def test_a_grey_image_on_an_rgb_model_is_streamed(rgb_upscaler):
    """Grey runs as R = G = B one window at a time and is averaged back as rows finish: the 3-channel float
    output (12 bytes per output pixel, 108 MB here) is never held whole."""
    from memwatch import RssWatch
    from srlab.imaging import io as imio

    rgb_upscaler(np.zeros((64, 64), np.uint8))  # warm-up: thread pools, first allocations
    grey = np.random.default_rng(1).integers(0, 256, (1500, 1500), dtype=np.uint8)
    with RssWatch() as watch:
        out = rgb_upscaler(grey)
    assert out.shape == (3000, 3000) and out.dtype == np.uint8
    with RssWatch() as rgb_watch:  # the same size in RGB, streamed all along: grey may not need more
        rgb_upscaler(np.repeat(grey[..., None], 3, axis=2))
    assert watch.growth_mb < max(rgb_watch.growth_mb, 40) + 20, (watch.growth_mb, rgb_watch.growth_mb)
    part = grey[:200, :300]  # the whole-tensor path (three channels, then their mean) on a corner
    ref = rgb_upscaler._run_channels(imio.to_tensor(part[..., None]))
    ref = imio.from_tensor(ref, bit_depth=8)[..., 0]
    got = rgb_upscaler(part)
    assert np.abs(got.astype(int) - ref.astype(int)).max() <= 1


def test_the_memory_check_counts_a_grey_image_as_the_model_runs_it(rgb_upscaler):
    """Not streamed (an --outscale resize follows), grey holds three float planes of model output and their
    mean: a check that counted one plane let a 1 x 200M grey strip through to need ~10 GB more."""
    from srlab.inference.upscaler import Upscaler

    up = Upscaler(rgb_upscaler.model, device="cpu", tile=128, max_output_bytes=150e6)
    grey = np.zeros((1000, 1000), dtype=np.uint8)
    with pytest.raises(ImageError, match=r"needs about 0\.3 GB of memory, more than the 0\.1 GB"):
        up(grey, outscale=3)
    assert up.output_bytes(1000, 1000, 4, 3) > 150e6 > up.output_bytes(1000, 1000, 1, 3)


# --------------------------------------------------------------------------------------------- file types
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_with_no_writer_is_refused_without_opening_it(tmp_path, capsys):
    """Opening a FIFO nobody writes to blocks forever: the type is judged from stat() first."""
    import subprocess
    import sys

    fifo = tmp_path / "in.png"
    os.mkfifo(fifo)
    with pytest.raises(ImageError, match="is a pipe"):
        read_image(fifo)
    # the CLI in a child process, so that a hang is a timeout here and not a stuck test run
    code = f"from srlab.cli import main; raise SystemExit(main(['upscale', {str(fifo)!r}, '-o', {str(tmp_path / 'o')!r}, '-m', 'bicubic-x2']))"
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )  # inherits PYTHONPATH
    assert r.returncode == 1 and "is a pipe (a FIFO, or <(...) process substitution)" in r.stderr, r.stderr


def test_process_substitution_is_named_as_a_pipe(tmp_path):
    """`srlab upscale <(cat x.png)`: the shell passes /dev/fd/N, a pipe, not an empty file."""
    r, w = os.pipe()
    try:
        with pytest.raises(ImageError, match="is a pipe"):
            read_image(f"/proc/self/fd/{r}")
    finally:
        os.close(r)
        os.close(w)


def test_a_multi_page_tiff_says_its_later_pages_are_dropped(tmp_path):
    pages = [PILImage.new("RGB", (8, 6), c) for c in ("red", "green", "blue")]
    path = tmp_path / "pages.tif"
    pages[0].save(path, save_all=True, append_images=pages[1:])
    with pytest.warns(UserWarning, match=r"a 3-page TIFF; only page 1 is read \(pages 2..3 are dropped\)"):
        img = read_image(path)
    assert img.pixels[0, 0].tolist() == [255, 0, 0]


@pytest.mark.parametrize("kind", ["tEXt", "zTXt"])
def test_a_png_with_a_large_text_chunk_is_read(tmp_path, kind):
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    text = "x" * (PngImagePlugin.MAX_TEXT_CHUNK + 10)
    info.add_text("Comment", text, zip=kind == "zTXt")
    info.add_text("Title", "kept")
    path = tmp_path / "text.png"
    PILImage.new("RGB", (5, 4), "blue").save(path, pnginfo=info)
    with pytest.warns(UserWarning, match=r"1 PNG text chunk\(s\) .* left out; the image itself is read"):
        img = read_image(path)
    assert img.pixels.shape == (4, 5, 3) and img.pixels[0, 0].tolist() == [0, 0, 255]
    assert img.info.get("Title") == "kept" and "Comment" not in img.info
