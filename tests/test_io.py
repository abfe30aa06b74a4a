"""srlab.imaging.io, codecs16, arrays: every Pillow mode, every bad file, round trips, atomic writes."""

from __future__ import annotations

import io
import os
import struct
import sys
import zlib

import numpy as np
import pytest
import torch
from PIL import Image as PILImage
from PIL import ImageFile, ImageOps

from srlab.errors import ImageError
from srlab.imaging import arrays
from srlab.imaging import io as imio
from srlab.imaging.codecs16 import tiff16
from srlab.imaging.io import from_pil, from_tensor, read_image, to_pil, to_tensor, write_image

RNG = np.random.default_rng(1234)


def _rgb(h=9, w=13):
    return RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)


def _save(path, im, **kw):
    im.save(path, **kw)
    return path


# ------------------------------------------------------------------------------------------ modes


def test_rgb_png(tmp_path):
    a = _rgb()
    img = read_image(_save(tmp_path / "a.png", PILImage.fromarray(a)))
    assert img.pixels.dtype == np.uint8 and img.pixels.shape == (9, 13, 3)
    assert np.array_equal(img.pixels, a) and img.alpha is None and img.bit_depth == 8
    assert img.mode == "RGB" and img.path == tmp_path / "a.png" and img.format == "PNG"


def test_gray_modes(tmp_path):
    g = RNG.integers(0, 256, (6, 5), dtype=np.uint8)
    img = read_image(_save(tmp_path / "l.png", PILImage.fromarray(g)))
    assert img.pixels.shape == (6, 5, 1) and np.array_equal(img.pixels[..., 0], g) and img.is_gray
    # mode "1" (bilevel) -> 0/255 gray
    b = PILImage.fromarray(g > 128)
    img = read_image(_save(tmp_path / "b.png", b.convert("1")))
    assert img.pixels.shape == (6, 5, 1) and set(np.unique(img.pixels)) <= {0, 255}
    assert np.array_equal(img.pixels[..., 0] == 255, g > 128)


def test_gray16_png_and_mode_I(tmp_path):
    g = RNG.integers(0, 65536, (7, 4), dtype=np.uint16)
    p = _save(tmp_path / "g16.png", PILImage.fromarray(g))
    img = read_image(p)
    assert img.bit_depth == 16 and img.pixels.dtype == np.uint16 and np.array_equal(img.pixels[..., 0], g)
    # mode "I" (32-bit int) with values in 0..65535 -> 16-bit gray
    im_i = PILImage.fromarray(g.astype(np.int32))
    assert im_i.mode == "I"
    img = from_pil(im_i)
    assert img.bit_depth == 16 and np.array_equal(img.pixels[..., 0], g)
    with pytest.raises(ImageError, match="outside 0..65535"):
        from_pil(PILImage.fromarray(np.full((3, 3), -5, np.int32)))


@pytest.mark.parametrize("ext", ["png", "tif"])
@pytest.mark.parametrize("channels,with_alpha", [(3, False), (3, True), (1, True), (1, False)])
def test_sixteen_bit_roundtrip_exact(tmp_path, ext, channels, with_alpha):
    a = RNG.integers(0, 65536, (11, 6, channels), dtype=np.uint16)
    al = RNG.integers(0, 65536, (11, 6), dtype=np.uint16) if with_alpha else None
    p = write_image(tmp_path / f"x.{ext}", a, alpha=al)
    img = read_image(p)
    assert img.bit_depth == 16 and img.pixels.dtype == np.uint16
    got = img.pixels
    if ext == "tif" and channels == 1 and with_alpha:  # stored as RGBA (Pillow reads no 16-bit LA TIFF)
        assert np.array_equal(got[..., 0], got[..., 2])
        got = got[..., :1]
    assert np.array_equal(got, a)
    if al is None:
        assert img.alpha is None
    else:
        assert np.array_equal(img.alpha, al)


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("alpha", [False, True])
def test_sixteen_bit_tiff_plain_and_deflate(tmp_path, compress, alpha):
    # uncompressed strips go through Pillow's raw decoder, deflate through libtiff (native-endian samples)
    a = RNG.integers(0, 65536, (5, 9, 3), dtype=np.uint16)
    al = RNG.integers(0, 65536, (5, 9), dtype=np.uint16) if alpha else None
    p = tmp_path / "t.tif"
    p.write_bytes(tiff16(a, al, compress=compress))
    img = read_image(p)
    assert img.bit_depth == 16 and np.array_equal(img.pixels, a)
    assert (img.alpha is None) if al is None else np.array_equal(img.alpha, al)


def test_sixteen_bit_png_from_pillow_reduced_is_detected(tmp_path):
    # Our own writer emits 'Up'-filtered rows; Pillow's 8-bit view must agree with our high bytes.
    a = RNG.integers(0, 65536, (5, 8, 3), dtype=np.uint16)
    p = write_image(tmp_path / "c.png", a)
    assert np.array_equal(np.asarray(PILImage.open(p)), (a >> 8).astype(np.uint8))


def _png16_interlaced(a: np.ndarray) -> bytes:
    """Adam7-interlaced 16-bit RGB PNG with Paeth/Average/Sub filters (to exercise Pillow's decoder)."""
    h, w, c = a.shape
    passes = [
        (0, 0, 8, 8),
        (4, 0, 8, 8),
        (0, 4, 4, 8),
        (2, 0, 4, 4),
        (0, 2, 2, 4),
        (1, 0, 2, 2),
        (0, 1, 1, 2),
    ]
    bpp = 2 * c
    out = bytearray()
    for k, (x0, y0, dx, dy) in enumerate(passes):
        sub = a[y0::dy, x0::dx]
        if sub.size == 0:
            continue
        rows = sub.astype(">u2").reshape(sub.shape[0], -1).view(np.uint8)
        prev = np.zeros(rows.shape[1], np.int32)
        for r in rows.astype(np.int32):
            f = (k % 3) + 1 if k % 2 else 4
            left = np.concatenate([np.zeros(bpp, np.int32), r[:-bpp]])
            ul = np.concatenate([np.zeros(bpp, np.int32), prev[:-bpp]])
            if f == 1:
                pred = left
            elif f == 2:
                pred = prev
            elif f == 3:
                pred = (left + prev) // 2
            else:
                pa, pb, pc = np.abs(prev - ul), np.abs(left - ul), np.abs(left + prev - 2 * ul)
                pred = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, prev, ul))
            out += bytes([f]) + ((r - pred) & 255).astype(np.uint8).tobytes()
            prev = r

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 1)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(bytes(out)))
        + chunk(b"IEND", b"")
    )


def test_sixteen_bit_interlaced_png_with_filters(tmp_path):
    a = RNG.integers(0, 65536, (13, 11, 3), dtype=np.uint16)
    p = tmp_path / "i.png"
    p.write_bytes(_png16_interlaced(a))
    assert np.array_equal(np.asarray(PILImage.open(p)), (a >> 8).astype(np.uint8))  # the file is valid
    img = read_image(p)
    assert img.bit_depth == 16 and np.array_equal(img.pixels, a)


def test_rgba_and_la_split_alpha(tmp_path):
    a = RNG.integers(0, 256, (4, 6, 4), dtype=np.uint8)
    img = read_image(_save(tmp_path / "a.png", PILImage.fromarray(a)))
    assert np.array_equal(img.pixels, a[..., :3]) and np.array_equal(img.alpha, a[..., 3])
    la = RNG.integers(0, 256, (4, 6, 2), dtype=np.uint8)
    img = read_image(_save(tmp_path / "la.png", PILImage.fromarray(la)))
    assert img.pixels.shape == (4, 6, 1) and np.array_equal(img.alpha, la[..., 1])


def test_palette_with_and_without_transparency(tmp_path):
    a = _rgb(8, 8)
    pim = PILImage.fromarray(a).quantize(colors=16)
    expect = np.asarray(pim.convert("RGB"))
    img = read_image(_save(tmp_path / "p.png", pim))
    assert img.mode == "P" and img.alpha is None and np.array_equal(img.pixels, expect)
    pim.info["transparency"] = 0
    p = _save(tmp_path / "pt.png", pim, transparency=0)
    img = read_image(p)
    idx = np.asarray(PILImage.open(p))
    assert img.alpha is not None and np.array_equal(img.alpha == 0, idx == 0)
    assert np.array_equal(img.pixels, expect)
    # GIF palette too
    img = read_image(_save(tmp_path / "g.gif", pim))
    assert img.pixels.shape == (8, 8, 3)


def test_cmyk_jpeg_to_rgb(tmp_path):
    a = _rgb(16, 16)
    p = _save(tmp_path / "c.jpg", PILImage.fromarray(a).convert("CMYK"), quality=100)
    img = read_image(p)
    assert img.mode == "CMYK" and img.pixels.shape == (16, 16, 3) and img.icc_profile is None
    assert np.abs(img.pixels.astype(int) - a).mean() < 8


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation(tmp_path, orientation):
    a = _rgb(5, 8)
    im = PILImage.fromarray(a)
    exif = im.getexif()
    exif[0x0112] = orientation
    for ext in ("jpg", "png"):
        p = _save(
            tmp_path / f"o{orientation}.{ext}",
            im,
            exif=exif.tobytes(),
            **({"quality": 100} if ext == "jpg" else {}),
        )
        ref = np.asarray(ImageOps.exif_transpose(PILImage.open(p)))
        img = read_image(p)
        assert np.array_equal(img.pixels, ref), (ext, orientation)
        if orientation >= 5:
            assert img.pixels.shape[:2] == (8, 5)


def test_icc_profile_kept(tmp_path):
    icc = b"\x00" * 128 + b"fake-but-kept"
    p = _save(tmp_path / "icc.png", PILImage.fromarray(_rgb()), icc_profile=icc)
    img = read_image(p)
    assert img.icc_profile == icc
    q = write_image(tmp_path / "out.png", img.pixels, icc_profile=img.icc_profile)
    assert PILImage.open(q).info.get("icc_profile") == icc
    q16 = write_image(tmp_path / "out16.png", img.pixels.astype(np.uint16) * 257, icc_profile=icc)
    assert read_image(q16).icc_profile == icc


# ------------------------------------------------------------------------------------------ bad files


def _one_line(exc: ImageError, path) -> str:
    msg = str(exc)
    assert "\n" not in msg and msg.startswith(str(path)) and ";" in msg
    return msg


def _good_png_bytes() -> bytes:
    buf = io.BytesIO()
    PILImage.fromarray(RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def test_bad_files_one_line_each(tmp_path):
    cases = {}
    (tmp_path / "zero.png").write_bytes(b"")
    cases["zero.png"] = "empty file"
    (tmp_path / "text.png").write_text("hello, I am not a PNG\n")
    cases["text.png"] = "not an image"
    (tmp_path / "junk.jpg").write_bytes(bytes(RNG.integers(0, 256, 300, dtype=np.uint8)))
    cases["junk.jpg"] = "not an image"
    good = _good_png_bytes()
    (tmp_path / "trunc.png").write_bytes(good[: len(good) // 2])
    cases["trunc.png"] = "truncated|corrupt"
    buf = io.BytesIO()
    PILImage.fromarray(_rgb(64, 64)).save(buf, "JPEG", quality=90)
    (tmp_path / "trunc.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    cases["trunc.jpg"] = "truncated|corrupt"
    bad = bytearray(good)
    idat = bad.find(b"IDAT")
    bad[idat + 20 : idat + 40] = b"\xff" * 20
    (tmp_path / "corrupt.png").write_bytes(bytes(bad))
    cases["corrupt.png"] = "corrupt|truncated"
    (tmp_path / "folder.png").mkdir()
    cases["folder.png"] = "folder"
    cases["missing.png"] = "no such file"
    for name, pattern in cases.items():
        with pytest.raises(ImageError) as ei:
            read_image(tmp_path / name)
        msg = _one_line(ei.value, tmp_path / name)
        assert any(k in msg for k in pattern.split("|")), msg


def _png_header_only(w: int, h: int) -> bytes:
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    idat = zlib.compress(b"\x00" * 1000)  # a tiny IDAT claiming to be a huge image
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", idat)
    )


def test_decompression_bomb_and_absurd_dimensions(tmp_path):
    p = tmp_path / "bomb.png"
    p.write_bytes(_png_header_only(100_000, 100_000))
    with pytest.raises(ImageError) as ei:
        read_image(p)
    assert "absurd dimensions 100000x100000" in _one_line(ei.value, p)
    # the limit is configurable
    q = tmp_path / "small.png"
    PILImage.fromarray(_rgb(40, 50)).save(q)
    with pytest.raises(ImageError, match="max_pixels"):
        read_image(q, max_pixels=1000)
    assert read_image(q, max_pixels=2000).pixels.shape == (40, 50, 3)


def test_truncated_images_stay_refused_even_if_pillow_was_told_otherwise(tmp_path):
    good = _good_png_bytes()
    p = tmp_path / "t.png"
    p.write_bytes(good[: len(good) - 200])
    saved = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = True
    try:
        with pytest.raises(ImageError, match="truncated|corrupt"):
            read_image(p)
        assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # restored afterwards
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = saved
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_unsupported_mode(tmp_path):
    f = PILImage.fromarray(np.zeros((3, 3), np.float32))
    with pytest.raises(ImageError, match="unsupported image mode 'F'"):
        from_pil(f)
    p = _save(tmp_path / "f.tif", f)
    with pytest.raises(ImageError, match=r"f\.tif: unsupported"):
        read_image(p)


# ------------------------------------------------------------------------------------------ writing


@pytest.mark.parametrize("ext", ["png", "bmp", "tif", "tiff", "webp", "jpg", "jpeg"])
def test_write_formats_roundtrip(tmp_path, ext):
    yy, xx = np.mgrid[0:16, 0:24]
    a = np.stack([yy * 15, xx * 10, (yy + xx) * 6], axis=2).astype(
        np.uint8
    )  # smooth: lossy codecs stay close
    p = write_image(tmp_path / f"w.{ext}", a)
    img = read_image(p)
    assert img.pixels.shape == a.shape and img.bit_depth == 8
    err = np.abs(img.pixels.astype(int) - a).mean()
    if ext in ("jpg", "jpeg", "webp"):
        assert 0 < err < 4
    else:
        assert err == 0
    g = write_image(tmp_path / f"g.{ext}", a[..., :1])
    assert read_image(g).pixels.shape[:2] == (16, 24)


def test_write_alpha_and_jpeg_flatten(tmp_path):
    a = _rgb(8, 8)
    al = RNG.integers(0, 256, (8, 8), dtype=np.uint8)
    for ext in ("png", "webp", "tif"):
        img = read_image(write_image(tmp_path / f"a.{ext}", a, alpha=al))
        assert img.alpha is not None and img.alpha.shape == (8, 8)
        if ext != "webp":
            assert np.array_equal(img.alpha, al) and np.array_equal(img.pixels, a)
    zero = np.zeros((8, 8), np.uint8)
    with pytest.warns(UserWarning, match="flattening onto white"):
        p = write_image(tmp_path / "a.jpg", a, alpha=zero)
    img = read_image(p)
    assert img.alpha is None and img.pixels.min() > 240  # fully transparent -> white


def test_sixteen_bit_to_8bit_format_warns(tmp_path):
    a = RNG.integers(0, 65536, (6, 6, 3), dtype=np.uint16)
    with pytest.warns(UserWarning, match="no 16-bit"):
        p = write_image(tmp_path / "x.jpg", a)
    assert read_image(p).bit_depth == 8
    p = write_image(tmp_path / "x8.png", a, bit_depth=8)
    img = read_image(p)
    assert img.bit_depth == 8 and np.array_equal(img.pixels, np.floor(a / 257 + 0.5).astype(np.uint8))


def test_no_overwrite_unless_asked_and_atomic(tmp_path):
    p = tmp_path / "o.png"
    p.write_bytes(b"precious")
    with pytest.raises(ImageError) as ei:
        write_image(p, _rgb())
    assert "already exists" in _one_line(ei.value, p)
    assert p.read_bytes() == b"precious"
    write_image(p, _rgb(), overwrite=True)
    assert read_image(p).pixels.shape == (9, 13, 3)
    assert sorted(os.listdir(tmp_path)) == ["o.png"]  # no temp files left behind
    with pytest.raises(ImageError, match="unknown output format"):
        write_image(tmp_path / "o.xyz", _rgb())
    with pytest.raises(TypeError, match="from_tensor"):
        write_image(tmp_path / "f.png", np.zeros((3, 3, 3), np.float32))
    assert sorted(os.listdir(tmp_path)) == ["o.png"]


def test_write_creates_parent_dirs_with_normal_permissions(tmp_path):
    p = write_image(tmp_path / "a" / "b" / "c.png", _rgb())
    assert p.is_file()
    plain = tmp_path / "plain"
    plain.write_bytes(b"")
    assert p.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777  # not mkstemp's 0o600


# ------------------------------------------------------------------------------------------ tensors & PIL


def test_tensor_roundtrip_and_rounding():
    a8 = RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    t = to_tensor(a8)
    assert t.shape == (3, 5, 7) and t.dtype == torch.float32
    assert np.array_equal(from_tensor(t), a8)
    a16 = RNG.integers(0, 65536, (5, 7, 1), dtype=np.uint16)
    assert np.array_equal(from_tensor(to_tensor(a16), bit_depth=16), a16)
    assert np.array_equal(from_tensor(to_tensor(a16[..., 0])[None], bit_depth=16), a16)
    # rounding half up to the grid, clipping
    x = torch.tensor([[[-0.2, 0.0, 0.5 / 255, 1.49 / 255, 254.5 / 255, 1.0, 1.7]]])
    assert from_tensor(x)[0, :, 0].tolist() == [0, 0, 1, 1, 255, 255, 255]
    assert from_tensor(x, bit_depth=16)[0, -1, 0] == 65535


def test_pil_roundtrip():
    a = RNG.integers(0, 256, (4, 5, 3), dtype=np.uint8)
    al = RNG.integers(0, 256, (4, 5), dtype=np.uint8)
    im = to_pil(a, al)
    assert im.mode == "RGBA"
    back = from_pil(im)
    assert np.array_equal(back.pixels, a) and np.array_equal(back.alpha, al)
    g16 = RNG.integers(0, 65536, (4, 5, 1), dtype=np.uint16)
    im = to_pil(g16)
    assert im.mode == "I;16" and np.array_equal(from_pil(im).pixels, g16)
    assert to_pil(a[..., :1]).mode == "L"


def test_io_api_names():
    # the conversions live in srlab.imaging.arrays and are part of srlab.imaging.io's API
    for name in ("to_tensor", "from_tensor", "to_pil"):
        assert getattr(imio, name) is getattr(arrays, name) and name in imio.__all__
    for name in ("read_image", "write_image", "Image", "from_pil", "WRITE_FORMATS", "DEFAULT_MAX_PIXELS"):
        assert name in imio.__all__ and hasattr(imio, name)
    assert imio.ImageError is ImageError


def test_corrupt_tiff_is_one_line_and_libtiff_prints_nothing(tmp_path, capfd):
    """libtiff prints its decoding errors to fd 2 itself: they go into the ImageError line instead."""
    buf = io.BytesIO()
    PILImage.fromarray(_rgb(40, 40)).save(buf, "TIFF", compression="tiff_deflate")
    data = bytearray(buf.getvalue())
    data[200] ^= 0xFF
    data[300] ^= 0xFF
    p = tmp_path / "bad.tif"
    p.write_bytes(bytes(data))
    capfd.readouterr()
    with pytest.raises(ImageError) as ei:
        read_image(p)
    msg = _one_line(ei.value, p)
    assert "corrupt image data" in msg and "ZIPDecode" in msg
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    print("stderr works again", file=sys.stderr)
    assert "stderr works again" in capfd.readouterr().err
