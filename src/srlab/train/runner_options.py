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

    channels_last: bool = False  # NHWC activations and weights (CUDA only)
    compile: bool = False  # torch.compile G and D (srlab.runtime.compile_module)
    compile_mode: str = "default"
    fused_blocks: bool = False  # RRDBNet dense blocks without concatenations
    pre_upsampled: bool = False  # inputs are interpolated already: train the model's forward_upsampled
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
            ddp=world > 1,
            local_rank=local_rank,
        )


class _Upsampled(nn.Module):
    """Runs an SRCNN on inputs that are already interpolated (the paper's sub-images)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.forward_upsampled(x)
