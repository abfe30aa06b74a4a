"""The training runs of a profile: recipes from ``configs/`` plus the profile's overrides for each protocol,
the run's identity (config hash) and the quick profile's interpolation initialisation."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from srlab.errors import ConfigError, SrlabError
from srlab.study.context import DEGRADATION_OF, INTERP_OF, PROTOCOLS, SCALE, Context, QuickSettings, RunSpec


def _protocol_overrides(protocol: str, family: str, paper_srcnn: bool = False) -> dict[str, Any]:
    o: dict[str, Any] = {
        "protocol": protocol,
        "val.protocol": protocol,
        "data.degradation": DEGRADATION_OF[protocol],
        "data.quantize_lr": protocol == "standard",
    }
    if family == "srcnn":
        o["model.hparams.upsampler"] = INTERP_OF[protocol]
        if paper_srcnn:
            o["data.pre_upsample"] = INTERP_OF[protocol]
    return o


def _scaled(n: int, factor: float) -> int:
    return max(1, int(round(n * factor)))


def plan_runs(ctx: Context) -> list[RunSpec]:
    """The training runs of the profile (both protocols)."""
    q, f, p = ctx.quick, ctx.factor, ctx.profile.name
    runs: list[RunSpec] = []
    # absolute paths: the trainer resolves relative ones against the data root
    train_path = str(Path(ctx.train_set["path"]).resolve())
    val = str(Path(ctx.val_set).resolve()) if ctx.val_set else None
    for proto in PROTOCOLS:
        if p == "quick":
            it_s = _scaled(q.srcnn_iters, f)
            o = _protocol_overrides(proto, "srcnn")
            o.update(
                {
                    "model.hparams.n1": q.srcnn_features[0],
                    "model.hparams.n2": q.srcnn_features[1],
                    "data.train": train_path,
                    "data.mode": "random",
                    "data.crop": q.patch,
                    "data.flip": True,
                    "data.rot90": True,
                    "data.small": "skip",
                    "stages.train.iterations": it_s,
                    "stages.train.batch_size": q.srcnn_batch,
                    "stages.train.optim.lr": q.srcnn_lr,
                    "runtime.amp": "off",
                }
            )
            o.update(_val_overrides(val, it_s, q))
            runs.append(
                RunSpec(
                    f"srcnn_trained-{proto}",
                    "srcnn",
                    proto,
                    "srcnn_x2_study",
                    o,
                    {"train": "srcnn"},
                    identity_init=True,
                    notes=[
                        "initialised near the identity (three delta filters pass the interpolated input through) "
                        "so that a few hundred iterations improve on interpolation; the study started from random"
                    ],
                )
            )
            it_p, it_g = _scaled(q.psnr_iters, f), _scaled(q.gan_iters, f)
            o = _protocol_overrides(proto, "esrgan")
            o.update(
                {
                    "model.hparams": {
                        "scale": SCALE,
                        "num_block": q.rrdb_blocks,
                        "num_feat": q.rrdb_features,
                        "num_grow_ch": q.rrdb_growth,
                    },
                    "data.train": train_path,
                    "data.mode": "random",
                    "data.crop": q.patch,
                    "data.flip": True,
                    "data.rot90": True,
                    "runtime.amp": "off",
                    "stages": {
                        "psnr": {
                            "kind": "psnr",
                            "iterations": it_p,
                            "batch_size": q.psnr_batch,
                            "optim": {"type": "adam", "lr": q.psnr_lr, "betas": [0.9, 0.99]},
                            "losses": {"pixel": "l1"},
                        },
                        "gan": {
                            "kind": "gan",
                            "init": "psnr",
                            "iterations": it_g,
                            "batch_size": q.gan_batch,
                            "optim": {"type": "adam", "lr": q.gan_lr, "betas": [0.9, 0.999]},
                            "optim_d": {"type": "adam", "lr": q.gan_lr, "betas": [0.9, 0.999]},
                            "losses": {
                                "pixel": "l1",
                                "pixel_weight": 1.0,
                                "perceptual": "vgg19",
                                "perceptual_weight": 1.0,
                                "perceptual_layers": {"pool3": 1.0},
                                "perceptual_normalize": False,
                                "perceptual_criterion": "l1",
                                "perceptual_weights": _perceptual_weights_choice(),
                                "gan": "ragan",
                                "gan_weight": 1e-3,
                            },
                            "discriminator": {
                                "name": "unet_discriminator",
                                "hparams": {"num_feat": q.d_features},
                            },
                        },
                    },
                }
            )
            o.update(_val_overrides(val, max(it_p, it_g), q))
            runs.append(
                RunSpec(
                    f"esrgan_trained-{proto}",
                    "esrgan",
                    proto,
                    "esrgan_x2_study",
                    o,
                    {"psnr": "esrgan_psnr", "gan": "esrgan_gan"},
                    identity_init=True,
                    notes=[
                        "initialised as a bilinear interpolator (RGB carried in three channels, trunk "
                        "contribution scaled by 0.01) so that a few hundred iterations improve on "
                        "interpolation; the study started from random",
                        f"RRDBNet {q.rrdb_blocks} blocks, {q.rrdb_features} features (the study: 16 blocks, 64); "
                        f"PSNR stage {it_p} iterations (L1), then GAN stage {it_g} iterations initialised from it "
                        "(the study trained its GAN from scratch); a U-Net discriminator because the VGG-style "
                        f"one needs 128x128 inputs and the quick patches are {q.patch}x{q.patch}",
                    ],
                )
            )
        elif p == "study":
            base_s = {"data.train": train_path}
            o = {**_protocol_overrides(proto, "srcnn"), **base_s, **_scale_iters("srcnn_x2_study", f)}
            o.update(_study_val(val, proto))
            runs.append(
                RunSpec(f"srcnn_trained-{proto}", "srcnn", proto, "srcnn_x2_study", o, {"train": "srcnn"})
            )
            o = {**_protocol_overrides(proto, "esrgan"), **base_s, **_scale_iters("esrgan_x2_study", f)}
            o.update(_perceptual_override("gan"))
            o.update(_study_val(val, proto))
            runs.append(
                RunSpec(
                    f"esrgan-gan_trained-{proto}",
                    "esrgan",
                    proto,
                    "esrgan_x2_study",
                    o,
                    {"gan": "esrgan_gan"},
                    notes=["the study's recipe: GAN stage only, from scratch"],
                )
            )
            o = {**_protocol_overrides(proto, "esrgan"), **base_s}
            raw = _raw_recipe("esrgan_x2_study")
            gan = raw["stages"]["gan"]
            o["stages"] = {
                "psnr": {
                    "kind": "psnr",
                    "iterations": _scaled(int(gan["iterations"]), f),
                    "batch_size": gan.get("batch_size", 16),
                    "optim": gan.get("optim", {}),
                    "losses": {"pixel": "l1"},
                }
            }
            o.update(_study_val(val, proto))
            runs.append(
                RunSpec(
                    f"esrgan-psnr_trained-{proto}",
                    "esrgan",
                    proto,
                    "esrgan_x2_study",
                    o,
                    {"psnr": "esrgan_psnr"},
                    notes=[
                        "PSNR-oriented RRDBNet: the study's generator and data with L1 only (the study had no such stage)"
                    ],
                )
            )
        else:  # paper
            o = {
                **_protocol_overrides(proto, "srcnn", paper_srcnn=True),
                "data.train": train_path,
                **_scale_iters("srcnn_x2_paper", f),
            }
            o.update(_study_val(val, proto))
            runs.append(
                RunSpec(f"srcnn_trained-{proto}", "srcnn", proto, "srcnn_x2_paper", o, {"train": "srcnn"})
            )
            o = {
                **_protocol_overrides(proto, "esrgan"),
                "scale": SCALE,
                "model.hparams.scale": SCALE,
                "data.train": str(Path(ctx.train_set.get("esrgan", {}).get("path", train_path)).resolve()),
                **_scale_iters("esrgan_x4_paper", f),
                **_perceptual_override("gan"),
            }
            o.update(_study_val(val, proto))
            runs.append(
                RunSpec(
                    f"esrgan_trained-{proto}",
                    "esrgan",
                    proto,
                    "esrgan_x4_paper",
                    o,
                    {"psnr": "esrgan_psnr", "gan": "esrgan_gan"},
                    notes=["Wang et al.'s two stages at x2 (the paper's recipe is x4)"],
                )
            )
    return runs


def _perceptual_override(stage: str) -> dict[str, Any]:
    """Random VGG19 for the recipes' perceptual loss when ImageNet VGG19 is not cached (the report says so)."""
    w = _perceptual_weights_choice()
    return {f"stages.{stage}.losses.perceptual_weights": w} if w else {}


def _perceptual_weights_choice() -> str | None:
    """None (the zoo's ImageNet VGG19) when it is in the weight cache, else an explicit 'random'."""
    from srlab.weights.zoo import local_path

    try:
        if local_path("vgg19").is_file():
            return None
    except (SrlabError, OSError):  # no usable weight cache: random, said loudly in the report
        pass
    return "random"


def _val_overrides(val: str | None, iters: int, q: QuickSettings) -> dict[str, Any]:
    if not val:
        return {"val.set": None}
    every = q.val_every or max(1, iters // 4)
    return {
        "val.set": val,
        "val.every": every,
        "val.max_images": 4,
        "val.samples": 0,
        "checkpoint.every": max(1, iters // 2),
        "checkpoint.keep": 1,
        "log.every": max(1, min(10, iters // 20)),
        "log.tensorboard": False,
    }


def _study_val(val: str | None, proto: str) -> dict[str, Any]:
    return {"val.set": val} if val else {"val.set": None}


def _raw_recipe(name: str) -> dict:
    from srlab.train.config import find_config, load_config

    _cfg, raw = load_config(find_config(name))
    return raw


def _scale_iters(recipe: str, factor: float) -> dict[str, Any]:
    if factor == 1.0:
        return {}
    raw = _raw_recipe(recipe)
    o: dict[str, Any] = {}
    for name, st in raw.get("stages", {}).items():
        o[f"stages.{name}.iterations"] = _scaled(int(st.get("iterations", 1000)), factor)
        sched = st.get("schedule") or {}
        if sched.get("milestones"):
            o[f"stages.{name}.schedule.milestones"] = [_scaled(int(m), factor) for m in sched["milestones"]]
        if sched.get("step_size"):
            o[f"stages.{name}.schedule.step_size"] = _scaled(int(sched["step_size"]), factor)
    for key in ("val", "checkpoint"):
        every = (raw.get(key) or {}).get("every")
        if every:
            o[f"{key}.every"] = _scaled(int(every), factor)
    return o


def build_config(spec: RunSpec, progress: bool):
    from srlab.train.config import find_config, load_config

    items = [f"{k}={json.dumps(v)}" for k, v in spec.overrides.items()]
    items.append(f"log.progress={json.dumps(bool(progress))}")
    items.append(f"name={json.dumps(spec.key)}")
    cfg, raw = load_config(find_config(spec.recipe), items)
    return cfg, raw


def config_hash(raw: dict, out: Path | None = None) -> str:
    """Identity of a training run: the recipe without logging/runtime keys; paths inside the report folder
    count relative to it, so a moved or copied report folder still resumes."""
    keep = {
        k: v
        for k, v in raw.items()
        if k not in ("quick", "description", "notes", "log", "checkpoint", "runtime")
    }
    text = json.dumps(keep, sort_keys=True, default=str)
    if out is not None:
        text = text.replace(str(Path(out).resolve()), "<OUT>")
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def identity_init(cfg, path: Path) -> Path:
    """Quick-profile initial weights that make the untrained network an interpolator (see the report).

    SRCNN: channels 0-2 of each layer pass the interpolated input straight through (delta filters), the
    other channels start small and random. RRDBNet: ``conv_first``/``conv_hr``/``conv_last`` carry RGB in
    channels 0-2, the trunk's contribution starts small, and each ``conv_upN`` applies the [1 2 1]/4 tent to
    the nearest-upsampled features -- exactly bilinear interpolation away from the border.
    """
    import torch

    from srlab.models.registry import build_model
    from srlab.weights.io import save_model

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        m, _ = build_model(cfg.model.name, **cfg.model.hparams)
    c = m.in_channels

    def delta(conv, scale_rest: float = 0.1, value: float = 1.0, kernel=None) -> None:
        # output channels 0..c-1 read only their own input channel; the others start small
        conv.weight.mul_(scale_rest)
        k = conv.weight.shape[-1]
        conv.weight[:c] = 0
        for i in range(c):
            if kernel is None:
                conv.weight[i, i, k // 2, k // 2] = value
            else:
                conv.weight[i, i] = kernel
        if conv.bias is not None:
            conv.bias[:c] = 0

    with torch.no_grad():
        if m.arch == "srcnn":
            for conv in (m.conv1, m.conv2):
                conv.weight.mul_(0.1)
                k = conv.weight.shape[-1]
                conv.weight[:c] = 0
                for i in range(c):
                    conv.weight[i, i, k // 2, k // 2] = 1.0
                conv.bias.zero_()
            k = m.conv3.weight.shape[-1]
            for i in range(c):
                m.conv3.weight[i, :c] = 0
                m.conv3.weight[i, i, k // 2, k // 2] = 1.0
            m.conv3.bias.zero_()
        elif m.arch == "rrdbnet" and not m.pixel_unshuffle:
            tent = torch.tensor([1.0, 2.0, 1.0])
            tent = torch.outer(tent, tent) / 16.0
            delta(m.conv_first)
            m.conv_body.weight.mul_(0.01)
            m.conv_body.bias.zero_()
            for i in range(len(m.up_factors)):
                delta(getattr(m, f"conv_up{i + 1}"), kernel=tent)
            delta(m.conv_hr)
            m.conv_last.weight.zero_()
            m.conv_last.bias.zero_()
            for i in range(c):
                m.conv_last.weight[i, i, 1, 1] = 1.0
        else:  # pragma: no cover - the quick profile builds only these two
            raise ConfigError(f"no interpolation initialisation for {m.arch}")
    save_model(
        path, m, metadata={"note": f"interpolation-initialised {m.arch} (srlab reproduce, quick profile)"}
    )
    return path
