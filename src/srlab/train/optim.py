"""Optimisers and learning-rate schedules of a training stage.

A schedule is a pure function of the iteration (:func:`lr_at`), so resuming needs only the iteration.
:func:`build_optimizer` makes Adam/AdamW (fused on CUDA unless ``fused: false``) or SGD over named parameters,
with per-layer learning rates from ``param_lr`` (the SRCNN paper's smaller rate for the last layer).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from srlab.errors import ConfigError
from srlab.train.config import OptimConfig, ScheduleConfig

__all__ = ["build_optimizer", "lr_at"]


def lr_at(s: ScheduleConfig, base: float, it: int, total: int) -> float:
    """Learning rate of a group with base ``base`` for the step after ``it`` completed iterations."""
    if s.type == "constant":
        lr = base
    elif s.type == "multistep":
        lr = base * s.gamma ** sum(1 for m in s.milestones if it >= m)
    elif s.type == "step":
        lr = base * (s.gamma ** (it // s.step_size) if s.step_size > 0 else 1.0)
    elif s.type == "cosine":
        t = min(max(it - s.warmup, 0), max(total - s.warmup, 1)) / max(total - s.warmup, 1)
        lr = s.eta_min + (base - s.eta_min) * 0.5 * (1.0 + math.cos(math.pi * t))
    else:  # pragma: no cover - validated by the schema
        raise ConfigError(f"unknown schedule {s.type!r}")
    if s.warmup > 0 and it < s.warmup:
        lr *= (it + 1) / s.warmup
    return lr


def build_optimizer(params: list[tuple[str, nn.Parameter]], cfg: OptimConfig, *, cuda: bool, path: str):
    """Optimiser over named parameters; ``param_lr`` maps name prefixes to their own learning rate."""
    groups: dict[float, list[nn.Parameter]] = {}
    order: list[float] = []
    prefixes = sorted(cfg.param_lr, key=len, reverse=True)
    used = set()
    for name, p in params:
        if not p.requires_grad:
            continue
        lr = cfg.lr
        for pre in prefixes:
            if name == pre or name.startswith(pre + "."):
                lr = cfg.param_lr[pre]
                used.add(pre)
                break
        if lr not in groups:
            groups[lr] = []
            order.append(lr)
        groups[lr].append(p)
    unused = [p for p in cfg.param_lr if p not in used]
    if unused:
        names = sorted({n.rsplit(".", 1)[0] for n, _ in params})
        raise ConfigError(f"{path}.param_lr: {unused[0]!r} matches no parameter (layers: {', '.join(names)})")
    param_groups = [{"params": groups[lr], "lr": lr, "base_lr": lr} for lr in order]
    fused = cfg.fused if cfg.fused is not None else cuda
    if cfg.type in ("adam", "adamw"):
        cls = torch.optim.Adam if cfg.type == "adam" else torch.optim.AdamW
        kw = {"betas": tuple(cfg.betas), "eps": cfg.eps, "weight_decay": cfg.weight_decay}
        if fused and cuda:
            kw["fused"] = True
        return cls(param_groups, **kw)
    if cfg.type == "sgd":
        return torch.optim.SGD(param_groups, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    raise ConfigError(f"{path}.type: unknown optimiser {cfg.type!r}")  # pragma: no cover
