"""Real-ESRGAN's degradation pipeline (srlab.data.degradations) against independent computations: kernels
from their formulas (scipy's Bessel J1 for the sinc), blur against scipy.ndimage, JPEG against Pillow, noise
statistics, unsharp masking written out, parameter ranges over many draws, determinism, the sample grid."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage, special

from srlab.data.degradations import kernels as K
from srlab.data.degradations import ops
from srlab.data.degradations.options import RealESRGANOptions
from srlab.data.degradations.pipeline import degrade_batch, draw_params
from srlab.errors import ConfigError

pytestmark = pytest.mark.usefixtures("one_thread")


def _grid(size: int):
    r = size // 2
    ax = np.arange(-r, r + 1, dtype=np.float64)
    return np.meshgrid(ax, ax)  # x along columns, y along rows


# ------------------------------------------------------------------------------------------------ kernels
def test_isotropic_gaussian_is_the_normalised_exponential():
    xx, yy = _grid(21)
    for sigma in (0.2, 1.0, 3.0):
        ref = np.exp(-(xx**2 + yy**2) / (2 * sigma**2))
        ref /= ref.sum()
        k = K.gaussian_kernel(21, sigma)
        assert k.shape == (21, 21)
        assert k.sum() == pytest.approx(1.0, abs=1e-12)
        np.testing.assert_allclose(k, ref, rtol=1e-10, atol=1e-15)


def test_anisotropic_gaussian_has_the_covariance_of_its_sigmas_and_angle():
    sx, sy, theta = 3.0, 1.2, 0.6
    k = K.gaussian_kernel(61, sx, sy, theta)  # wide enough that the truncated tails do not matter
    xx, yy = _grid(61)
    moments = np.array(
        [[(k * xx * xx).sum(), (k * xx * yy).sum()], [(k * xx * yy).sum(), (k * yy * yy).sum()]]
    )
    c, s = math.cos(theta), math.sin(theta)
    expected = np.array(
        [
            [sx**2 * c * c + sy**2 * s * s, (sx**2 - sy**2) * s * c],
            [(sx**2 - sy**2) * s * c, sx**2 * s * s + sy**2 * c * c],
        ]
    )
    np.testing.assert_allclose(moments, expected, rtol=2e-3, atol=2e-3)
    np.testing.assert_allclose(K.covariance(sx, sy, theta), expected, rtol=1e-12)
    assert abs((k * xx).sum()) < 1e-12 and abs((k * yy).sum()) < 1e-12  # centred
    # rotating by pi gives the same kernel; swapping the sigmas equals a quarter turn
    np.testing.assert_allclose(
        K.gaussian_kernel(21, sx, sy, theta + math.pi), K.gaussian_kernel(21, sx, sy, theta)
    )
    np.testing.assert_allclose(
        K.gaussian_kernel(21, sy, sx, theta + math.pi / 2), K.gaussian_kernel(21, sx, sy, theta), atol=1e-15
    )


def test_generalized_gaussian_and_plateau_shapes():
    sx, sy, theta = 2.0, 1.0, 0.3
    # the paper's form exp(-0.5 q^beta): beta = 1 (distance to the power 2) is the Gaussian
    np.testing.assert_allclose(
        K.generalized_gaussian_kernel(21, sx, sy, theta, 1.0),
        K.gaussian_kernel(21, sx, sy, theta),
        atol=1e-15,
    )
    # written out independently at every tap
    xx, yy = _grid(21)
    c, s = math.cos(theta), math.sin(theta)
    u, v = c * xx + s * yy, -s * xx + c * yy  # coordinates along the kernel's axes
    q = (u / sx) ** 2 + (v / sy) ** 2
    for beta in (0.5, 2.0, 4.0):
        ref = np.exp(-0.5 * q**beta)
        np.testing.assert_allclose(
            K.generalized_gaussian_kernel(21, sx, sy, theta, beta), ref / ref.sum(), atol=1e-14
        )
        ref = 1 / (1 + q**beta)
        np.testing.assert_allclose(K.plateau_kernel(21, sx, sy, theta, beta), ref / ref.sum(), atol=1e-14)
    heavy = K.generalized_gaussian_kernel(21, 2.0, None, 0.0, 0.5)
    flat = K.generalized_gaussian_kernel(21, 2.0, None, 0.0, 4.0)
    assert heavy[10, 0] > K.gaussian_kernel(21, 2.0)[10, 0] > flat[10, 0]  # tails
    for k in (heavy, flat, K.plateau_kernel(21, 2.0, None, 0, 1.5)):
        assert k.sum() == pytest.approx(1.0, abs=1e-12) and np.allclose(k, k.T) and np.allclose(k, k[::-1])


@pytest.mark.parametrize(
    "size,cutoff", [(7, math.pi / 3), (13, math.pi / 2), (21, math.pi / 5), (21, math.pi)]
)
def test_sinc_kernel_is_the_jinc_of_scipys_bessel_j1(size, cutoff):
    r = size // 2
    ref = np.empty((size, size))
    for i in range(size):
        for j in range(size):
            rho = math.hypot(i - r, j - r)
            ref[i, j] = (
                cutoff**2 / (4 * math.pi)
                if rho == 0
                else cutoff * special.j1(cutoff * rho) / (2 * math.pi * rho)
            )
    ref /= ref.sum()
    # srlab evaluates J1 with torch.special.bessel_j1, which agrees with scipy's to ~1e-7 relative (far below
    # what an 8-bit image resolves)
    np.testing.assert_allclose(K.sinc_kernel(size, cutoff), ref, rtol=1e-6, atol=2e-8)
    assert np.abs(ref).max() > 1e-3


def test_pad_kernel_centres_and_bad_sizes_are_refused():
    k = K.gaussian_kernel(7, 1.0)
    p = K.pad_kernel(k, 21)
    assert p.shape == (21, 21) and p.sum() == pytest.approx(1.0)
    np.testing.assert_array_equal(p[7:14, 7:14], k)
    with pytest.raises(ValueError):
        K.gaussian_kernel(8, 1.0)
    with pytest.raises(ValueError):
        K.pad_kernel(K.gaussian_kernel(23, 1.0), 21)
    with pytest.raises(ValueError):
        K.sinc_kernel(21, 4.0)


# --------------------------------------------------------------------------------------------------- ops
def test_filter2d_is_correlation_with_reflect_borders_per_image():
    rng = np.random.default_rng(1)
    x = rng.random((2, 3, 24, 30))
    kernels = np.stack([K.gaussian_kernel(7, 1.5, 0.7, 0.4), K.sinc_kernel(7, 1.2)])
    out = ops.filter2d(torch.from_numpy(x), torch.from_numpy(kernels)).numpy()
    for i in range(2):
        for c in range(3):
            ref = ndimage.correlate(x[i, c], kernels[i], mode="mirror")
            np.testing.assert_allclose(out[i, c], ref, atol=1e-12)


def test_jpeg_op_is_pillows_encode_and_decode():
    rng = np.random.default_rng(2)
    a = (ndimage.uniform_filter(rng.random((40, 48, 3)), size=(5, 5, 1)) * 255).round().astype(np.uint8)
    x = torch.from_numpy(a).permute(2, 0, 1)[None].double() / 255
    for q in (30, 75, 95):
        buf = io.BytesIO()
        Image.fromarray(a).save(buf, format="JPEG", quality=q)
        ref = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
        got = (ops.jpeg(x, [q])[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        np.testing.assert_array_equal(got, ref)
    assert not torch.equal(ops.jpeg(x, [30]), ops.jpeg(x, [95]))


def test_gaussian_noise_has_the_requested_std_and_grey_noise_is_shared():
    x = torch.full((2, 3, 200, 200), 0.5, dtype=torch.float64)
    sigma = torch.tensor([10 / 255, 20 / 255])
    gens = [torch.Generator().manual_seed(i) for i in range(2)]
    out = ops.add_gaussian_noise(x, sigma, torch.tensor([False, True]), gens)
    noise = out - x
    for i in range(2):
        assert noise[i].std().item() == pytest.approx(sigma[i].item(), rel=0.02)
        assert abs(noise[i].mean().item()) < 3 * sigma[i].item() / 200
    assert not torch.equal(noise[0, 0], noise[0, 1])  # colour: a field per channel
    assert torch.equal(noise[1, 0], noise[1, 1]) and torch.equal(noise[1, 1], noise[1, 2])


def test_poisson_noise_variance_is_proportional_to_intensity():
    # 256 distinct levels (a ramp) so the level count v is 256; two flat regions measure the variance
    img = np.zeros((1, 1, 400, 512))
    img[..., :2, :256] = np.arange(256) / 255
    img[..., 10:200, :] = 26 / 255
    img[..., 200:, :] = 102 / 255
    x = torch.from_numpy(img)
    scale = 2.0
    out = ops.add_poisson_noise(
        x, torch.tensor([scale]), torch.tensor([False]), [torch.Generator().manual_seed(0)]
    )
    noise = (out - x)[0, 0]
    var_lo, var_hi = noise[10:200].var().item(), noise[200:].var().item()
    assert var_lo == pytest.approx(scale**2 * (26 / 255) / 256, rel=0.05)
    assert var_hi == pytest.approx(scale**2 * (102 / 255) / 256, rel=0.05)
    assert var_hi / var_lo == pytest.approx(102 / 26, rel=0.08)


@pytest.mark.parametrize("radius", [12, 50])
def test_usm_sharpening_matches_a_direct_computation(radius):
    rng = np.random.default_rng(3)
    x = ndimage.uniform_filter(rng.random((1, 3, 110, 120)), size=(1, 1, 9, 9))
    x[..., 40:80, 50:90] += 0.3
    x = np.clip(x, 0, 1)
    weight, threshold = 0.5, 10
    size = 2 * radius + 1
    sigma = 0.3 * ((size - 1) * 0.5 - 1) + 0.8  # OpenCV's getGaussianKernel(size, 0)
    g = np.exp(-((np.arange(size) - radius) ** 2) / (2 * sigma**2))
    g /= g.sum()

    def blur(img):
        if radius <= 12:  # the 2-D kernel itself
            return ndimage.correlate(img, np.outer(g, g), mode="mirror")
        # the wide one by rows then columns (the same 2-D correlation, a hundred times cheaper)
        return ndimage.correlate1d(
            ndimage.correlate1d(img, g, axis=0, mode="mirror"), g, axis=1, mode="mirror"
        )

    ref = np.empty_like(x)
    for c in range(3):
        img = x[0, c]
        res = img - blur(img)
        mask = (np.abs(res) * 255 > threshold).astype(np.float64)
        soft = blur(mask)
        sharp = np.clip(img + weight * res, 0, 1)
        ref[0, c] = soft * sharp + (1 - soft) * img
    got = ops.usm_sharpen(torch.from_numpy(x), radius=radius, weight=weight, threshold=threshold).numpy()
    np.testing.assert_allclose(got, ref, atol=1e-10)
    assert np.abs(got - x).max() > 0.01  # it does sharpen


def test_resize_modes_and_sizes():
    x = torch.rand(1, 3, 20, 30)
    for mode in ops.RESIZE_MODES:
        assert ops.resize(x, (7, 11), mode).shape == (1, 3, 7, 11)
    torch.testing.assert_close(ops.resize(x, (10, 15), "area"), torch.nn.functional.avg_pool2d(x, 2))
    with pytest.raises(ValueError):
        ops.resize(x, (5, 5), "lanczos")


# ---------------------------------------------------------------------------------------------- pipeline
def test_sampled_parameters_stay_inside_the_configured_ranges():
    o = RealESRGANOptions()
    n = 1500
    ps = [draw_params(o, 7, k) for k in range(n)]
    kinds = {t: 0 for t in (*K.KERNEL_TYPES, "sinc")}
    for p in ps:
        for order, sfx in ((p.first, ""), (p.second, "2")):
            assert order.resize_mode in o.resize_modes
            lo, hi = getattr(o, "resize_range" + sfx)
            assert lo <= order.resize_factor <= hi
            rng_ = (
                getattr(o, "noise_range" + sfx)
                if order.noise == "gaussian"
                else getattr(o, "poisson_scale_range" + sfx)
            )
            assert rng_[0] <= order.noise_level <= rng_[1]
            assert o.jpeg_range[0] <= order.jpeg_quality <= o.jpeg_range[1]
            if order.kernel is not None:
                assert order.kernel.shape == (21, 21) and order.kernel.sum() == pytest.approx(1.0)
        kinds[p.first.kernel_type] += 1
        assert 30 <= p.final_jpeg_quality <= 95
        if p.final_sinc is not None:
            assert math.pi / 3 <= p.final_sinc_cutoff <= math.pi
    # frequencies near the published probabilities
    assert sum(p.second.kernel is not None for p in ps) / n == pytest.approx(0.8, abs=0.04)
    assert sum(p.final_sinc is not None for p in ps) / n == pytest.approx(0.8, abs=0.04)
    assert kinds["sinc"] / n == pytest.approx(0.1, abs=0.03)
    assert kinds["iso"] / n == pytest.approx(0.9 * 0.45, abs=0.04)
    ups = sum(p.first.resize_factor > 1 for p in ps) / n
    assert ups == pytest.approx(0.2, abs=0.04)
    assert sum(p.first.noise == "gaussian" for p in ps) / n == pytest.approx(0.5, abs=0.05)
    # narrowed options are obeyed
    narrow = RealESRGANOptions(
        jpeg_range=(60, 61), resize_prob=(0, 1, 0), resize_range=(0.5, 1.0), sinc_prob=0
    )
    for k in range(200):
        p = draw_params(narrow, 0, k)
        assert 60 <= p.first.jpeg_quality <= 61 and 0.5 <= p.first.resize_factor <= 1.0
        assert p.first.kernel_type != "sinc"


def test_options_are_checked_and_overridable_from_the_config():
    from srlab.train.config import config_from_dict

    cfg = config_from_dict(
        {"scale": 4, "data": {"degradation": "realesrgan", "realesrgan": {"jpeg_range": [50, 60]}}}
    )
    assert cfg.data.realesrgan.jpeg_range == (50, 60) and cfg.data.realesrgan.noise_range == (1, 30)
    for bad, word in (
        ({"jpeg_range": [10, 120]}, "jpeg_range"),
        ({"kernel_prob": [0.5, 0.5]}, "kernel_prob"),
        ({"resize_prob": [0.5, 0.4, 0.4]}, "resize_prob"),
        ({"noise_rang": [1, 2]}, "noise_range"),
        ({"kernel_size": 20}, "kernel_size"),
    ):
        with pytest.raises(ConfigError, match=word):
            config_from_dict({"scale": 4, "data": {"degradation": "realesrgan", "realesrgan": bad}})
    with pytest.raises(ConfigError, match="crop"):
        config_from_dict({"scale": 3, "data": {"degradation": "realesrgan", "crop": 64}})
    with pytest.raises(ConfigError, match="data.degradation is 'bicubic'"):
        config_from_dict({"data": {"realesrgan": {"sinc_prob": 0.2}}})
    # a run saved before the option existed resumes without a "config changed" refusal
    from srlab.train.config import config_to_dict
    from srlab.train.rundir import resume_changes

    new = config_to_dict(config_from_dict({}))
    old = {**new, "data": {k: v for k, v in new["data"].items() if k != "realesrgan"}}
    assert resume_changes(old, new) == []
    with pytest.raises(ConfigError, match="paired"):
        config_from_dict({"scale": 4, "data": {"degradation": "realesrgan", "train_lr": "X"}})


def test_degrade_batch_is_a_function_of_seed_and_key():
    o = RealESRGANOptions()
    hr = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    lr, tgt = degrade_batch(hr, 4, o, seed=5, keys=[10, 11, 12])
    assert lr.shape == (3, 3, 16, 16) and tgt.shape == hr.shape
    assert lr.min() >= 0 and lr.max() <= 1
    assert torch.equal((lr * 255).round(), lr * 255)  # rounded to 8-bit levels
    lr2, tgt2 = degrade_batch(hr.clone(), 4, o, seed=5, keys=[10, 11, 12])
    assert torch.equal(lr, lr2) and torch.equal(tgt, tgt2)
    # a sample's LR does not depend on its batch neighbours
    lr_one, _ = degrade_batch(hr[1:2], 4, o, seed=5, keys=[11])
    assert torch.equal(lr_one[0], lr[1])
    lr3, _ = degrade_batch(hr, 4, o, seed=5, keys=[13, 14, 15])
    lr4, _ = degrade_batch(hr, 4, o, seed=6, keys=[10, 11, 12])
    assert not torch.equal(lr, lr3) and not torch.equal(lr, lr4)
    # the target is the unsharp-masked HR by default, the HR itself without usm_target
    torch.testing.assert_close(tgt, ops.usm_sharpen(hr))
    _, plain = degrade_batch(hr, 4, RealESRGANOptions(usm_target=False), seed=5, keys=[10, 11, 12])
    assert torch.equal(plain, hr)


def _hr_folder(tmp_path, n=6, size=48):
    d = tmp_path / "hr"
    d.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        a = ndimage.uniform_filter(rng.random((size, size, 3)), size=(3, 3, 1))
        Image.fromarray((a * 255).astype(np.uint8)).save(d / f"im{i}.png")
    return d


def test_training_batches_are_reproducible_per_iteration_and_the_sample_grid_is_written(tmp_path):
    from srlab.imaging.io import read_image
    from srlab.train.batches import PREVIEW_NAME, TrainBatches
    from srlab.train.config import config_from_dict

    d = _hr_folder(tmp_path)
    cfg = config_from_dict(
        {"scale": 4, "seed": 3, "data": {"train": str(d), "degradation": "realesrgan", "crop": 32}}
    )
    run = tmp_path / "run"
    tb = TrainBatches(cfg, None, preview=run)
    cpu = torch.device("cpu")
    lr0, hr0 = tb.batch(4, 0, 0, rank=0, world=1, device=cpu)
    assert lr0.shape == (4, 3, 8, 8) and hr0.shape == (4, 3, 32, 32)
    again = TrainBatches(cfg, None)  # a resumed run rebuilds its batches from the config alone
    lr0b, hr0b = again.batch(4, 0, 0, rank=0, world=1, device=cpu)
    assert torch.equal(lr0, lr0b) and torch.equal(hr0, hr0b)
    lr1, _ = tb.batch(4, 1, 0, rank=0, world=1, device=cpu)
    assert not torch.equal(lr0, lr1)
    grid = read_image(run / PREVIEW_NAME).pixels
    # 8 pairs, two a row: each pair = LR upscaled (32) + 4 + HR (32); rows of 2 pairs + 8 gap; 4 rows, 8 gaps
    assert grid.shape == (4 * 32 + 3 * 8, 2 * 68 + 8, 3)
    up = (lr0[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8).repeat(4, 0).repeat(4, 1)
    np.testing.assert_array_equal(grid[:32, :32], up)
    np.testing.assert_array_equal(
        grid[:32, 36:68], (hr0[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    )


def test_demo_recipe_trains_writes_the_grid_and_resumes_to_the_same_weights(tmp_path):
    from srlab.train.config import apply_overrides, config_from_dict, load_config
    from srlab.train.trainer import Trainer
    from srlab.weights.io import read_state_dict

    d = _hr_folder(tmp_path, n=4, size=40)
    _, raw = load_config("realesrgan_compact_x4_demo", quick=True)
    over = {
        "data.train": str(d),
        "val.set": str(d),
        "stages.psnr.iterations": 2,
        "stages.gan.iterations": 3,
        "stages.*.batch_size": 2,
    }
    cfg = config_from_dict(apply_overrides(raw, over))
    assert (
        cfg.data.degradation == "realesrgan" and cfg.stages["gan"].discriminator.name == "unet_discriminator"
    )

    def run(out, **kw):
        return Trainer(
            cfg if not kw else config_from_dict(apply_overrides(raw, {**over, **kw})), out_dir=out, echo=None
        ).run()

    full = run(tmp_path / "a")
    assert full.completed
    from srlab.imaging.io import read_image

    assert read_image(tmp_path / "a" / "degradation_samples.png").pixels.shape[2] == 3
    run(tmp_path / "b", **{"runtime.stop_after": 3})  # stops inside the gan stage
    Trainer(cfg, out_dir=tmp_path / "b", resume="auto", echo=None).run()
    a = read_state_dict(tmp_path / "a" / "model.safetensors")
    b = read_state_dict(tmp_path / "b" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
