"""Training losses against hand computations: relativistic-average GAN, pixel losses, the perceptual loss's
VGG19 layer choice."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from srlab.errors import ConfigError
from srlab.models.vgg import VGG19_LAYERS, layer_index
from srlab.train.config import LossConfig
from srlab.train.losses import (
    PerceptualLoss,
    charbonnier,
    describe_losses,
    gan_d_loss,
    gan_g_loss,
    pixel_loss,
)


def _sig(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _bce(logits: list[float], target: float) -> float:
    """Mean binary cross-entropy of logits against a constant target, written out."""
    return sum(-(target * math.log(_sig(x)) + (1 - target) * math.log(1 - _sig(x))) for x in logits) / len(
        logits
    )


REAL = [1.5, -0.5, 0.25]
FAKE = [-1.0, 0.5, 2.0]


def test_ragan_losses_match_a_hand_computation():
    mr, mf = sum(REAL) / 3, sum(FAKE) / 3
    real_rel = [r - mf for r in REAL]  # real relative to the average fake
    fake_rel = [f - mr for f in FAKE]  # fake relative to the average real
    want_g = 0.5 * (_bce(real_rel, 0.0) + _bce(fake_rel, 1.0))
    want_d = 0.5 * (_bce(real_rel, 1.0) + _bce(fake_rel, 0.0))
    real, fake = torch.tensor(REAL, dtype=torch.float64), torch.tensor(FAKE, dtype=torch.float64)
    assert gan_g_loss("ragan", real, fake).item() == pytest.approx(want_g, rel=1e-12)
    assert gan_d_loss("ragan", real, fake).item() == pytest.approx(want_d, rel=1e-12)
    # vanilla: G wants fakes called real; D the real real and the fake fake
    assert gan_g_loss("vanilla", real, fake).item() == pytest.approx(_bce(FAKE, 1.0), rel=1e-12)
    want_vd = 0.5 * (_bce(REAL, 1.0) + _bce(FAKE, 0.0))
    assert gan_d_loss("vanilla", real, fake).item() == pytest.approx(want_vd, rel=1e-12)
    with pytest.raises(ConfigError, match="use ragan, ragan_sum, vanilla or lsgan"):
        gan_g_loss("wgan", real, fake)


def test_ragan_discriminator_loss_sends_no_gradient_through_the_other_kinds_mean():
    real = torch.tensor(REAL, requires_grad=True)
    fake = torch.tensor(FAKE, requires_grad=True)
    gan_d_loss("ragan", real, fake).backward()
    # d/dr of 0.5 * mean(softplus(-(r - mean_f))) only; mean_r is detached in the fake term
    mf = sum(FAKE) / 3
    want = [0.5 * (_sig(r - mf) - 1.0) / 3 for r in REAL]
    assert real.grad.tolist() == pytest.approx(want, rel=1e-5)


def test_summed_ragan_is_the_studys_loss_written_out():
    mr, mf = sum(REAL) / 3, sum(FAKE) / 3
    real_rel = [r - mf for r in REAL]
    fake_rel = [f - mr for f in FAKE]
    # the study: D = BCE(D(hr) - mean D(sr), 1) + BCE(D(sr) - mean D(hr), 0); G the mirror image; summed
    want_d = _bce(real_rel, 1.0) + _bce(fake_rel, 0.0)
    want_g = _bce(fake_rel, 1.0) + _bce(real_rel, 0.0)
    real, fake = torch.tensor(REAL, dtype=torch.float64), torch.tensor(FAKE, dtype=torch.float64)
    assert gan_d_loss("ragan_sum", real, fake).item() == pytest.approx(want_d, rel=1e-12)
    assert gan_g_loss("ragan_sum", real, fake).item() == pytest.approx(want_g, rel=1e-12)
    # twice srlab's halved ragan: the study's 0.001 is ragan's 0.002
    assert gan_g_loss("ragan_sum", real, fake).item() == pytest.approx(
        2 * gan_g_loss("ragan", real, fake).item(), rel=1e-12
    )
    # D's gradient also flows through the other kind's mean (nothing detached, as in the study's code):
    # d/dr_i = (sig(r_i - mf) - 1) / n  -  sum_j sig(f_j - mr) / n^2
    real = torch.tensor(REAL, dtype=torch.float64, requires_grad=True)
    fake = torch.tensor(FAKE, dtype=torch.float64, requires_grad=True)
    gan_d_loss("ragan_sum", real, fake).backward()
    through_mean = sum(_sig(f - mr) for f in FAKE) / 9
    assert real.grad.tolist() == pytest.approx(
        [(_sig(r - mf) - 1) / 3 - through_mean for r in REAL], rel=1e-10
    )
    # and the generator's gradient reaches the fakes through both terms
    real = torch.tensor(REAL, dtype=torch.float64)
    fake = torch.tensor(FAKE, dtype=torch.float64, requires_grad=True)
    gan_g_loss("ragan_sum", real, fake).backward()
    back = sum(_sig(r - mf) for r in REAL) / 9  # d/df_i of mean_j softplus(r_j - mean f) = -sum sig(.)/n^2
    assert fake.grad.tolist() == pytest.approx([(_sig(f - mr) - 1) / 3 - back for f in FAKE], rel=1e-10)


def test_pixel_losses():
    x = torch.tensor([[0.0, 0.5], [1.0, 0.25]])
    y = torch.tensor([[0.1, 0.5], [0.7, 0.0]])
    d = [0.1, 0.0, 0.3, 0.25]
    assert pixel_loss("l1", x, y).item() == pytest.approx(sum(d) / 4)
    assert pixel_loss("mse", x, y).item() == pytest.approx(sum(v * v for v in d) / 4)
    want = sum(math.sqrt(v * v + 1e-6) for v in d) / 4
    assert pixel_loss("charbonnier", x, y).item() == pytest.approx(want, rel=1e-6)
    assert charbonnier(x, x).item() == pytest.approx(1e-3)
    with pytest.raises(ConfigError, match="unknown pixel loss"):
        pixel_loss("l3", x, y)


@pytest.mark.parametrize(
    "name,index,kind",
    [
        ("conv1_1", 0, torch.nn.Conv2d),
        ("relu1_1", 1, torch.nn.ReLU),
        ("pool1", 4, torch.nn.MaxPool2d),
        ("relu3_4", 17, torch.nn.ReLU),
        ("pool3", 18, torch.nn.MaxPool2d),  # the study's features[:19]
        ("conv5_4", 34, torch.nn.Conv2d),  # ESRGAN: before the ReLU
        ("relu5_4", 35, torch.nn.ReLU),
    ],
)
def test_perceptual_layer_names_map_to_torchvision_vgg19_indices(name, index, kind):
    assert layer_index(name) == VGG19_LAYERS[name] == index
    loss = PerceptualLoss({name: 1.0}, weights="random")
    # the network is cut right after the deepest requested layer, which is the named module
    assert len(loss.vgg.features) == index + 1
    assert isinstance(loss.vgg.features[index], kind)
    assert loss.weights_source == "random"


def test_perceptual_loss_is_the_weighted_feature_distance_of_the_named_layers():
    torch.manual_seed(0)
    loss = PerceptualLoss({"conv1_1": 2.0, "relu1_2": 0.5}, normalize=True, criterion="l1", weights="random")
    assert len(loss.vgg.features) == layer_index("relu1_2") + 1
    sr, hr = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    f = loss.vgg.features

    def feats(x):
        x = (x - mean) / std
        c11 = f[0](x)
        return c11, f[3](f[2](f[1](c11)))

    (a1, a2), (b1, b2) = feats(sr), feats(hr)
    want = 2.0 * F.l1_loss(a1, b1) + 0.5 * F.l1_loss(a2, b2)
    torch.testing.assert_close(loss(sr, hr), want)
    # grey inputs are expanded to three channels
    assert loss(sr[:, :1], hr[:, :1]).shape == ()


def test_perceptual_loss_refuses_unknown_layers_and_criteria():
    with pytest.raises(ConfigError, match="perceptual_layers: unknown VGG19 layer 'conv6_1'"):
        PerceptualLoss({"conv6_1": 1.0}, weights="random")
    with pytest.raises(ConfigError, match="empty"):
        PerceptualLoss({}, weights="random")
    with pytest.raises(ConfigError, match="perceptual criterion"):
        PerceptualLoss({"conv1_1": 1.0}, criterion="l3", weights="random")


def test_describe_losses_names_each_enabled_loss_with_its_weight():
    L = LossConfig(pixel="l1", pixel_weight=0.01, perceptual="vgg19", perceptual_layers={"pool3": 1.0})
    L.gan, L.gan_weight, L.perceptual_normalize = "ragan", 5e-3, False
    assert describe_losses(L) == ["0.01*l1", "1*vgg19[pool3](l1, no norm)", "0.005*ragan"]
    assert describe_losses(LossConfig(pixel="none")) == []


def test_lsgan_losses_match_a_hand_computation():
    real, fake = torch.tensor(REAL), torch.tensor(FAKE)
    d = 0.5 * (sum((r - 1) ** 2 for r in REAL) / 3 + sum(f**2 for f in FAKE) / 3)
    g = sum((f - 1) ** 2 for f in FAKE) / 3
    assert gan_d_loss("lsgan", real, fake).item() == pytest.approx(d, rel=1e-6)
    assert gan_g_loss("lsgan", real, fake).item() == pytest.approx(g, rel=1e-6)
    # a perfect discriminator (1 on real, 0 on fake) has no loss; a generator fooling it has none either
    assert gan_d_loss("lsgan", torch.ones(4), torch.zeros(4)).item() == 0.0
    assert gan_g_loss("lsgan", torch.ones(4), torch.ones(4)).item() == 0.0


def test_unet_discriminator_shapes_spectral_norm_and_one_gan_step_changes_both_networks():
    from srlab.models.discriminators import UNetDiscriminatorSN
    from srlab.models.registry import build_model

    d, _ = build_model("unet_discriminator", num_feat=8)
    assert isinstance(d, UNetDiscriminatorSN)
    for h, w in ((32, 32), (48, 64)):
        assert d(torch.rand(2, 3, h, w)).shape == (2, 1, h, w)  # a realness logit per pixel
    # spectral norm on the inner convolutions: each stored weight's largest singular value is ~1 after the
    # power iterations of a few forward passes in training mode
    names = {n for n, _ in d.named_parameters()}
    assert "conv1.parametrizations.weight.original" in names or "conv1.weight_orig" in names
    for _ in range(30):
        d(torch.rand(1, 3, 16, 16))
    w = d.conv2.weight.detach().flatten(1)
    assert torch.linalg.matrix_norm(w, ord=2).item() == pytest.approx(1.0, abs=0.05)
    assert torch.linalg.matrix_norm(d.conv0.weight.detach().flatten(1), ord=2).item() != pytest.approx(
        1.0, abs=0.05
    )

    g = torch.nn.Sequential(torch.nn.Upsample(scale_factor=2), torch.nn.Conv2d(3, 3, 3, padding=1))
    opt_g = torch.optim.Adam(g.parameters(), 1e-3)
    opt_d = torch.optim.Adam(d.parameters(), 1e-3)
    g0 = [p.detach().clone() for p in g.parameters()]
    d0 = {n: p.detach().clone() for n, p in d.named_parameters()}
    lr, hr = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 32, 32)
    for p in d.parameters():
        p.requires_grad_(False)
    sr = g(lr)
    l_g = F.l1_loss(sr, hr) + 0.1 * gan_g_loss("vanilla", d(hr).detach(), d(sr))
    opt_g.zero_grad()
    l_g.backward()
    opt_g.step()
    for p in d.parameters():
        p.requires_grad_(True)
    l_d = gan_d_loss("vanilla", d(hr), d(sr.detach()))
    opt_d.zero_grad()
    l_d.backward()
    opt_d.step()
    assert math.isfinite(l_g.item()) and math.isfinite(l_d.item())
    assert all(not torch.equal(a, b) for a, b in zip(g0, g.parameters()))
    changed = [n for n, p in d.named_parameters() if not torch.equal(d0[n], p)]
    assert len(changed) == len(d0)
