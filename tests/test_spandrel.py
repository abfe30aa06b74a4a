"""The optional spandrel backend: non-srlab architectures load, upscale, evaluate and export.

SPAN, SwinIR and OmniSR networks are built from random weights with the upstream classes spandrel vendors
(so their state dicts have the upstream key layout), saved as plain .pth / BasicSR-style ``params_ema``
/ .safetensors files, and read back through ``srlab.load_model`` (srlab's own detection first, then
spandrel). Every output is compared with the upstream network itself.

spandrel imports torchvision when it is imported (for its LaMa inpainting model); tests/spandrelutil.py
gives that one import the stand-in in tests/stubs/ where no working torchvision can be imported.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import srlab
from spandrelutil import import_spandrel
from srlab.cli import main
from srlab.errors import WeightsError
from srlab.eval.loop import evaluate
from srlab.eval.models import EvalModel
from srlab.inference import Upscaler
from srlab.weights.io import read_metadata, read_state_dict, save_model

pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.filterwarnings("ignore:torch.meshgrid")]


@pytest.fixture(scope="module")
def spandrel():
    return import_spandrel()


def _span(spandrel):
    from spandrel.architectures.SPAN import SPAN

    return SPAN(num_in_ch=3, num_out_ch=3, feature_channels=16, upscale=2)


def _swinir(spandrel):
    from spandrel.architectures.SwinIR import SwinIR

    return SwinIR(
        img_size=16,
        in_chans=3,
        embed_dim=12,
        depths=[2],
        num_heads=[2],
        window_size=4,
        mlp_ratio=2.0,
        upscale=2,
        upsampler="pixelshuffledirect",
        resi_connection="1conv",
    )


def _omnisr(spandrel):
    from spandrel.architectures.OmniSR import OmniSR

    return OmniSR(
        num_in_ch=3, num_out_ch=3, num_feat=16, block_num=1, pe=True, window_size=4, res_num=1, up_scale=2
    )


# name, builder, how the file is saved, what spandrel says of fp16 support
ARCHS = [
    ("SPAN", _span, "plain.pth", True),
    ("SwinIR", _swinir, "params_ema.pth", False),
    ("OmniSR", _omnisr, ".safetensors", True),
]


def _save(net, tmp_path, how: str) -> Path:
    sd = {k: v.contiguous() for k, v in net.state_dict().items()}
    if how == ".safetensors":
        from safetensors.torch import save_file

        path = tmp_path / "upstream.safetensors"
        save_file(sd, str(path))
    elif how == "params_ema.pth":
        path = tmp_path / "upstream.pth"
        torch.save({"params_ema": sd, "params": sd}, path)
    else:
        path = tmp_path / "upstream.pth"
        torch.save(sd, path)
    return path


@pytest.fixture(params=ARCHS, ids=[a[0] for a in ARCHS])
def upstream(request, spandrel, tmp_path):
    ident, build, how, fp16 = request.param
    torch.manual_seed(0)
    net = build(spandrel).eval()
    return ident, net, _save(net, tmp_path, how), fp16


def _ref(net, x):
    with torch.no_grad():
        return net(x)


def test_loads_with_srlabs_descriptor(upstream):
    ident, net, path, fp16 = upstream
    model, desc = srlab.load_model(path)
    assert desc.arch == f"spandrel:{ident}" and desc.scale == 2
    assert desc.in_channels == desc.out_channels == 3 and desc.color == "rgb"
    assert desc.supports_fp16 is fp16 and desc.supports_bf16 is True
    assert desc.params == sum(p.numel() for p in net.parameters())
    assert desc.hparams["architecture"] == ident and desc.hparams["purpose"] == "SR"
    x = torch.rand(1, 3, 20, 28)
    with torch.no_grad():
        assert torch.equal(model(x), _ref(net, x))
    # an input under spandrel's minimum side is padded and cropped back, as spandrel's own call does
    small = torch.rand(1, 3, 9, 13)
    with torch.no_grad():
        got = model(small)
    assert got.shape == (1, 3, 18, 26)
    with pytest.raises(WeightsError, match="not x4"):
        srlab.load_model(path, scale=4)


def test_upscales_through_the_upscaler(upstream):
    ident, net, path, _ = upstream
    img = (np.random.default_rng(1).random((30, 22, 3)) * 255).astype(np.uint8)
    up = Upscaler(str(path), device="cpu", tile=0, precision="fp32", backend="torch")
    out = up(img)
    assert out.shape == (60, 44, 3) and out.dtype == np.uint8
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255
    ref = (_ref(net, x).clamp(0, 1) * 255).round()[0].permute(1, 2, 0).numpy()
    assert np.abs(out.astype(np.float64) - ref).max() <= 1  # channels_last convolutions may round differently
    tiled = Upscaler(str(path), device="cpu", tile=16, tile_overlap=8, precision="fp32", backend="torch")(img)
    assert tiled.shape == out.shape


def test_evaluates_like_the_upstream_network(upstream, data_root, tmp_path):
    ident, net, path, _ = upstream
    from PIL import Image

    folder = tmp_path / "two"
    folder.mkdir()
    for name in ("bird", "butterfly"):  # 96x96 centre crops keep the test quick on a busy CPU
        img = Image.open(data_root / "Set5" / "HR" / f"{name}.png")
        left, top = (img.width - 96) // 2, (img.height - 96) // 2
        img.crop((left, top, left + 96, top + 96)).save(folder / f"{name}.png")
    res = evaluate([str(path)], ["Set5"], [2], set_paths={"Set5": folder}, device="cpu", log=lambda m: None)
    rows = {r["image"]: r for r in res.rows}
    assert set(rows) == {"bird", "butterfly"}
    _, desc = srlab.load_model(path)
    ref = EvalModel("upstream", "upstream", net, desc)
    want = {
        r["image"]: r
        for r in evaluate(
            [ref], ["Set5"], [2], set_paths={"Set5": folder}, device="cpu", log=lambda m: None
        ).rows
    }
    for name, row in rows.items():
        assert np.isfinite(row["psnr_y"]) and row["psnr_y"] > 5
        for k in ("psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb"):
            assert row[k] == pytest.approx(want[name][k], abs=1e-9), (name, k)


def test_exports_to_onnx(upstream, tmp_path, capsys):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from srlab.export import OnnxModel

    ident, net, path, _ = upstream
    out = tmp_path / "m.onnx"
    assert main(["export", str(path), "-o", str(out)]) == 0
    assert f"spandrel:{ident} x2" in capsys.readouterr().out
    onnx_model = OnnxModel(out)
    assert onnx_model.descriptor.arch == f"spandrel:{ident}"
    x = torch.rand(1, 3, 24, 40)  # not the export's sample size: the graph's height and width are dynamic
    assert (onnx_model(x) - _ref(net, x)).abs().max().item() < 1e-4


def test_srlab_safetensors_round_trip_and_interpolation(upstream, tmp_path):
    ident, net, path, _ = upstream
    out = tmp_path / "converted.safetensors"
    assert main(["weights", "convert", str(path), str(out)]) == 0
    assert read_metadata(out)["arch"] == f"spandrel:{ident}"
    model, desc = srlab.load_model(out)
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(model(x), _ref(net, x))
    # interpolation works on any architecture srlab loads: alpha 0 gives the first input exactly
    other = tmp_path / "other.safetensors"
    from srlab.weights.interp import interpolate, save_interpolated

    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01)
    save_model(other, model)
    blended, bdesc = interpolate(out, other, 0.0)
    assert bdesc.arch == desc.arch
    with torch.no_grad():
        assert torch.equal(blended(x), _ref(net, x))
    save_interpolated(out, other, 0.5, tmp_path / "half.safetensors")
    assert srlab.load_model(tmp_path / "half.safetensors")[1].arch == desc.arch


def test_srvgg_spandrel_equals_srlab(spandrel, tmp_path):
    from srlab.weights.spandrel_backend import from_state_dict

    torch.manual_seed(3)
    net, _ = srlab.build_model("srvgg", scale=4, num_feat=16, num_conv=4)
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, 0.1)
    path = tmp_path / "compact.pth"
    torch.save({"params": net.state_dict()}, path)  # as Real-ESRGAN publishes SRVGGNetCompact
    ours, desc = srlab.load_model(path)
    assert desc.arch == "srvgg"  # srlab's own detection comes first
    theirs, tdesc = from_state_dict(read_state_dict(path), source=str(path))
    assert tdesc.arch == "spandrel:Compact" and tdesc.scale == 4
    x = torch.rand(2, 3, 17, 23)
    with torch.no_grad():
        assert torch.equal(ours(x), theirs.eval()(x))


def test_unknown_to_both_is_one_line(spandrel, tmp_path):
    path = tmp_path / "mystery.pth"
    torch.save({"encoder.0.weight": torch.zeros(2, 2), "decoder.weight": torch.zeros(2)}, path)
    with pytest.raises(WeightsError) as info:
        srlab.load_model(path)
    msg = str(info.value)
    assert "unknown checkpoint layout" in msg and "does not recognise it either" in msg and "\n" not in msg


def test_forged_block_indices_are_refused_before_building(spandrel, tmp_path):
    sd = _swinir(spandrel).state_dict()
    sd["layers.0.residual_group.blocks.3000.norm1.weight"] = torch.zeros(12)
    path = tmp_path / "forged.pth"
    torch.save(sd, path)
    with pytest.raises(WeightsError, match="refusing it"):
        srlab.load_model(path)


def test_without_spandrel_the_unknown_layout_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "spandrel", None)  # as if not installed
    path = tmp_path / "swin.pth"
    torch.save({"layers.0.residual_group.blocks.0.norm1.weight": torch.zeros(4)}, path)
    with pytest.raises(WeightsError) as info:
        srlab.load_model(path)
    msg = str(info.value)
    assert "unknown checkpoint layout" in msg and 'pip install "srlab[archs]"' in msg and "\n" not in msg
