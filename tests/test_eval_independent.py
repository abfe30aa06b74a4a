"""`srlab eval` on images it has never seen agrees with an independent numpy / scikit-image computation.

Everything on the reference side is written here from the definitions: MATLAB's bicubic ``imresize``
(Keys kernel a = -0.5, kernel widened by 1/scale when shrinking, symmetric border, ``ceil`` output size),
uint8 rounding half away from zero, BT.601 luma, numpy PSNR and scikit-image SSIM.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from PIL import Image
from skimage.metrics import structural_similarity

from srlab.cli import main


def _keys(t: np.ndarray) -> np.ndarray:
    a = np.abs(t)
    return np.where(
        a <= 1, 1.5 * a**3 - 2.5 * a**2 + 1, np.where(a <= 2, -0.5 * a**3 + 2.5 * a**2 - 4 * a + 2, 0.0)
    )


def _resize_axis(x: np.ndarray, scale: float, axis: int) -> np.ndarray:
    n_in = x.shape[axis]
    n_out = math.ceil(n_in * scale)
    shrink = scale < 1
    width = 4.0 / scale if shrink else 4.0
    pad = int(math.ceil(width)) + 2
    xp = np.pad(x, [(pad, pad) if i == axis else (0, 0) for i in range(x.ndim)], mode="symmetric")
    out = []
    for i in range(1, n_out + 1):  # 1-based output index, as MATLAB
        u = i / scale + 0.5 * (1 - 1 / scale)  # its position in input coordinates (1-based)
        left = math.floor(u - width / 2)
        j = np.arange(left, left + int(math.ceil(width)) + 2)
        w = scale * _keys(scale * (u - j)) if shrink else _keys(u - j)
        w = w / w.sum()
        taps = np.take(xp, j - 1 + pad, axis=axis)  # 0-based index into the padded array
        shape = [1] * x.ndim
        shape[axis] = len(j)
        out.append((taps * w.reshape(shape)).sum(axis=axis))
    return np.stack(out, axis=axis)


def _imresize(img: np.ndarray, scale: float) -> np.ndarray:
    return _resize_axis(_resize_axis(img.astype(np.float64), scale, 0), scale, 1)


def _round_u8(x: np.ndarray) -> np.ndarray:
    return np.floor(np.clip(x, 0, 255) + 0.5)


def _luma(a: np.ndarray) -> np.ndarray:
    return 16.0 + a @ (np.array([65.481, 128.553, 24.966]) / 255.0)


def _psnr(a, b) -> float:
    return 10 * math.log10(255.0**2 / np.mean((a - b) ** 2))


def _ssim(a, b) -> float:
    return structural_similarity(
        a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255
    )


def _reference(hr: np.ndarray, s: int) -> dict:
    if hr.ndim == 2:
        hr = hr[..., None]
    hr = hr[: hr.shape[0] // s * s, : hr.shape[1] // s * s].astype(np.float64)
    lr = _round_u8(_imresize(hr, 1 / s))
    sr = _round_u8(_imresize(lr, s))
    c = slice(s, -s)
    hr, sr = hr[c, c], sr[c, c]
    if hr.shape[2] == 1:
        g_hr, g_sr = hr[..., 0], sr[..., 0]
        y = dict(psnr_y=_psnr(g_sr, g_hr), ssim_y=_ssim(g_sr, g_hr))
        return {**y, "psnr_rgb": y["psnr_y"], "ssim_rgb": y["ssim_y"]}
    yh, ys = _luma(hr), _luma(sr)
    return dict(
        psnr_y=_psnr(ys, yh),
        ssim_y=_ssim(ys, yh),
        psnr_rgb=_psnr(sr, hr),
        ssim_rgb=float(np.mean([_ssim(sr[..., k], hr[..., k]) for k in range(3)])),
    )


def _random_image(rng, h, w, grey=False):
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    c = 1 if grey else 3
    img = np.zeros((h, w, c))
    for k in range(c):
        f1, f2 = rng.uniform(0.05, 0.6, 2)
        img[..., k] = 128 + 70 * np.sin(f1 * x + rng.uniform(0, 6)) * np.cos(f2 * y + rng.uniform(0, 6))
    img += rng.normal(0, 12, img.shape)
    img = np.clip(img, 0, 255).astype(np.uint8)
    return img[..., 0] if grey else img


def test_srlab_eval_agrees_with_an_independent_implementation(tmp_path):
    rng = np.random.default_rng(2024)
    d = tmp_path / "unseen"
    d.mkdir()
    images = {
        "a": _random_image(rng, 37, 53),
        "b": _random_image(rng, 64, 48),
        "c_grey": _random_image(rng, 50, 50, grey=True),
        "d": _random_image(rng, 29, 81),
        "e": _random_image(rng, 100, 73),
    }
    for name, a in images.items():
        Image.fromarray(a).save(d / f"{name}.png")
    out = tmp_path / "out"
    args = ["eval", "--models", "bicubic", "--datasets", "Unseen", "--set-path", f"Unseen={d}"]
    assert main([*args, "--scale", "2,3,4", "--out", str(out), "--no-progress"]) == 0
    rows = json.loads((out / "results.json").read_text())["rows"]
    assert len(rows) == len(images) * 3
    for r in rows:
        ref = _reference(images[r["image"]], r["scale"])
        for k in ("psnr_y", "psnr_rgb"):
            assert r[k] == pytest.approx(ref[k], abs=0.01), (r["image"], r["scale"], k)
        for k in ("ssim_y", "ssim_rgb"):
            assert r[k] == pytest.approx(ref[k], abs=1e-4), (r["image"], r["scale"], k)
