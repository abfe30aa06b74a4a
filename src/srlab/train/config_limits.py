"""Value checks of a training config that pydantic's types cannot say: sizes that must be positive, a seed
every RNG accepts, learning rates that descend, a batch that fits in memory, and a generator that can run.

Each failure is one :class:`~srlab.errors.ConfigError` line naming the key, the value and what it must be,
raised when the config is loaded (:func:`check_values`), before anything is allocated.
"""

from __future__ import annotations

import warnings
from typing import Any

from srlab.errors import ConfigError, shown
from srlab.inference.limits import available_memory

__all__ = ["SEED_MAX", "batch_bytes", "check_batch_memory", "check_generator_runs", "check_values"]

SEED_MAX = 2**32 - 1  # numpy's seeding takes 0 .. 2**32 - 1 (torch and random take more)


def check_values(cfg: Any) -> None:
    """Refuse the values below (``cfg``: a validated :class:`srlab.train.config.TrainConfig`)."""
    if not 0 <= cfg.seed <= SEED_MAX:
        raise ConfigError(f"seed must be 0..{SEED_MAX} (every RNG is seeded from it), not {cfg.seed}")
    d = cfg.data
    if d.mode != "full" and d.crop < cfg.scale:
        raise ConfigError(
            f"data.crop is the HR crop size in pixels: it must be at least the scale ({cfg.scale}) so that the "
            f"LR crop has a pixel, not {d.crop}"
        )
    for key in ("stride", "max_images"):
        if getattr(d, key) < 0:
            raise ConfigError(
                f"data.{key} must be >= 0 (0 = {'crop' if key == 'stride' else 'all'}), not {getattr(d, key)}"
            )
    for name, st in cfg.stages.items():
        optims = [("optim", st.optim)] + ([("optim_d", st.optim_d)] if st.kind == "gan" else [])
        for key, o in optims:
            p = f"stages.{name}.{key}"
            if not o.lr > 0:
                raise ConfigError(
                    f"{p}.lr must be > 0, not {o.lr} (a negative rate trains by gradient ascent, 0 not at all)"
                )
            for prefix, lr in o.param_lr.items():
                if not lr > 0:
                    raise ConfigError(f"{p}.param_lr[{shown(prefix)}] must be > 0, not {lr}")
            if o.weight_decay < 0:
                raise ConfigError(f"{p}.weight_decay must be >= 0, not {o.weight_decay}")
        check_batch_memory(cfg, name, st.batch_size)
    check_generator_runs(cfg)


def batch_bytes(cfg: Any, batch_size: int) -> int:
    """Bytes one training batch's tensors take (float32 HR crops and their LR), before any network
    activation: the least a step needs."""
    c = 1 if cfg.data.color == "y" else 3
    crop = max(int(cfg.data.crop), 1)
    hr = c * crop * crop
    lr = hr // max(cfg.scale, 1) ** 2
    if cfg.data.pre_upsample:
        lr = hr
    return 4 * batch_size * (hr + lr)


def check_batch_memory(cfg: Any, stage: str, batch_size: int) -> None:
    """Refuse a batch whose tensors alone exceed the memory this machine has now."""
    need = batch_bytes(cfg, batch_size)
    have = available_memory()
    if have is not None and need > have:
        raise ConfigError(
            f"stages.{stage}.batch_size {batch_size:,} needs {need / 1e9:,.1f} GB for one batch of {cfg.data.crop}-"
            f"pixel crops alone (before the network's activations), more than the {have / 1e9:.1f} GB "
            "available; use a smaller batch_size or data.crop"
        )


def check_generator_runs(cfg: Any) -> None:
    """Build the generator on the meta device (shapes only: no storage) and refuse hyper-parameters the
    builder rejects or that give a layer with no weights (``n1: 0``: a convolution with no filters), in one
    line naming them, not a traceback at the first training step."""
    from srlab.models.registry import build_model

    hp = dict(cfg.model.hparams)
    try:
        with warnings.catch_warnings():  # initialisers' notes about empty tensors: the error below says it
            warnings.simplefilter("ignore")
            probe, _ = build_model(cfg.model.name, init_weights=False, device="meta", **hp)
    except (RuntimeError, ValueError, TypeError, IndexError, ZeroDivisionError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ConfigError(
            f"model {cfg.model.name!r} with model.hparams {shown(hp)} cannot be built: "
            f"{shown(first, quote=False)}; check those values"
        ) from None
    empty = next(((n, tuple(t.shape)) for n, t in probe.named_parameters() if t.numel() == 0), None)
    if empty is not None:
        raise ConfigError(
            f"model {cfg.model.name!r} with model.hparams {shown(hp)} cannot run: its layer {empty[0]} has "
            f"no weights (shape {empty[1]}); check those values (channel counts and sizes must be >= 1)"
        )
