"""Discriminators: ESRGAN's VGG-style (128 or 256 input) and Real-ESRGAN's U-Net with spectral norm."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm

from srlab.models.registry import register_arch


class VGGStyleDiscriminator(nn.Module):
    """ESRGAN's discriminator: strided conv blocks with BatchNorm, then two linear layers -> one logit."""

    arch = "vgg_discriminator"

    def __init__(self, *, num_in_ch: int = 3, num_feat: int = 64, input_size: int = 128) -> None:
        super().__init__()
        if input_size not in (128, 256):
            raise ValueError(f"VGGStyleDiscriminator takes 128 or 256 inputs, not {input_size}")
        self.input_size = input_size
        self.in_channels, self.out_channels, self.scale = num_in_ch, 1, 1
        self.hparams = dict(num_in_ch=num_in_ch, num_feat=num_feat, input_size=input_size)
        nf = num_feat
        self.conv0_0 = nn.Conv2d(num_in_ch, nf, 3, 1, 1, bias=True)
        self.conv0_1 = nn.Conv2d(nf, nf, 4, 2, 1, bias=False)
        self.bn0_1 = nn.BatchNorm2d(nf, affine=True)
        chans = [(nf, nf * 2), (nf * 2, nf * 4), (nf * 4, nf * 8), (nf * 8, nf * 8)]
        if input_size == 256:
            chans.append((nf * 8, nf * 8))
        self.stages = len(chans)
        for i, (cin, cout) in enumerate(chans, start=1):
            setattr(self, f"conv{i}_0", nn.Conv2d(cin, cout, 3, 1, 1, bias=False))
            setattr(self, f"bn{i}_0", nn.BatchNorm2d(cout, affine=True))
            setattr(self, f"conv{i}_1", nn.Conv2d(cout, cout, 4, 2, 1, bias=False))
            setattr(self, f"bn{i}_1", nn.BatchNorm2d(cout, affine=True))
        self.linear1 = nn.Linear(nf * 8 * 4 * 4, 100)
        self.linear2 = nn.Linear(100, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.input_size or x.shape[-2] != self.input_size:
            raise ValueError(
                f"discriminator expects {self.input_size}x{self.input_size} inputs, got {tuple(x.shape)}"
            )
        feat = self.lrelu(self.conv0_0(x))
        feat = self.lrelu(self.bn0_1(self.conv0_1(feat)))
        for i in range(1, self.stages + 1):
            feat = self.lrelu(getattr(self, f"bn{i}_0")(getattr(self, f"conv{i}_0")(feat)))
            feat = self.lrelu(getattr(self, f"bn{i}_1")(getattr(self, f"conv{i}_1")(feat)))
        feat = feat.flatten(1)
        return self.linear2(self.lrelu(self.linear1(feat)))


class UNetDiscriminatorSN(nn.Module):
    """Real-ESRGAN's U-Net discriminator with spectral normalisation: a per-pixel realness map."""

    arch = "unet_discriminator"

    def __init__(self, *, num_in_ch: int = 3, num_feat: int = 64, skip_connection: bool = True) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.scale = num_in_ch, 1, 1
        self.size_multiple = 8
        self.hparams = dict(num_in_ch=num_in_ch, num_feat=num_feat, skip_connection=skip_connection)
        self.skip_connection = skip_connection
        nf = num_feat
        sn = spectral_norm
        self.conv0 = nn.Conv2d(num_in_ch, nf, 3, 1, 1)
        self.conv1 = sn(nn.Conv2d(nf, nf * 2, 4, 2, 1, bias=False))
        self.conv2 = sn(nn.Conv2d(nf * 2, nf * 4, 4, 2, 1, bias=False))
        self.conv3 = sn(nn.Conv2d(nf * 4, nf * 8, 4, 2, 1, bias=False))
        self.conv4 = sn(nn.Conv2d(nf * 8, nf * 4, 3, 1, 1, bias=False))
        self.conv5 = sn(nn.Conv2d(nf * 4, nf * 2, 3, 1, 1, bias=False))
        self.conv6 = sn(nn.Conv2d(nf * 2, nf, 3, 1, 1, bias=False))
        self.conv7 = sn(nn.Conv2d(nf, nf, 3, 1, 1, bias=False))
        self.conv8 = sn(nn.Conv2d(nf, nf, 3, 1, 1, bias=False))
        self.conv9 = nn.Conv2d(nf, 1, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        def act(t):
            return F.leaky_relu(t, negative_slope=0.2, inplace=True)

        def up(t):
            return F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False)

        x0 = act(self.conv0(x))
        x1 = act(self.conv1(x0))
        x2 = act(self.conv2(x1))
        x3 = act(self.conv3(x2))
        x4 = act(self.conv4(up(x3)))
        if self.skip_connection:
            x4 = x4 + x2
        x5 = act(self.conv5(up(x4)))
        if self.skip_connection:
            x5 = x5 + x1
        x6 = act(self.conv6(up(x5)))
        if self.skip_connection:
            x6 = x6 + x0
        out = act(self.conv7(x6))
        out = act(self.conv8(out))
        return self.conv9(out)


@register_arch("vgg_discriminator")
def build_vgg_discriminator(**kw) -> VGGStyleDiscriminator:
    return VGGStyleDiscriminator(**kw)


@register_arch("unet_discriminator")
def build_unet_discriminator(**kw) -> UNetDiscriminatorSN:
    return UNetDiscriminatorSN(**kw)
