"""PSNR/SSIM against the published MATLAB values and scikit-image."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.metrics import structural_similarity

from srlab.eval import metrics
from srlab.imaging.resize import imresize, quantize

# BasicSR metrics README, MATLAB column: bicubic x4 upsample (MATLAB imresize) of the MATLAB LR, crop 4.
PUBLISHED = {
    "baboon": dict(psnr_rgb=20.419710, psnr_y=22.441898, ssim_rgb=0.391853, ssim_y=0.453097),
    "comic": dict(psnr_rgb=20.239912, psnr_y=21.720398, ssim_rgb=0.567738, ssim_y=0.585511),
}


def _sk_ssim(a, b):
    return structural_similarity(
        a.astype(np.float64),
        b.astype(np.float64),
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=255,
    )


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_golden_bicubic_x4_matches_published_matlab_values(golden_root, name):
    gt = np.asarray(Image.open(golden_root / "gt" / f"{name}.png").convert("RGB"))
    lq = np.asarray(Image.open(golden_root / "lq_matlab_x4" / f"{name}.png").convert("RGB"))
    lr = torch.from_numpy(lq.copy()).permute(2, 0, 1).double()
    sr = quantize(imresize(lr, 4)).permute(1, 2, 0).numpy().astype(np.uint8)
    got = metrics.evaluate_pair(sr, gt, scale=4)
    for key, want in PUBLISHED[name].items():
        assert got[key] == pytest.approx(want, abs=1e-4), key
    # the single-metric functions agree with the one-pass evaluation
    assert metrics.psnr(sr, gt, crop=4, channel="rgb") == pytest.approx(got["psnr_rgb"], abs=1e-12)
    assert metrics.ssim(sr, gt, crop=4, channel="y") == pytest.approx(got["ssim_y"], abs=1e-12)


def _pair(rng, shape, noise=25):
    # smooth-ish content so the SSIM is not ~0
    a = np.clip(
        np.cumsum(rng.normal(0, 6, shape), axis=0) + np.cumsum(rng.normal(0, 6, shape), axis=1) + 128, 0, 255
    ).astype(np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-noise, noise + 1, shape), 0, 255).astype(np.uint8)
    return a, b


@pytest.mark.parametrize("shape", [(40, 53, 3), (97, 31, 3), (11, 11, 3), (64, 64)])
def test_ssim_and_psnr_agree_with_skimage_and_numpy(shape):
    rng = np.random.default_rng(sum(shape))
    a, b = _pair(rng, shape)
    a3 = a if a.ndim == 3 else a[..., None]
    b3 = b if b.ndim == 3 else b[..., None]
    ref_rgb = np.mean([_sk_ssim(a3[..., c], b3[..., c]) for c in range(a3.shape[2])])
    assert metrics.ssim(a, b, channel="rgb") == pytest.approx(ref_rgb, abs=1e-10)
    mse = np.mean((a.astype(np.float64) - b) ** 2)
    assert metrics.psnr(a, b, channel="rgb") == pytest.approx(10 * np.log10(255**2 / mse), abs=1e-10)
    if a.ndim == 3:
        w = np.array([65.481, 128.553, 24.966]) / 255
        ya, yb = a @ w + 16, b @ w + 16  # unrounded BT.601 luma
        assert metrics.ssim(a, b, channel="y") == pytest.approx(_sk_ssim(ya, yb), abs=1e-10)
        mse_y = np.mean((ya - yb) ** 2)
        assert metrics.psnr(a, b, channel="y") == pytest.approx(10 * np.log10(255**2 / mse_y), abs=1e-10)
    else:  # grayscale: Y is the grey channel itself
        assert metrics.ssim(a, b, channel="y") == metrics.ssim(a, b, channel="rgb")


def test_crop_batch_and_tensor_inputs():
    rng = np.random.default_rng(5)
    a, b = _pair(rng, (50, 60, 3))
    c = 4
    cropped = metrics.evaluate_pair(a[c:-c, c:-c], b[c:-c, c:-c], scale=1, crop=0)
    assert metrics.evaluate_pair(a, b, scale=4) == pytest.approx(cropped, abs=1e-12)
    ta = torch.from_numpy(a).permute(2, 0, 1).float()
    tb = torch.from_numpy(b).permute(2, 0, 1).float()
    batch = metrics.metrics_batch(torch.stack([ta, tb]), torch.stack([tb, tb]), crop=c)
    assert batch["psnr_y"].shape == (2,) and torch.isinf(batch["psnr_y"][1])  # identical -> inf
    assert batch["ssim_rgb"][1] == pytest.approx(1.0, abs=1e-12)
    assert float(batch["ssim_y"][0]) == pytest.approx(cropped["ssim_y"], abs=1e-9)
    # the Y-only path gives the same Y numbers
    yonly = metrics.metrics_batch(ta, tb, crop=c, channels=("y",))
    assert set(yonly) == {"psnr_y", "ssim_y"}
    assert float(yonly["ssim_y"][0]) == pytest.approx(cropped["ssim_y"], abs=1e-12)


def test_grey_hr_with_rgb_sr_is_measured_on_the_grey_channel():
    rng = np.random.default_rng(6)
    a, b = _pair(rng, (30, 40))
    rgb = np.repeat(b[..., None], 3, axis=2)  # an RGB model's output for a replicated grey input
    got = metrics.evaluate_pair(rgb, a[..., None], scale=2)
    ref = metrics.evaluate_pair(b, a, scale=2)
    assert got == pytest.approx(ref, abs=1e-12)
    assert got["psnr_y"] == got["psnr_rgb"]


def test_float64_is_exact_on_the_strip_boundaries():
    # tall image: several CPU strips; result equals a single whole-image pass
    rng = np.random.default_rng(7)
    a, b = _pair(rng, (300, 40, 3))
    x = torch.from_numpy(a).permute(2, 0, 1)[None].double()
    y = torch.from_numpy(b).permute(2, 0, 1)[None].double()
    old = metrics._STRIP_BYTES
    try:
        metrics._STRIP_BYTES = 1  # minimum strip height
        strips = metrics._ssim_per_channel(x, y, 255.0)
        metrics._STRIP_BYTES = 1 << 40  # one strip
        whole = metrics._ssim_per_channel(x, y, 255.0)
    finally:
        metrics._STRIP_BYTES = old
    assert torch.allclose(strips, whole, atol=1e-13, rtol=0)


def test_bad_inputs_raise():
    a = np.zeros((20, 20, 3), np.uint8)
    with pytest.raises(ValueError, match="sizes differ"):
        metrics.psnr(a, np.zeros((20, 21, 3), np.uint8))
    with pytest.raises(ValueError, match="channel"):
        metrics.ssim(a, a, channel="lab")
    with pytest.raises(ValueError, match="11x11"):
        metrics.ssim(a[:10, :10], a[:10, :10])
    with pytest.raises(ValueError, match="crop"):
        metrics.psnr(a, a, crop=10)
