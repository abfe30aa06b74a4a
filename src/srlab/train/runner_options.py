"""How a stage's step runs on the machine (:class:`RunnerOptions`), and the SRCNN wrapper for inputs that
are interpolated already."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from srlab.train.config import TrainConfig

__all__ = ["RunnerOptions"]


@dataclass(frozen=True)
class RunnerOptions:
    """How a stage's step runs (not what it optimises); :meth:`from_config` reads them from a config."""

    channels_last: bool | None = False  # NHWC activations and weights (None: CUDA only; True: CUDA and CPU)
    compile: bool = False  # torch.compile G and D (srlab.runtime.compile_module)
    compile_mode: str = "default"
    fused_blocks: bool = False  # RRDBNet dense blocks without concatenations
    pre_upsampled: bool = False  # inputs are interpolated already: train the model's forward_upsampled
    unpadded: bool = False  # ... without padding; the loss compares the centre of the target
    ddp: bool = False  # one of several DistributedDataParallel processes
    local_rank: int | None = None  # its device index under DDP on CUDA

    @classmethod
    def from_config(cls, cfg: TrainConfig, *, world: int = 1, local_rank: int | None = None) -> RunnerOptions:
        rt = cfg.runtime
        return cls(
            channels_last=rt.channels_last,
            compile=rt.compile,
            compile_mode=rt.compile_mode,
            fused_blocks=rt.fused_blocks,
            pre_upsampled=bool(cfg.data.pre_upsample),
            unpadded=bool(cfg.data.unpadded),
            ddp=world > 1,
            local_rank=local_rank,
        )


class _Upsampled(nn.Module):
    """Runs an SRCNN on inputs that are already interpolated (the paper's sub-images); ``unpadded``: with
    its convolutions unpadded, so the output is smaller than the input (:func:`centre_like` crops the
    target to match)."""

    def __init__(self, net: nn.Module, *, unpadded: bool = False) -> None:
        super().__init__()
        self.net = net
        self.unpadded = unpadded

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.unpadded:
            return self.net.forward_upsampled(x, padded=False)
        return self.net.forward_upsampled(x)


def centre_like(target: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """The centre of ``target`` with ``out``'s height and width (itself when they match)."""
    h, w = out.shape[-2:]
    th, tw = target.shape[-2:]
    if (h, w) == (th, tw):
        return target
    top, left = (th - h) // 2, (tw - w) // 2
    return target[..., top : top + h, left : left + w]
