"""Training data sets: caching, crops aligned with the degradation, sub-images, pairs, bad data, data order."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from srlab.data.datasets import SampleStream, SRTrainSet, synthesize_lr
from srlab.errors import DataError
from srlab.imaging.color import rgb_to_y
from srlab.imaging.resize import imresize, quantize, study_resize, upsample


def _img(rng, h, w):
    """A smooth-ish random RGB uint8 image (noise upsampled), so resizes have structure."""
    small = rng.integers(0, 256, size=(h // 4 + 1, w // 4 + 1, 3)).astype(np.uint8)
    return np.asarray(Image.fromarray(small).resize((w, h), Image.BICUBIC))


def _folder(tmp_path, sizes, name="hr", seed=0, ext=".png"):
    rng = np.random.default_rng(seed)
    d = tmp_path / name
    d.mkdir()
    arrays = {}
    for i, (h, w) in enumerate(sizes):
        a = _img(rng, h, w)
        Image.fromarray(a).save(d / f"im{i:02d}{ext}")
        arrays[f"im{i:02d}"] = a
    return d, arrays


def _chw(a):
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1))).double()[None]


def test_whole_image_bicubic_lr_and_aligned_random_crops(tmp_path):
    d, arrays = _folder(tmp_path, [(40, 52), (48, 36)])
    ds = SRTrainSet(d, scale=2, mode="random", crop=16, flip=False, rot90=False)
    assert len(ds) == 2 and ds.lr[0].dtype == np.uint8
    # The LR of each whole image is MATLAB bicubic, rounded.
    want = quantize(imresize(_chw(arrays["im00"]), 0.5))[0].permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(ds.lr[0], want.astype(np.uint8))
    # Every crop pair is cut at the same place of HR and of LR (offsets on the LR grid).
    for seed in range(5):
        lr, hr = ds.get(0, np.random.default_rng(seed))
        assert lr.shape == (3, 8, 8) and hr.shape == (3, 16, 16)
        hr_u8 = np.round(hr * 255).astype(np.uint8).transpose(1, 2, 0)
        full = arrays["im00"]
        hits = [
            (y, x)
            for y in range(0, 40 - 16 + 1, 2)
            for x in range(0, 52 - 16 + 1, 2)
            if np.array_equal(full[y : y + 16, x : x + 16], hr_u8)
        ]
        assert len(hits) == 1
        y, x = hits[0]
        np.testing.assert_allclose(
            lr * 255, ds.lr[0][y // 2 : y // 2 + 8, x // 2 : x // 2 + 8].transpose(2, 0, 1), atol=1e-4
        )


def test_study_center_crop_and_float_lr(tmp_path):
    d, arrays = _folder(tmp_path, [(50, 60)])
    ds = SRTrainSet(
        d, scale=2, mode="center", crop=32, degradation="study", quantize_lr=False, flip=False, rot90=False
    )
    lr, hr = ds.get(0)
    a = arrays["im00"]
    y0, x0 = 50 // 2 - 16, 60 // 2 - 16  # OpenCV-style centre crop
    np.testing.assert_array_equal(
        np.round(hr * 255).astype(np.uint8).transpose(1, 2, 0), a[y0 : y0 + 32, x0 : x0 + 32]
    )
    want = study_resize(torch.from_numpy(hr)[None].double(), (16, 16))[0].numpy()
    np.testing.assert_allclose(lr, want, atol=1e-6)
    assert ds.lr[0].dtype == np.float32  # not rounded (the study kept float LR)
    assert not np.allclose(lr * 255, np.round(lr * 255))


def test_srcnn_paper_subimages_on_y(tmp_path):
    d, arrays = _folder(tmp_path, [(60, 47)])
    ds = SRTrainSet(
        d,
        scale=3,
        mode="subimages",
        crop=33,
        stride=14,
        color="y",
        pre_upsample="bicubic",
        flip=False,
        rot90=False,
    )
    # HR modcropped to 60x45: rows 0, 14 (27+33>60 stops), cols 0 only (14+33 = 47 > 45).
    assert [(it.y, it.x) for it in ds.items] == [(0, 0), (14, 0)]
    inp, hr = ds.get(1)
    assert inp.shape == hr.shape == (1, 33, 33)
    a = arrays["im00"][:60, :45]
    lr_rgb = quantize(imresize(_chw(a), 1 / 3))
    want_inp = upsample(rgb_to_y(lr_rgb), 3, "bicubic")[0, :, 14:47, 0:33].numpy() / 255
    want_hr = rgb_to_y(_chw(a))[0, :, 14:47, 0:33].numpy() / 255
    np.testing.assert_allclose(inp, want_inp, atol=1e-5)
    np.testing.assert_allclose(hr, want_hr, atol=1e-6)


def test_augmentation_applies_the_same_transform_to_lr_and_hr(tmp_path):
    d, _ = _folder(tmp_path, [(32, 32)])
    ds = SRTrainSet(
        d, scale=2, mode="center", crop=32, degradation="study", quantize_lr=False, flip=True, rot90=True
    )
    plain = SRTrainSet(
        d, scale=2, mode="center", crop=32, degradation="study", quantize_lr=False, flip=False, rot90=False
    )
    lr0, hr0 = plain.get(0)
    seen = set()
    for seed in range(64):
        lr, hr = ds.get(0, np.random.default_rng(seed))
        # the study's bilinear /2 commutes with flips and transposition: LR must match the transformed HR
        np.testing.assert_allclose(
            lr, study_resize(torch.from_numpy(hr)[None], (16, 16))[0].numpy(), atol=1e-6
        )
        seen.add(hr.tobytes())
    assert len(seen) == 8  # all 8 flips/rotations occur
    assert hr0.tobytes() in seen


def test_paired_folders(tmp_path):
    d, arrays = _folder(tmp_path, [(32, 40), (24, 24)])
    lr_dir = tmp_path / "lr"
    lr_dir.mkdir()
    for name, a in arrays.items():
        lr = quantize(imresize(_chw(a), 0.5))[0].permute(1, 2, 0).numpy().astype(np.uint8)
        Image.fromarray(lr).save(lr_dir / f"{name}x2.png")
    ds = SRTrainSet(d, scale=2, lr_dir=lr_dir, mode="random", crop=16)
    synth = SRTrainSet(d, scale=2, mode="random", crop=16)
    for i in range(2):
        np.testing.assert_array_equal(ds.lr[i], synth.lr[i])
    (lr_dir / "im01x2.png").unlink()
    part = SRTrainSet(d, scale=2, lr_dir=lr_dir, mode="random", crop=16)
    assert len(part) == 1 and part.skipped["unpaired"] == ["im01.png"]


def test_bad_data_is_skipped_with_a_count_and_small_images_skip_or_pad(tmp_path):
    d, _ = _folder(tmp_path, [(40, 40), (20, 30), (48, 48)])
    (d / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)  # truncated
    (d / "empty.png").write_bytes(b"")
    (d / "notes.txt").write_text("not an image")  # ignored: not an image extension
    msgs = []
    ds = SRTrainSet(d, scale=2, mode="random", crop=32, log=msgs.append)
    assert len(ds) == 2
    assert len(ds.skipped["unreadable"]) == 2 and ds.skipped["too small"] == ["im01.png 30x20"]
    assert any("skipped 3 of 5 images" in m for m in msgs)
    padded = SRTrainSet(d, scale=2, mode="random", crop=32, small="pad")
    assert len(padded) == 3 and padded.hr[1].shape == (32, 32, 3)
    lr, hr = padded.get(1)
    assert hr.shape == (3, 32, 32) and lr.shape == (3, 16, 16)


def test_missing_empty_and_unusable_folders_raise_one_data_error(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        SRTrainSet(tmp_path / "nope", scale=2)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no image files"):
        SRTrainSet(tmp_path / "empty", scale=2)
    d, _ = _folder(tmp_path, [(20, 20)])
    with pytest.raises(DataError, match="no usable training image"):
        SRTrainSet(d, scale=2, crop=64)
    with pytest.raises(DataError, match="not a multiple of the scale"):
        SRTrainSet(d, scale=3, crop=16)


def test_training_files_come_from_the_one_lister(tmp_path):
    # srlab.imaging.files: natural order, hidden and non-image files skipped
    rng = np.random.default_rng(3)
    d = tmp_path / "hr"
    d.mkdir()
    for name in ("img10.png", "img2.PNG", ".hidden.png"):
        Image.fromarray(_img(rng, 16, 16)).save(d / name, format="PNG")
    (d / "notes.txt").write_text("not an image")
    ds = SRTrainSet(d, scale=2, mode="full", flip=False, rot90=False)
    assert ds.names == ["img2.PNG", "img10.png"]
    assert not any(ds.skipped.values())


def test_sample_stream_is_a_function_of_seed_and_position():
    s1, s2 = SampleStream(10, seed=3), SampleStream(10, seed=3)
    seq = [s1.item(p) for p in range(35)]
    assert seq == [s2.item(p) for p in reversed(range(35))][::-1]  # order of queries does not matter
    for e in range(3):
        assert sorted(seq[e * 10 : e * 10 + 10]) == list(range(10))  # each epoch is a permutation
    assert seq[:10] != seq[10:20]
    assert SampleStream(10, seed=4).permutation(0).tolist() != seq[:10]
    # two ranks' shards of a step are disjoint and together equal the single-process batch
    r0, r1 = s1.positions(5, 4, rank=0, world=2), s1.positions(5, 4, rank=1, world=2)
    assert r0 + r1 == s1.positions(5, 8)
    assert s1.epoch_of(3, 4) == (1, 2)


def test_batches_are_deterministic_and_lr_on_device_matches(tmp_path):
    d, _ = _folder(tmp_path, [(40, 40), (36, 44), (48, 32)])
    ds = SRTrainSet(d, scale=2, mode="random", crop=16, degradation="study", quantize_lr=False)
    st = SampleStream(len(ds), seed=1)
    a = ds.batch(st, range(4, 8), seed=7)
    b = ds.batch(st, range(4, 8), seed=7)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    c = ds.batch(st, range(4, 8), seed=8)
    assert not torch.equal(a[1], c[1])
    dev = SRTrainSet(d, scale=2, mode="random", crop=16, lr_on_device=True)
    lr_none, hr = dev.batch(st, range(4, 8), seed=7)
    assert lr_none is None and torch.equal(hr, a[1])  # same crops, flips
    lr, hr2 = synthesize_lr(hr, 2, "study", quantize_lr=False)
    torch.testing.assert_close(lr, a[0], atol=1e-6, rtol=0)
    lr_y, hr_y = synthesize_lr(hr, 2, "bicubic", color="y")
    assert lr_y.shape == (4, 1, 8, 8) and hr_y.shape == (4, 1, 16, 16)
    torch.testing.assert_close(hr_y * 255, rgb_to_y(hr * 255))


def _lr_folder(tmp_path, arrays, size_of, name="lr"):
    """An LR folder holding, for each HR array, an image of the size ``size_of(h, w)`` (stem + x2)."""
    d = tmp_path / name
    d.mkdir()
    for stem, a in arrays.items():
        h, w = size_of(*a.shape[:2])
        Image.fromarray(np.ascontiguousarray(a[:h, :w])).save(d / f"{stem}x2.png")
    return d


def test_paired_lr_that_is_not_hr_over_scale_is_refused_naming_the_first_bad_pair(tmp_path):
    d, arrays = _folder(tmp_path, [(32, 40), (24, 24)])
    # an LR folder that holds HR-sized images: refused, not cropped to its top-left quarter
    same = _lr_folder(tmp_path, arrays, lambda h, w: (h, w), name="same")
    with pytest.raises(DataError) as e:
        SRTrainSet(d, scale=2, lr_dir=same, mode="random", crop=16)
    msg = str(e.value)
    assert "\n" not in msg and "im00x2.png" in msg and "im00.png" in msg
    assert "40x32" in msg and "expected 20x16" in msg
    # one pixel too large is as wrong as one too small
    big = _lr_folder(tmp_path, arrays, lambda h, w: (h // 2 + 1, w // 2), name="big")
    with pytest.raises(DataError, match=r"im00x2\.png is 20x17, expected 20x16"):
        SRTrainSet(d, scale=2, lr_dir=big, mode="random", crop=16)
    small = _lr_folder(tmp_path, arrays, lambda h, w: (h // 2, w // 2 - 1), name="small")
    with pytest.raises(DataError, match=r"im00x2\.png is 19x16"):
        SRTrainSet(d, scale=2, lr_dir=small, mode="center", crop=16)


def test_paired_lr_is_checked_against_the_modcropped_hr_and_centre_crops_stay_aligned(tmp_path):
    d, arrays = _folder(tmp_path, [(33, 41)])  # odd sizes: modcrop to 32x40, LR 16x20
    ok = _lr_folder(tmp_path, arrays, lambda h, w: (h // 2, w // 2))
    ds = SRTrainSet(d, scale=2, lr_dir=ok, mode="random", crop=16)
    assert ds.hr[0].shape == (32, 40, 3) and ds.lr[0].shape == (16, 20, 3)
    lr_img = np.asarray(Image.open(ok / "im00x2.png"))
    # centre crops cut LR and HR at the same place (on the LR grid), not the LR's top-left corner
    cen = SRTrainSet(d, scale=2, lr_dir=ok, mode="center", crop=16, flip=False, rot90=False)
    lr, hr = cen.get(0)
    hr_u8 = np.round(hr * 255).astype(np.uint8).transpose(1, 2, 0)
    lr_u8 = np.round(lr * 255).astype(np.uint8).transpose(1, 2, 0)
    full = arrays["im00"]
    (y, x) = [
        (y, x)
        for y in range(0, 33 - 16 + 1)
        for x in range(0, 41 - 16 + 1)
        if np.array_equal(full[y : y + 16, x : x + 16], hr_u8)
    ][0]
    assert y % 2 == 0 and x % 2 == 0 and (y, x) != (0, 0)
    np.testing.assert_array_equal(lr_u8, lr_img[y // 2 : y // 2 + 8, x // 2 : x // 2 + 8])
    # ceil instead of floor is not HR/scale either
    d2, arrays2 = _folder(tmp_path, [(33, 41)], name="hr2")
    ceil = _lr_folder(
        tmp_path,
        {k: np.pad(v, ((0, 1), (0, 1), (0, 0))) for k, v in arrays2.items()},
        lambda h, w: (h // 2, w // 2),
        name="ceil",
    )
    with pytest.raises(DataError, match=r"is 21x17, expected 20x16"):
        SRTrainSet(d2, scale=2, lr_dir=ceil, mode="random", crop=16)


# ------------------------------------------------------------------------------- layouts users keep
def _lr_of(a, scale):
    return quantize(imresize(_chw(a), 1 / scale))[0].permute(1, 2, 0).numpy().astype(np.uint8)


def test_realsr_layout_of_hr_and_lr_pairs_in_one_folder(tmp_path):
    rng = np.random.default_rng(5)
    d = tmp_path / "Canon" / "Train" / "2"
    d.mkdir(parents=True)
    arrays = {}
    for i in range(3):
        a = _img(rng, 32, 40)
        arrays[f"Canon_{i:03d}"] = a
        Image.fromarray(a).save(d / f"Canon_{i:03d}_HR.png")
        Image.fromarray(_lr_of(a, 2)).save(d / f"Canon_{i:03d}_LR2.png")
    Image.fromarray(_lr_of(arrays["Canon_000"], 4)).save(d / "Canon_000_LR4.png")  # another scale: not used
    ds = SRTrainSet(d, scale=2, mode="random", crop=16)
    assert ds.paired and ds.layout == "_HR/_LR2 pairs"
    assert ds.names == ["Canon_000_HR.png", "Canon_001_HR.png", "Canon_002_HR.png"]
    for i, name in enumerate(arrays):
        np.testing.assert_array_equal(ds.hr[i], arrays[name])
        np.testing.assert_array_equal(ds.lr[i], _lr_of(arrays[name], 2))
    # a pair is the same place: the LR crop is the HR crop's area
    lr, hr = ds.get(0, np.random.default_rng(0))
    assert lr.shape == (3, 8, 8) and hr.shape == (3, 16, 16)
    # at x4 the folder has one LR4 file: the other HR images are unpaired and counted
    ds4 = SRTrainSet(d, scale=4, mode="random", crop=16)
    assert len(ds4.hr) == 1 and ds4.skipped["unpaired"] == ["Canon_001_HR.png", "Canon_002_HR.png"]
    # a wrong-size LR file is refused naming it
    Image.fromarray(arrays["Canon_001"][:30]).save(d / "Canon_001_LR2.png")
    with pytest.raises(DataError, match=r"Canon_001_LR2\.png is 40x30, expected 20x16"):
        SRTrainSet(d, scale=2, mode="random", crop=16)


@pytest.mark.parametrize(
    "hr_name,lr_name", [("HR", "LR"), ("train_HR", "train_LR"), ("X_HR", "X_LR_bicubic/X2")]
)
def test_sibling_lr_folder_is_matched_by_name(tmp_path, hr_name, lr_name):
    d, arrays = _folder(tmp_path, [(32, 40), (24, 24), (20, 28)], name=hr_name)
    lr_dir = tmp_path / lr_name
    lr_dir.mkdir(parents=True)
    for name, a in list(arrays.items())[:2]:
        suffix = "x2" if "X2" in lr_name else ""
        Image.fromarray(_lr_of(a, 2)).save(lr_dir / f"{name}{suffix}.png")
    ds = SRTrainSet(d, scale=2, mode="random", crop=16)
    assert ds.paired and ds.layout == f"sibling LR folder {lr_dir}"
    assert ds.names == ["im00.png", "im01.png"] and ds.skipped["unpaired"] == ["im02.png"]
    np.testing.assert_array_equal(ds.lr[1], _lr_of(arrays["im01"], 2))
    # on-the-fly LR ignores the LR files
    dev = SRTrainSet(d, scale=2, mode="random", crop=16, lr_on_device=True)
    assert not dev.paired and len(dev.hr) == 3
    # so does another degradation named in the config: the study's LR is made, not the folder's
    study = SRTrainSet(d, scale=2, mode="random", crop=16, degradation="study", quantize_lr=False)
    assert not study.paired and len(study.hr) == 3
    np.testing.assert_allclose(
        study.lr[1], study_resize(_chw(arrays["im01"]), (12, 12))[0].permute(1, 2, 0).numpy(), atol=1e-3
    )


def test_hr_only_folder_has_no_pairs(tmp_path):
    d, _ = _folder(tmp_path, [(32, 40)], name="photos_HR")  # an HR-ish name without an LR sibling
    ds = SRTrainSet(d, scale=2, mode="random", crop=16)
    assert not ds.paired and ds.layout == "hr only"


def test_weighted_mix_of_folders(tmp_path):
    from srlab.data.mixture import MixedTrainSet

    a_dir, a = _folder(tmp_path, [(32, 32)] * 3, name="a", seed=1)
    b_dir, b = _folder(tmp_path, [(32, 32)] * 5, name="b", seed=2)
    sets = [SRTrainSet(a_dir, scale=2, crop=16, flip=False, rot90=False), SRTrainSet(b_dir, scale=2, crop=16)]
    mix = MixedTrainSet(sets, [2, 1], seed=4)
    stream = SampleStream(len(mix), 4)
    assert len(mix) == 8
    n = 3000
    src = [mix.source_of(4, p) for p in range(n)]
    assert sum(s == 0 for s in src) / n == pytest.approx(2 / 3, abs=0.03)
    # the items of one folder come from that folder, all of them
    picked = {mix.streams[0].item(p) for p, s in enumerate(src) if s == 0}
    assert picked == {0, 1, 2}
    lr, hr = mix.batch(stream, range(10, 16), seed=4)
    lr2, hr2 = mix.batch(stream, range(10, 16), seed=4)
    assert torch.equal(hr, hr2) and torch.equal(lr, lr2) and hr.shape == (6, 3, 16, 16)
    # each sample is a crop of an image of the folder it was drawn from
    for i, p in enumerate(range(10, 16)):
        k = mix.source_of(4, p)
        img = list((a, b)[k].values())[mix.streams[k].item(p)]
        crop = (hr[i].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        if k == 0:  # no flips in folder a: the crop is somewhere in the image as it is
            found = any(
                np.array_equal(img[y : y + 16, x : x + 16], crop)
                for y in range(0, 17, 2)
                for x in range(0, 17, 2)
            )
            assert found
    assert mix.fingerprint() != MixedTrainSet(sets, [1, 1], seed=4).fingerprint()
    with pytest.raises(DataError, match="> 0"):
        MixedTrainSet(sets, [1, 0])


def test_config_train_list_form_and_single_name_form(tmp_path):
    from srlab.errors import ConfigError
    from srlab.train.batches import TrainBatches
    from srlab.train.config import config_from_dict

    a_dir, _ = _folder(tmp_path, [(32, 32)] * 2, name="a", seed=1)
    b_dir, _ = _folder(tmp_path, [(32, 32)] * 2, name="b", seed=2)
    cfg = config_from_dict(
        {"data": {"train": [{"path": str(a_dir), "weight": 3}, {"path": str(b_dir)}], "crop": 16}, "scale": 2}
    )
    tb = TrainBatches(cfg, None)
    assert tb.data.probs.tolist() == [0.75, 0.25]
    lr, hr = tb.batch(4, 0, 0, rank=0, world=1, device=torch.device("cpu"))
    assert lr.shape == (4, 3, 8, 8) and hr.shape == (4, 3, 16, 16)
    single = TrainBatches(config_from_dict({"data": {"train": str(a_dir), "crop": 16}, "scale": 2}), None)
    assert isinstance(single.data, SRTrainSet)
    with pytest.raises(ConfigError, match=r"data\.train\[1\]\.weight"):
        config_from_dict({"data": {"train": [{"path": "a"}, {"path": "b", "weight": 0}]}})
    # errors inside the list name the entry (not pydantic's union member)
    with pytest.raises(
        ConfigError,
        match=r"^unknown config key 'data\.train\[0\]\.pth'; did you mean 'data\.train\[0\]\.path'\?$",
    ):
        config_from_dict({"data": {"train": [{"pth": "a"}]}})
    with pytest.raises(ConfigError, match=r"^data\.train\[0\]\.weight: expected float, got 'x'$"):
        config_from_dict({"data": {"train": [{"path": "a", "weight": "x"}]}})
    with pytest.raises(ConfigError, match="train_lr"):
        config_from_dict({"data": {"train": [{"path": "a"}], "train_lr": "x"}})
