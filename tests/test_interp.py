"""Network interpolation: endpoints exact, the blend against a float64 reference, refusals, the CLI, and
Real-ESRGAN's denoise strength on stand-ins for the realesr-general-x4v3 pair."""

from __future__ import annotations

import pytest
import torch

import srlab
from srlab.cli import main
from srlab.errors import ConfigError, WeightsError
from srlab.weights.interp import denoise_model, interpolate, interpolate_state_dicts
from srlab.weights.io import read_metadata, save_model

pytestmark = pytest.mark.usefixtures("one_thread")
RRDB = dict(scale=2, num_block=2, num_feat=8, num_grow_ch=4)


def _rrdb(seed: int):
    torch.manual_seed(seed)
    model, _ = srlab.build_model("rrdbnet", **RRDB)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.05)
    return model.eval()


@pytest.fixture
def pair(tmp_path):
    a, b = _rrdb(1), _rrdb(2)
    pa, pb = tmp_path / "psnr.pth", tmp_path / "gan.pth"
    torch.save({"params_ema": a.state_dict()}, pa)  # BasicSR layout: srlab detects and converts it
    torch.save(b.state_dict(), pb)
    return a, b, pa, pb


def _bits(sd):
    return {k: v.numpy().tobytes() for k, v in sd.items()}


def test_endpoints_are_the_inputs_bit_for_bit(pair, tmp_path):
    a, b, pa, pb = pair
    for alpha, want in ((0.0, a), (1.0, b)):
        model, desc = interpolate(pa, pb, alpha)
        assert desc.arch == "rrdbnet" and desc.hparams == a.hparams
        assert _bits(model.state_dict()) == _bits(want.state_dict())
        out = tmp_path / f"c{alpha:g}.safetensors"
        assert main(["interp", str(pa), str(pb), "--alpha", str(alpha), "-o", str(out)]) == 0
        loaded, _ = srlab.load_model(out)
        assert _bits(loaded.state_dict()) == _bits(want.state_dict())


def test_interpolated_rrdbnet_loads_and_runs(pair, tmp_path, capsys):
    a, b, pa, pb = pair
    out = tmp_path / "c.safetensors"
    assert main(["interp", str(pa), str(pb), "--alpha", "0.8", "-o", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    meta = read_metadata(out)
    assert meta["arch"] == "rrdbnet" and meta["interpolation"] == {"a": str(pa), "b": str(pb), "alpha": 0.8}
    model, desc = srlab.load_model(out)
    assert desc.scale == 2 and desc.hparams["num_block"] == 2
    sa, sb, sc = a.state_dict(), b.state_dict(), model.state_dict()
    for k in sa:  # against a float64 reference, rounded once to float32
        ref = ((1 - 0.8) * sa[k].double() + 0.8 * sb[k].double()).float()
        assert torch.equal(sc[k], ref), k
    x = torch.rand(1, 3, 9, 11)
    with torch.no_grad():
        y = model(x)
    assert y.shape == (1, 3, 18, 22) and torch.isfinite(y).all()
    with torch.no_grad():  # a blended network is not either input
        assert not torch.equal(y, a(x)) and not torch.equal(y, b(x))
    # the written file is an ordinary srlab model: the upscaler runs it
    img = (torch.rand(12, 10, 3) * 255).to(torch.uint8).numpy()
    assert srlab.upscale(img, model=str(out), device="cpu").shape == (24, 20, 3)


def test_different_architectures_are_refused(pair, tmp_path):
    _, _, pa, _ = pair
    other, _ = srlab.build_model("rrdbnet", **dict(RRDB, num_feat=16))
    po = tmp_path / "wide.pth"
    torch.save(other.state_dict(), po)
    with pytest.raises(WeightsError, match="num_feat: 8 vs 16") as info:
        interpolate(pa, po, 0.5)
    assert "\n" not in str(info.value)
    vgg, _ = srlab.build_model("srvgg", scale=2, num_feat=8, num_conv=2)
    pv = tmp_path / "vgg.pth"
    torch.save(vgg.state_dict(), pv)
    with pytest.raises(WeightsError, match="rrdbnet vs srvgg"):
        interpolate(pa, pv, 0.5)
    assert main(["interp", str(pa), str(pv), "--alpha", "0.5", "-o", str(tmp_path / "x.safetensors")]) == 2
    assert not (tmp_path / "x.safetensors").exists()


def test_state_dict_mismatches_name_the_key():
    a = {"w": torch.zeros(2, 3), "idx": torch.arange(3)}
    with pytest.raises(WeightsError, match=r"'w' is \(2, 3\) in A but \(3, 2\) in B"):
        interpolate_state_dicts(a, {"w": torch.zeros(3, 2), "idx": torch.arange(3)}, 0.5)
    with pytest.raises(WeightsError, match="'idx' is only in A"):
        interpolate_state_dicts(a, {"w": torch.zeros(2, 3)}, 0.5)
    with pytest.raises(WeightsError, match="non-weight tensor 'idx'"):
        interpolate_state_dicts(a, {"w": torch.zeros(2, 3), "idx": torch.arange(3) + 1}, 0.5)
    mixed = interpolate_state_dicts(a, {"w": torch.ones(2, 3), "idx": torch.arange(3)}, 0.25)
    assert torch.equal(mixed["w"], torch.full((2, 3), 0.25)) and torch.equal(mixed["idx"], torch.arange(3))
    for bad in (float("nan"), 3.0, "x"):
        with pytest.raises(ConfigError):
            interpolate_state_dicts(a, a, bad)


def test_cli_refusals(pair, tmp_path):
    _, _, pa, pb = pair
    out = tmp_path / "c.safetensors"
    assert main(["interp", str(pa), "--alpha", "0.5", "-o", str(out)]) == 2  # one input
    assert main(["interp", str(pa), str(pb), "-o", str(out)]) == 2  # no alpha
    out.write_bytes(b"keep")
    assert main(["interp", str(pa), str(pb), "--alpha", "0.5", "-o", str(out)]) == 2  # exists
    assert out.read_bytes() == b"keep"


def test_denoise_strength_is_real_esrgans_dni(denoise_pair, tmp_path):
    wdn, full = denoise_pair["realesr-general-wdn-x4v3"], denoise_pair["realesr-general-x4v3"]
    model, desc = denoise_model(0.3)
    assert desc.scale == 4 and desc.arch == "srvgg"
    sw, sf, sm = wdn.state_dict(), full.state_dict(), model.state_dict()
    for k in sf:  # Real-ESRGAN: dni_weight = [s, 1 - s] on [x4v3, wdn]
        assert torch.equal(sm[k], ((1 - 0.3) * sw[k].double() + 0.3 * sf[k].double()).float()), k
    assert _bits(denoise_model(1)[0].state_dict()) == _bits(sf)
    assert _bits(denoise_model(0)[0].state_dict()) == _bits(sw)
    with pytest.raises(ConfigError, match="outside"):
        denoise_model(1.5)
    out = tmp_path / "dn.safetensors"
    assert main(["interp", "--denoise-strength", "0.3", "-o", str(out)]) == 0
    assert read_metadata(out)["denoise_strength"] == 0.3
    assert _bits(srlab.load_model(out)[0].state_dict()) == _bits(sm)


def test_denoise_strength_without_the_files_says_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setenv("SRLAB_CACHE", str(tmp_path / "cache"))
    with pytest.raises(WeightsError, match="srlab weights fetch realesr-general-wdn-x4v3"):
        denoise_model(0.5)


def test_in_memory_modules_and_files_give_the_same_blend(pair, tmp_path):
    a, b, pa, pb = pair
    from_modules, _ = interpolate(a, b, 0.5)
    from_files, _ = interpolate(pa, pb, 0.5)
    assert _bits(from_modules.state_dict()) == _bits(from_files.state_dict())
    assert _bits(a.state_dict()) != _bits(from_modules.state_dict())  # the inputs were not modified in place
    save_model(tmp_path / "a.safetensors", a)
    assert _bits(srlab.load_model(tmp_path / "a.safetensors")[0].state_dict()) == _bits(a.state_dict())
