"""`srlab upscale` end to end: mixed good/broken folders, no overwrites, exit codes, output naming."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from srlab.cli import main
from srlab.imaging.io import read_image, write_image

RNG = np.random.default_rng(3)


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture()
def mixed(tmp_path) -> Path:
    d = tmp_path / "in"
    d.mkdir()
    PILImage.fromarray(RNG.integers(0, 256, (10, 12, 3), dtype=np.uint8)).save(d / "rgb.png")
    PILImage.fromarray(RNG.integers(0, 256, (9, 7), dtype=np.uint8)).save(d / "gray.png")
    PILImage.fromarray(RNG.integers(0, 256, (8, 6, 4), dtype=np.uint8)).save(d / "rgba.png")
    write_image(d / "deep.png", RNG.integers(0, 65536, (7, 5, 3), dtype=np.uint16))
    PILImage.fromarray(RNG.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(d / "photo.jpg", quality=90)
    good = (d / "rgb.png").read_bytes()
    (d / "truncated.png").write_bytes(good[: len(good) // 2])
    (d / "empty.png").write_bytes(b"")
    (d / "notes.png").write_text("this is text, not a picture\n")
    (d / "README.txt").write_text("not an image extension: ignored in folders\n")
    return d


GOOD = {  # name -> (output name, (h, w), channels, alpha, bit depth)
    "rgb.png": ("rgb_x2.png", (20, 24), 3, False, 8),
    "gray.png": ("gray_x2.png", (18, 14), 1, False, 8),
    "rgba.png": ("rgba_x2.png", (16, 12), 3, True, 8),
    "deep.png": ("deep_x2.png", (14, 10), 3, False, 16),
    "photo.jpg": ("photo_x2.jpg", (32, 32), 3, False, 8),
}
BROKEN = {"truncated.png": "truncated", "empty.png": "empty", "notes.png": "not an image"}


def test_mixed_folder(mixed, tmp_path, capsys):
    before = _digest(mixed)
    out = tmp_path / "out"
    rc = main(["upscale", str(mixed), "-o", str(out), "--model", "bicubic-x2"])
    cap = capsys.readouterr()
    assert rc == 1
    assert _digest(mixed) == before  # inputs byte-identical, nothing added next to them
    assert sorted(p.name for p in out.iterdir()) == sorted(v[0] for v in GOOD.values())
    for name, (oname, size, ch, has_alpha, depth) in GOOD.items():
        img = read_image(out / oname)
        assert img.pixels.shape == (*size, ch), name
        assert (img.alpha is not None) == has_alpha, name
        assert img.bit_depth == depth, name
        src = read_image(mixed / name)
        if name != "photo.jpg":  # bicubic x2 of the input (exact model): the mean colour is kept
            assert abs(img.pixels.mean() - src.pixels.mean()) < 0.05 * src.pixels.mean(), name
    lines = cap.err.splitlines()
    for name, reason in BROKEN.items():
        hits = [ln for ln in lines if name in ln]
        assert len(hits) == 1, (name, hits)
        assert reason in hits[0] and str(mixed / name) in hits[0]
    assert "5 written, 3 failed" in cap.err
    assert not any("Traceback" in ln for ln in lines)
    assert sum(" -> " in ln for ln in cap.out.splitlines()) == 5


def test_all_good_exit_zero_and_no_overwrite_without_force(tmp_path, capsys):
    src = tmp_path / "a.png"
    PILImage.fromarray(RNG.integers(0, 256, (6, 5, 3), dtype=np.uint8)).save(src)
    out = tmp_path / "o"
    assert main(["upscale", str(src), "-o", str(out), "-m", "bicubic-x2", "-q"]) == 0
    target = out / "a_x2.png"
    first = target.read_bytes()
    target.write_bytes(b"keep me")
    rc = main(["upscale", str(src), "-o", str(out), "-m", "bicubic-x2", "-q"])
    err = capsys.readouterr().err
    assert rc == 1 and "already exists" in err and "--force" in err
    assert target.read_bytes() == b"keep me"
    assert main(["upscale", str(src), "-o", str(out), "-m", "bicubic-x2", "-q", "--force"]) == 0
    assert target.read_bytes() == first


def test_never_overwrites_an_input_even_with_force(tmp_path, capsys):
    d = tmp_path / "d"
    d.mkdir()
    PILImage.fromarray(RNG.integers(0, 256, (6, 5, 3), dtype=np.uint8)).save(d / "a.png")
    PILImage.fromarray(RNG.integers(0, 256, (6, 5, 3), dtype=np.uint8)).save(d / "a_x2.png")
    before = _digest(d)
    # same folder, empty suffix: the output *is* the input
    rc = main(
        ["upscale", str(d / "a.png"), "-o", str(d), "--suffix", "", "--force", "-m", "bicubic-x2", "-q"]
    )
    assert rc == 1 and "overwrite an input" in capsys.readouterr().err
    # a.png -> a_x2.png: listed in the folder too, but it is a.png's output (an earlier run's), so it is
    # not upscaled again, and --force replaces it as the output it is; a.png itself is never touched
    rc = main(["upscale", str(d), "-o", str(d), "--force", "-m", "bicubic-x2", "-q"])
    assert rc == 0
    assert sorted(_digest(d)) == ["a.png", "a_x2.png"] and _digest(d)["a.png"] == before["a.png"]
    assert PILImage.open(d / "a_x2.png").size == (10, 12)


def test_single_file_output_globs_and_outscale(tmp_path, capsys):
    d = tmp_path / "g"
    d.mkdir()
    for i in range(3):
        PILImage.fromarray(RNG.integers(0, 256, (8, 10, 3), dtype=np.uint8)).save(d / f"img{i}.png")
    one = tmp_path / "single.jpg"
    assert (
        main(["upscale", str(d / "img0.png"), "-o", str(one), "-m", "bicubic-x2", "-q", "--outscale", "3"])
        == 0
    )
    assert read_image(one).pixels.shape == (24, 30, 3)
    out = tmp_path / "globbed"
    rc = main(["upscale", str(d / "img[12].png"), "-o", str(out), "-m", "bicubic-x2", "-q", "--ext", "webp"])
    assert rc == 0 and sorted(p.name for p in out.iterdir()) == ["img1_x2.webp", "img2_x2.webp"]
    rc = main(["upscale", str(d / "nothing*.png"), "-o", str(out), "-m", "bicubic-x2", "-q"])
    err = capsys.readouterr().err
    assert rc == 1 and "no file matches" in err


def test_usage_errors_exit_2(tmp_path, capsys):
    src = tmp_path / "a.png"
    PILImage.fromarray(np.zeros((4, 4, 3), np.uint8)).save(src)
    with pytest.raises(SystemExit) as ei:
        main(["upscale", str(src)])  # no -o
    assert ei.value.code == 2
    capsys.readouterr()
    assert main(["upscale", str(src), "-o", str(tmp_path / "o"), "-m", "bicubic-x2", "--outscale", "-1"]) == 2
    err = capsys.readouterr().err
    assert "outscale" in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_saved_srcnn_weights_file(tmp_path):
    from srlab.models.registry import build_model
    from srlab.weights.io import save_model

    torch.manual_seed(0)
    m, _ = build_model("srcnn", scale=2, n1=8, n2=4)
    torch.nn.init.normal_(m.conv3.weight, std=0.05)
    wpath = save_model(tmp_path / "tiny.safetensors", m, metadata={"recipe": "test"})
    src = tmp_path / "a.png"
    a = RNG.integers(0, 256, (12, 10, 3), dtype=np.uint8)
    PILImage.fromarray(a).save(src)
    o1, o2 = tmp_path / "m", tmp_path / "b"
    assert (
        main(
            ["upscale", str(src), "-o", str(o1), "-m", str(wpath), "-q", "--tile", "6", "--tile-overlap", "7"]
        )
        == 0
    )
    assert main(["upscale", str(src), "-o", str(o2), "-m", str(wpath), "-q", "--tile", "0"]) == 0
    tiled, whole = read_image(o1 / "a_x2.png").pixels, read_image(o2 / "a_x2.png").pixels
    assert tiled.shape == (24, 20, 3)
    assert np.abs(tiled.astype(int) - whole).max() <= 1  # overlap 7 >= SRCNN x2 radius


@pytest.mark.slow
def test_subprocess_exit_status(tmp_path):
    d = tmp_path / "s"
    d.mkdir()
    PILImage.fromarray(np.zeros((4, 4, 3), np.uint8)).save(d / "ok.png")
    (d / "bad.png").write_bytes(b"")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "srlab",
            "upscale",
            str(d),
            "-o",
            str(tmp_path / "so"),
            "-m",
            "bicubic-x2",
            "-q",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert r.returncode == 1, r.stderr
    assert (tmp_path / "so" / "ok_x2.png").is_file()
    assert [ln for ln in r.stderr.splitlines() if "bad.png" in ln] == [
        f"srlab upscale: {d / 'bad.png'}: empty file (0 bytes); re-export or re-download it"
    ]


# ------------------------------------------------------------------------ output paths, full disks, odd options


def _two_inputs(tmp_path) -> list[str]:
    d = tmp_path / "in2"
    d.mkdir()
    for name in ("a.png", "b.png"):
        PILImage.fromarray(RNG.integers(0, 256, (6, 5, 3), dtype=np.uint8)).save(d / name)
    return [str(d / "a.png"), str(d / "b.png")]


def _one_error_line(err: str, *needles: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, lines
    assert "Traceback" not in err and all(n in lines[0] for n in needles), lines[0]
    return lines[0]


def test_output_paths_that_cannot_be_folders_are_refused_up_front(tmp_path, capsys):
    inputs = _two_inputs(tmp_path)
    existing = tmp_path / "taken.png"
    existing.write_bytes(b"not a folder")
    rc = main(["upscale", *inputs, "-o", str(existing), "-m", "bicubic-x2", "-q"])
    _one_error_line(capsys.readouterr().err, str(existing), "existing file", "folder")
    assert rc == 2 and existing.read_bytes() == b"not a folder"
    for out in (existing / "sub", existing / "sub" / "deeper", existing / "one.png"):  # under a regular file
        args = inputs if out.suffix != ".png" else inputs[:1]
        rc = main(["upscale", *args, "-o", str(out), "-m", "bicubic-x2", "-q"])
        _one_error_line(capsys.readouterr().err, str(out), f"{existing} is a file")
        assert rc == 2
    # a missing parent is simply created
    fresh = tmp_path / "new" / "deep" / "out"
    assert main(["upscale", *inputs, "-o", str(fresh), "-m", "bicubic-x2", "-q"]) == 0
    assert sorted(p.name for p in fresh.iterdir()) == ["a_x2.png", "b_x2.png"]


def test_a_full_disk_fails_one_file_and_the_batch_goes_on(tmp_path, capsys, monkeypatch):
    import errno

    from srlab.imaging import io as imio

    inputs = _two_inputs(tmp_path)
    real = imio._atomic_write
    calls = []

    def full_once(p, write, overwrite):
        calls.append(p.name)
        if len(calls) == 1:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(p, write, overwrite)

    monkeypatch.setattr(imio, "_atomic_write", full_once)
    out = tmp_path / "o"
    rc = main(["upscale", *inputs, "-o", str(out), "-m", "bicubic-x2", "-q"])
    err = capsys.readouterr().err
    assert rc == 1 and calls == ["a_x2.png", "b_x2.png"]
    lines = err.splitlines()
    assert lines[0] == (
        f"srlab upscale: {out / 'a_x2.png'}: cannot write (No space left on device); "
        "free disk space or write to another disk"
    )
    assert lines[1:] == ["srlab upscale: 1 written, 1 failed"]
    assert sorted(p.name for p in out.iterdir()) == ["b_x2.png"]  # no partial a_x2.png, no temporary


def test_a_real_write_error_is_one_line(tmp_path, capsys):
    if os.geteuid() == 0:
        pytest.skip("root can write into a read-only folder")
    inputs = _two_inputs(tmp_path)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        rc = main(["upscale", *inputs, "-o", str(ro), "-m", "bicubic-x2", "-q"])
    finally:
        ro.chmod(0o700)
    err = capsys.readouterr().err
    assert rc == 1 and "Permission denied" in err and "Traceback" not in err
    assert len(err.splitlines()) == 3


@pytest.mark.parametrize("suffix", ["/../x", "..", "_x2/..", "a/b", "a\\b", "../../escape"])
def test_suffix_cannot_leave_the_output_folder(tmp_path, capsys, suffix):
    inputs = _two_inputs(tmp_path)
    out = tmp_path / "box" / "o"
    rc = main(["upscale", *inputs, "-o", str(out), "--suffix", suffix, "-m", "bicubic-x2", "-q"])
    _one_error_line(capsys.readouterr().err, "--suffix", "path separators")
    assert rc == 2
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()) == [
        "in2/a.png",
        "in2/b.png",
    ]
    assert main(["upscale", *inputs, "-o", str(out), "--suffix", "_big.v2", "-m", "bicubic-x2", "-q"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a_big.v2.png", "b_big.v2.png"]


def test_huge_outscale_is_refused_before_allocating(tmp_path, capsys, monkeypatch):
    import srlab.inference.upscaler as upmod

    monkeypatch.setattr(upmod, "available_memory", lambda: 2 * 10**8)
    inputs = _two_inputs(tmp_path)
    out = tmp_path / "o"
    rc = main(["upscale", inputs[0], "-o", str(out), "-m", "bicubic-x2", "-q", "--outscale", "1000"])
    lines = capsys.readouterr().err.splitlines()
    # 5 x 6 -> 5000 x 6000 x 3: 4 bytes a value for the resized copy, 1 for the 8-bit result, 4 a pixel for
    # Pillow's copy when it is encoded
    assert lines == [
        f"srlab upscale: {inputs[0]}: a 5x6 image upscaled to 5000x6000 needs about 0.6 GB of memory, "
        "more than the 0.2 GB available; use a smaller --outscale or split the image",
        "srlab upscale: 0 written, 1 failed",
    ]
    assert rc == 1 and not out.exists()
    rc = main(["upscale", inputs[0], "-o", str(out), "-m", "bicubic-x2", "-q", "--outscale", "inf"])
    _one_error_line(capsys.readouterr().err, "--outscale must be a number > 0, not inf")
    assert rc == 2


# ------------------------------------------------------------------------ srlab export: output paths


def test_export_output_errors_are_one_line(tmp_path, capsys, monkeypatch):
    import errno

    import srlab.export as export_mod
    from srlab.models.registry import build_model
    from srlab.weights.io import save_model

    m, _ = build_model("srcnn", scale=2, n1=4, n2=2)
    weights = str(save_model(tmp_path / "tiny.safetensors", m))
    folder = tmp_path / "exports"
    folder.mkdir()
    rc = main(["export", weights, "-o", str(folder), "--force"])
    _one_error_line(capsys.readouterr().err, str(folder), "is a folder", str(folder / "model.onnx"))
    assert rc == 2 and folder.is_dir() and not any(folder.iterdir())
    blocker = tmp_path / "file"
    blocker.write_text("x")
    rc = main(["export", weights, "-o", str(blocker / "m.onnx")])
    _one_error_line(capsys.readouterr().err, str(blocker / "m.onnx"), f"{blocker} is a file")
    assert rc == 2

    def no_space(*a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(export_mod, "export_onnx", no_space)
    rc = main(["export", weights, "-o", str(folder / "m.onnx")])
    _one_error_line(
        capsys.readouterr().err, str(folder / "m.onnx"), "No space left on device", "free disk space"
    )
    assert rc == 2
