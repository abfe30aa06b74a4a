"""The study's own networks and checkpoints: written here in the study's module layout, loaded by srlab.

The three reference networks below are re-implemented from the study's notebook as described in its
public code (``csc413_project.ipynb``): SRCNN with bare ``block1/2/3`` convs and zero padding, fed the
bilinear (no antialias) upsampled LR; the generator whose convs are ``nn.Sequential(conv, act)``; the
VGG-style discriminator. They are plain torch (no srlab import), so their ``state_dict()`` has the study's
keys, and they are saved the way the study saved them: ``torch.save(model.state_dict(), path)``.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

import srlab
from srlab.cli import main
from srlab.errors import WeightsError
from srlab.weights.convert import convert_state_dict, detect_layout

pytestmark = pytest.mark.usefixtures("one_thread")

BETA = 0.2


# ------------------------------------------------------------------------------ the study's networks
class RefSRCNN(nn.Module):
    def __init__(self, channel: int = 3, f1: int = 9, f2: int = 5, f3: int = 5, n1: int = 64, n2: int = 32):
        super().__init__()
        self.block1 = nn.Conv2d(channel, n1, f1, padding=f1 // 2)
        self.block2 = nn.Conv2d(n1, n2, f2, padding=f2 // 2)
        self.block3 = nn.Conv2d(n2, channel, f3, padding=f3 // 2)
        self.activation = nn.ReLU(inplace=True)

    def forward(self, x):  # x: the LR already resized up to the HR size
        return self.block3(self.activation(self.block2(self.activation(self.block1(x)))))


class RefDenseBlock(nn.Module):
    def __init__(self, nf: int, gc: int):
        super().__init__()
        ins = [nf, nf + gc, nf + 2 * gc, nf + 3 * gc, nf + 4 * gc]
        outs = [gc, gc, gc, gc, nf]
        for k, (i, o) in enumerate(zip(ins, outs)):
            setattr(
                self, f"conv{k}", nn.Sequential(nn.Conv2d(i, o, 3, 1, 1), nn.LeakyReLU(0.2, inplace=True))
            )

    def forward(self, x):
        x1 = self.conv0(x)
        x2 = self.conv1(torch.cat((x, x1), 1))
        x3 = self.conv2(torch.cat((x, x1, x2), 1))
        x4 = self.conv3(torch.cat((x, x1, x2, x3), 1))
        return self.conv4(torch.cat((x, x1, x2, x3, x4), 1))


class RefRRDB(nn.Module):
    def __init__(self, nf: int, gc: int):
        super().__init__()
        self.block0, self.block1, self.block2 = (
            RefDenseBlock(nf, gc),
            RefDenseBlock(nf, gc),
            RefDenseBlock(nf, gc),
        )
        self.beta = BETA

    def forward(self, x):
        s0 = x + self.beta * self.block0(x)
        s1 = s0 + self.beta * self.block1(s0)
        return x + self.beta * (s1 + self.beta * self.block2(s1))


class RefGenerator(nn.Module):
    def __init__(self, channels: int = 3, nb: int = 16, nf: int = 64, gc: int = 32):
        super().__init__()
        self.conv0 = nn.Sequential(nn.Conv2d(channels, nf, 3, 1, 1), nn.ReLU(inplace=True))
        self.RRDB_layers = nn.Sequential(*[RefRRDB(nf, gc) for _ in range(nb)])
        self.conv1 = nn.Sequential(nn.Conv2d(nf, nf, 3, 1, 1), nn.ReLU(inplace=True))
        self.upSample0 = nn.Sequential(nn.Conv2d(nf, nf * 4, 1), nn.PixelShuffle(2), nn.ReLU(inplace=True))
        self.conv2 = nn.Sequential(nn.Conv2d(nf, nf, 3, 1, 1), nn.ReLU(inplace=True))
        self.conv3 = nn.Sequential(nn.Conv2d(nf, channels, 3, 1, 1), nn.ReLU(inplace=True))

    def forward(self, x):
        x1 = self.conv0(x)
        x = self.conv1(self.RRDB_layers(x1)) + x1
        return self.conv3(self.conv2(self.upSample0(x)))


class RefBasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, k: int, s: int):
        super().__init__()
        self.block1 = nn.Sequential(
            nn.Conv2d(cin, cout, k, s, 1, bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2, inplace=True)
        )

    def forward(self, x):
        return self.block1(x)


class RefDiscriminator(nn.Module):
    def __init__(self, channels: int = 3, nf: int = 64):
        super().__init__()
        self.block1 = nn.Sequential(nn.Conv2d(channels, nf, 3, 1, 1), nn.LeakyReLU(0.2, inplace=True))
        spec = [(nf, nf, 4, 2), (nf, 2 * nf, 3, 1), (2 * nf, 2 * nf, 4, 2), (2 * nf, 4 * nf, 3, 1)]
        spec += [(4 * nf, 4 * nf, 4, 2), (4 * nf, 8 * nf, 3, 1), (8 * nf, 8 * nf, 4, 2)]
        spec += [(8 * nf, 8 * nf, 3, 1), (8 * nf, 8 * nf, 4, 2)]
        self.basicBlocks = nn.Sequential(*[RefBasicBlock(*s) for s in spec])
        self.block2 = nn.Sequential(
            nn.Linear(8 * nf * 4 * 4, 100), nn.LeakyReLU(0.2, inplace=True), nn.Linear(100, 1)
        )

    def forward(self, x):
        x = self.basicBlocks(self.block1(x))
        return self.block2(x.view(x.shape[0], -1))


def _randomize(module: nn.Module, seed: int) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * (1.0 / math.sqrt(max(1, p[0].numel()))))
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
    return module.eval()


def _study_upsample(lr: torch.Tensor) -> torch.Tensor:
    """The study's torchvision Resize of a float tensor: bilinear, align_corners=False, no antialias."""
    return F.interpolate(lr, size=(2 * lr.shape[-2], 2 * lr.shape[-1]), mode="bilinear", align_corners=False)


# ------------------------------------------------------------------------------ SRCNN
def test_study_srcnn_checkpoint_loads_with_no_flags(tmp_path):
    ref = _randomize(RefSRCNN(), seed=1)
    path = tmp_path / "SRCNN_lr_0.0001.pt"
    torch.save(ref.state_dict(), path)
    assert detect_layout(torch.load(path, weights_only=True)) == "srcnn-study"
    model, desc = srlab.load_model(str(path))
    assert desc.arch == "srcnn" and desc.scale == 2 and desc.params == 69_251
    assert desc.hparams["padding_mode"] == "zeros" and desc.hparams["upsampler"] == "bilinear"
    assert (desc.hparams["n1"], desc.hparams["n2"], desc.hparams["f1"], desc.hparams["f2"]) == (64, 32, 9, 5)
    lr = torch.rand(2, 3, 13, 17)
    with torch.no_grad():
        expected = ref(_study_upsample(lr))
        got = model(lr)
    assert got.shape == (2, 3, 26, 34)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    # the preset is the same network: the study's file loads into it key for key after the rename
    preset, pdesc = srlab.build_model("srcnn-study-x2")
    assert {k: pdesc.hparams[k] for k in ("padding_mode", "upsampler", "scale")} == {
        "padding_mode": "zeros",
        "upsampler": "bilinear",
        "scale": 2,
    }
    preset.load_state_dict(model.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(preset.eval()(lr), expected, atol=1e-5, rtol=0)


def test_study_srcnn_scale_from_the_caller_and_other_widths(tmp_path):
    ref = _randomize(RefSRCNN(f2=1, n1=16, n2=8), seed=2)
    path = tmp_path / "srcnn_915.pt"
    torch.save(ref.state_dict(), path)
    model, desc = srlab.load_model(path, scale=3)
    assert desc.scale == 3 and (desc.hparams["n1"], desc.hparams["f2"]) == (16, 1)
    lr = torch.rand(1, 3, 8, 9)
    up = F.interpolate(lr, size=(24, 27), mode="bilinear", align_corners=False)
    with torch.no_grad():
        torch.testing.assert_close(model(lr), ref(up), atol=1e-5, rtol=0)
    assert srlab.load_model(path, scale_hint=4)[1].scale == 4


# ------------------------------------------------------------------------------ generator
def test_study_generator_checkpoint_loads_and_matches(tmp_path):
    ref = _randomize(RefGenerator(nb=2), seed=3)
    with torch.no_grad():
        ref.conv3[0].bias.fill_(0.5)  # most outputs above the final ReLU, so the comparison means something
    path = tmp_path / "ESRGAN_G_lr_0.0001_6000.pt"
    torch.save(ref.state_dict(), path)
    model, desc = srlab.load_model(str(path))
    assert desc.arch == "study_rrdbnet" and desc.scale == 2
    assert {k: desc.hparams[k] for k in ("num_block", "num_feat", "num_grow_ch")} == dict(
        num_block=2, num_feat=64, num_grow_ch=32
    )
    lr = torch.rand(1, 3, 12, 10)
    with torch.no_grad():
        expected = ref(lr)
        got = model(lr)
    assert got.shape == (1, 3, 24, 20) and (expected > 0).float().mean() > 0.5
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    with pytest.raises(WeightsError, match="x2 generator"):
        srlab.load_model(path, scale=4)


def test_full_size_generator_keys_shapes_and_parameters():
    with torch.device("meta"):
        ref = RefGenerator()
    ref_sd = ref.state_dict()
    model, desc = srlab.build_model("study-esrgan-x2", init_weights=False)
    sd = model.state_dict()
    assert len(sd) == len(ref_sd) == 490
    assert desc.params == sum(p.numel() for p in ref.parameters()) == 11_604_803
    assert list(sd) == list(ref_sd)
    assert all(tuple(sd[k].shape) == tuple(v.shape) for k, v in ref_sd.items())
    assert "RRDB_layers.15.block2.conv4.0.weight" in sd and tuple(sd["upSample0.0.weight"].shape) == (
        256,
        64,
        1,
        1,
    )
    arch, hp, _, unmapped = convert_state_dict(ref_sd, source="G.pt")
    assert arch == "study_rrdbnet" and not unmapped
    assert (hp["num_block"], hp["num_feat"], hp["num_grow_ch"], hp["scale"]) == (16, 64, 32, 2)


# ------------------------------------------------------------------------------ discriminator
def test_study_discriminator_loads_and_matches(tmp_path):
    with torch.device("meta"):
        full = RefDiscriminator()
    _, desc = srlab.build_model("study_discriminator", init_weights=False)
    assert desc.params == sum(p.numel() for p in full.parameters()) == 14_499_401
    ref = _randomize(RefDiscriminator(nf=8), seed=4)
    path = tmp_path / "ESRGAN_D_lr_0.0001.pt"
    torch.save(ref.state_dict(), path)
    model, desc = srlab.load_model(path)
    assert desc.arch == "study_discriminator" and desc.hparams == dict(
        num_in_ch=3, num_feat=8, input_size=128
    )
    x = torch.rand(2, 3, 128, 128)
    with torch.no_grad():
        torch.testing.assert_close(model(x), ref(x), atol=1e-5, rtol=0)
    assert list(model.state_dict()) == list(full.state_dict())


# ------------------------------------------------------------------------------ refusals
def _one_line(path, match: str) -> str:
    with pytest.raises(WeightsError) as info:
        srlab.load_model(path)
    msg = str(info.value)
    assert "\n" not in msg and str(path) in msg and match in msg, msg
    return msg


def test_inconsistent_shapes_are_refused_with_one_line(tmp_path):
    sd = _randomize(RefSRCNN(), seed=5).state_dict()
    bad = dict(sd, **{"block2.weight": torch.zeros(32, 60, 5, 5)})
    torch.save(bad, tmp_path / "SRCNN_bad.pt")
    _one_line(tmp_path / "SRCNN_bad.pt", "wrong shapes 1 (conv2.weight (32, 60, 5, 5) vs (32, 64, 5, 5))")
    even = dict(sd, **{"block3.weight": torch.zeros(3, 32, 4, 4)})
    torch.save(even, tmp_path / "SRCNN_even.pt")
    _one_line(tmp_path / "SRCNN_even.pt", "block3.weight has shape (3, 32, 4, 4)")

    g = _randomize(RefGenerator(nb=1, nf=8, gc=4), seed=6).state_dict()
    g["RRDB_layers.0.block1.conv3.0.weight"] = torch.zeros(4, 21, 3, 3)
    torch.save(g, tmp_path / "G_bad.pt")
    _one_line(tmp_path / "G_bad.pt", "RRDB_layers.0.block1.conv3.0.weight (4, 21, 3, 3) vs (4, 20, 3, 3)")
    draft = {k.replace(".0.weight", ".weight"): v for k, v in g.items() if k.startswith("RRDB_layers")}
    torch.save(draft, tmp_path / "G_draft.pt")
    _one_line(tmp_path / "G_draft.pt", "early draft of the study's generator")


# ------------------------------------------------------------------------------ srlab eval
def test_eval_of_the_study_srcnn_under_the_study_protocol(tmp_path, capsys):
    rng = np.random.default_rng(0)
    d = tmp_path / "imgs"
    d.mkdir()
    base = rng.random((40, 40, 3))
    img = (np.kron(base, np.ones((4, 4, 1))) * 255).astype(np.uint8)[:150, :140]  # smooth-ish 150x140
    Image.fromarray(img).save(d / "a.png")
    ref = _randomize(RefSRCNN(n1=16, n2=8), seed=7)
    with torch.no_grad():
        ref.block3.bias.fill_(0.4)
    ckpt = tmp_path / "SRCNN_lr_0.0001.pt"
    torch.save(ref.state_dict(), ckpt)
    out = tmp_path / "out"
    args = ["eval", "--models", str(ckpt), "--datasets", "A", "--set-path", f"A={d}", "--protocol", "study"]
    assert main([*args, "--scale", "2", "--out", str(out), "--no-progress"]) == 0
    (row,) = json.loads((out / "results.json").read_text())["rows"]
    x0, y0 = 140 // 2 - 64, 150 // 2 - 64
    hr = torch.from_numpy(img[y0 : y0 + 128, x0 : x0 + 128].copy()).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        sr = ref(_study_upsample(F.avg_pool2d(hr, 2))).clamp(0, 1)
    mse = ((sr.double() - hr.double()) ** 2).mean().item()
    assert row["psnr_rgb"] == pytest.approx(10 * math.log10(1 / mse), abs=1e-3)
