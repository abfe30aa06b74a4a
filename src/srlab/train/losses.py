"""Training losses: pixel (L1, MSE, Charbonnier), VGG19 perceptual, and GAN (relativistic average, vanilla).

GAN losses (``losses.gan``), with ``Dr``/``Df`` the discriminator's logits on real/generated images and
``BCE`` the mean binary cross-entropy with logits:

- ``ragan`` (ESRGAN as in BasicSR): D = ½[BCE(Dr − mean Df, 1) + BCE(Df − mean Dr, 0)], each mean of the
  other kind detached; G = ½[BCE(Dr − mean Df, 0) + BCE(Df − mean Dr, 1)].
- ``ragan_sum`` (the study's code): the same terms **summed**, not halved, and nothing detached inside D's
  loss, so its gradient also flows through each mean. At a given ``gan_weight`` the adversarial term is
  twice ``ragan``'s: the study's 0.001 with ``ragan`` would be an effective 0.0005.
- ``vanilla``: D = ½[BCE(Dr, 1) + BCE(Df, 0)]; G = BCE(Df, 1). With Real-ESRGAN's U-Net discriminator the
  logits are a map and the means run over every pixel (Real-ESRGAN's GAN loss).
- ``lsgan`` (least squares, Mao et al. 2017): D = ½[mean (Dr − 1)² + mean Df²]; G = mean (Df − 1)².

Perceptual loss: srlab's :class:`~srlab.models.vgg.VGG19` (torchvision key layout) truncated after the
deepest requested layer. Its weights come from the zoo (:func:`srlab.weights.zoo.load_vgg19`, ImageNet,
torchvision's ``vgg19-dcbb9e9d.pth``) or a file; when they cannot be found training stops with the zoo's
instructions. Random weights are used only when asked for explicitly (``perceptual_weights: random``), and
:attr:`PerceptualLoss.weights_source` then says ``random`` so checkpoints, exports and logs record it.

Layer names: ``conv5_4`` is the convolution's output *before* its ReLU (ESRGAN), ``relu3_4`` after it,
``pool3`` the third max-pool (the study's ``features[:19]``).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from srlab.errors import ConfigError, WeightsError
from srlab.models.vgg import IMAGENET_MEAN, IMAGENET_STD, VGG19, layer_index
from srlab.train.config import LossConfig
from srlab.weights.zoo import load_vgg19, require

__all__ = [
    "GAN_LOSSES",
    "PerceptualLoss",
    "charbonnier",
    "check_perceptual_weights",
    "describe_losses",
    "gan_d_loss",
    "gan_g_loss",
    "pixel_loss",
]


def charbonnier(x: torch.Tensor, y: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    return torch.sqrt((x - y) ** 2 + eps * eps).mean()


def pixel_loss(kind: str, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean L1 / MSE / Charbonnier distance."""
    if kind == "l1":
        return F.l1_loss(x, y)
    if kind == "mse":
        return F.mse_loss(x, y)
    if kind == "charbonnier":
        return charbonnier(x, y)
    raise ConfigError(f"unknown pixel loss {kind!r}; use l1, mse or charbonnier")


def _bce(pred: torch.Tensor, target: float) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(pred, torch.full_like(pred, target))


GAN_LOSSES = ("ragan", "ragan_sum", "vanilla", "lsgan")


def _unknown_gan(kind: str) -> ConfigError:
    return ConfigError(f"unknown GAN loss {kind!r}; use {', '.join(GAN_LOSSES[:-1])} or {GAN_LOSSES[-1]}")


def gan_g_loss(kind: str, real_pred: torch.Tensor, fake_pred: torch.Tensor) -> torch.Tensor:
    """Generator's adversarial loss. ``real_pred`` must be detached (D's view of the real images)."""
    if kind in ("ragan", "ragan_sum"):
        # Relativistic average GAN (ESRGAN): real should look less real than the average fake, fake more
        # real than the average real.
        both = _bce(real_pred - fake_pred.mean(), 0.0) + _bce(fake_pred - real_pred.mean(), 1.0)
        return both if kind == "ragan_sum" else 0.5 * both
    if kind == "vanilla":
        return _bce(fake_pred, 1.0)
    if kind == "lsgan":
        return ((fake_pred - 1.0) ** 2).mean()
    raise _unknown_gan(kind)


def gan_d_loss(kind: str, real_pred: torch.Tensor, fake_pred: torch.Tensor) -> torch.Tensor:
    """Discriminator's loss on its predictions for real and (detached) generated images."""
    if kind == "ragan":
        return 0.5 * (
            _bce(real_pred - fake_pred.detach().mean(), 1.0)
            + _bce(fake_pred - real_pred.detach().mean(), 0.0)
        )
    if kind == "ragan_sum":
        # the study's: summed, and D also learns through the other kind's mean
        return _bce(real_pred - fake_pred.mean(), 1.0) + _bce(fake_pred - real_pred.mean(), 0.0)
    if kind == "vanilla":
        return 0.5 * (_bce(real_pred, 1.0) + _bce(fake_pred, 0.0))
    if kind == "lsgan":
        return 0.5 * (((real_pred - 1.0) ** 2).mean() + (fake_pred**2).mean())
    raise _unknown_gan(kind)


def describe_losses(L: LossConfig) -> list[str]:
    """The enabled losses with their weights, for the log (``['1*l1', '0.005*ragan']``)."""
    out = []
    if L.pixel != "none":
        out.append(f"{L.pixel_weight:g}*{L.pixel}")
    if L.perceptual != "none":
        out.append(
            f"{L.perceptual_weight:g}*vgg19[{','.join(L.perceptual_layers)}]"
            f"({L.perceptual_criterion}, {'imagenet-norm' if L.perceptual_normalize else 'no norm'})"
        )
    if L.gan != "none":
        out.append(f"{L.gan_weight:g}*{L.gan}")
    return out


def _load_vgg(weights: str | None):
    """(VGG19, source description). ``weights``: None = the zoo's ImageNet file, 'random', or a file path."""

    if weights == "random":
        return VGG19(), "random"
    try:
        vgg = load_vgg19(weights)
    except WeightsError as exc:
        raise WeightsError(
            f"perceptual loss: {exc} (or set losses.perceptual_weights to a file; "
            "'perceptual_weights: random' / 'perceptual: none' train without ImageNet features, recorded as such)"
        ) from None
    return vgg, str(weights) if weights else "imagenet (zoo vgg19)"


def check_perceptual_weights(weights: str | None) -> None:
    """Fail now (WeightsError with how to get them) if the VGG19 weights a stage will need are missing."""
    if weights == "random":
        return

    if weights is None:
        try:
            require("vgg19", verify=False)
        except WeightsError as exc:
            raise WeightsError(
                f"perceptual loss: {exc} (or set losses.perceptual_weights to a file; 'perceptual_weights: "
                "random' / 'perceptual: none' train without ImageNet features, recorded as such)"
            ) from None
    elif not Path(weights).expanduser().is_file():
        raise WeightsError(
            f"perceptual loss: VGG19 weights {weights} not found; check losses.perceptual_weights"
        )


class PerceptualLoss(nn.Module):
    """Weighted distance between VGG19 features of the output and the target (frozen, eval mode)."""

    def __init__(
        self,
        layers: dict[str, float],
        *,
        normalize: bool = True,
        criterion: str = "l1",
        weights: str | None = None,
    ) -> None:
        super().__init__()

        if not layers:
            raise ConfigError(
                "losses.perceptual_layers is empty; name at least one VGG19 layer (e.g. conv5_4)"
            )
        for name in layers:
            try:
                layer_index(name)
            except ValueError as exc:
                raise ConfigError(f"losses.perceptual_layers: {exc}") from None
        if criterion not in ("l1", "mse", "charbonnier"):
            raise ConfigError(f"unknown perceptual criterion {criterion!r}; use l1, mse or charbonnier")
        vgg, self.weights_source = _load_vgg(weights)
        last = max(layers, key=layer_index)
        vgg.truncate(last)
        vgg.eval()
        for p in vgg.parameters():
            p.requires_grad_(False)
        self.vgg = vgg
        self.layers = dict(layers)
        self.normalize = bool(normalize)
        self.criterion = criterion
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True):  # the VGG stays in eval mode
        super().train(mode)
        self.vgg.eval()
        return self

    def _features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if self.normalize:
            x = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        return self.vgg(x, list(self.layers))

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        f_sr = self._features(sr)
        with torch.no_grad():
            f_hr = self._features(hr.detach())
        total = sr.new_zeros((), dtype=torch.float32)
        for name, w in self.layers.items():
            total = total + w * pixel_loss(self.criterion, f_sr[name].float(), f_hr[name].float())
        return total
