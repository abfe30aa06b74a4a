"""Stage 2, Plan: the training runs of a spec -- recipes from ``configs/`` plus the spec's overrides for each
protocol, passed on as data (a dict for :func:`srlab.train.config.load_config`) -- what else they need (ImageNet
VGG19) and whether the study can run; the run's identity (config hash) and the interpolation initialisation
(``init: interpolator``)."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import torch

from srlab.errors import ConfigError, SrlabError
from srlab.eval.protocols import get_protocol
from srlab.models.registry import build_model
from srlab.serialize import dumps
from srlab.study.records import Inputs, Plan, Run, Setup
from srlab.train.config import find_config, has_quick, load_config
from srlab.weights.io import save_model
from srlab.weights.zoo import local_path, require

_AUTO = "auto"  # losses.perceptual_weights: ImageNet VGG19 when cached, else random


def _scaled(n: int, factor: float) -> int:
    return max(1, int(round(n * factor)))


def protocol_overrides(protocol: str) -> dict[str, Any]:
    """The keys a protocol's degradation sets in a training config (srlab.eval.protocols)."""
    p = get_protocol(protocol)
    return {
        "protocol": p.name,
        "val.protocol": p.name,
        "data.degradation": p.degradation,
        "data.quantize_lr": p.lr_rounding == "uint8",
    }


def _raw(recipe: str, overrides: dict[str, Any], where: str, quick: bool) -> dict:
    try:
        _cfg, raw = load_config(find_config(recipe), overrides, quick=quick)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return raw


def _train_path(inputs: Inputs, name: str) -> str:
    """Absolute path of a found training set (the trainer resolves relative ones against the data root);
    the set's name when it is missing (the plan lists it; nothing trains)."""
    ts = inputs.train_sets.get(name)
    return str(Path(ts["path"]).resolve()) if ts else name


def plan_study(setup: Setup, inputs: Inputs) -> Plan:
    """The runs, every missing input (the inputs' and ImageNet VGG19's) and what blocks the run."""
    t0 = time.time()
    runs = plan_runs(setup, inputs)
    missing = inputs.missing_inputs + tuple(vgg_missing(runs))
    blockers = tuple(blocking(inputs, missing))
    return Plan(runs, missing, blockers, can_run=not blockers, seconds=time.time() - t0)


def plan_runs(setup: Setup, inputs: Inputs) -> tuple[Run, ...]:
    """The training runs of the spec: per model, one run per protocol (or one), the recipe plus the spec's
    overrides, the protocol's degradation, the training set, ``--budget``'s scaling and validation."""
    spec, f = setup.spec, setup.factor
    val = str(Path(inputs.val_set).resolve()) if inputs.val_set else None
    runs: list[Run] = []
    keys = [k for k, m in spec.models.items() if m.train]
    for proto in spec.protocols:
        for key in keys:
            m = spec.models[key]
            t = m.train
            assert t is not None
            if not t.per_protocol and proto != spec.protocols[0]:
                continue
            run_proto = proto if t.per_protocol else t.protocol
            set_name = (t.data or spec.data.train or ["?"])[0]
            o: dict[str, Any] = dict(t.overrides)
            o.update(protocol_overrides(run_proto))
            o["data.train"] = _train_path(inputs, set_name)
            interp = get_protocol(run_proto).interpolation
            for k in t.interpolation_keys:
                o[k] = interp
            where = f"models.{key}.train ({t.recipe})"
            quick = setup.quick and has_quick(t.recipe)  # a recipe without one runs as written
            raw = _raw(t.recipe, o, where, quick)
            if int(raw.get("scale", spec.scale)) != spec.scale:
                o["scale"] = spec.scale
            hp = (raw.get("model") or {}).get("hparams") or {}
            if "scale" in hp and int(hp["scale"]) != spec.scale:
                o["model.hparams.scale"] = spec.scale
            o.update(_schedule(raw, f, t.val_points))
            o["val.set"] = val
            o.update(_perceptual(raw))
            for stage in t.rows:
                if stage not in raw.get("stages", {}):
                    raise ConfigError(
                        f"models.{key}.train.rows: {t.recipe} has no stage {stage!r} "
                        f"(stages: {', '.join(raw.get('stages', {}))})"
                    )
            _raw(t.recipe, o, where, quick)  # the final config validates
            runs.append(
                Run(
                    f"{key}_trained-{run_proto}",
                    key,
                    run_proto,
                    t.recipe,
                    o,
                    dict(t.rows),
                    identity_init=t.init == "interpolator",
                    notes=tuple(m.notes),
                    train_set=set_name,
                    family=str((raw.get("model") or {}).get("name", "")),
                    per_protocol=bool(t.per_protocol),
                    quick=quick,
                )
            )
    return tuple(runs)


def _schedule(raw: dict, factor: float, val_points: int) -> dict[str, Any]:
    """``--budget``'s scaling of every stage's length (and its schedule), then the validation spacing."""
    o: dict[str, Any] = {}
    longest = 1
    for name, st in (raw.get("stages") or {}).items():
        it = int(st.get("iterations", 1000))
        if factor != 1.0:
            it = _scaled(it, factor)
            o[f"stages.{name}.iterations"] = it
            sched = st.get("schedule") or {}
            if sched.get("milestones"):
                o[f"stages.{name}.schedule.milestones"] = [
                    _scaled(int(m), factor) for m in sched["milestones"]
                ]
            if sched.get("step_size"):
                o[f"stages.{name}.schedule.step_size"] = _scaled(int(sched["step_size"]), factor)
        longest = max(longest, it)
    if val_points:
        o["val.every"] = max(1, longest // val_points)
        o["checkpoint.every"] = max(1, longest // 2)
        o["log.every"] = max(1, min(10, longest // 20))
    elif factor != 1.0:
        for key in ("val", "checkpoint"):
            every = (raw.get(key) or {}).get("every")
            if every:
                o[f"{key}.every"] = _scaled(int(every), factor)
    return o


def _perceptual(raw: dict) -> dict[str, Any]:
    """VGG19 weights of every perceptual loss: ``auto`` becomes the zoo's ImageNet VGG19 (None) when it is
    in the weight cache, else an explicit 'random'; an unset one becomes 'random' only when it is not."""
    o: dict[str, Any] = {}
    for name, st in (raw.get("stages") or {}).items():
        losses = st.get("losses") or {}
        if losses.get("perceptual", "none") == "none":
            continue
        key = f"stages.{name}.losses.perceptual_weights"
        if losses.get("perceptual_weights") == _AUTO:
            o[key] = perceptual_weights_choice()
        elif "perceptual_weights" not in losses and perceptual_weights_choice():
            o[key] = "random"
    return o


def perceptual_weights_choice() -> str | None:
    """None (the zoo's ImageNet VGG19) when it is in the weight cache, else an explicit 'random'."""

    try:
        if local_path("vgg19").is_file():
            return None
    except (SrlabError, OSError):  # no usable weight cache: random, said loudly in the report
        pass
    return "random"


def build_config(run: Run, progress: bool):
    """(TrainConfig, raw mapping) of a run: its recipe with its overrides, the progress setting and its name."""

    overrides = {**run.overrides, "log.progress": bool(progress), "name": run.key}
    return load_config(find_config(run.recipe), overrides, quick=run.quick)


def vgg_missing(runs: tuple[Run, ...]) -> list[dict]:
    """ImageNet VGG19 for the perceptual losses: missing means random VGG19 (the rows say so)."""
    users = sorted(
        {
            r.model
            for r in runs
            for k, v in r.overrides.items()
            if k.endswith(".perceptual_weights") and v == "random"
        }
    )
    if not users or perceptual_weights_choice() != "random":
        return []
    try:
        require("vgg19", verify=False)
        where = ""
    except SrlabError as exc:
        where = str(exc)
    return [
        {
            "kind": "weights",
            "role": ", ".join(users),
            "name": "vgg19",
            "study_set": "",
            "why": "ImageNet VGG19 is not in the weight cache: the perceptual loss uses RANDOM VGG19 (the rows "
            "say so)",
            "where": {"vgg19": where or "`srlab weights fetch vgg19`"},
            "layout": "",
            "blocking": False,
        }
    ]


def blocking(inputs: Inputs, missing_inputs: tuple[dict, ...]) -> list[str]:
    """Why the study cannot run (empty: it can)."""
    out = [
        f"{'training set' if m.get('kind') == 'train' else m.get('kind', '')} {m['name']} is missing"
        for m in missing_inputs
        if m.get("blocking")
    ]
    if not inputs.roles:
        out.append("no test role was found")
    return out


def config_hash(raw: dict, out: Path | None = None) -> str:
    """Identity of a training run: the recipe without logging/runtime keys; paths inside the report folder
    count relative to it, so a moved or copied report folder still resumes."""
    keep = {
        k: v
        for k, v in raw.items()
        if k not in ("quick", "description", "notes", "log", "checkpoint", "runtime")
    }
    text = dumps(keep, indent=None, sort_keys=True, default=str)
    if out is not None:
        text = text.replace(str(Path(out).resolve()), "<OUT>")
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def identity_init(cfg, path: Path) -> Path:
    """Initial weights (a spec's ``init: interpolator``) that make the untrained network an interpolator (see the report).

    SRCNN: channels 0-2 of each layer pass the interpolated input straight through (delta filters), the
    other channels start small and random. RRDBNet: ``conv_first``/``conv_hr``/``conv_last`` carry RGB in
    channels 0-2, the trunk's contribution starts small, and each ``conv_upN`` applies the [1 2 1]/4 tent to
    the nearest-upsampled features -- exactly bilinear interpolation away from the border.
    """

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
        else:
            raise ConfigError(f"no interpolation initialisation for {m.arch}")
    save_model(path, m, metadata={"note": f"interpolation-initialised {m.arch} (srlab reproduce)"})
    return path
