"""srlab.load_model name resolution and the `srlab weights` command line."""

from __future__ import annotations

import pytest
import torch

import srlab
from srlab.cli import main
from srlab.errors import ConfigError, WeightsError
from srlab.weights.io import read_metadata, save_model

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny networks


def test_parameter_free_preset():
    model, desc = srlab.load_model("bicubic-x4")
    assert desc.params == 0 and desc.scale == 4 and not model.training
    assert model(torch.rand(1, 3, 5, 6)).shape == (1, 3, 20, 24)


def test_trainable_preset_without_weights_is_a_config_error():
    with pytest.raises(ConfigError) as info:
        srlab.load_model("srcnn-955-x2")
    msg = str(info.value)
    assert "build_model('srcnn-955-x2')" in msg and "trainable parameters" in msg


def test_unknown_name_suggests():
    with pytest.raises(ConfigError, match="did you mean 'realesrgan-x4plus-anime'"):
        srlab.load_model("realesrgan-x4plus-anim")
    with pytest.raises(WeightsError, match="not found"):
        srlab.load_model("no/such/file.pth")


def test_scale_hint_is_checked_for_names_and_files(tmp_path):
    with pytest.raises(ConfigError, match="x4 model, not x2"):
        srlab.load_model("realesr-animevideov3-x4", scale=2)
    model, _ = srlab.build_model("srvgg", scale=2, num_feat=4, num_conv=1)
    path = save_model(tmp_path / "s.safetensors", model)
    assert srlab.load_model(str(path), scale=2)[1].scale == 2
    with pytest.raises(ConfigError, match="x2 model, not x3"):
        srlab.load_model(path, scale=3)


def test_cli_convert_list_info(tmp_path, capsys):
    # foreign checkpoint -> srlab safetensors, which then loads with its metadata
    ref, _ = srlab.build_model("rrdbnet", scale=4, num_block=1, num_feat=8, num_grow_ch=4)
    src = tmp_path / "basicsr.pth"
    torch.save({"params_ema": ref.state_dict()}, src)
    out = tmp_path / "converted.safetensors"
    assert main(["weights", "convert", str(src), str(out)]) == 0
    meta = read_metadata(out)
    assert (
        meta["arch"] == "rrdbnet" and meta["converted_from"] == str(src) and meta["hparams"]["num_block"] == 1
    )
    model, _ = srlab.load_model(out)
    x = torch.rand(1, 3, 6, 5)
    with torch.no_grad():
        assert torch.equal(model(x), ref.eval()(x))
    assert main(["weights", "convert", str(src), str(out)]) == 2  # exists: refuses without --force
    assert "exists" in capsys.readouterr().err
    assert main(["weights", "convert", str(src), str(out), "--force"]) == 0

    # the packaged x3 (x4 network + bicubic) survives the round trip through srlab safetensors
    av3 = tmp_path / "av3_x3.safetensors"
    assert main(["weights", "convert", "realesr-animevideov3-x3", str(av3)]) == 0
    a, desc = srlab.load_model(av3)
    b, _ = srlab.load_model("realesr-animevideov3-x3")
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        assert desc.scale == 3 and torch.equal(a(x), b(x))

    capsys.readouterr()
    assert main(["weights", "list"]) == 0
    listing = capsys.readouterr().out
    for name in (
        "RealESRGAN_x4plus",
        "RRDB_PSNR_x4",
        "vgg19",
        "realesrgan-x4plus",
        "realesr-animevideov3-x2",
    ):
        assert name in listing
    assert main(["weights", "info", "RealESRGAN_x2plus"]) == 0
    info = capsys.readouterr().out
    assert (
        "49fafd45f8fd7aa8d31ab2a22d14d91b536c34494a5cfe31eb5d89c2fa266abb" in info and "BSD-3-Clause" in info
    )
    assert main(["weights", "info", "vgg19"]) == 0
    assert "72.376" in capsys.readouterr().out
    assert main(["weights", "info", "RealESRGAN_x5"]) == 2
    assert "unknown zoo model" in capsys.readouterr().err


def test_eval_scale_reaches_the_loader_as_a_hint(tmp_path, capsys):
    """`srlab eval --scale N`: an SRCNN file (no scale in it) is built at N; a fixed-scale file is not refused,
    only skipped at the scales it is not."""
    import json

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(1)
    d = tmp_path / "imgs"
    d.mkdir()
    Image.fromarray((rng.random((48, 48, 3)) * 255).astype(np.uint8)).save(d / "a.png")
    g = torch.Generator().manual_seed(0)
    sd = {
        "conv1.weight": torch.randn(8, 3, 3, 3, generator=g) * 0.1,
        "conv1.bias": torch.zeros(8),
        "conv2.weight": torch.randn(4, 8, 1, 1, generator=g) * 0.1,
        "conv2.bias": torch.zeros(4),
        "conv3.weight": torch.randn(3, 4, 3, 3, generator=g) * 0.1,
        "conv3.bias": torch.full((3,), 0.5),
    }
    srcnn = tmp_path / "my_srcnn.pth"
    torch.save(sd, srcnn)
    rrdb, _ = srlab.build_model("rrdbnet", scale=4, num_block=1, num_feat=4, num_grow_ch=2)
    x4 = tmp_path / "tiny_x4.pth"
    torch.save({"params_ema": rrdb.state_dict()}, x4)
    out = tmp_path / "out"
    args = ["eval", "--models", f"{srcnn},{x4}", "--datasets", "A", "--set-path", f"A={d}", "--no-progress"]
    assert main([*args, "--scale", "3,4", "--out", str(out)]) == 0
    assert "model tiny_x4 is x4; not evaluated at x3" in capsys.readouterr().err
    doc = json.loads((out / "results.json").read_text())
    assert {(r["model"], r["scale"]) for r in doc["rows"]} == {("my_srcnn", 3), ("tiny_x4", 4)}
    desc = next(m for m in doc["header"]["models"] if m["label"] == "my_srcnn")["descriptor"]
    assert desc["scale"] == 3 and desc["arch"] == "srcnn"


def test_weights_list_has_a_kind_column(capsys):
    from srlab.cli import main

    assert main(["weights", "list"]) == 0
    rows = {ln.split()[0]: ln.split() for ln in capsys.readouterr().out.splitlines()[1:] if ln.strip()}
    assert rows["RealESRGAN_x4plus"][1:4] == ["trained", "zoo", "rrdbnet"]
    assert rows["realesrgan-x4plus"][1:4] == ["trained", "ncnn", "rrdbnet"]
    assert rows["bicubic-x4"][1:4] == ["parameter-free", "registry", "interpolation"]
    assert "srcnn-955-x2" not in rows  # untrained presets are `srlab models`' business
