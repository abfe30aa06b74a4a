"""Animated GIF / APNG / WebP through `srlab upscale` (srlab.inference.animated): every frame, durations,
loop count and transparency kept; still images go the still-image way as before."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from PIL import Image as PILImage

from srlab.cli import main
from srlab.imaging.io import read_image
from srlab.inference import Upscaler
from srlab.inference.animated import frame_count, is_animated

DURATIONS = [100, 200, 300]
COLOURS = [(220, 30, 30), (30, 200, 40), (40, 50, 230)]
EXT = {"GIF": "gif", "PNG": "png", "WEBP": "webp"}


def _frames() -> list[PILImage.Image]:
    """3 frames of 24x16 in distinct colours with a transparent 6x6 square that moves: a frame that kept
    the previous frame's pixels under the square would show through."""
    out = []
    for i, c in enumerate(COLOURS):
        a = np.zeros((16, 24, 4), np.uint8)
        a[..., :3], a[..., 3] = c, 255
        a[4:10, 2 + 7 * i : 8 + 7 * i, 3] = 0
        out.append(PILImage.fromarray(a, "RGBA"))
    return out


def make_animation(path, fmt: str, *, loop: int | None = 0):
    frames = _frames()
    kw = {"save_all": True, "append_images": frames[1:], "duration": DURATIONS}
    if loop is not None:
        kw["loop"] = loop
    if fmt == "GIF":
        kw["disposal"] = 2
    if fmt == "WEBP":
        kw["lossless"] = True
    frames[0].save(path, format=fmt, **kw)
    return path


def read_animation(path):
    im = PILImage.open(path)
    frames, durations = [], []
    for i in range(im.n_frames):
        im.seek(i)
        frames.append(np.asarray(im.convert("RGBA")))
        durations.append(round(float(im.info.get("duration", 0))))
    return im.format, frames, durations, im.info.get("loop")


@pytest.mark.parametrize("fmt", ["GIF", "PNG", "WEBP"])
def test_every_frame_duration_loop_and_transparency_kept(tmp_path, fmt):
    src = make_animation(tmp_path / f"a.{EXT[fmt]}", fmt)
    assert is_animated(src) and frame_count(src) == 3
    out = tmp_path / "out"
    assert main(["upscale", str(src), "-o", str(out), "-m", "bicubic-x2", "-q"]) == 0
    got_fmt, frames, durations, loop = read_animation(out / f"a_x2.{EXT[fmt]}")
    assert got_fmt == fmt and len(frames) == 3
    assert durations == DURATIONS and loop == 0
    for i, (f, colour) in enumerate(zip(frames, COLOURS)):
        assert f.shape == (32, 48, 4)
        hole = f[10:18, 6 + 14 * i : 14 + 14 * i]  # inside the moved square, x2, away from its edges
        assert (hole[..., 3] == 0).all(), f"frame {i}: square not transparent"
        solid = f[24:, :]  # below every square: opaque, in this frame's colour
        assert (solid[..., 3] == 255).all()
        assert np.abs(solid[..., :3].astype(int) - colour).max() <= 8


@pytest.mark.parametrize(("fmt", "loop", "plays"), [("GIF", 2, 3), ("GIF", None, 1), ("PNG", 3, 3)])
def test_loop_counts_kept_and_converted(tmp_path, fmt, loop, plays):
    src = make_animation(tmp_path / f"a.{EXT[fmt]}", fmt, loop=loop)
    for ext in ("gif", "png", "webp"):
        out = tmp_path / f"o.{ext}"
        assert main(["upscale", str(src), "-o", str(out), "-m", "bicubic-x2", "-q"]) == 0
        got = read_animation(out)
        assert len(got[1]) == 3 and got[2] == DURATIONS
        # GIF counts repeats after the first play (none: plays once); APNG and WebP count plays
        want = (0 if plays == 0 else None if plays == 1 else plays - 1) if ext == "gif" else plays
        assert got[3] == want, (ext, got[3])


def test_frames_equal_the_image_upscale_of_each_frame(tmp_path):
    src = make_animation(tmp_path / "a.png", "PNG")
    up = Upscaler("bicubic-x2", device="cpu")
    from srlab.inference.animated import upscale_animation

    res = upscale_animation(up, src, tmp_path / "b.png", progress=False)
    assert res.frames == 3 and res.durations == DURATIONS and res.plays == 0 and res.transparent
    _, frames, _, _ = read_animation(tmp_path / "b.png")
    for f, frame in zip(frames, _frames()):
        ref = np.asarray(up(frame))
        assert np.array_equal(f, ref)  # APNG is lossless: exactly the still-image upscale


def test_still_gif_and_png_behave_as_before(tmp_path):
    a = np.random.default_rng(0).integers(0, 256, (10, 12, 3), dtype=np.uint8)
    PILImage.fromarray(a).save(tmp_path / "s.png")
    PILImage.fromarray(a).quantize(64).save(tmp_path / "g.gif")
    assert not is_animated(tmp_path / "s.png") and not is_animated(tmp_path / "g.gif")
    out = tmp_path / "o"
    assert (
        main(
            [
                "upscale",
                str(tmp_path / "s.png"),
                str(tmp_path / "g.gif"),
                "-o",
                str(out),
                "-m",
                "bicubic-x2",
                "-q",
            ]
        )
        == 0
    )
    assert sorted(p.name for p in out.iterdir()) == [
        "g_x2.png",
        "s_x2.png",
    ]  # a still GIF becomes PNG, as ever
    up = Upscaler("bicubic-x2", device="cpu")
    for name, src in (("s_x2.png", "s.png"), ("g_x2.png", "g.gif")):
        ref = up(read_image(tmp_path / src)).pixels
        assert np.array_equal(read_image(out / name).pixels, ref)


def test_read_image_says_it_reads_only_the_first_frame(tmp_path):
    src = make_animation(tmp_path / "a.gif", "GIF")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        img = read_image(src)
    assert img.info["n_frames"] == 3
    assert any("animated (3 frames); only the first frame is read" in str(w.message) for w in caught)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a still image: no warning
        PILImage.new("RGB", (4, 4)).save(tmp_path / "s.gif")
        assert "n_frames" not in read_image(tmp_path / "s.gif").info


def test_format_without_animation_is_refused_in_one_line(tmp_path, capsys):
    src = make_animation(tmp_path / "a.gif", "GIF")
    assert (
        main(["upscale", str(src), "-o", str(tmp_path / "o"), "-m", "bicubic-x2", "-q", "--ext", "jpg"]) == 1
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].endswith(
        "a.gif: is animated, and .jpg cannot hold an animation; write .gif, .png (APNG) or .webp"
    )
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").iterdir())


def test_single_output_file_and_no_overwrite(tmp_path):
    src = make_animation(tmp_path / "a.gif", "GIF")
    out = tmp_path / "big.webp"
    args = ["upscale", str(src), "-o", str(out), "-m", "bicubic-x2", "-q"]
    assert main(args) == 0
    assert read_animation(out)[0] == "WEBP" and len(read_animation(out)[1]) == 3
    before = out.read_bytes()
    assert main(args) == 1 and out.read_bytes() == before
    assert main([*args, "--skip-existing"]) == 0
    assert main([*args, "--force"]) == 0


def test_corrupt_later_frame_is_one_line(tmp_path, capsys):
    src = make_animation(tmp_path / "a.gif", "GIF")
    data = src.read_bytes()
    bad = tmp_path / "bad.gif"
    bad.write_bytes(data[: int(len(data) * 0.8)])  # cut inside the last frame
    rc = main(["upscale", str(bad), "-o", str(tmp_path / "o"), "-m", "bicubic-x2", "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and "Traceback" not in "\n".join(err)
    assert "bad.gif" in err[0]
