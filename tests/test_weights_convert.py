"""Foreign checkpoints: RRDBNet state dicts made by independent implementations load through load_model.

The three reference networks below are written here from the ESRGAN paper's description (RDB: five 3x3
convs with dense concatenation, LeakyReLU 0.2, residual scaled by 0.2; RRDB: three RDBs, residual
scaled by 0.2; nearest x2 upsampling + conv), each in the module structure of one public layout, so
their ``state_dict()`` keys are that layout's keys. None of them is srlab's RRDBNet with renamed keys.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import srlab
from srlab.errors import WeightsError
from srlab.weights.convert import convert_state_dict, detect_layout, unwrap_state_dict

NF, NB, GC = 16, 2, 8


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny networks


def _randomize(module: nn.Module, seed: int) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * (0.5 / math.sqrt(max(1, p[0].numel()))))
    return module.eval()


# ------------------------------------------------------------------------------ (a) ESRGAN "old arch"
class _Shortcut(nn.Module):
    def __init__(self, sub: nn.Module) -> None:
        super().__init__()
        self.sub = sub

    def forward(self, x):
        return x + self.sub(x)


class _OldRDB(nn.Module):
    """conv1..conv4 are Sequential(conv, lrelu); conv5 is Sequential(conv) -> keys convK.0.weight."""

    def __init__(self, nf: int, gc: int) -> None:
        super().__init__()
        for k in range(1, 6):
            cin = nf + (k - 1) * gc
            cout = gc if k < 5 else nf
            mods = [nn.Conv2d(cin, cout, 3, padding=1)]
            if k < 5:
                mods.append(nn.LeakyReLU(0.2))
            setattr(self, f"conv{k}", nn.Sequential(*mods))

    def forward(self, x):
        feats = [x]
        for k in range(1, 5):
            feats.append(getattr(self, f"conv{k}")(torch.cat(feats, dim=1)))
        return x + 0.2 * self.conv5(torch.cat(feats, dim=1))


class _OldRRDB(nn.Module):
    def __init__(self, nf: int, gc: int) -> None:
        super().__init__()
        self.RDB1, self.RDB2, self.RDB3 = _OldRDB(nf, gc), _OldRDB(nf, gc), _OldRDB(nf, gc)

    def forward(self, x):
        return x + 0.2 * self.RDB3(self.RDB2(self.RDB1(x)))


class OldArchESRGAN(nn.Module):
    """The flat ``model`` Sequential of the original ESRGAN code."""

    def __init__(self, in_nc=3, out_nc=3, nf=NF, nb=NB, gc=GC, scale=4) -> None:
        super().__init__()
        n_up = int(math.log2(scale))
        trunk = nn.Sequential(*[_OldRRDB(nf, gc) for _ in range(nb)], nn.Conv2d(nf, nf, 3, padding=1))
        layers = [nn.Conv2d(in_nc, nf, 3, padding=1), _Shortcut(trunk)]
        for _ in range(n_up):
            layers += [
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv2d(nf, nf, 3, padding=1),
                nn.LeakyReLU(0.2),
            ]
        layers += [nn.Conv2d(nf, nf, 3, padding=1), nn.LeakyReLU(0.2), nn.Conv2d(nf, out_nc, 3, padding=1)]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


# ------------------------------------------------------------------------------ (b) official ESRGAN repo
class _PlainRDB(nn.Module):
    def __init__(self, nf: int, gc: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(nf, gc, 3, 1, 1)
        self.conv2 = nn.Conv2d(nf + gc, gc, 3, 1, 1)
        self.conv3 = nn.Conv2d(nf + 2 * gc, gc, 3, 1, 1)
        self.conv4 = nn.Conv2d(nf + 3 * gc, gc, 3, 1, 1)
        self.conv5 = nn.Conv2d(nf + 4 * gc, nf, 3, 1, 1)

    def forward(self, x):
        a = F.leaky_relu(self.conv1(x), 0.2)
        b = F.leaky_relu(self.conv2(torch.cat([x, a], 1)), 0.2)
        c = F.leaky_relu(self.conv3(torch.cat([x, a, b], 1)), 0.2)
        d = F.leaky_relu(self.conv4(torch.cat([x, a, b, c], 1)), 0.2)
        return self.conv5(torch.cat([x, a, b, c, d], 1)) * 0.2 + x


class _ESRRDB(nn.Module):
    def __init__(self, nf: int, gc: int) -> None:
        super().__init__()
        self.RDB1, self.RDB2, self.RDB3 = _PlainRDB(nf, gc), _PlainRDB(nf, gc), _PlainRDB(nf, gc)

    def forward(self, x):
        out = x
        for rdb in (self.RDB1, self.RDB2, self.RDB3):
            out = rdb(out)
        return out * 0.2 + x


class OfficialESRGAN(nn.Module):
    """conv_first / RRDB_trunk / trunk_conv / upconvK / HRconv / conv_last."""

    def __init__(self, in_nc=3, out_nc=3, nf=NF, nb=NB, gc=GC, scale=4) -> None:
        super().__init__()
        self.n_up = int(math.log2(scale))
        self.conv_first = nn.Conv2d(in_nc, nf, 3, 1, 1)
        self.RRDB_trunk = nn.Sequential(*[_ESRRDB(nf, gc) for _ in range(nb)])
        self.trunk_conv = nn.Conv2d(nf, nf, 3, 1, 1)
        for k in range(1, self.n_up + 1):
            setattr(self, f"upconv{k}", nn.Conv2d(nf, nf, 3, 1, 1))
        self.HRconv = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_last = nn.Conv2d(nf, out_nc, 3, 1, 1)

    def forward(self, x):
        fea = self.conv_first(x)
        fea = fea + self.trunk_conv(self.RRDB_trunk(fea))
        for k in range(1, self.n_up + 1):
            up = F.interpolate(fea, scale_factor=2, mode="nearest")
            fea = F.leaky_relu(getattr(self, f"upconv{k}")(up), 0.2)
        return self.conv_last(F.leaky_relu(self.HRconv(fea), 0.2))


# ------------------------------------------------------------------------------ (c) BasicSR / Real-ESRGAN
class _BRDB(_PlainRDB):
    pass


class _BRRDB(nn.Module):
    def __init__(self, nf: int, gc: int) -> None:
        super().__init__()
        self.rdb1, self.rdb2, self.rdb3 = _BRDB(nf, gc), _BRDB(nf, gc), _BRDB(nf, gc)

    def forward(self, x):
        return self.rdb3(self.rdb2(self.rdb1(x))) * 0.2 + x


def _space_to_depth(x: torch.Tensor, r: int) -> torch.Tensor:
    b, c, h, w = x.shape
    x = x.reshape(b, c, h // r, r, w // r, r).permute(0, 1, 3, 5, 2, 4)
    return x.reshape(b, c * r * r, h // r, w // r)


class BasicSRRRDBNet(nn.Module):
    """conv_first / body / conv_body / conv_upK / conv_hr / conv_last; x2 and x1 pixel-unshuffle the input."""

    def __init__(self, in_nc=3, out_nc=3, nf=NF, nb=NB, gc=GC, scale=4, up_factor=2) -> None:
        super().__init__()
        self.scale = scale
        self.unshuffle = {2: 2, 1: 4}.get(scale, 1) if up_factor == 2 and scale in (1, 2) else 1
        self.ups = (
            [2, 2]
            if self.unshuffle > 1
            else ([up_factor] if scale == up_factor else [2] * int(math.log2(scale)))
        )
        self.conv_first = nn.Conv2d(in_nc * self.unshuffle**2, nf, 3, 1, 1)
        self.body = nn.Sequential(*[_BRRDB(nf, gc) for _ in range(nb)])
        self.conv_body = nn.Conv2d(nf, nf, 3, 1, 1)
        for k in range(1, len(self.ups) + 1):
            setattr(self, f"conv_up{k}", nn.Conv2d(nf, nf, 3, 1, 1))
        self.conv_hr = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_last = nn.Conv2d(nf, out_nc, 3, 1, 1)

    def forward(self, x):
        if self.unshuffle > 1:
            x = _space_to_depth(x, self.unshuffle)
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        for k, f in enumerate(self.ups, start=1):
            feat = F.leaky_relu(
                getattr(self, f"conv_up{k}")(F.interpolate(feat, scale_factor=f, mode="nearest")), 0.2
            )
        return self.conv_last(F.leaky_relu(self.conv_hr(feat), 0.2))


REFS = {"old": OldArchESRGAN, "official": OfficialESRGAN, "basicsr": BasicSRRRDBNet}
LAYOUT = {"old": "rrdb-old", "official": "rrdb-esrgan", "basicsr": "rrdb-basicsr"}


def _wrap(sd: dict, wrapper: str, decoy: dict | None = None) -> dict:
    if wrapper == "bare":
        return sd
    if wrapper == "params_ema":  # the EMA weights must win over the raw ones
        return {"params": decoy, "params_ema": sd}
    if wrapper == "params":
        return {"params": sd}
    if wrapper == "module":
        return {"state_dict": {f"module.{k}": v for k, v in sd.items()}, "epoch": 3}
    raise AssertionError(wrapper)


def _check_equal(ref: nn.Module, path, x: torch.Tensor, **kw) -> srlab.models.ModelDescriptor:
    model, desc = srlab.load_model(path, **kw)
    with torch.no_grad():
        want = ref(x)
        got = model(x)
    assert got.shape == want.shape
    assert (got - want).abs().max().item() <= 1e-5
    assert want.abs().mean() > 1e-3  # not a degenerate comparison
    return desc


@pytest.mark.parametrize("wrapper", ["bare", "params_ema"])
@pytest.mark.parametrize("scale", [2, 4])
@pytest.mark.parametrize("kind", ["old", "official", "basicsr"])
def test_independent_rrdbnet_loads_and_matches(kind, scale, wrapper, tmp_path):
    ref = _randomize(REFS[kind](scale=scale), seed=scale)
    decoy = _randomize(REFS[kind](scale=scale), seed=99).state_dict()
    path = tmp_path / f"{kind}_x{scale}.pth"
    torch.save(_wrap(ref.state_dict(), wrapper, decoy), path)
    desc = _check_equal(ref, path, torch.rand(1, 3, 12, 10))
    assert desc.arch == "rrdbnet" and desc.scale == scale
    assert (
        desc.hparams["num_block"] == NB
        and desc.hparams["num_feat"] == NF
        and desc.hparams["num_grow_ch"] == GC
    )
    assert detect_layout(unwrap_state_dict(ref.state_dict())) == LAYOUT[kind]


@pytest.mark.parametrize("scale", [1, 8])
def test_old_arch_x1_and_x8(scale, tmp_path):
    ref = _randomize(OldArchESRGAN(scale=scale, nb=1), seed=scale)
    path = tmp_path / "old.pth"
    # 2018-era files predate PyTorch's zip format: save in the legacy (pre-1.6) serialisation
    torch.save(ref.state_dict(), path, _use_new_zipfile_serialization=False)
    assert path.read_bytes()[:2] != b"PK"
    assert _check_equal(ref, path, torch.rand(1, 3, 8, 9)).scale == scale


@pytest.mark.parametrize("scale", [2, 1])
def test_realesrgan_pixel_unshuffle_variants(scale, tmp_path):
    ref = _randomize(BasicSRRRDBNet(scale=scale), seed=7)
    assert ref.conv_first.in_channels == 3 * (4 // scale) ** 2
    path = tmp_path / "unshuffle.pth"
    torch.save({"params_ema": ref.state_dict()}, path)
    desc = _check_equal(ref, path, torch.rand(1, 3, 16, 12))
    assert desc.scale == scale and desc.in_channels == 3 and desc.hparams["pixel_unshuffle"] is True
    assert desc.size_multiple == 4 // scale


def test_wrappers_params_and_module_prefix(tmp_path):
    ref = _randomize(OfficialESRGAN(scale=4), seed=3)
    for wrapper in ("params", "module"):
        path = tmp_path / f"{wrapper}.pth"
        torch.save(_wrap(ref.state_dict(), wrapper), path)
        _check_equal(ref, path, torch.rand(1, 3, 9, 9))


def test_safetensors_foreign_checkpoint(tmp_path):
    from safetensors.torch import save_file

    ref = _randomize(BasicSRRRDBNet(scale=4, in_nc=1, out_nc=1), seed=5)
    path = tmp_path / "gray.safetensors"
    save_file({k: v.contiguous() for k, v in ref.state_dict().items()}, str(path))
    desc = _check_equal(ref, path, torch.rand(1, 1, 10, 10))
    assert desc.in_channels == 1 and desc.out_channels == 1


def test_x3_needs_the_scale_hint(tmp_path):
    ref = _randomize(BasicSRRRDBNet(scale=3, up_factor=3), seed=11)
    path = tmp_path / "x3.pth"
    torch.save(ref.state_dict(), path)
    _check_equal(ref, path, torch.rand(1, 3, 8, 8), scale=3)
    model, desc = srlab.load_model(path)  # one upsampling conv alone reads as x2
    assert desc.scale == 2
    with pytest.raises(WeightsError, match="x2 RRDBNet"):
        srlab.load_model(path, scale=4)


# ------------------------------------------------------------------------------ SRVGG / SRCNN
class RefSRVGG(nn.Module):
    def __init__(self, nc=3, nf=8, n_conv=3, scale=4) -> None:
        super().__init__()
        self.scale = scale
        mods: list[nn.Module] = [nn.Conv2d(nc, nf, 3, 1, 1), nn.PReLU(nf)]
        for _ in range(n_conv):
            mods += [nn.Conv2d(nf, nf, 3, 1, 1), nn.PReLU(nf)]
        mods.append(nn.Conv2d(nf, nc * scale * scale, 3, 1, 1))
        self.body = nn.Sequential(*mods)

    def forward(self, x):
        base = x.repeat_interleave(self.scale, dim=2).repeat_interleave(self.scale, dim=3)
        return F.pixel_shuffle(self.body(x), self.scale) + base


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_srvgg_checkpoint(scale, tmp_path):
    ref = _randomize(RefSRVGG(scale=scale), seed=scale)
    path = tmp_path / "srvgg.pth"
    torch.save({"params": ref.state_dict()}, path)
    desc = _check_equal(ref, path, torch.rand(1, 3, 7, 9))
    assert desc.arch == "srvgg" and desc.hparams["num_conv"] == 3 and desc.hparams["act_type"] == "prelu"


def test_srcnn_checkpoint_needs_scale(tmp_path):
    sd = {
        "conv1.weight": torch.randn(32, 1, 9, 9),
        "conv1.bias": torch.randn(32),
        "conv2.weight": torch.randn(16, 32, 1, 1),
        "conv2.bias": torch.randn(16),
        "conv3.weight": torch.randn(1, 16, 5, 5),
        "conv3.bias": torch.randn(1),
    }
    path = tmp_path / "srcnn.pth"
    torch.save(sd, path)
    with pytest.raises(WeightsError, match="srlab eval --scale 3` or `srlab weights convert --scale 3"):
        srlab.load_model(path)
    model, desc = srlab.load_model(path, scale=3)
    assert desc.arch == "srcnn" and desc.scale == 3
    assert {k: desc.hparams[k] for k in ("n1", "n2", "f1", "f2", "f3", "num_channels")} == dict(
        n1=32, n2=16, f1=9, f2=1, f3=5, num_channels=1
    )
    assert torch.equal(model.conv2.weight, sd["conv2.weight"])
    # a hint fills in the scale too, and the srlab layout keeps srlab's defaults (replicate, bicubic)
    _, hinted = srlab.load_model(path, scale_hint=4)
    assert hinted.scale == 4 and hinted.hparams["padding_mode"] == "replicate"
    assert hinted.hparams["upsampler"] == "bicubic"


# ------------------------------------------------------------------------------ errors
def _one_line_error(path, match: str) -> str:
    with pytest.raises(WeightsError) as info:
        srlab.load_model(path)
    msg = str(info.value)
    assert "\n" not in msg and str(path) in msg
    assert match in msg, msg
    return msg


def test_missing_unexpected_and_misshaped_keys(tmp_path):
    sd = _randomize(BasicSRRRDBNet(scale=4), seed=1).state_dict()
    bad = dict(sd)
    del bad["body.1.rdb3.conv5.bias"]
    torch.save(bad, tmp_path / "missing.pth")
    _one_line_error(tmp_path / "missing.pth", "missing keys 1 (body.1.rdb3.conv5.bias)")

    extra = dict(sd, **{"extra_head.weight": torch.zeros(3), "body.0.rdb1.conv9.weight": torch.zeros(1)})
    torch.save(extra, tmp_path / "extra.pth")
    msg = _one_line_error(tmp_path / "extra.pth", "unexpected keys 2")
    assert "extra_head.weight" in msg and "conv9" in msg

    shaped = dict(sd, **{"conv_hr.weight": torch.zeros(NF, NF, 5, 5)})
    torch.save(shaped, tmp_path / "shape.pth")
    _one_line_error(
        tmp_path / "shape.pth", "wrong shapes 1 (conv_hr.weight (16, 16, 5, 5) vs (16, 16, 3, 3))"
    )


def test_unknown_layout_and_non_state_dicts(tmp_path):
    torch.save(
        {"encoder.0.weight": torch.zeros(2, 2), "decoder.weight": torch.zeros(2)}, tmp_path / "unknown.pth"
    )
    msg = _one_line_error(tmp_path / "unknown.pth", "unknown checkpoint layout")
    assert "decoder.weight" in msg
    torch.save([torch.zeros(1)], tmp_path / "list.pth")
    _one_line_error(tmp_path / "list.pth", "not a dict of tensors")
    torch.save({"epoch": 4, "lr": 0.1}, tmp_path / "notensors.pth")
    _one_line_error(tmp_path / "notensors.pth", "no tensors found")


def test_old_arch_with_odd_indices_is_refused():
    sd = _randomize(OldArchESRGAN(scale=4), seed=2).state_dict()
    sd["model.12.weight"] = sd.pop("model.10.weight")
    sd["model.12.bias"] = sd.pop("model.10.bias")
    with pytest.raises(WeightsError, match=r"unexpected layer indices model.\[3, 6, 8, 12\]"):
        convert_state_dict(sd, source="odd.pth")
    sd = _randomize(OldArchESRGAN(scale=4), seed=2).state_dict()
    sd["model.7.weight"] = sd.pop("model.6.weight")
    sd["model.7.bias"] = sd.pop("model.6.bias")
    with pytest.raises(WeightsError, match=r"expected model.\[3, 6, 8, 10\]"):
        convert_state_dict(sd, source="odd.pth")
