"""SPAN: the Swift Parameter-free Attention Network (Wan et al., CVPRW 2024; NTIRE 2024 ESR winner).

Structure (paper, Fig. 2): a first conv, six SPABs, a conv after the last one, a 1x1 fusion of four feature
maps (the first conv's output, the last conv's, the first block's output and the last block's activated
first-conv output) and a pixel-shuffle upsampler. A SPAB is three 3x3 convs (SiLU between them) whose output
``h`` makes its own attention map without parameters: ``out = (h + x) * (sigmoid(h) - 0.5)``. With
``norm=True`` (the paper) the input is normalised as ``(x - mean) * 255`` with the DIV2K mean; the output is
never de-normalised (the network learns [0, 1]).

Every 3x3 conv is *re-parameterisable* (:class:`RepConv3`, upstream's ``Conv3XC``): trained as a 1x1 conv
(``conv.0``, to 2x the channels) -> 3x3 conv without padding (``conv.1``) -> 1x1 conv (``conv.2``) on the
zero-padded input, plus a 1x1 skip (``sk``); all of it is linear, so it equals a single 3x3 conv
(``eval_conv``) with padding 1, which is what inference runs. The state dict keeps upstream's key layout
(``conv_1``, ``block_<n>.c<k>_r``, ``conv_cat``, ``conv_2``, ``upsampler.0``; ``no_norm`` when the input is
not normalised), so files load in spandrel's SPAN and spandrel's in this one; ``eval_conv`` is refreshed
from the branches whenever the weights are saved, loaded or switched to evaluation.

Training computes the same function with the branch weights multiplied into one 3x3 kernel on every step
(differentiably: the gradients reach ``conv.0/1/2`` and ``sk`` exactly as through the branches) instead of
running the 2x-wide convolutions: about a fifth of the arithmetic. ``branch_forward=True`` runs the
branches literally (upstream's training form).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from srlab.models.registry import Architecture, Preset, register
from srlab.models.span_layouts import LAYOUTS, NUM_BLOCKS

_DIV2K_MEAN = (0.4488, 0.4371, 0.4040)
_IMG_RANGE = 255.0


class RepConv3(nn.Module):
    """A 3x3 conv (stride 1, padding 1) trained as 1x1 -> 3x3 -> 1x1 plus a 1x1 skip (upstream ``Conv3XC``)."""

    def __init__(self, c_in: int, c_out: int, gain: int = 2) -> None:
        super().__init__()
        mid_in, mid_out = c_in * gain, c_out * gain
        self.sk = nn.Conv2d(c_in, c_out, 1)
        self.conv = nn.Sequential(
            nn.Conv2d(c_in, mid_in, 1), nn.Conv2d(mid_in, mid_out, 3), nn.Conv2d(mid_out, c_out, 1)
        )
        self.eval_conv = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.eval_conv.weight.requires_grad_(False)
        self.eval_conv.bias.requires_grad_(False)
        self.branch_forward = False
        self.register_load_state_dict_post_hook(lambda m, _incompatible: m.refresh())
        self.refresh()

    def fused(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(weight, bias) of the single 3x3 conv equal to the branches (differentiable; fp32 at least).

        With ``h1 = W1 x + b1`` on the zero-padded input (so ``h1 = b1`` on the padding ring), the 3x3 conv
        sees ``b1`` at every tap: the branch is ``(W3 W2 W1) * x_pad + W3 (sum_taps W2 b1 + b2) + b3``.
        """
        c0, c1, c2 = self.conv
        dt = torch.promote_types(c1.weight.dtype, torch.float32)
        w1, w2, w3 = (c.weight.to(dt) for c in (c0, c1, c2))
        b1, b2, b3 = (c.bias.to(dt) for c in (c0, c1, c2))
        w = torch.einsum("on,nmhw,mi->oihw", w3[:, :, 0, 0], w2, w1[:, :, 0, 0])
        b_mid = torch.einsum("nmhw,m->n", w2, b1) + b2
        b = w3[:, :, 0, 0] @ b_mid + b3
        w = w + F.pad(self.sk.weight.to(dt), (1, 1, 1, 1))
        return w, b + self.sk.bias.to(dt)

    @torch.no_grad()
    def refresh(self) -> None:
        """Write the branches' equivalent 3x3 conv into ``eval_conv``."""
        if self.sk.weight.is_meta or self.eval_conv.weight.is_meta:
            return
        w, b = self.fused()
        self.eval_conv.weight.copy_(w)
        self.eval_conv.bias.copy_(b)

    def train(self, mode: bool = True):
        super().train(mode)
        if not mode:
            self.refresh()
        return self

    def _save_to_state_dict(self, destination, prefix, keep_vars) -> None:
        self.refresh()  # the children (eval_conv among them) are saved after this
        super()._save_to_state_dict(destination, prefix, keep_vars)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return self.eval_conv(x)
        if self.branch_forward:
            return self.conv(F.pad(x, (1, 1, 1, 1))) + self.sk(x)
        # the kernel product in fp32 outside autocast; the convolution itself follows the autocast dtype
        with torch.autocast(device_type=x.device.type, enabled=False):
            w, b = self.fused()
        if torch.is_autocast_enabled(x.device.type):
            dt = torch.get_autocast_dtype(x.device.type)
            return F.conv2d(x.to(dt), w.to(dt), b.to(dt), padding=1)
        return F.conv2d(x, w.to(x.dtype), b.to(x.dtype), padding=1)


class SPAB(nn.Module):
    """Swift parameter-free attention block: three 3x3 convs whose output is its own attention map."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.c1_r = RepConv3(channels, channels)
        self.c2_r = RepConv3(channels, channels)
        self.c3_r = RepConv3(channels, channels)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(block output, the first conv's activated output: the network's fusion takes the last block's)."""
        a1 = F.silu(self.c1_r(x))
        h = self.c3_r(F.silu(self.c2_r(a1)))
        return (h + x) * (torch.sigmoid(h) - 0.5), a1


class SPAN(nn.Module):
    arch = "span"
    color = "rgb"

    def __init__(
        self,
        *,
        scale: int = 4,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        feature_channels: int = 48,
        norm: bool = True,
    ) -> None:
        super().__init__()
        if norm and num_in_ch != 3:
            raise ValueError(f"norm=True subtracts the RGB mean: it needs num_in_ch=3, not {num_in_ch}")
        self.scale = int(scale)
        self.in_channels, self.out_channels = int(num_in_ch), int(num_out_ch)
        self.hparams = dict(
            scale=self.scale,
            num_in_ch=self.in_channels,
            num_out_ch=self.out_channels,
            feature_channels=int(feature_channels),
            norm=bool(norm),
        )
        # every conv is 3x3 (the SPABs' three, the first, the last and the upsampler's); conv_cat is 1x1
        self.receptive_radius = 3 * NUM_BLOCKS + 3
        self.norm = bool(norm)
        if not norm:
            # upstream marks an un-normalised network by this (otherwise unused) tensor in its state dict
            self.register_buffer("no_norm", torch.zeros(1))
        c = int(feature_channels)
        self.conv_1 = RepConv3(self.in_channels, c)
        for i in range(1, NUM_BLOCKS + 1):
            self.add_module(f"block_{i}", SPAB(c))
        self.conv_cat = nn.Conv2d(4 * c, c, 1)
        self.conv_2 = RepConv3(c, c)
        self.upsampler = nn.Sequential(
            nn.Conv2d(c, self.out_channels * self.scale**2, 3, padding=1), nn.PixelShuffle(self.scale)
        )

    @property
    def branch_forward(self) -> bool:
        return self.conv_1.branch_forward

    @branch_forward.setter
    def branch_forward(self, value: bool) -> None:
        for m in self.modules():
            if isinstance(m, RepConv3):
                m.branch_forward = bool(value)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.norm:
            # a constant, not a buffer: not in upstream's state dict, and a meta-device build has no value for it
            x = (x - x.new_tensor(_DIV2K_MEAN).view(1, 3, 1, 1)) * _IMG_RANGE
        first = self.conv_1(x)
        out_first, _ = self.block_1(first)
        out, h1 = out_first, None
        for i in range(2, NUM_BLOCKS + 1):
            out, h1 = getattr(self, f"block_{i}")(out)
        # the fusion takes the first conv's features, the last conv's, the first block's output and the
        # last block's activated first-conv output (the paper's Fig. 2; upstream's in-place SiLU)
        fused = self.conv_cat(torch.cat([first, self.conv_2(out), out_first, h1], 1))
        return self.upsampler(fused)


def build_span(**kw) -> SPAN:
    return SPAN(**kw)


ARCHITECTURE = register(
    Architecture(
        family="span",
        summary="SPAN: swift parameter-free attention network (re-parameterisable convs, srlab's own code)",
        source="Wan et al., CVPRW 2024 (NTIRE 2024 ESR winner); hongyuanyu/SPAN basicsr/archs/span_arch.py",
        builders={"span": build_span},
        constructor=SPAN,
        presets=tuple(
            Preset(f"span-x{s}", "span", f"SPAN (48 channels, 6 SPABs), x{s}", {"scale": s}, scale=s)
            for s in (2, 4)
        ),
        layouts=LAYOUTS,
        weights=("shipped:span-x2",),
    )
)
