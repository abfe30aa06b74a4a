"""Rerunning `srlab upscale`: an output folder equal to the input folder, resuming with --skip-existing over
0-byte outputs, and the hidden temporary files a killed run left next to its outputs."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from srlab.cli import main


@pytest.fixture
def photos(tmp_path):
    d = tmp_path / "photos"
    d.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        Image.fromarray(rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)).save(d / f"{name}.png")
    return d


def _run(*argv):
    return main(["upscale", *map(str, argv), "-m", "bicubic-x2", "-q"])


def test_output_folder_equal_to_the_input_folder_leaves_earlier_outputs_alone(photos, capsys):
    assert _run(photos, "-o", photos) == 0
    assert sorted(p.name for p in photos.iterdir()) == ["a.png", "a_x2.png", "b.png", "b_x2.png"]
    capsys.readouterr()
    assert _run(photos, "-o", photos, "--skip-existing") == 0  # the originals are not failures
    assert "failed" not in capsys.readouterr().err
    assert _run(photos, "-o", photos, "--force") == 0
    assert sorted(p.name for p in photos.iterdir()) == ["a.png", "a_x2.png", "b.png", "b_x2.png"]
    assert Image.open(photos / "a_x2.png").size == (20, 24)


def test_skip_existing_makes_a_zero_byte_output_again(photos, tmp_path, capsys):
    out = tmp_path / "out"
    assert _run(photos, "-o", out) == 0
    (out / "a_x2.png").write_bytes(b"")  # what a crash between create and write leaves
    capsys.readouterr()
    assert main(["upscale", str(photos), "-o", str(out), "-m", "bicubic-x2", "--skip-existing"]) == 0
    assert "1 written, 1 skipped" in capsys.readouterr().err
    assert Image.open(out / "a_x2.png").size == (20, 24)


def test_a_killed_runs_hidden_temporary_files_are_removed(photos, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    stale = [out / ".a_x2.png.k3j9x_0q.part", out / ".b_x2.png.abcdefgh.tmp"]
    for p in stale:
        p.write_bytes(b"\x89PNG half")
    mine = [out / ".a_x2.png.notours", out / ".hidden.tmp", out / ".a_x2.png.abc.part"]  # not srlab's names
    for p in mine:
        p.write_bytes(b"user data")
    assert _run(photos, "-o", out) == 0
    assert not any(p.exists() for p in stale)
    assert all(p.read_bytes() == b"user data" for p in mine)
    # resuming over finished outputs cleans their leftovers too
    stale[0].write_bytes(b"half")
    assert _run(photos, "-o", out, "--skip-existing") == 0
    assert not stale[0].exists()
