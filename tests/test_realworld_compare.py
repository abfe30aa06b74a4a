"""benchmarks/realworld_compare.py: the LR inputs it makes, the outputs it scores and the files it writes."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from srlab.eval.perceptual.niqe import NIQE
from srlab.imaging.io import read_image, write_image
from srlab.imaging.resize import imresize

HERE = Path(__file__).resolve().parent
SCRIPT = HERE.parent / "benchmarks" / "realworld_compare.py"
NIQE_NPZ = HERE / "data" / "perceptual" / "niqe_pris_params.npz"


@pytest.fixture(scope="module")
def rwc():
    spec = importlib.util.spec_from_file_location("realworld_compare", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _photos(folder: Path) -> list[Path]:
    rng = np.random.default_rng(3)
    folder.mkdir()
    paths = []
    for name, (h, w) in {"a": (90, 130), "b": (100, 100), "c": (130, 90), "d": (85, 140)}.items():
        yy, xx = np.mgrid[0:h, 0:w]
        base = 120 + 60 * np.sin(xx / 5.0)[..., None] * np.cos(yy / 7.0)[..., None]
        img = np.clip(base + rng.normal(0, 12, (h, w, 3)), 0, 255).astype(np.uint8)
        paths.append(write_image(folder / f"{name}.png", img))
    return paths


def _y_niqe(path: Path) -> float:
    # BT.601 luma on 0..255 (MATLAB rgb2ycbcr), rounded: written here, not taken from srlab.imaging.color
    rgb = read_image(path).pixels.astype(np.float64)
    y = 16.0 + (65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2]) / 255.0
    return NIQE.load(NIQE_NPZ)(np.round(y))


def test_crop_inputs_outputs_scores_and_figure(rwc, tmp_path, capsys):
    photos = _photos(tmp_path / "photos")
    out = tmp_path / "out"
    fig = tmp_path / "fig.png"
    args = ["--images", str(tmp_path / "photos"), "--out", str(out), "--count", "2", "--lr-size", "48x24"]
    args += ["--model", "bicubic-x4", "--model", "bl=bilinear-x4", "--niqe-params", str(NIQE_NPZ)]
    assert rwc.main([*args, "--figure", str(fig), "--panels", "2"]) == 0

    # the first two landscape photos (a, b; c is portrait), each cropped at its centre, real pixels
    res = json.loads((out / "niqe.json").read_text())
    assert res["images"] == ["a", "b"] and res["input"] == "crop"
    for p in photos[:2]:
        src = read_image(p).pixels
        top, left = (src.shape[0] - 24) // 2, (src.shape[1] - 48) // 2
        assert np.array_equal(
            read_image(out / "lr" / f"{p.stem}.png").pixels, src[top : top + 24, left : left + 48]
        )
        for label in ("bicubic-x4", "bl"):
            sr = out / label / f"{p.stem}.png"
            assert read_image(sr).pixels.shape == (96, 192, 3)
            # a few luma values sit at .5 and round either way between the two conversions: ~1e-5 apart
            assert res["niqe"][label][p.stem] == pytest.approx(_y_niqe(sr), abs=1e-3)
    assert res["niqe_mean"]["bl"] == pytest.approx(np.mean(list(res["niqe"]["bl"].values())))
    assert "| bl |" in capsys.readouterr().out
    pic = read_image(fig).pixels
    assert pic.shape[0] > pic.shape[1] > 300  # two panels of three columns, stacked


def test_downscale_inputs_are_matlab_bicubic(rwc, tmp_path):
    photos = _photos(tmp_path / "photos")
    lr = rwc.make_inputs(photos[:1], "downscale", (32, 22), tmp_path / "lr")
    src = torch.from_numpy(read_image(photos[0]).pixels.astype(np.float64)).permute(2, 0, 1)
    ref = imresize(src, size=(22, 32)).round().clamp(0, 255).permute(1, 2, 0).numpy().astype(np.uint8)
    assert np.array_equal(read_image(lr[0]).pixels, ref)


def test_bad_model_name_stops_with_the_upscaler_error(rwc, tmp_path):
    _photos(tmp_path / "photos")
    args = ["--images", str(tmp_path / "photos"), "--out", str(tmp_path / "o"), "--lr-size", "32x24"]
    with pytest.raises(SystemExit, match="no-such-model"):
        rwc.main([*args, "--model", "no-such-model", "--niqe-params", str(NIQE_NPZ)])


def test_a_missing_niqe_file_is_one_line(tmp_path):
    _photos(tmp_path / "photos")
    args = ["--images", str(tmp_path / "photos"), "--out", str(tmp_path / "o"), "--lr-size", "48x24"]
    args += ["--model", "bicubic-x4", "--niqe-params", str(tmp_path / "none.npz")]
    proc = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "none.npz" in proc.stderr.strip().splitlines()[-1]


def test_photos_smaller_than_the_input_and_bad_sizes_are_refused(rwc, tmp_path, capsys):
    _photos(tmp_path / "photos")
    args = ["--images", str(tmp_path / "photos"), "--out", str(tmp_path / "o"), "--model", "bicubic-x4"]
    args += ["--niqe-params", str(NIQE_NPZ)]
    with pytest.raises(SystemExit, match="no landscape photo of at least 200x150"):
        rwc.main([*args, "--lr-size", "200x150"])
    with pytest.raises(SystemExit) as exc:
        rwc.main([*args, "--lr-size", "120by80"])
    assert exc.value.code == 2 and "'120by80' is not WIDTHxHEIGHT" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # nothing written before the inputs are known to be good
