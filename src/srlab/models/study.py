"""The study's own ESRGAN generator and discriminator, in its module layout.

The study (CSC413 "Analysis SRCNN & ESRGAN") trained a generator that is *not* BasicSR's RRDBNet, so its
checkpoints need their own architecture:

- every conv is an ``nn.Sequential(conv, activation)`` -- hence the keys ``conv0.0.weight``,
  ``RRDB_layers.<i>.block<j>.conv<k>.0.weight``, ``upSample0.0.weight``, ...;
- the dense block applies LeakyReLU(0.2) after all five convs and returns the fifth conv's output (no inner
  residual);
- the RRDB chains its three dense blocks through scaled residuals and scales the last sum once more:
  ``s0 = x + b*B0(x)``, ``s1 = s0 + b*B1(s0)``, ``x + b*(s1 + b*B2(s1))`` with ``b = 0.2``;
- ``conv0`` and ``conv1`` end in ReLU and the long skip adds ``conv0``'s (activated) output after ``conv1``'s
  ReLU; one 1x1 conv + PixelShuffle(2) + ReLU upsamples (so x2 only); ``conv2`` + ReLU; ``conv3`` + ReLU (the
  output is non-negative and not bounded above).

The discriminator is the usual ESRGAN VGG-style one (128x128 input, BatchNorm, two linear layers, a logit)
under the study's key names (``block1.0``, ``basicBlocks.<n>.block1.{0,1}``, ``block2.{0,2}``).
"""

from __future__ import annotations

import torch
from torch import nn

from srlab.models.registry import Architecture, Preset, register
from srlab.models.study_layouts import LAYOUTS

__all__ = ["StudyDiscriminator", "StudyRRDBNet"]

BETA = 0.2  # the study's residual scaling (a plain attribute there too: not in the state dict)


def _conv_act(cin: int, cout: int, k: int = 3, act: str = "relu") -> nn.Sequential:
    a = nn.ReLU(inplace=True) if act == "relu" else nn.LeakyReLU(0.2, inplace=True)
    return nn.Sequential(nn.Conv2d(cin, cout, k, 1, k // 2), a)


class StudyDenseBlock(nn.Module):
    def __init__(self, num_feat: int, num_grow_ch: int) -> None:
        super().__init__()
        for k in range(5):
            cout = num_feat if k == 4 else num_grow_ch
            setattr(self, f"conv{k}", _conv_act(num_feat + k * num_grow_ch, cout, act="lrelu"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]
        for k in range(4):
            feats.append(getattr(self, f"conv{k}")(torch.cat(feats, 1)))
        return self.conv4(torch.cat(feats, 1))


class StudyRRDB(nn.Module):
    def __init__(self, num_feat: int, num_grow_ch: int) -> None:
        super().__init__()
        self.block0 = StudyDenseBlock(num_feat, num_grow_ch)
        self.block1 = StudyDenseBlock(num_feat, num_grow_ch)
        self.block2 = StudyDenseBlock(num_feat, num_grow_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = x + BETA * self.block0(x)
        s1 = s0 + BETA * self.block1(s0)
        return x + BETA * (s1 + BETA * self.block2(s1))


class StudyRRDBNet(nn.Module):
    """The study's generator (x2). Hyper-parameters: blocks, features, growth channels, channels."""

    arch = "study_rrdbnet"

    def __init__(
        self,
        *,
        scale: int = 2,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        num_feat: int = 64,
        num_block: int = 16,
        num_grow_ch: int = 32,
    ) -> None:
        super().__init__()
        if int(scale) != 2:
            raise ValueError(f"the study's generator upsamples x2 only (one PixelShuffle(2)), not x{scale}")
        if min(num_in_ch, num_out_ch, num_feat, num_block, num_grow_ch) < 1:
            raise ValueError("study_rrdbnet hyper-parameters must be positive")
        self.scale = 2
        self.in_channels, self.out_channels = int(num_in_ch), int(num_out_ch)
        self.hparams = dict(
            scale=2,
            num_in_ch=num_in_ch,
            num_out_ch=num_out_ch,
            num_feat=num_feat,
            num_block=num_block,
            num_grow_ch=num_grow_ch,
        )
        nf = num_feat
        self.conv0 = _conv_act(num_in_ch, nf)
        self.RRDB_layers = nn.Sequential(*[StudyRRDB(nf, num_grow_ch) for _ in range(num_block)])
        self.conv1 = _conv_act(nf, nf)
        self.upSample0 = nn.Sequential(nn.Conv2d(nf, 4 * nf, 1), nn.PixelShuffle(2), nn.ReLU(inplace=True))
        self.conv2 = _conv_act(nf, nf)
        self.conv3 = _conv_act(nf, num_out_ch)
        # Tiling overlap hint (LR pixels), as for RRDBNet: the deep trunk's influence decays fast.
        self.receptive_radius = 16

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.conv0(x)
        feat = self.conv1(self.RRDB_layers(x1)) + x1
        return self.conv3(self.conv2(self.upSample0(feat)))


# (kernel, stride, output channels as a multiple of num_feat) of the nine strided blocks.
_D_BLOCKS = (
    (4, 2, 1),
    (3, 1, 2),
    (4, 2, 2),
    (3, 1, 4),
    (4, 2, 4),
    (3, 1, 8),
    (4, 2, 8),
    (3, 1, 8),
    (4, 2, 8),
)


class _DBlock(nn.Module):
    def __init__(self, cin: int, cout: int, k: int, stride: int) -> None:
        super().__init__()
        self.block1 = nn.Sequential(
            nn.Conv2d(cin, cout, k, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2, True)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block1(x)


class StudyDiscriminator(nn.Module):
    """The study's discriminator: one logit per image, for ``input_size`` x ``input_size`` inputs."""

    arch = "study_discriminator"

    def __init__(self, *, num_in_ch: int = 3, num_feat: int = 64, input_size: int = 128) -> None:
        super().__init__()
        if input_size < 32 or input_size % 32:
            raise ValueError(f"study_discriminator input_size must be a multiple of 32, not {input_size}")
        self.input_size = int(input_size)
        self.in_channels, self.out_channels, self.scale = int(num_in_ch), 1, 1
        self.hparams = dict(num_in_ch=num_in_ch, num_feat=num_feat, input_size=input_size)
        self.block1 = nn.Sequential(nn.Conv2d(num_in_ch, num_feat, 3, 1, 1), nn.LeakyReLU(0.2, True))
        blocks, cin = [], num_feat
        for k, stride, mult in _D_BLOCKS:
            blocks.append(_DBlock(cin, num_feat * mult, k, stride))
            cin = num_feat * mult
        self.basicBlocks = nn.Sequential(*blocks)
        side = input_size // 32
        self.block2 = nn.Sequential(
            nn.Linear(cin * side * side, 100), nn.LeakyReLU(0.2, True), nn.Linear(100, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) != (self.input_size, self.input_size):
            raise ValueError(
                f"study_discriminator expects {self.input_size}x{self.input_size} inputs, got {tuple(x.shape)}"
            )
        return self.block2(self.basicBlocks(self.block1(x)).flatten(1))


def build_study_rrdbnet(**kw) -> StudyRRDBNet:
    return StudyRRDBNet(**kw)


ARCHITECTURE = register(
    Architecture(
        family="study_rrdbnet",
        summary="the study's ESRGAN generator (ReLU convs, PixelShuffle x2, ReLU output)",
        source="public repository Sheldonsu28/CSC413-Project, csc413_project.ipynb",
        builders={"study_rrdbnet": build_study_rrdbnet},
        constructor=StudyRRDBNet,
        presets=(
            Preset(
                "study-esrgan-x2",
                "study_rrdbnet",
                "the study's ESRGAN generator: 16 RRDBs, ReLU convs, PixelShuffle x2, ReLU output",
                {"scale": 2, "num_block": 16, "num_feat": 64, "num_grow_ch": 32},
            ),
        ),
        layouts=LAYOUTS[:1],
    )
)
DISCRIMINATOR = register(
    Architecture(
        family="study_discriminator",
        summary="the study's discriminator (VGG-style, fixed input size)",
        source="public repository Sheldonsu28/CSC413-Project, csc413_project.ipynb",
        builders={"study_discriminator": lambda **kw: StudyDiscriminator(**kw)},
        constructor=StudyDiscriminator,
        layouts=LAYOUTS[1:],
        purpose="discriminator",
        trainable=False,
    )
)
