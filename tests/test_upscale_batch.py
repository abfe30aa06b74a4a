"""`srlab upscale` on folders: --recursive mirrors the tree, ** globs mirror below their fixed folder,
--skip-existing resumes a batch, --quality sets JPEG/WebP quality."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from srlab.cli import main
from srlab.imaging.io import read_image

RNG = np.random.default_rng(11)
TREE = {  # input -> output under -o (bicubic-x2, default suffix)
    "top.png": "top_x2.png",
    "l1/a.jpg": "l1/a_x2.jpg",
    "l1/l2/b.png": "l1/l2/b_x2.png",
    "l1/l2/l3/c.png": "l1/l2/l3/c_x2.png",
    "l1/l2/l3/d.webp": "l1/l2/l3/d_x2.webp",
    "other/e.bmp": "other/e_x2.bmp",
}


def _make_tree(root: Path) -> None:
    for rel in TREE:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(RNG.integers(0, 256, (7, 9, 3), dtype=np.uint8)).save(p)
    (root / ".cache").mkdir()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(root / ".cache" / "hidden.png")
    (root / "l1" / "notes.txt").write_text("not an image")


def _digests(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
        if p.is_file()
    }


def test_recursive_mirrors_the_tree_and_a_rerun_skips_everything(tmp_path, capsys):
    src, out = tmp_path / "in", tmp_path / "out"
    _make_tree(src)
    before = _digests(src)
    cmd = ["upscale", str(src), "-o", str(out), "-m", "bicubic-x2", "--recursive", "--skip-existing"]
    assert main(cmd) == 0
    capsys.readouterr()
    assert sorted(_digests(out)) == sorted(TREE.values())  # the tree, and nothing from hidden folders
    for orel in TREE.values():
        assert read_image(out / orel).pixels.shape == (14, 18, 3), orel
    assert _digests(src) == before
    first = _digests(out)
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    assert main(cmd) == 0
    err = capsys.readouterr().err
    assert f"0 written, {len(TREE)} skipped" in err and "failed" not in err
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == stamps  # not even rewritten
    # half done: the missing outputs are made, the others kept
    (out / "l1/l2/l3/c_x2.png").unlink()
    (out / "top_x2.png").unlink()
    assert main(cmd) == 0
    assert f"2 written, {len(TREE) - 2} skipped" in capsys.readouterr().err
    assert _digests(out) == first
    # without --skip-existing an existing output is still an error, and is kept
    rc = main(cmd[:-1])
    err = capsys.readouterr().err
    assert rc == 1 and "already exists" in err and "--skip-existing" in err and f"{len(TREE)} failed" in err
    assert _digests(out) == first


def test_without_recursive_sub_folders_are_left_out_with_a_note(tmp_path, capsys):
    src, out = tmp_path / "in", tmp_path / "out"
    _make_tree(src)
    assert main(["upscale", str(src), "-o", str(out), "-m", "bicubic-x2"]) == 0
    assert sorted(_digests(out)) == ["top_x2.png"]
    assert "2 sub-folder(s) left out; --recursive" in capsys.readouterr().err
    empty = tmp_path / "only_subs"
    (empty / "deep").mkdir(parents=True)
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(empty / "deep" / "x.png")
    assert main(["upscale", str(empty), "-o", str(out), "-m", "bicubic-x2"]) == 1
    assert "sub-folders need --recursive" in capsys.readouterr().err


def test_a_double_star_glob_mirrors_below_its_fixed_folder(tmp_path, capsys):
    src, out = tmp_path / "in", tmp_path / "out"
    _make_tree(src)
    assert main(["upscale", f"{src}/l1/**/*.png", "-o", str(out), "-m", "bicubic-x2", "-q"]) == 0
    assert sorted(_digests(out)) == ["l2/b_x2.png", "l2/l3/c_x2.png"]
    # a glob over folders names the tree below its fixed part too
    out2 = tmp_path / "out2"
    assert (
        main(["upscale", f"{src}/*/*.jpg", f"{src}/top.png", "-o", str(out2), "-m", "bicubic-x2", "-q"]) == 0
    )
    assert sorted(_digests(out2)) == ["l1/a_x2.jpg", "top_x2.png"]


def test_quality_sets_jpeg_and_webp_quality(tmp_path, capsys):
    src = tmp_path / "photo.png"
    yy, xx = np.mgrid[0:48, 0:48]
    smooth = np.stack([yy * 5, xx * 5, (yy + xx) * 2], axis=2).astype(np.uint8)
    Image.fromarray(np.clip(smooth + RNG.integers(0, 40, smooth.shape), 0, 255).astype(np.uint8)).save(src)
    sizes = {}
    for ext in ("jpg", "webp"):
        for q in (30, 95):
            dst = tmp_path / f"q{q}.{ext}"
            assert (
                main(["upscale", str(src), "-o", str(dst), "-m", "bicubic-x2", "-q", "--quality", str(q)])
                == 0
            )
            sizes[ext, q] = dst.stat().st_size
        assert sizes[ext, 30] < 0.7 * sizes[ext, 95], sizes
    default = tmp_path / "default.jpg"
    assert main(["upscale", str(src), "-o", str(default), "-m", "bicubic-x2", "-q"]) == 0
    assert default.read_bytes() == (tmp_path / "q95.jpg").read_bytes()  # 95 stays the default


@pytest.mark.parametrize(
    "extra,needle",
    [
        (["--quality", "0"], "--quality must be 1..100"),
        (["--quality", "101"], "--quality must be 1..100"),
        (["--skip-existing", "--force"], "pass one"),
        (["--shard", "3/2"], "outside 1..2"),
    ],
)
def test_bad_batch_options_are_usage_errors(tmp_path, capsys, extra, needle):
    src = tmp_path / "a.png"
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(src)
    assert main(["upscale", str(src), "-o", str(tmp_path / "o"), "-m", "bicubic-x2", *extra]) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_an_output_folder_inside_the_input_tree_is_not_read_back(tmp_path, capsys):
    src = tmp_path / "in"
    _make_tree(src)
    cmd = ["upscale", str(src), "-o", str(src / "big"), "-m", "bicubic-x2", "-r", "--skip-existing"]
    assert main(cmd) == 0
    made = sorted(_digests(src / "big"))
    assert made == sorted(TREE.values())
    capsys.readouterr()
    assert main(cmd) == 0  # the rerun skips everything and does not upscale the outputs themselves
    err = capsys.readouterr().err
    assert f"0 written, {len(TREE)} skipped" in err and f"{len(TREE)} file(s) inside -o" in err
    assert sorted(_digests(src / "big")) == made


def test_skip_existing_still_reports_two_inputs_with_one_output(tmp_path, capsys):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for name in ("a.png", "a.bmp"):
        Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(src / name)
    cmd = ["upscale", str(src), "-o", str(out), "-m", "bicubic-x2", "--ext", "png", "--skip-existing", "-q"]
    for _ in range(2):  # first run and rerun alike: one written or skipped, the clash named
        assert main(cmd) == 1
        assert "is also the output of" in capsys.readouterr().err
