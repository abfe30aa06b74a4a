"""The evaluation protocols (srlab.eval.protocols): HR preparation, LR, rounding, and one pair for eval and validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from srlab.errors import ConfigError
from srlab.eval.loop import evaluate
from srlab.eval.models import EvalModel
from srlab.eval.protocols import PROTOCOLS, Protocol, centre_crop, get_protocol, read_hr
from srlab.imaging.resize import imresize, quantize
from srlab.models.registry import ModelDescriptor
from srlab.train.validate import ValSet, run_validation

STANDARD, STUDY = get_protocol("standard"), get_protocol("study")


def _ramp(h: int, w: int, c: int = 3) -> np.ndarray:
    """A hand-made image whose every pixel says where it came from."""
    return (np.arange(h * w * c).reshape(h, w, c) % 251).astype(np.uint8)


def test_get_protocol_knows_the_two_and_refuses_others_in_one_line():
    assert set(PROTOCOLS) == {"standard", "study"}
    assert get_protocol("study") is STUDY and get_protocol(STUDY) is STUDY
    with pytest.raises(ConfigError) as exc:
        get_protocol("papers")
    msg = str(exc.value)
    assert "\n" not in msg and "'papers'" in msg and "standard or study" in msg
    with pytest.raises(ConfigError, match="unknown degradation"):
        Protocol("x", "s", "nearest", "bicubic", "uint8", "uint8", "y", "scale")
    with pytest.raises(ConfigError, match="metric_channel 'cb'"):
        Protocol("x", "s", "bicubic", "bicubic", "uint8", "uint8", "cb", "scale")


def test_protocol_fields_say_what_each_protocol_does():
    assert (STANDARD.degradation, STANDARD.interpolation, STANDARD.metric_channel) == (
        "bicubic",
        "bicubic",
        "y",
    )
    assert (STUDY.degradation, STUDY.interpolation, STUDY.metric_channel) == ("study", "bilinear", "rgb")
    assert [STANDARD.border_crop(s) for s in (2, 3, 4)] == [2, 3, 4]
    assert [STUDY.border_crop(s) for s in (2, 3, 4)] == [0, 0, 0]
    assert STANDARD.border_crop(4, crop=0) == 0 and STUDY.border_crop(2, crop=5) == 5
    assert STANDARD.hr_crop is None and STUDY.hr_crop == 128


def test_standard_prepare_hr_is_a_modcrop():
    a = _ramp(53, 47)
    for s in (2, 3, 4):
        hr, reason = STANDARD.prepare_hr(a, s)
        assert reason is None
        assert np.array_equal(hr, a[: 53 - 53 % s, : 47 - 47 % s])
    # a requested centre crop does not apply to the standard protocol
    hr, _ = STANDARD.prepare_hr(a, 2, hr_crop=16)
    assert hr.shape == (52, 46, 3)
    # grey stays one channel
    g, _ = STANDARD.prepare_hr(_ramp(30, 30, 1), 2)
    assert g.shape == (30, 30, 1)


def test_too_small_images_give_a_reason():
    # x4, border crop 4: needs 2 * 4 + 11 = 19 pixels after modcrop; 18 -> 16 is too small
    hr, reason = STANDARD.prepare_hr(_ramp(18, 40), 4)
    assert hr is None and "18" in reason and "too small for x4 with a 4-pixel border crop" in reason
    assert "19x19" in reason
    ok, reason = STANDARD.prepare_hr(_ramp(20, 20), 4)
    assert reason is None and ok.shape == (20, 20, 3)
    # the study: smaller than the centre crop in one dimension only
    hr, reason = STUDY.prepare_hr(_ramp(100, 300), 2)
    assert hr is None and reason == "300x100 is smaller than the 128x128 centre crop"
    # no border crop, but SSIM still needs its 11x11 window
    hr, reason = STUDY.prepare_hr(_ramp(10, 30), 2, hr_crop=0)
    assert hr is None and "needs at least 11x11" in reason


def test_study_centre_crop_position():
    a = _ramp(150, 171)
    hr, reason = STUDY.prepare_hr(a, 2)
    assert reason is None
    # OpenCV's centre crop: x = W//2 - 64 = 21, y = H//2 - 64 = 11
    assert np.array_equal(hr, a[11:139, 21:149])
    assert np.array_equal(centre_crop(a, 128), a[11:139, 21:149])
    # odd sizes: x = W//2 - c//2, y = H//2 - c//2
    b = _ramp(9, 10)
    assert np.array_equal(centre_crop(b, 5), b[2:7, 3:8])
    # x3: the 128 crop is then modcropped to 126
    hr3, _ = STUDY.prepare_hr(a, 3)
    assert np.array_equal(hr3, a[11:137, 21:147])
    # an explicit crop size
    hr64, _ = STUDY.prepare_hr(a, 2, hr_crop=64)
    assert np.array_equal(hr64, a[43:107, 53:117])


def test_study_uses_small_images_and_the_studys_whole_sets_whole():
    small = _ramp(101, 90)
    hr, _ = STUDY.prepare_hr(small, 2)  # at or below 128x128: whole, modcropped
    assert np.array_equal(hr, small[:100, :90])
    anime = _ramp(256, 256)
    for name in ("selfie2anime", "SELFIE2ANIME", "FFHQ_thumbnails128"):
        assert STUDY.crop_size(None, name) is None
        hr, _ = STUDY.prepare_hr(anime, 2, dataset=name)
        assert hr.shape == (256, 256, 3)
    assert STUDY.crop_size(None, "DIV2K_valid_HR") == 128 and STUDY.crop_size(None, None) == 128
    # an explicit size wins over the set rule; 0 means the whole image
    hr, _ = STUDY.prepare_hr(anime, 2, dataset="selfie2anime", hr_crop=128)
    assert np.array_equal(hr, anime[64:192, 64:192])
    assert STUDY.crop_size(0) is None and STANDARD.crop_size(128) is None


def test_make_lr_and_round_sr():
    rng = np.random.default_rng(0)
    hr = torch.from_numpy(rng.integers(0, 256, (1, 3, 24, 20)).astype(np.float64))
    lr = STANDARD.make_lr(hr, 2)
    assert lr.dtype == torch.float64 and torch.equal(lr, quantize(imresize(hr, 0.5)))
    slr = STUDY.make_lr(hr, 2)  # bilinear /2 without antialiasing on float32 [0, 1] == the 2x2 mean
    ref = F.avg_pool2d((hr / 255).float(), 2).double() * 255
    assert slr.shape == (1, 3, 12, 10) and torch.allclose(slr, ref, atol=1e-4)
    assert not torch.equal(slr, slr.round())  # not rounded
    sr = torch.tensor([-3.0, 0.4, 0.5, 254.6, 300.0], dtype=torch.float64)
    assert STANDARD.round_sr(sr).tolist() == [0.0, 0.0, 1.0, 255.0, 255.0]
    assert STUDY.round_sr(sr).tolist() == [0.0, 0.4, 0.5, 254.6, 255.0]


def test_describe_fills_in_the_run():
    d = STANDARD.describe()
    assert (
        d["name"] == "standard"
        and d["crop"] == "border crop of s (the scale) pixels on each side before PSNR/SSIM"
    )
    assert list(d)[:7] == ["name", "summary", "hr", "degradation", "lr_rounding", "sr_rounding", "crop"]
    assert STANDARD.describe(crop=0)["crop"].startswith("border crop of 0 pixels")
    s = STUDY.describe()
    assert "centre crop at x = W//2 - 64, y = H//2 - 64 of size 128x128" in s["hr"]
    assert "border crop of 0 pixels" in s["crop"]
    assert "W//2 - 32" in STUDY.describe(hr_crop=64)["hr"]
    assert STUDY.describe(hr_crop=0)["hr"].startswith("HR = the whole image")


def test_read_hr_keeps_grey_as_one_channel(tmp_path):
    g = _ramp(12, 9, 1)[..., 0]
    Image.fromarray(g).save(tmp_path / "g.png")
    px, notes = read_hr(tmp_path / "g.png")
    assert px.shape == (12, 9, 1) and np.array_equal(px[..., 0], g) and notes == []


# ---------------------------------------------------------------- validation prepares what eval prepares


class _Recorder(torch.nn.Module):
    """Nearest x2 upsampling that keeps every input it was given."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.seen: list[torch.Tensor] = []
        self.w = torch.nn.Parameter(torch.ones(1))
        self.channels = channels

    def forward(self, x):
        self.seen.append(x.detach().clone())
        return F.interpolate(x, scale_factor=2, mode="nearest") * self.w


def _descriptor(color: str) -> ModelDescriptor:
    c = 1 if color == "y" else 3
    return ModelDescriptor("rec", "rec", 2, c, c, 1, color=color)


def _smooth(rng, h, w, c=3):
    y, x = np.mgrid[0:h, 0:w]
    base = 120 + 60 * np.sin(x / 7.0)[..., None] * np.cos(y / 5.0)[..., None]
    a = np.clip(base + rng.normal(0, 12, (h, w, c)), 0, 255).astype(np.uint8)
    return a[..., 0] if c == 1 else a


@pytest.mark.parametrize("protocol", ["standard", "study"])
@pytest.mark.parametrize("color", ["rgb", "y"])
def test_validation_and_eval_prepare_the_same_pair(tmp_path, protocol, color):
    rng = np.random.default_rng(7)
    d = tmp_path / "val"
    d.mkdir()
    imgs = {
        "a": _smooth(rng, 150, 171),
        "b": _smooth(rng, 60, 70, 1),  # grey, below the study crop: whole
        "c": _smooth(rng, 100, 300),  # the study skips it (smaller than the crop in one dimension)
    }
    for k, a in imgs.items():
        Image.fromarray(a).save(d / f"{k}.png")
    proto = get_protocol(protocol)
    logs: list[str] = []
    vset = ValSet(d, scale=2, protocol=protocol, color=color, log=logs.append)
    names = [im.name for im in vset.images]
    assert names == (["a", "b"] if protocol == "study" else ["a", "b", "c"])
    if protocol == "study":
        assert "c.png (300x100 is smaller than the 128x128 centre crop)" in logs[0]

    rec = _Recorder(1 if color == "y" else 3)
    em = EvalModel("rec", "rec", rec, _descriptor(color))
    ch = proto.metric_channel
    res = evaluate(
        [em], ["V"], [2], protocol=protocol, set_paths={"V": d}, channels=(ch,), log=lambda m: None
    )
    rows = {r["image"]: r for r in res.rows}
    assert list(rows) == names
    # eval runs the model twice on the first image (an untimed warm-up), then once per image
    seen = [rec.seen[0]] + rec.seen[2:]
    assert len(seen) == len(vset.images)
    for x, im in zip(seen, vset.images):
        assert x.dtype == im.inp.dtype == torch.float32 and torch.equal(x, im.inp)
        assert (rows[im.name]["h"], rows[im.name]["w"]) == tuple(im.hr.shape[-2:])

    mean, vrows = run_validation(rec, vset, "cpu")
    assert len(vrows) == len(vset.images) and np.isfinite(mean["psnr"])
    if color == "y" and ch == "rgb":
        return  # eval scores a Y model's RGB on SR-Y + interpolated CbCr; validation on its own Y output
    for vr in vrows:
        assert vr["psnr"] == pytest.approx(rows[vr["image"]][f"psnr_{ch}"], abs=1e-9)
        assert vr["ssim"] == pytest.approx(rows[vr["image"]][f"ssim_{ch}"], abs=1e-9)


def test_validation_uses_the_studys_whole_sets_whole(tmp_path):
    rng = np.random.default_rng(3)
    d = tmp_path / "anime"
    d.mkdir()
    Image.fromarray(_smooth(rng, 256, 256)).save(d / "x.png")
    whole = ValSet(d, scale=2, protocol="study", color="rgb", dataset="selfie2anime_testB")  # an alias
    assert whole.dataset == "selfie2anime" and whole.images[0].hr.shape[-2:] == (256, 256)
    res = evaluate(
        ["bilinear"],
        ["selfie2anime"],
        [2],
        protocol="study",
        set_paths={"selfie2anime": d},
        log=lambda m: None,
    )
    assert (res.rows[0]["h"], res.rows[0]["w"]) == (256, 256) and res.header["datasets"][0]["hr_crop"] is None
    cropped = ValSet(d, scale=2, protocol="study", color="rgb")
    assert cropped.images[0].hr.shape[-2:] == (128, 128)
    small = ValSet(d, scale=2, protocol="study", color="rgb", hr_crop=64)
    assert small.images[0].hr.shape[-2:] == (64, 64)
