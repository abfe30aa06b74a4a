"""A truncated video: the frames that decode are upscaled, and the missing ones are said (a warning line)
and make the exit status non-zero, instead of half a film with exit 0."""

from __future__ import annotations

import pytest

av = pytest.importorskip("av")

from srlab.cli import main  # noqa: E402
from test_video import make_clip  # noqa: E402


def _frames(path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


def test_a_truncated_mkv_is_reported_and_fails(tmp_path, capsys):
    src = make_clip(tmp_path / "clip.mkv", 4.0, size=(48, 32), audio=False)
    whole = _frames(src)
    data = src.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) // 2])
    out = tmp_path / "o"
    rc = main(["upscale", str(cut), "-o", str(out), "-m", "bicubic-x2", "-q"])
    err = capsys.readouterr().err
    assert rc == 1, err
    assert "frames could be decoded (the file looks truncated)" in err and f"of {whole} frames" in err
    assert "frame(s) missing from" in err
    made = out / "cut_x2.mkv"
    assert 0 < _frames(made) < whole  # what could be decoded is kept


def test_a_whole_video_is_not_called_truncated(tmp_path, capsys):
    src = make_clip(tmp_path / "clip.mkv", 2.0, size=(48, 32), audio=False)
    assert main(["upscale", str(src), "-o", str(tmp_path / "o"), "-m", "bicubic-x2", "-q"]) == 0
    assert "truncated" not in capsys.readouterr().err
