"""Helpers the training tests share: a config from a base dict plus dotted overrides, a quiet run, and
bitwise comparison of exported weights."""

from __future__ import annotations

import torch
from safetensors.torch import load_file

from srlab.train.config import apply_overrides, config_from_dict
from srlab.train.trainer import Trainer


def make_cfg(base: dict, **over):
    """``config_from_dict`` of ``base`` with ``key.path=value`` overrides applied."""
    return config_from_dict(apply_overrides(base, over))


def run_quiet(cfg, out, root, **kw):
    """Train ``cfg`` into ``out`` with no output; returns the TrainResult."""
    return Trainer(cfg, out_dir=out, data_root=root, echo=None, **kw).run()


def load_weights(path) -> dict[str, torch.Tensor]:
    return load_file(str(path))


def same_tensors(a: dict, b: dict) -> bool:
    """The same keys and bitwise-equal tensors."""
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
