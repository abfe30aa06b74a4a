"""Rough edges of `srlab upscale` a new user hits: a tile overlap below the model's receptive radius is
said, videos are counted as videos, and --json prints a machine-readable summary."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from srlab.cli import main


@pytest.fixture
def pics(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    rng = np.random.default_rng(3)
    for name in ("a", "b"):
        Image.fromarray(rng.integers(0, 256, (40, 36, 3), dtype=np.uint8)).save(d / f"{name}.png")
    return d


@pytest.fixture
def srcnn(tmp_path):
    import torch

    from srlab.models.registry import build_model
    from srlab.weights.io import save_model

    torch.manual_seed(0)
    net, desc = build_model("srcnn", scale=2, n1=4, n2=2, f1=9, f2=1, f3=5)
    return save_model(tmp_path / "srcnn.safetensors", net), desc.receptive_radius


def test_a_tile_overlap_below_the_receptive_radius_is_said(pics, tmp_path, srcnn, capsys):
    path, radius = srcnn
    cmd = ["upscale", str(pics), "-o", str(tmp_path / "o"), "-m", str(path), "--tile", "16"]
    assert main([*cmd, "--tile-overlap", "2"]) == 0
    err = capsys.readouterr().err
    assert f"note: tile overlap 2 is below srcnn's receptive radius {radius}" in err
    assert main([*cmd, "--tile-overlap", str(radius), "-o", str(tmp_path / "o2")]) == 0
    assert "receptive radius" not in capsys.readouterr().err


def test_json_summary(pics, tmp_path, capsys):
    (pics / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    rc = main(["upscale", str(pics), "-o", str(tmp_path / "o"), "-m", "bicubic-x2", "--json"])
    out = capsys.readouterr().out
    doc = json.loads(out)  # stdout holds the summary only
    assert rc == 1 and doc["counts"] == {"written": 2, "skipped": 0, "failed": 1}
    by = {r["input"].rsplit("/", 1)[-1]: r for r in doc["files"]}
    assert by["a.png"]["status"] == "written" and by["a.png"]["output"].endswith("a_x2.png")
    assert (by["a.png"]["width"], by["a.png"]["height"]) == (72, 80)
    assert by["broken.png"]["status"] == "failed" and "broken.png" in by["broken.png"]["error"]
    rc = main(
        [
            "upscale",
            str(pics / "a.png"),
            "-o",
            str(tmp_path / "o"),
            "-m",
            "bicubic-x2",
            "--json",
            "--skip-existing",
        ]
    )
    assert rc == 0 and json.loads(capsys.readouterr().out)["files"][0]["status"] == "skipped"


def test_videos_are_counted_as_videos(pics, tmp_path, capsys):
    av = pytest.importorskip("av")  # noqa: F841
    from test_video import make_clip

    clip = make_clip(tmp_path / "clip.mp4", 0.5, size=(32, 24), audio=False)
    assert main(["upscale", str(pics), str(clip), "-o", str(tmp_path / "o"), "-m", "bicubic-x2"]) == 0
    assert "srlab upscale: 2 image(s) and 1 video(s) with" in capsys.readouterr().err


def test_video_progress_in_a_log_is_periodic_lines_not_bar_redraws(tmp_path, capsys):
    pytest.importorskip("av")
    from test_video import make_clip

    clip = make_clip(tmp_path / "clip.mp4", 3.0, size=(32, 24), audio=False)  # 30 frames
    assert main(["upscale", str(clip), "-o", str(tmp_path / "o"), "-m", "bicubic-x2"]) == 0
    err = capsys.readouterr().err  # not a terminal, as a log file is not
    assert "\r" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("clip.mp4:")]
    assert len(lines) == 1 and "30/30 frames (100%)" in lines[0] and "done in" in lines[0]


def test_periodic_lines_are_written_at_most_every_interval():
    import io

    from srlab.inference.progress import PeriodicLines, frame_bar

    buf = io.StringIO()
    bar = PeriodicLines(100, "x", "frame", 3600.0, buf)
    for _ in range(100):
        bar.update()
    bar.close()
    assert buf.getvalue().count("\n") == 1  # the end line only
    buf = io.StringIO()
    bar = frame_bar(4, "y", enabled=True, interval=0.0, stream=buf)
    for _ in range(4):
        bar.update()
    bar.close()
    assert buf.getvalue().splitlines()[0].startswith("y: 1/4 frames (25%)") and "\r" not in buf.getvalue()
