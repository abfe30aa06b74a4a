"""`srlab eval --sr DIR --gt DIR`: scoring images made elsewhere reproduces the direct evaluation, and every
file that cannot be paired or scored is one line (and a non-zero exit unless --allow-missing)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from srlab.cli import main
from srlab.eval.folders import match_files

COLS = ("psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb")


def _rows(out: Path) -> dict[tuple[str, str], dict]:
    doc = json.loads((out / "results.json").read_text())
    return {(r["model"], r["image"]): r for r in doc["rows"]}


def test_scoring_srlab_outputs_reproduces_the_direct_eval(data_root, tmp_path, capsys):
    direct = tmp_path / "direct"
    base = ["eval", "--data-root", str(data_root), "--scale", "2", "--no-progress"]
    assert (
        main(
            [
                *base,
                "--models",
                "bicubic,srcnn-x2",
                "--datasets",
                "Set5",
                "--save-images",
                "--out",
                str(direct),
            ]
        )
        == 0
    )
    ref = _rows(direct)
    for model in ("bicubic", "srcnn-x2"):
        sr = direct / "images" / model / "Set5" / "x2"
        assert sorted(p.name for p in sr.iterdir()) == [
            f"{n}.png" for n in ("baby", "bird", "butterfly", "head", "woman")
        ]
        out = tmp_path / f"folder-{model}"
        assert main([*base, "--sr", str(sr), "--gt", "Set5", "--out", str(out)]) == 0
        got = _rows(out)
        assert set(got) == {k for k in ref if k[0] == model}  # labelled by the model folder of --save-images
        # bicubic: every column to 1e-6 dB; SRCNN runs on Y and the direct eval scores its own Y output
        # (as the papers did), while its saved RGB file is scored on the Y of the RGB: RGB columns only
        cols = COLS if model == "bicubic" else ("psnr_rgb", "ssim_rgb")
        for key, row in got.items():
            for c in cols:
                assert row[c] == pytest.approx(ref[key][c], abs=1e-6), (key, c)
            if model == "srcnn-x2":
                assert abs(row["psnr_y"] - ref[key]["psnr_y"]) < 0.1
        md = (out / "results.md").read_text()
        assert "SR images" in md and str(sr.resolve()) in md


def test_study_protocol_saves_16_bit_and_reproduces_its_unrounded_numbers(data_root, tmp_path):
    direct = tmp_path / "direct"
    base = ["eval", "--data-root", str(data_root), "--scale", "2", "--protocol", "study", "--no-progress"]
    model = "srcnn-study-x2-recipe"
    assert main([*base, "--models", model, "--datasets", "Set5", "--save-images", "--out", str(direct)]) == 0
    sr = direct / "images" / model / "Set5" / "x2"
    from srlab.imaging.io import read_image

    img = read_image(sr / "baby.png")  # study scores clipped floats: 16 bits keep them (to 1/514 level)
    assert img.bit_depth == 16 and img.pixels.dtype == np.uint16 and img.pixels.shape == (128, 128, 3)
    out = tmp_path / "folder"
    assert main([*base, "--sr", f"mine={sr}", "--gt", "Set5", "--out", str(out)]) == 0
    ref, got = _rows(direct), _rows(out)
    for (_, image), row in got.items():
        r = ref[(model, image)]
        # 16-bit rounding moves PSNR by ~1e-5 dB (the 8-bit standard protocol is exact: test above)
        assert row["psnr_rgb"] == pytest.approx(r["psnr_rgb"], abs=1e-4)
        assert row["ssim_rgb"] == pytest.approx(r["ssim_rgb"], abs=1e-6)
    assert len(got) == 5


def _img(path: Path, h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(a).save(path)
    return a


def test_pairing_by_name_and_one_line_per_problem(tmp_path, capsys):
    gt, sr = tmp_path / "gt", tmp_path / "sr"
    gt.mkdir()
    sr.mkdir()
    hr = {n: _img(gt / f"{n}.png", 40, 48, i) for i, n in enumerate(["a", "b", "c", "d", "f"])}
    Image.fromarray(hr["a"]).save(sr / "a.bmp")  # same stem, other format: identical pixels
    Image.fromarray(np.clip(hr["b"].astype(int) + 3, 0, 255).astype(np.uint8)).save(sr / "b_x4_SR.png")
    _img(sr / "c_SR.png", 40, 48, 10)  # two candidates for c: neither is guessed
    _img(sr / "c_out.png", 40, 48, 11)
    _img(sr / "d.png", 38, 48, 12)  # wrong size
    _img(sr / "e.png", 40, 48, 13)  # no ground truth
    # f.png: no SR image
    pairs, problems = match_files(sorted(sr.iterdir()), sorted(gt.iterdir()))
    assert [(s.name, g.name, how) for s, g, how in pairs] == [
        ("a.bmp", "a.png", "name"),
        ("b_x4_SR.png", "b.png", "suffix"),
        ("d.png", "d.png", "name"),
    ]
    assert {(p["side"], p["file"]) for p in problems} == {
        ("sr", "c_SR.png"),
        ("sr", "c_out.png"),
        ("gt", "c.png"),
        ("sr", "e.png"),
        ("gt", "f.png"),
    }
    args = ["eval", "--sr", f"m={sr}", "--gt", str(gt), "--scale", "4", "--no-progress"]
    rc = main([*args, "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("mismatch:")]
    assert rc == 1 and len(lines) == 6, err  # 5 unpaired files + 1 size mismatch
    assert any("d.png" in ln and "size: SR is 48x38" in ln and "is 48x40" in ln for ln in lines)
    rows = _rows(tmp_path / "o")
    assert set(rows) == {("m", "a"), ("m", "b")}
    assert rows[("m", "a")]["psnr_rgb"] == "Infinity"  # identical pixels: inf, by the one JSON rule
    assert 35 < rows[("m", "b")]["psnr_rgb"] < 40  # +3 grey levels almost everywhere: about 38.6 dB
    doc = json.loads((tmp_path / "o" / "results.json").read_text())
    assert len(doc["header"]["mismatches"]) == 6
    assert "## Files not scored" in (tmp_path / "o" / "results.md").read_text()
    assert main([*args, "--out", str(tmp_path / "o2"), "--allow-missing"]) == 0


def test_sixteen_bit_sr_is_rounded_under_standard(tmp_path):
    gt, sr = tmp_path / "gt", tmp_path / "sr"
    gt.mkdir()
    sr.mkdir()
    a = _img(gt / "x.png", 32, 32, 0)
    from srlab.imaging.io import write_image

    v = np.minimum(a.astype(np.int32) * 257 + 100, 65535).astype(np.uint16)
    write_image(sr / "x.png", v)  # v / 257 = a + 0.39: rounds back to a
    rc = main(
        [
            "eval",
            "--sr",
            str(sr),
            "--gt",
            str(gt),
            "--scale",
            "2",
            "--out",
            str(tmp_path / "o"),
            "--no-progress",
            "--allow-missing",
        ]
    )
    assert rc == 0
    rows = _rows(tmp_path / "o")
    assert rows[("sr", "x")]["psnr_rgb"] == "Infinity"  # identical after rounding: inf


def test_flags_that_go_together(tmp_path, capsys):
    d = tmp_path / "d"
    d.mkdir()
    _img(d / "x.png", 32, 32, 0)
    assert main(["eval", "--sr", str(d), "--scale", "2"]) == 2
    assert "--sr and --gt go together" in capsys.readouterr().err
    assert main(["eval", "--sr", str(d), "--gt", str(d)]) == 2
    assert "needs one --scale" in capsys.readouterr().err
    assert main(["eval", "--sr", str(tmp_path / "nope"), "--gt", str(d), "--scale", "2"]) == 2
    assert "no such folder" in capsys.readouterr().err
