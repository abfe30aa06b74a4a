"""`srlab eval`: the published bicubic table, bad files, output files, Y-channel models, the study protocol."""

from __future__ import annotations

import json
import struct
import zlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from srlab.cli import main
from srlab.eval.loop import evaluate
from srlab.eval.metrics import metrics_batch
from srlab.eval.models import EvalModel
from srlab.eval.protocols import centre_crop
from srlab.eval.results import markdown_table, read_results, summarize
from srlab.imaging.color import rgb_to_ycbcr
from srlab.imaging.resize import imresize, quantize
from srlab.models.bicubic import Interpolation
from srlab.models.registry import describe

# Bicubic, Y channel, crop = scale (SRCNN / VDSR / EDSR tables).
PUBLISHED = {
    ("Set5", 2): (33.66, 0.9299),
    ("Set5", 3): (30.39, 0.8682),
    ("Set5", 4): (28.42, 0.8104),
    ("Set14", 2): (30.24, 0.8688),
    ("Set14", 3): (27.55, 0.7742),
    ("Set14", 4): (26.00, 0.7027),
    ("B100", 2): (29.56, 0.8431),
    ("B100", 4): (25.96, 0.6675),  # x3 is not comparable: the copy is cropped to 480x320
}


@pytest.mark.slow
def test_bicubic_reproduces_the_published_table(data_root):
    res = evaluate(
        ["bicubic"], ["Set5", "Set14"], [2, 3, 4], data_root=data_root, channels=("y",), log=lambda m: None
    )
    res2 = evaluate(["bicubic"], ["B100"], [2, 4], data_root=data_root, channels=("y",), log=lambda m: None)
    summ = {(r["dataset"], r["scale"]): r for r in summarize(res.rows + res2.rows)}
    assert set(summ) == set(PUBLISHED)
    for key, (p, s) in PUBLISHED.items():
        assert summ[key]["n"] == {"Set5": 5, "Set14": 14, "B100": 100}[key[0]]
        assert abs(summ[key]["psnr_y"] - p) <= 0.03, (key, summ[key]["psnr_y"])
        assert abs(summ[key]["ssim_y"] - s) <= 0.002, (key, summ[key]["ssim_y"])
    assert not res.skipped and not res2.skipped


# ------------------------------------------------------------------------------------------ bad files


def _png16(path, a16: np.ndarray) -> None:
    """A 16-bit RGB PNG written by hand (big-endian samples), so the test does not rely on our writer."""
    h, w, _ = a16.shape
    raw = b"".join(b"\x00" + a16[y].astype(">u2").tobytes() for y in range(h))

    def chunk(tag, body):
        return (
            struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    )


def _smooth(rng, h, w, c=3):
    y, x = np.mgrid[0:h, 0:w]
    base = 128 + 60 * np.sin(x / 5.0 + rng.uniform(0, 6)) * np.cos(y / 7.0)
    a = base[..., None] + rng.normal(0, 8, (h, w, c))
    return np.clip(a, 0, 255).astype(np.uint8)


def test_bad_files_are_decoded_or_skipped_with_one_line(tmp_path, capsys):
    rng = np.random.default_rng(0)
    d = tmp_path / "weird"
    d.mkdir()
    good = _smooth(rng, 40, 48)
    Image.fromarray(good).save(d / "a_good.png")
    full = tmp_path / "full.png"
    Image.fromarray(_smooth(rng, 40, 48)).save(full)
    data = full.read_bytes()
    (d / "b_truncated.png").write_bytes(data[: len(data) // 2])
    (d / "c_empty.png").write_bytes(b"")
    (d / "d_text.png").write_text("this is not an image\n")
    Image.fromarray(good).convert("CMYK").save(d / "e_cmyk.jpg", quality=95)
    a16 = (good.astype(np.uint16) * 257 + 3).astype(np.uint16)  # 16-bit version of the same pixels
    _png16(d / "f_16bit.png", a16)
    Image.fromarray(_smooth(rng, 12, 12)).save(d / "g_tiny.png")
    out = tmp_path / "out"
    rc = main(
        [
            "eval",
            "--models",
            "bicubic",
            "--datasets",
            "Weird",
            "--set-path",
            f"Weird={d}",
            "--scale",
            "4",
            "--out",
            str(out),
            "--no-progress",
            "--allow-missing",
        ]
    )
    assert rc == 0
    printed, err = capsys.readouterr()
    assert "| Model | Weird (3/7) ×4 |" in printed and "accepted (--allow-missing)" in err
    lines = [ln for ln in err.splitlines() if ln.startswith("skip:")]
    assert len(lines) == 4, err
    for name, why in [
        ("b_truncated", "trunc"),
        ("c_empty", "empty"),
        ("d_text", "not an image"),
        ("g_tiny", "too small"),
    ]:
        (line,) = [ln for ln in lines if name in ln]
        assert why in line.lower(), line
    assert "f_16bit.png: 16-bit image evaluated at 8 bits" in err
    assert "Weird x4: 3 of 7 images evaluated" in err
    doc = read_results(out / "results.json")
    (ds,) = doc["header"]["datasets"]
    assert ds["found"] == 7 and ds["used"] == {"4": 3} and len(ds["skipped"]) == 4
    rows = {r["image"]: r for r in doc["rows"]}
    assert set(rows) == {"a_good", "e_cmyk", "f_16bit"}
    # the 16-bit file holds the same pixels (round(v/257) == the 8-bit image) -> identical results
    assert rows["f_16bit"]["psnr_y"] == rows["a_good"]["psnr_y"]
    assert 15 < rows["e_cmyk"]["psnr_rgb"] < 60  # decoded as a colour image, not garbage
    md = (out / "results.md").read_text()
    assert "d_text.png" in md and "Skipped images" in md


def test_outputs_roundtrip_and_protocol_header(data_root, tmp_path, capsys):
    out = tmp_path / "o"
    rc = main(
        [
            "eval",
            "--models",
            "bicubic,bilinear",
            "--datasets",
            "Set5",
            "--scale",
            "3",
            "--data-root",
            str(data_root),
            "--out",
            str(out),
            "--no-progress",
            "--save-images",
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert "| Model | Set5 ×3 |" in printed and "| bicubic | **30.40" in printed
    doc = json.loads((out / "results.json").read_text())
    assert doc["schema"] == "srlab-eval/1"
    h = doc["header"]
    assert h["protocol"]["name"] == "standard" and "imresize" in h["protocol"]["degradation"]
    assert "rounded to uint8" in h["protocol"]["lr_rounding"] and "border crop" in h["protocol"]["crop"]
    assert {m["label"] for m in h["models"]} == {"bicubic", "bilinear"}
    assert h["srlab_version"] and h["device"].startswith("cpu")
    assert len(doc["rows"]) == 10 and len(doc["summary"]) == 2
    import csv

    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0])[:11] == [
        "model",
        "dataset",
        "scale",
        "image",
        "psnr_y",
        "ssim_y",
        "psnr_rgb",
        "ssim_rgb",
        "runtime_s",
        "h",
        "w",
    ]
    for r_csv, r_json in zip(rows, doc["rows"]):
        assert float(r_csv["psnr_y"]) == r_json["psnr_y"]  # full precision in both
    saved = out / "images" / "bicubic" / "Set5" / "x3" / "baby.png"
    sr = np.asarray(Image.open(saved))
    hr = np.asarray(Image.open(data_root / "Set5" / "HR" / "baby.png"))[:510, :510]
    from srlab.eval.metrics import evaluate_pair

    baby = next(r for r in doc["rows"] if r["image"] == "baby" and r["model"] == "bicubic")
    assert evaluate_pair(sr, hr, 3)["psnr_y"] == pytest.approx(baby["psnr_y"], abs=1e-9)


def test_markdown_table_layout():
    rows = [
        {"model": "a", "dataset": "S", "scale": 2, "image": "x", "psnr_y": 30.0, "ssim_y": 0.9},
        {"model": "a", "dataset": "S", "scale": 2, "image": "y", "psnr_y": 31.0, "ssim_y": 0.8},
        {"model": "b", "dataset": "S", "scale": 2, "image": "x", "psnr_y": 32.0, "ssim_y": 0.7},
    ]
    md = markdown_table(rows)
    lines = md.splitlines()
    assert lines[2] == "| Model | S ×2 |"
    assert lines[4] == "| a | 30.50 / **0.8500** |"
    assert lines[5] == "| b | **32.00** / 0.7000 |"


class _YBicubic(torch.nn.Module):
    """A Y-channel model: MATLAB bicubic on one channel."""

    arch = "ybicubic"
    color = "y"
    in_channels = out_channels = 1

    def __init__(self, scale):
        super().__init__()
        self.scale = scale
        self.inner = Interpolation(scale=scale, num_channels=1)
        self.hparams = {"scale": scale}

    def forward(self, x):
        return self.inner(x)


def test_y_model_and_scale_skip(data_root, tmp_path):
    import shutil

    for name in ("comic", "bridge"):  # colour (odd height) and grayscale
        shutil.copy(data_root / "Set14" / "HR" / f"{name}.png", tmp_path)
    sets = {"Mini": tmp_path}
    m = _YBicubic(2)
    em = EvalModel("ybic", "ybic", m, describe(m))
    msgs = []
    res = evaluate([em], ["Mini"], [2, 3], set_paths=sets, log=msgs.append)
    assert any("model ybic is x2; not evaluated at x3" in s for s in msgs)
    assert {r["scale"] for r in res.rows} == {2}
    rows = {r["image"]: r for r in res.rows}
    # independent: Y metrics on the rounded bicubic Y of the rounded LR
    for name in ("comic", "bridge"):
        hr = np.asarray(Image.open(tmp_path / f"{name}.png"))
        hr = hr if hr.ndim == 3 else hr[..., None]
        hr = hr[: hr.shape[0] // 2 * 2, : hr.shape[1] // 2 * 2]
        t = torch.from_numpy(hr.copy()).permute(2, 0, 1)[None].double()
        lr = quantize(imresize(t, 0.5))
        y_lr = rgb_to_ycbcr(lr)[:, :1] if t.shape[1] == 3 else lr
        y_hr = rgb_to_ycbcr(t)[:, :1] if t.shape[1] == 3 else t
        sr_y = quantize(imresize((y_lr / 255).float(), 2).double() * 255)  # models run in float32
        ref = metrics_batch(sr_y, y_hr, crop=2, channels=("y",))
        assert rows[name]["psnr_y"] == pytest.approx(float(ref["psnr_y"][0]), abs=1e-9)
        assert rows[name]["ssim_y"] == pytest.approx(float(ref["ssim_y"][0]), abs=1e-9)
    # colour: RGB from SR-Y + bicubic CbCr is close to plain RGB bicubic
    rgb = evaluate(["bicubic"], ["Mini"], [2], set_paths=sets, log=lambda m: None)
    plain = {r["image"]: r for r in rgb.rows}
    assert rows["comic"]["psnr_rgb"] == pytest.approx(plain["comic"]["psnr_rgb"], abs=0.05)
    # grey: the same channel either way (the baseline runs in float64, the Y model in float32)
    assert rows["bridge"]["psnr_rgb"] == pytest.approx(plain["bridge"]["psnr_rgb"], abs=1e-3)
    assert rows["bridge"]["psnr_y"] == rows["bridge"]["psnr_rgb"]


def test_study_protocol_matches_a_direct_computation(tmp_path):
    rng = np.random.default_rng(4)
    d = tmp_path / "s"
    d.mkdir()
    imgs = {"p": _smooth(rng, 150, 171), "q": _smooth(rng, 128, 128), "r": _smooth(rng, 100, 300)}
    for k, a in imgs.items():
        Image.fromarray(a).save(d / f"{k}.png")
    msgs = []
    res = evaluate(["bilinear"], ["S"], [2], protocol="study", set_paths={"S": d}, log=msgs.append)
    assert any("r.png" in m and "smaller than the 128x128" in m for m in msgs)
    rows = {r["image"]: r for r in res.rows}
    assert set(rows) == {"p", "q"}
    for k in ("p", "q"):
        a = imgs[k]
        h, w = a.shape[:2]
        x0, y0 = w // 2 - 64, h // 2 - 64
        hr_np = a[y0 : y0 + 128, x0 : x0 + 128]
        assert np.array_equal(hr_np, centre_crop(a, 128))
        hr = torch.from_numpy(hr_np.copy()).permute(2, 0, 1)[None].float() / 255
        lr = F.avg_pool2d(hr, 2)  # bilinear /2 without antialiasing == 2x2 mean
        sr = F.interpolate(lr, scale_factor=2, mode="bilinear", align_corners=False).clamp(0, 1)
        mse = ((sr.double() * 255 - hr.double() * 255) ** 2).mean().item()
        assert rows[k]["psnr_rgb"] == pytest.approx(10 * np.log10(255**2 / mse), abs=1e-4)
        assert rows[k]["h"] == rows[k]["w"] == 128
    assert res.header["protocol"]["name"] == "study"
    assert "centre crop at x = W//2 - 64" in res.header["protocol"]["hr"]
    # --hr-crop 0: whole images (modcropped), and the header says so
    whole = evaluate(
        ["bilinear"], ["S"], [2], protocol="study", set_paths={"S": d}, hr_crop=0, log=msgs.append
    )
    sizes = {r["image"]: (r["h"], r["w"]) for r in whole.rows}
    assert sizes == {"p": (150, 170), "q": (128, 128), "r": (100, 300)}
    assert whole.header["protocol"]["hr"].startswith("HR = the whole image")


def test_checkpoint_path_y_model_through_the_cli(data_root, tmp_path, capsys):
    """A saved Y-channel SRCNN evaluated by path: header carries path + sha256; numbers match the model."""
    import hashlib
    import shutil

    from srlab.models.registry import build_model
    from srlab.weights.io import save_model

    model, _ = build_model("srcnn", scale=2, num_channels=1, n1=8, n2=4, f1=3, f2=1, f3=3)
    ckpt = save_model(tmp_path / "tiny_srcnn_y.safetensors", model)
    d = tmp_path / "one"
    d.mkdir()
    shutil.copy(data_root / "Set5" / "HR" / "bird.png", d)
    out = tmp_path / "o"
    args = ["eval", "--models", f"bicubic,{ckpt}", "--datasets", "One", "--set-path", f"One={d}"]
    assert main([*args, "--scale", "2,3", "--out", str(out), "--no-progress"]) == 0
    assert "model tiny_srcnn_y is x2; not evaluated at x3" in capsys.readouterr().err
    doc = json.loads((out / "results.json").read_text())
    m = next(x for x in doc["header"]["models"] if x["label"] == "tiny_srcnn_y")
    assert m["checkpoint"] == str(ckpt.resolve())
    assert m["sha256"] == hashlib.sha256(ckpt.read_bytes()).hexdigest()
    assert m["descriptor"]["color"] == "y" and m["descriptor"]["scale"] == 2
    row = next(r for r in doc["rows"] if r["model"] == "tiny_srcnn_y")
    hr = np.asarray(Image.open(d / "bird.png"))
    t = torch.from_numpy(hr.copy()).permute(2, 0, 1)[None].double()
    lr = quantize(imresize(t, 0.5))
    with torch.no_grad():
        sr_y = model((rgb_to_ycbcr(lr)[:, :1] / 255).float()).double() * 255
    ref = metrics_batch(quantize(sr_y), rgb_to_ycbcr(t)[:, :1], crop=2, channels=("y",))
    assert row["psnr_y"] == pytest.approx(float(ref["psnr_y"][0]), abs=1e-9)


def test_a_known_set_that_was_not_complete_is_marked_and_fails_unless_allowed(data_root, tmp_path, capsys):
    import shutil

    copy = tmp_path / "Set5"
    shutil.copytree(data_root / "Set5" / "HR", copy)
    data = (copy / "head.png").read_bytes()
    (copy / "head.png").write_bytes(data[: len(data) // 2])  # truncated
    base = ["eval", "--models", "bicubic", "--datasets", "Set5", "--set-path", f"Set5={copy}", "--scale", "2"]
    out = tmp_path / "o"
    rc = main([*base, "--out", str(out), "--no-progress"])
    cap = capsys.readouterr()
    assert rc == 1, cap.err
    assert "| Model | Set5 (4/5) ×2 |" in cap.out and "| Model | Set5 ×2 |" not in cap.out
    assert cap.out.count("Set5 (4/5) ×2") == 2  # the Y and the RGB table
    last = cap.err.strip().splitlines()[-1]
    assert "Set5 x2: 4 of 5 images" in last and "--allow-missing" in last and str(out) in last, cap.err
    assert any(ln.startswith("skip: Set5/head.png") for ln in cap.err.splitlines())
    # the outputs are written, skip reasons and the mark included
    md = (out / "results.md").read_text()
    assert "Set5 (4/5) ×2" in md and "head.png" in md and "Skipped images" in md
    doc = read_results(out / "results.json")
    (ds,) = doc["header"]["datasets"]
    assert (
        ds["used"] == {"2": 4} and ds["complete"] == {"2": False} and ds["skipped"][0]["image"] == "head.png"
    )
    # accepted on request: exit 0, still marked
    rc = main([*base, "--out", str(tmp_path / "o2"), "--no-progress", "--allow-missing"])
    cap = capsys.readouterr()
    assert rc == 0 and "Set5 (4/5) ×2" in cap.out
    # a data root whose Set5 lacks a file is as incomplete as one with a broken file
    (copy / "head.png").unlink()
    droot = tmp_path / "root"
    (droot / "Set5").mkdir(parents=True)
    shutil.copytree(copy, droot / "Set5" / "HR")
    rc = main(
        [*base[:5], "--data-root", str(droot), *base[7:], "--out", str(tmp_path / "o3"), "--no-progress"]
    )
    cap = capsys.readouterr()
    assert rc == 1 and "Set5 (4/5) ×2" in cap.out and "Set5 x2: 4 of 5 images" in cap.err
    # a folder given with --set-path that holds 4 good images of Set5 is a deliberate subset: marked, exit 0
    rc = main([*base, "--out", str(tmp_path / "o4"), "--no-progress"])
    cap = capsys.readouterr()
    assert rc == 0 and "Set5 (4/5) ×2" in cap.out and "error" not in cap.err
    # the whole set: no mark, exit 0
    shutil.copy(data_root / "Set5" / "HR" / "head.png", copy)
    rc = main([*base, "--out", str(tmp_path / "o5"), "--no-progress"])
    cap = capsys.readouterr()
    assert rc == 0 and "| Model | Set5 ×2 |" in cap.out and "(5/5)" not in cap.out
