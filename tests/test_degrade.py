"""MATLAB imresize against MATLAB's own output, the study's resize, and the GPU-style float32 path."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from srlab.errors import ConfigError
from srlab.imaging.resize import (
    get_degradation,
    imresize,
    modcrop,
    quantize,
    study_resize,
    upsample,
)

GOLDEN = ("baboon", "comic")


def _load(path) -> torch.Tensor:
    a = np.asarray(Image.open(path).convert("RGB"))
    return torch.from_numpy(a.copy()).permute(2, 0, 1).to(torch.float64)


@pytest.mark.parametrize("name", GOLDEN)
def test_imresize_reproduces_matlab_lr_exactly(golden_root, name):
    gt = _load(golden_root / "gt" / f"{name}.png")
    lq = _load(golden_root / "lq_matlab_x4" / f"{name}.png")
    lr = quantize(imresize(gt, 1 / 4))
    assert lr.shape == lq.shape
    assert torch.equal(lr, lq)  # 0 after rounding, every pixel
    # the named degradation is the same map, and it works on a batch
    lr2 = quantize(get_degradation("bicubic")(gt.unsqueeze(0), 4))
    assert torch.equal(lr2[0], lq)


def test_imresize_float32_batched_matches_float64():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(3, 3, 61, 47, generator=g, dtype=torch.float64) * 255
    for scale in (1 / 4, 1 / 3, 1 / 2, 2, 3, 4):
        ref = imresize(x, scale)
        fast = imresize(x.float(), scale)  # what the GPU training loop uses
        assert fast.dtype == torch.float32 and fast.shape == ref.shape
        assert (fast.double() - ref).abs().max() < 1e-3  # grey levels
        # batched == one image at a time
        assert torch.allclose(imresize(x[1], scale), ref[1], atol=1e-9)


def test_imresize_size_and_edge_properties():
    x = torch.full((1, 3, 10, 13), 77.0, dtype=torch.float64)
    # kernel weights sum to 1: a constant image stays constant, up and down, any size
    for y in (imresize(x, 1 / 3), imresize(x, 2.5), imresize(x, size=(7, 20))):
        assert torch.allclose(y, torch.full_like(y, 77.0))
    assert imresize(x, 1 / 3).shape[-2:] == (4, 5)  # MATLAB: ceil(10/3), ceil(13/3)
    assert imresize(x, size=(7, 20)).shape[-2:] == (7, 20)
    with pytest.raises(TypeError):
        imresize(torch.zeros(4, 4, dtype=torch.uint8), 2)


def test_imresize_matches_independent_loop():
    """A direct transcription of MATLAB's contributions() for one row, computed with a Python loop."""
    import math

    rng = np.random.default_rng(3)
    row = rng.uniform(0, 255, 23)
    scale = 1 / 3

    def cubic(t):
        t = abs(t)
        if t <= 1:
            return 1.5 * t**3 - 2.5 * t**2 + 1
        if t <= 2:
            return -0.5 * t**3 + 2.5 * t**2 - 4 * t + 2
        return 0.0

    n_out = math.ceil(len(row) * scale)
    width = 4 / scale
    out = []
    for i in range(1, n_out + 1):
        u = i / scale + 0.5 * (1 - 1 / scale)
        left = math.floor(u - width / 2)
        taps = range(left, left + math.ceil(width) + 2)
        w = np.array([scale * cubic(scale * (u - j)) for j in taps])
        idx = []
        for j in taps:  # symmetric padding, 1-based
            k = j - 1
            while k < 0 or k >= len(row):
                k = -k - 1 if k < 0 else 2 * len(row) - k - 1
            idx.append(k)
        out.append((w * row[idx]).sum() / w.sum())
    t = torch.from_numpy(row).view(1, 1, -1)
    ours = imresize(t, scale)[0, 0]  # one row: the vertical pass is the identity
    assert np.allclose(ours.numpy(), out, atol=1e-9)


def test_study_resize_is_2x2_box_average_for_half_size():
    g = torch.Generator().manual_seed(2)
    x = torch.rand(2, 3, 16, 12, generator=g)
    lr = get_degradation("study")(x, 2)
    box = F.avg_pool2d(x, 2)  # bilinear, align_corners=False, no antialias, exact /2 == 2x2 mean
    assert lr.shape == (2, 3, 8, 6)
    assert torch.allclose(lr, box, atol=1e-6)
    # upsampling back is torch's bilinear interpolation
    up = upsample(lr, 2, "bilinear")
    assert torch.allclose(up, F.interpolate(lr, scale_factor=2, mode="bilinear", align_corners=False))
    assert study_resize(x[0], (8, 6)).shape == (3, 8, 6)


def test_modcrop_and_quantize():
    a = np.zeros((13, 10, 3), np.uint8)
    assert modcrop(a, 4).shape == (12, 8, 3)
    assert modcrop(torch.zeros(1, 3, 13, 10), 3).shape == (1, 3, 12, 9)
    q = quantize(torch.tensor([-3.0, 0.5, 1.5, 2.49, 254.5, 300.0]))
    assert q.tolist() == [0.0, 1.0, 2.0, 2.0, 255.0, 255.0]  # round half away from zero, clipped


def test_unknown_degradation_is_a_config_error():
    with pytest.raises(ConfigError, match="bicubic"):
        get_degradation("jpeg")


# ------------------------------------------------------------------------------ banded weights (large sizes)


@pytest.fixture
def banded(monkeypatch):
    """Every resize through the banded path (normally only sizes whose dense matrix would be large)."""
    import srlab.imaging.resize as rs

    monkeypatch.setattr(rs, "DENSE_MAX_ELEMENTS", 0)
    rs._MATRIX_CACHE.clear()
    yield rs
    rs._MATRIX_CACHE.clear()


@pytest.mark.parametrize("name", GOLDEN)
def test_banded_resize_reproduces_matlab_lr_exactly(golden_root, banded, name):
    gt = _load(golden_root / "gt" / f"{name}.png")
    lq = _load(golden_root / "lq_matlab_x4" / f"{name}.png")
    assert torch.equal(quantize(imresize(gt, 1 / 4)), lq)
    assert not banded._MATRIX_CACHE  # no dense matrix was built


def test_banded_equals_dense_up_and_down(monkeypatch):
    import srlab.imaging.resize as rs

    g = torch.Generator().manual_seed(5)
    cases = [((3, 61, 47), 1 / 4, None), ((2, 3, 17, 90), 2, None), ((1, 5, 7), None, (13, 3)),
             ((3, 40, 33), 1 / 3, None), ((3, 9, 11), 3.7, None), ((1, 300, 2), None, (1000, 1)),
             ((1, 2, 700), 1 / 7, None), ((1, 1, 1), 4, None)]  # fmt: skip
    for shape, scale, size in cases:
        x = torch.rand(*shape, generator=g, dtype=torch.float64) * 255
        dense = imresize(x, scale, size=size)
        monkeypatch.setattr(rs, "DENSE_MAX_ELEMENTS", 0)
        band = imresize(x, scale, size=size)
        band32 = imresize(x.float(), scale, size=size)
        monkeypatch.setattr(rs, "DENSE_MAX_ELEMENTS", 1 << 22)
        assert band.shape == dense.shape, shape
        assert (band - dense).abs().max() < 1e-9, shape
        assert (band32.double() - dense).abs().max() < 1e-3, shape


def test_long_image_resize_is_banded_and_local():
    """A 3 x 20000 row: no dense 40000 x 20000 matrix (3.2 GB in float32) is built or cached, and each
    output only depends on its neighbourhood (a crop resized densely gives the same columns)."""
    import srlab.imaging.resize as rs

    g = torch.Generator().manual_seed(6)
    x = torch.rand(3, 3, 20000, generator=g, dtype=torch.float64)
    y = imresize(x, 2)
    assert y.shape == (3, 6, 40000)
    assert all(m.numel() <= rs.DENSE_MAX_ELEMENTS for m in rs._MATRIX_CACHE.values())
    a, b = 12000, 12100  # input columns; bicubic x2 reads 2 input pixels either side
    crop = imresize(x[..., a - 8 : b + 8], 2)
    assert torch.allclose(y[..., 2 * a : 2 * b], crop[..., 16:-16], atol=1e-12)
    down = imresize(x, 1 / 4)  # antialiased shrink: 4x wider kernel, still banded
    assert down.shape == (3, 1, 5000)
    crop = imresize(x[..., 8000 - 32 : 8400 + 32], 1 / 4)
    assert torch.allclose(down[..., 2000:2100], crop[..., 8:-8], atol=1e-12)
