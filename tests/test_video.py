"""Video through `srlab upscale` (srlab.inference.video): frames, timestamps, copied streams, atomic output.

Clips are made here with PyAV itself (H.264 + AAC at 10 fps); the unit tests use 1-2 s clips, the slow test
the issue's full 10 s 320x240 clip with bicubic and an SRCNN, in a subprocess whose peak RSS it reads.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av")

from srlab.cli import main  # noqa: E402
from srlab.imaging import io as imio  # noqa: E402
from srlab.inference import Upscaler  # noqa: E402
from srlab.inference.video import VIDEO_EXTENSIONS, upscale_video  # noqa: E402

FPS = 10


def make_clip(path: Path, seconds: float, *, size=(320, 240), audio: bool = True, fps: int = FPS) -> Path:
    """An H.264 clip of moving gradients (every frame different) with a 440 Hz AAC track."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.options = {"crf": "20", "preset": "ultrafast"}
        if audio:
            a = out.add_stream("aac", rate=16000)
            a.layout = "mono"
        for i in range(round(seconds * fps)):
            img = np.stack(
                [(xx * 255 // w + 9 * i) % 256, yy * 255 // h, ((xx + yy + 12 * i) // 3) % 256], -1
            )
            f = av.VideoFrame.from_ndarray(img.astype(np.uint8), format="rgb24")
            f.pts, f.time_base = i, Fraction(1, fps)
            out.mux(vs.encode(f))
        out.mux(vs.encode(None))
        if audio:
            t = np.arange(int(seconds * 16000)) / 16000
            sig = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            for k in range(0, len(sig), 1024):
                chunk = np.pad(sig[k : k + 1024], (0, max(0, k + 1024 - len(sig))))
                af = av.AudioFrame.from_ndarray(chunk[None], format="fltp", layout="mono")
                af.sample_rate, af.pts = 16000, k
                out.mux(a.encode(af))
            out.mux(a.encode(None))
    return path


def probe(path: Path) -> dict:
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(vs)]
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        pts = [float(f.pts * f.time_base) for f in c.decode(vs)]
        streams = [(s.type, s.codec_context.name) for s in c.streams]
        rate = vs.average_rate
    with av.open(str(path)) as c:
        audio = [bytes(p) for s in c.streams.audio for p in c.demux(s) if p.dts is not None]
    return {"frames": frames, "pts": pts, "streams": streams, "rate": rate, "audio": audio}


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clip") / "in.mp4", 1.0)


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("small") / "in.mp4", 0.5, size=(96, 64))


def _psnr(a, b) -> float:
    mse = np.mean((a.astype(np.float64) - b) ** 2)
    return float(10 * np.log10(255**2 / max(mse, 1e-12)))


def test_clip_keeps_frames_rate_duration_and_audio_bitstream(clip, tmp_path):
    out = tmp_path / "out.mp4"
    assert main(["upscale", str(clip), "-o", str(out), "-m", "bicubic-x2", "-q"]) == 0
    src, res = probe(clip), probe(out)
    assert len(res["frames"]) == len(src["frames"]) == 10
    assert res["frames"][0].shape == (480, 640, 3)
    assert res["rate"] == src["rate"] == FPS
    assert res["pts"] == pytest.approx(src["pts"], abs=1e-6)  # same timestamps, so the same duration
    assert ("audio", "aac") in res["streams"]
    assert res["audio"] == src["audio"]  # copied packet by packet, not re-encoded
    assert not [p.name for p in tmp_path.iterdir() if p.name != "out.mp4"]  # no temporary left


def test_frames_equal_the_image_upscale_of_each_frame(clip, tmp_path):
    out = tmp_path / "o.mkv"
    up = Upscaler("bicubic-x2", device="cpu")
    upscale_video(up, clip, out, progress=False)
    src, res = probe(clip)["frames"], probe(out)["frames"]
    ref = [up.upscale_image(imio.Image(pixels=f)).pixels for f in src]
    same = [_psnr(r, o) for r, o in zip(ref, res)]
    assert min(same) > 38, same  # x264 at crf 18 in yuv420p: the codec's loss only
    shifted = [_psnr(r, o) for r, o in zip(ref[1:], res)]
    assert max(shifted) < min(same) - 10  # and frame i is frame i, not a neighbour


def test_variable_frame_rate_timestamps_kept(tmp_path):
    src = tmp_path / "vfr.mkv"
    tb = Fraction(1, 1000)
    with av.open(str(src), "w") as o:
        vs = o.add_stream("libx264", rate=10)
        vs.width, vs.height, vs.pix_fmt = 32, 24, "yuv420p"
        vs.codec_context.time_base = tb
        for i, pts in enumerate([0, 100, 150, 400, 420]):
            f = av.VideoFrame.from_ndarray(np.full((24, 32, 3), 40 * i, np.uint8), format="rgb24")
            f.pts, f.time_base = pts, tb
            o.mux(vs.encode(f))
        o.mux(vs.encode(None))
    for ext in (".mkv", ".mp4"):
        out = tmp_path / f"o{ext}"
        upscale_video(Upscaler("bicubic-x2", device="cpu"), src, out, progress=False)
        assert probe(out)["pts"] == pytest.approx([0.0, 0.1, 0.15, 0.4, 0.42], abs=1e-3)


def test_display_rotation_kept(tmp_path):
    src = tmp_path / "phone.mp4"
    with av.open(str(src), "w") as o:
        vs = o.add_stream("libx264", rate=10)
        vs.width, vs.height, vs.pix_fmt = 32, 24, "yuv420p"
        vs.set_display_rotation(90)
        for i in range(3):
            f = av.VideoFrame.from_ndarray(np.full((24, 32, 3), 60 * i, np.uint8), format="rgb24")
            f.pts, f.time_base = i, Fraction(1, 10)
            o.mux(vs.encode(f))
        o.mux(vs.encode(None))
    out = tmp_path / "o.mp4"
    upscale_video(Upscaler("bicubic-x2", device="cpu"), src, out, progress=False)
    with av.open(str(out)) as c:
        frame = next(c.decode(video=0))
    assert (frame.rotation, frame.width, frame.height) == (90, 64, 48)


def _with_subtitles(clip: Path, tmp_path: Path) -> Path:
    srt = tmp_path / "s.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:00,200\nhello\n\n2\n00:00:00,200 --> 00:00:00,400\nworld\n")
    dst = tmp_path / "subs.mkv"
    with av.open(str(clip)) as a, av.open(str(srt)) as b, av.open(str(dst), "w") as o:
        # every stream is added before the first packet: muxing writes the header
        outs = {(c.name, s.index): o.add_stream_from_template(s) for c in (a, b) for s in c.streams}
        for c in (a, b):
            for p in c.demux():
                if p.dts is not None:
                    p.stream = outs[(c.name, p.stream.index)]
                    o.mux(p)
    return dst


def test_subtitles_copied_or_left_out_with_a_note(small, tmp_path, capsys):
    src = _with_subtitles(small, tmp_path)
    out = tmp_path / "out"
    assert main(["upscale", str(src), "-o", str(out / "a.mkv"), "-m", "bicubic-x2", "-q"]) == 0
    with av.open(str(out / "a.mkv")) as c:
        assert [s.type for s in c.streams] == ["video", "audio", "subtitle"]
        texts = [bytes(p) for p in c.demux(c.streams.subtitles[0]) if p.dts is not None]
    assert texts == [b"hello", b"world"]
    capsys.readouterr()
    assert main(["upscale", str(src), "-o", str(out / "b.mp4"), "-m", "bicubic-x2", "-q"]) == 0
    err = capsys.readouterr().err
    assert "subtitle stream #2 (srt) cannot be stored in .mp4; left out" in err
    assert [t for t, _ in probe(out / "b.mp4")["streams"]] == ["video", "audio"]


@pytest.mark.parametrize("exc", [KeyboardInterrupt, RuntimeError])
def test_interrupted_run_leaves_no_output(clip, tmp_path, monkeypatch, exc):
    calls = []
    real = Upscaler.upscale_image

    def failing(self, img, **kw):
        calls.append(1)
        if len(calls) == 6:
            raise exc("stop")
        return real(self, img, **kw)

    monkeypatch.setattr(Upscaler, "upscale_image", failing)
    out = tmp_path / "out"
    rc = main(["upscale", str(clip), "-o", str(out / "x.mp4"), "-m", "bicubic-x2", "-q"])
    assert rc == (130 if exc is KeyboardInterrupt else 1)
    assert len(calls) == 6
    assert not out.exists() or list(out.iterdir()) == []  # neither x.mp4 nor its temporary


def test_existing_output_is_kept_unless_forced(small, tmp_path):
    out = tmp_path / "x.mp4"
    out.write_bytes(b"keep me")
    args = ["upscale", str(small), "-o", str(out), "-m", "bicubic-x2", "-q"]
    assert main(args) == 1 and out.read_bytes() == b"keep me"
    assert main([*args, "--skip-existing"]) == 0 and out.read_bytes() == b"keep me"
    assert main([*args, "--force"]) == 0 and len(probe(out)["frames"]) == 5


def test_progress_bar_counts_frames(small, tmp_path, capsys):
    assert main(["upscale", str(small), "-o", str(tmp_path / "p.mp4"), "-m", "bicubic-x2"]) == 0
    out = capsys.readouterr()
    assert "5/5" in out.err and "frame/s" in out.err  # frames done of frames expected, and the rate
    assert "(192x128, 5 frames, 10 fps, copied audio aac)" in out.out


def test_folder_output_keeps_the_container_and_crf_sets_quality(small, tmp_path):
    out = tmp_path / "o"
    assert main(["upscale", str(small), "-o", str(out), "-m", "bicubic-x2", "-q", "--crf", "40"]) == 0
    low = (out / "in_x2.mp4").read_bytes()
    assert (
        main(["upscale", str(small), "-o", str(out), "-m", "bicubic-x2", "-q", "--crf", "12", "--force"]) == 0
    )
    high = (out / "in_x2.mp4").read_bytes()
    assert len(high) > 1.4 * len(low)  # tiny frames: the headers weigh
    assert hashlib.sha256(high).digest() != hashlib.sha256(low).digest()


def test_odd_output_size_is_cropped_to_even(tmp_path, capsys):
    src = make_clip(tmp_path / "odd.mp4", 0.5, size=(66, 50), audio=False)
    out = tmp_path / "o.mp4"
    assert main(["upscale", str(src), "-o", str(out), "-m", "bicubic-x2", "--outscale", "1.5", "-q"]) == 0
    assert probe(out)["frames"][0].shape == (74, 98, 3)  # 99x75 cropped for 4:2:0
    assert "99x75 cropped to 98x74" in capsys.readouterr().err


def test_bad_codec_crf_and_input_are_one_line(clip, tmp_path, capsys):
    cases = [
        (["--codec", "nope"], 1, "--codec nope: not a video encoder"),
        (["--crf", "99"], 2, "--crf must be 0..63"),
        (["--codec", "libx264", "-o", str(tmp_path / "w.webm")], 1, ".webm cannot hold it"),
    ]
    for extra, rc, text in cases:
        args = ["upscale", str(clip), "-o", str(tmp_path / "x.mkv"), "-m", "bicubic-x2", "-q", *extra]
        assert main(args) == rc
        err = capsys.readouterr().err.strip().splitlines()
        assert any(text in line for line in err), err
        assert not any("Traceback" in line for line in err)
    fake = tmp_path / "fake.mp4"
    fake.write_text("not a video\n")
    assert main(["upscale", str(fake), "-o", str(tmp_path / "f"), "-m", "bicubic-x2", "-q"]) == 1
    assert "fake.mp4: not a readable video" in capsys.readouterr().err
    assert not (tmp_path / "f").exists() or not list((tmp_path / "f").iterdir())


def test_webm_defaults_to_vp9_and_drops_aac_with_a_note(tmp_path, capsys):
    src = make_clip(tmp_path / "s.mp4", 0.5, size=(64, 48))
    out = tmp_path / "s.webm"
    assert main(["upscale", str(src), "-o", str(out), "-m", "bicubic-x2", "-q"]) == 0
    assert probe(out)["streams"] == [("video", "vp9")]
    assert "audio stream #1 (aac) cannot be stored in .webm" in capsys.readouterr().err


def test_missing_pyav_is_one_line(clip, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "av", None)
    assert main(["upscale", str(clip), "-o", str(tmp_path / "x.mp4"), "-m", "bicubic-x2", "-q"]) == 1
    assert "video needs PyAV: pip install 'srlab[video]'" in capsys.readouterr().err


def test_cli_media_extensions_match_the_library():
    from srlab.cli.upscale import MEDIA_EXTS

    assert {e.lstrip(".") for e in VIDEO_EXTENSIONS} <= set(MEDIA_EXTS)


_RUN = """
import json, resource, sys, time
from srlab.cli import main
t = time.perf_counter()
rc = main(sys.argv[1:])
ru = resource.getrusage(resource.RUSAGE_SELF)
# VmHWM, not ru_maxrss: Linux carries ru_maxrss across execve, so a child forked from a large pytest
# process would report the parent's size; VmHWM belongs to this process's own address space.
hwm = next(int(ln.split()[1]) for ln in open("/proc/self/status") if ln.startswith("VmHWM"))
print(json.dumps({"rc": rc, "wall_s": time.perf_counter() - t, "cpu_s": ru.ru_utime + ru.ru_stime,
                  "peak_rss_mb": hwm / 1024}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("model", ["bicubic-x2", "srcnn"])
def test_ten_second_clip_done_when(tmp_path_factory, tmp_path, model):
    """The issue's clip: 10 s 320x240 H.264 + AAC, x2: frame count, fps, duration +-1 frame, audio, RSS < 1 GB."""
    src = tmp_path_factory.getbasetemp() / "ten_s.mp4"
    if not src.exists():
        make_clip(src, 10.0)
    if model == "srcnn":  # an untrained SRCNN 9-5-5 on Y: the same work per frame as a trained one
        from srlab.models.registry import build_model
        from srlab.weights.io import save_model

        net, _ = build_model("srcnn-955-y-x2")
        model = str(save_model(tmp_path / "srcnn.safetensors", net, metadata={"recipe": "test"}))
    out = tmp_path / "out.mp4"
    cmd = [sys.executable, "-c", _RUN, "upscale", str(src), "-o", str(out), "-m", model, "-q"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    stats = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"{Path(model).name}: {stats}")
    assert stats["rc"] == 0
    assert stats["peak_rss_mb"] < 1024
    with av.open(str(src)) as a, av.open(str(out)) as b:
        va, vb = a.streams.video[0], b.streams.video[0]
        na, nb = sum(1 for _ in a.decode(va)), sum(1 for _ in b.decode(vb))
        assert na == nb == 100
        assert vb.average_rate == va.average_rate == FPS
        dur = lambda s: float(s.duration * s.time_base)  # noqa: E731
        assert abs(dur(vb) - dur(va)) <= 1 / FPS
        assert (vb.codec_context.width, vb.codec_context.height) == (640, 480)
        assert [s.codec_context.name for s in b.streams.audio] == ["aac"]
