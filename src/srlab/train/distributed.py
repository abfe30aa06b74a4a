"""The few collective operations training needs, for one process or several under ``torchrun``.

``WORLD_SIZE``/``RANK``/``LOCAL_RANK`` come from the environment torchrun sets; with one process every helper
is a no-op (no process group is made).
"""

from __future__ import annotations

import inspect
import os
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

__all__ = ["barrier", "broadcast_object", "dist_env", "gather_objects", "init_process_group", "shutdown"]


def dist_env() -> tuple[int, int, int]:
    """``(rank, world size, local rank)`` of this process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", str(rank)))
    return rank, world, local


def init_process_group(device: torch.device, rank: int, world: int) -> bool:
    """Join the process group (NCCL on CUDA, gloo on the CPU) when ``world > 1``; True when this call (or an
    earlier one of this run) made it, so the caller destroys it at the end."""
    if world <= 1:
        return False

    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, rank=rank, world_size=world)
    return True


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def barrier(world: int) -> None:
    if world > 1:
        dist.barrier()


def gather_objects(obj: Any, world: int) -> list[Any]:
    """Every rank's ``obj``, in rank order."""
    if world <= 1:
        return [obj]

    out: list[Any] = [None] * world
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, world: int, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` on every rank."""
    if world <= 1:
        return obj

    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def wrap_ddp(module: torch.nn.Module, device_ids: list[int] | None) -> torch.nn.Module:
    """``DistributedDataParallel`` without per-forward buffer broadcasts. Newer PyTorch spells that
    ``forward_sync_buffers=False`` and warns (on every rank) about ``broadcast_buffers``; both keep the
    initial sync, which is harmless here: every rank builds the generator from the same seed."""

    if "forward_sync_buffers" in inspect.signature(DDP.__init__).parameters:
        return DDP(module, device_ids=device_ids, forward_sync_buffers=False)
    return DDP(module, device_ids=device_ids, broadcast_buffers=False)
