import pytest
import torch

import srlab
from srlab.errors import ConfigError
from srlab.models.registry import build_model, describe, list_models


@pytest.mark.parametrize(
    "name,params",
    [("rrdbnet-x4", 16_697_987), ("srcnn-955-y-x2", 57_281), ("srcnn-915-y-x2", 8_129)],
)
def test_parameter_counts_match_papers(name, params):
    _, d = build_model(name)
    assert d.params == params


@pytest.mark.parametrize(
    "name,scale",
    [
        ("rrdbnet-16-x2", 2),
        ("rrdbnet-x2-unshuffle", 2),
        ("srvgg-animevideov3-x3", 3),
        ("bicubic-x4", 4),
        ("srcnn-study-x2", 2),
        ("srcnn-955-y-x3", 3),
    ],
)
def test_output_shape_is_scale_times_input(name, scale):
    model, d = build_model(name)
    assert d.scale == scale
    x = torch.rand(1, d.in_channels, 12, 16)
    with torch.no_grad():
        y = model(x)
    assert y.shape == (1, d.out_channels, 12 * scale, 16 * scale)


def test_rrdbnet_arbitrary_hparams_and_scales():
    for scale in (1, 2, 3, 4, 8):
        m, d = build_model("rrdbnet", scale=scale, num_block=1, num_feat=8, num_grow_ch=4)
        assert m(torch.rand(1, 3, 8, 8)).shape[-1] == 8 * scale
        assert d.hparams["num_block"] == 1


def test_unknown_name_suggests_closest():
    with pytest.raises(ConfigError, match="rrdbnet-x4"):
        build_model("rrdbnet-x5")


def test_list_models_glob_and_descriptor_roundtrip():
    names = list_models("srvgg*")
    assert "srvgg-animevideov3-x2" in names and all(n.startswith("srvgg") for n in names)
    m, d = srlab.build_model("srvgg-animevideov3-x2")
    assert describe(m).params == d.params == sum(p.numel() for p in m.parameters())


def test_discriminators_shapes():
    from srlab.models.discriminators import UNetDiscriminatorSN, VGGStyleDiscriminator

    assert VGGStyleDiscriminator(input_size=128)(torch.rand(2, 3, 128, 128)).shape == (2, 1)
    assert VGGStyleDiscriminator(input_size=256, num_feat=8)(torch.rand(1, 3, 256, 256)).shape == (1, 1)
    assert UNetDiscriminatorSN(num_feat=8)(torch.rand(1, 3, 32, 32)).shape == (1, 1, 32, 32)
    with pytest.raises(ValueError, match="128x128"):
        VGGStyleDiscriminator()(torch.rand(1, 3, 64, 64))


def test_vgg19_torchvision_keys_and_layers():
    from srlab.models.vgg import VGG19, VGG19_LAYERS

    v = VGG19()
    keys = set(v.state_dict())
    assert "features.0.weight" in keys and "features.34.weight" in keys
    assert VGG19_LAYERS["pool3"] == 18 and VGG19_LAYERS["conv5_4"] == 34
    out = v(torch.rand(1, 3, 32, 32), layers=["pool3", "relu1_1"])
    assert out["pool3"].shape == (1, 256, 4, 4) and (out["relu1_1"] >= 0).all()


def test_import_srlab_is_light():
    import subprocess
    import sys

    code = "import sys, srlab; bad=[m for m in ('torch','matplotlib','skimage','onnxruntime','ncnn') if m in sys.modules]; print(bad)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_fused_training_blocks_match_forward_and_gradients():
    import copy

    from srlab.models.rrdbnet import RRDBNet, set_fused_blocks

    torch.manual_seed(3)
    m = RRDBNet(scale=2, num_block=2, num_feat=16, num_grow_ch=8)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    f = copy.deepcopy(m)
    assert set_fused_blocks(f) == 6
    assert list(f.state_dict()) == list(m.state_dict())  # same layout: checkpoints unchanged
    x = torch.rand(2, 3, 20, 12)
    target = torch.rand(2, 3, 40, 24)
    ya, yb = m(x), f(x)
    assert (ya - yb).abs().max().item() < 1e-5
    torch.nn.functional.l1_loss(ya, target).backward()
    torch.nn.functional.l1_loss(yb, target).backward()
    for (name, pa), pb in zip(m.named_parameters(), f.parameters()):
        scale = pa.grad.abs().max().item() + 1e-12
        assert (pa.grad - pb.grad).abs().max().item() / scale < 1e-4, name
    set_fused_blocks(f, False)
    assert not any(getattr(mod, "fused", False) for mod in f.modules())
    assert (f(x) - ya).abs().max().item() < 1e-6


def test_fused_blocks_compute_the_same_function_in_inference():
    """The inference side of the one switch: eval mode, no autograd, a converted (channels_last) copy."""
    import copy

    from srlab.models.rrdbnet import RRDBNet, set_fused_blocks

    m = RRDBNet(scale=2, num_block=2, num_feat=16, num_grow_ch=8).eval()
    with torch.no_grad():  # non-trivial weights everywhere
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    f = copy.deepcopy(m).to(memory_format=torch.channels_last)
    assert set_fused_blocks(f) == 6
    assert sum(p.numel() for p in f.parameters()) == sum(p.numel() for p in m.parameters())
    x = torch.rand(2, 3, 20, 12)
    with torch.inference_mode():
        ref = m(x)
        assert (f(x.contiguous(memory_format=torch.channels_last)) - ref).abs().max().item() < 1e-5
        # weights changed in place are seen on the next call (nothing regrouped is kept between calls)
        for mod in (m, f):
            mod.body[0].rdb1.conv2.weight.mul_(2.0)
        assert (f(x) - m(x)).abs().max().item() < 1e-5 and (m(x) - ref).abs().max().item() > 1e-4


def test_srlab_models_lists_every_preset_without_allocating_or_initialising_weights(capsys, monkeypatch):
    """`srlab models` builds on the meta device with initialisers skipped (so it stays quick: see
    benchmarks/cli_bench.py), and its counts equal a real build's."""
    from srlab.cli import main
    from srlab.models.registry import ARCHS, PRESETS, build_model, family_of, list_models

    def refuse(*a, **k):
        raise AssertionError("a real tensor was initialised")

    real_normal = torch.Tensor.normal_
    monkeypatch.setattr(torch.Tensor, "normal_", lambda self, *a, **k: self if self.is_meta else refuse())
    assert main(["models"]) == 0
    monkeypatch.setattr(torch.Tensor, "normal_", real_normal)
    out = capsys.readouterr().out
    for n in list_models():
        if (n in ARCHS and n not in PRESETS) or family_of(PRESETS[n][0]).backend == "spandrel":
            continue  # spandrel-backed presets are listed without building them (tests/test_train_any.py)
        _, d = build_model(n)
        assert f"{d.params:,}" in next(ln for ln in out.splitlines() if ln.split()[0] == n), n


def test_srlab_models_says_which_names_are_trained_and_which_are_untrained(capsys):
    from srlab.cli import main
    from srlab.weights.zoo import ZOO

    assert main(["models"]) == 0
    lines = [ln.split() for ln in capsys.readouterr().out.splitlines()[1:] if ln.strip()]
    rows = {ln[0]: ln for ln in reversed(lines)}  # 'vgg19' is a zoo file and an architecture: the first
    assert rows["RealESRGAN_x4plus"][1:4] == ["trained", "native", "rrdbnet"]
    assert rows["realesr-animevideov3-x4"][1:4] == ["trained", "native", "srvgg"]  # ncnn package
    assert rows["srcnn-955-x2"][1:4] == ["preset", "native", "srcnn"]
    assert rows["bicubic-x4"][1] == "parameter-free"
    assert rows["rrdbnet"][1] == "architecture"
    assert all(rows[n][1] == "trained" for n in ZOO)
    assert ["vgg19", "architecture"] in [ln[:2] for ln in lines]
    assert main(["models", "srcnn-*", "--kind", "preset"]) == 0
    names = [ln.split()[0] for ln in capsys.readouterr().out.splitlines()[1:]]
    assert "srcnn-955-y-x3" in names and "srcnn-x2" not in names


def test_unknown_hyper_parameters_are_named_with_the_valid_ones():
    from srlab.errors import ConfigError
    from srlab.models.registry import build_model

    with pytest.raises(
        ConfigError, match=r"unknown hyper-parameter 'num_blocks' for 'rrdbnet'; valid: .*num_block"
    ) as e:
        build_model("rrdbnet-x4", num_blocks=3)
    assert "\n" not in str(e.value)
