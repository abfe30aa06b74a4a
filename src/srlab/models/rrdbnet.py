"""RRDBNet, the ESRGAN generator (Wang et al., 2018), in BasicSR/Real-ESRGAN key layout.

Residual-in-residual dense blocks, no BatchNorm, residual scaling 0.2, nearest-neighbour + conv upsampling.
Scales 1/2/3/4/8. ``pixel_unshuffle=True`` is Real-ESRGAN's x1/x2 variant: the input is pixel-unshuffled by
4/s and the network always upsamples x4 (RealESRGAN_x2plus).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from srlab.models.registry import Architecture, EngineHints, Preset, register
from srlab.models.rrdbnet_layouts import LAYOUTS, match_ncnn


class ResidualDenseBlock(nn.Module):
    def __init__(self, num_feat: int = 64, num_grow_ch: int = 32) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(num_feat, num_grow_ch, 3, 1, 1)
        self.conv2 = nn.Conv2d(num_feat + num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv3 = nn.Conv2d(num_feat + 2 * num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv4 = nn.Conv2d(num_feat + 3 * num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv5 = nn.Conv2d(num_feat + 4 * num_grow_ch, num_feat, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)
        for m in (self.conv1, self.conv2, self.conv3, self.conv4, self.conv5):
            nn.init.kaiming_normal_(m.weight)
            m.weight.data *= 0.1
            nn.init.zeros_(m.bias)

    #: evaluate without concatenations (see :meth:`forward_fused`); set for a whole model with
    #: :func:`set_fused_blocks`.
    fused: bool = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fused:
            return self.forward_fused(x)
        x1 = self.lrelu(self.conv1(x))
        x2 = self.lrelu(self.conv2(torch.cat((x, x1), 1)))
        x3 = self.lrelu(self.conv3(torch.cat((x, x1, x2), 1)))
        x4 = self.lrelu(self.conv4(torch.cat((x, x1, x2, x3), 1)))
        x5 = self.conv5(torch.cat((x, x1, x2, x3, x4), 1))
        return x5 * 0.2 + x

    def forward_fused(self, x: torch.Tensor) -> torch.Tensor:
        """The same function as :meth:`forward`, computed without concatenations.

        ``conv_k(cat(x, x1, ..., x_{k-1}))`` is a sum of convolutions over the parts. Grouping by input
        instead of by output, each feature map is convolved once into the partial sums of every later
        layer: ``x`` -> 4 x growth + num_feat channels, ``x1`` -> 3 x growth + num_feat, ... The FLOPs are
        the same; the GEMMs are wider (better tensor-core use) and no concatenated activation is ever
        written. The regrouped weights are sliced from this block's own parameters on every call, so it
        trains (gradients reach conv1..conv5 as usual), the state dict keeps its layout and a weight update
        can never be missed; the weight copies are small next to the activations.
        """
        convs = (self.conv1, self.conv2, self.conv3, self.conv4, self.conv5)
        nf, gc = self.conv1.in_channels, self.conv1.out_channels
        bounds = [(0, nf)] + [(nf + i * gc, nf + (i + 1) * gc) for i in range(4)]
        partial = None
        for src, (lo, hi) in enumerate(bounds):
            w = torch.cat([c.weight[:, lo:hi] for c in convs[src:]], dim=0)  # every conv reading `src`
            if src == 0:
                bias = torch.cat([c.bias for c in convs])
                partial = F.conv2d(x, w, bias, padding=1)  # pieces for conv1..conv5
            else:
                feats = F.leaky_relu(partial[:, :gc], 0.2)  # x_src
                partial = partial[:, gc:] + F.conv2d(feats, w, None, padding=1)
        return partial * 0.2 + x


def set_fused_blocks(model: nn.Module, on: bool = True) -> int:
    """Switch every ResidualDenseBlock of ``model`` to (or from) its concatenation-free evaluation, keeping
    its parameters (trainable, same state dict): the one switch for training (``runtime.fused_blocks``)
    and inference (``Upscaler(fuse=...)``). Returns how many blocks there are."""
    n = 0
    for m in model.modules():
        if isinstance(m, ResidualDenseBlock):
            m.fused = bool(on)
            n += 1
    return n


class RRDB(nn.Module):
    def __init__(self, num_feat: int, num_grow_ch: int = 32) -> None:
        super().__init__()
        self.rdb1 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb2 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb3 = ResidualDenseBlock(num_feat, num_grow_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.rdb3(self.rdb2(self.rdb1(x)))
        return out * 0.2 + x


def _up_factors(scale: int) -> list[int]:
    if scale == 1:
        return []
    if scale == 3:
        return [3]
    if scale in (2, 4, 8):
        return [2] * {2: 1, 4: 2, 8: 3}[scale]
    raise ValueError(f"RRDBNet supports scale 1, 2, 3, 4 or 8, not {scale}")


class RRDBNet(nn.Module):
    arch = "rrdbnet"

    def __init__(
        self,
        *,
        scale: int = 4,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        num_feat: int = 64,
        num_block: int = 23,
        num_grow_ch: int = 32,
        pixel_unshuffle: bool = False,
    ) -> None:
        super().__init__()
        self.scale = int(scale)
        self.in_channels, self.out_channels = num_in_ch, num_out_ch
        self.hparams = dict(
            scale=scale,
            num_in_ch=num_in_ch,
            num_out_ch=num_out_ch,
            num_feat=num_feat,
            num_block=num_block,
            num_grow_ch=num_grow_ch,
            pixel_unshuffle=pixel_unshuffle,
        )
        self.pixel_unshuffle = bool(pixel_unshuffle)
        if self.pixel_unshuffle:
            if scale not in (1, 2):
                raise ValueError("pixel_unshuffle RRDBNet exists for scale 1 and 2 only")
            self.unshuffle = 4 // scale
            first_in = num_in_ch * self.unshuffle**2
            ups = [2, 2]
        else:
            self.unshuffle = 1
            first_in = num_in_ch
            ups = _up_factors(self.scale)
        self.size_multiple = self.unshuffle
        self.up_factors = ups
        self.conv_first = nn.Conv2d(first_in, num_feat, 3, 1, 1)
        self.body = nn.Sequential(*[RRDB(num_feat, num_grow_ch) for _ in range(num_block)])
        self.conv_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        for i in range(len(ups)):
            setattr(self, f"conv_up{i + 1}", nn.Conv2d(num_feat, num_feat, 3, 1, 1))
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)
        # Receptive field of 5 convs per RDB x 3 x blocks is huge; in practice the influence decays fast.
        # This is the tiling overlap hint used by the upscaler (LR pixels).
        self.receptive_radius = 16

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.unshuffle > 1:
            x = F.pixel_unshuffle(x, self.unshuffle)
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        for i, f in enumerate(self.up_factors):
            conv = getattr(self, f"conv_up{i + 1}")
            feat = self.lrelu(conv(F.interpolate(feat, scale_factor=f, mode="nearest")))
        return self.conv_last(self.lrelu(self.conv_hr(feat)))


def build_rrdbnet(**kw) -> RRDBNet:
    return RRDBNet(**kw)


def _rdb_blocks(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, ResidualDenseBlock)]


ARCHITECTURE = register(
    Architecture(
        family="rrdbnet",
        summary="RRDBNet: the ESRGAN / Real-ESRGAN generator (residual-in-residual dense blocks)",
        source="Wang et al., ESRGAN (ECCVW 2018); BasicSR basicsr/archs/rrdbnet_arch.py key layout",
        builders={"rrdbnet": build_rrdbnet, "esrgan": build_rrdbnet},  # esrgan: the name spandrel uses
        constructor=RRDBNet,
        presets=(
            Preset("rrdbnet-x4", "rrdbnet", "ESRGAN generator, 23 blocks, x4", {"scale": 4}),
            Preset(
                "rrdbnet-x2", "rrdbnet", "ESRGAN generator, 23 blocks, x2 (one upsampling step)", {"scale": 2}
            ),
            Preset(
                "rrdbnet-16-x2",
                "rrdbnet",
                "BasicSR RRDBNet, 16 blocks, x2 (the study's own generator: study-esrgan-x2)",
                {"scale": 2, "num_block": 16},
            ),
            Preset(
                "rrdbnet-x2-unshuffle",
                "rrdbnet",
                "Real-ESRGAN x2plus layout (pixel-unshuffle)",
                {"scale": 2, "pixel_unshuffle": True},
            ),
            Preset(
                "rrdbnet-anime-x4",
                "rrdbnet",
                "Real-ESRGAN anime_6B layout: 6 blocks, x4",
                {"scale": 4, "num_block": 6},
            ),
        ),
        layouts=LAYOUTS,
        ncnn=match_ncnn,
        hints=EngineHints(ort_faster_on_cpu=True, fusable=_rdb_blocks),
        weights=(
            "zoo:RRDB_ESRGAN_x4",
            "zoo:RRDB_PSNR_x4",
            "zoo:esrgan-x4-df2kost",
            "zoo:esrgan-psnr-x4-df2k",
            "zoo:RealESRGAN_x4plus",
            "zoo:RealESRGAN_x2plus",
            "zoo:RealESRGAN_x4plus_anime_6B",
            "zoo:RealESRNet_x4plus",
            "ncnn:realesrgan-x4plus",
            "ncnn:realesrgan-x4plus-anime",
        ),
    )
)
