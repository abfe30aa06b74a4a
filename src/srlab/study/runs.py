"""Stage 3, Trained (its first half): the plan's training runs, reused when finished, resumed when
interrupted; each exported stage copied to ``OUT/models/`` as the checkpoint of its table row. The pretrained
references are the second half (:mod:`srlab.study.references`)."""

from __future__ import annotations

import math
import shutil
import time
from pathlib import Path

from safetensors import safe_open

from srlab.atomic import write_json
from srlab.serialize import loads
from srlab.study.common import adapt_threads, rel
from srlab.study.plan import build_config, config_hash, identity_init
from srlab.study.preview import loss_text
from srlab.study.records import Plan, Setup, Trained
from srlab.train import train
from srlab.weights.io import read_metadata


def run_training(setup: Setup, plan: Plan) -> Trained:
    """Train (or reuse) every run of the plan; the record lists the runs and their exported checkpoints."""

    t_all = time.time()
    models_dir = setup.out / "models"
    models_dir.mkdir(parents=True, exist_ok=True)
    entries: list[dict] = []
    models: dict[str, dict] = {}
    perceptual: set[str] = set()
    threads: list[dict] = []
    for spec in plan.runs:
        cfg, raw = build_config(spec, setup.progress)
        h = config_hash(raw, setup.out)
        run_dir = setup.out / "runs" / f"{spec.key}-{h}"
        final = run_dir / "model.safetensors"
        t0 = time.time()
        status = "reused"
        if not final.is_file():
            chosen = adapt_threads(setup.device, setup.base_threads, spec.key, setup.say)
            if chosen:
                threads.append(chosen)
            status = "resumed" if (run_dir / "checkpoints").is_dir() else "trained"
            if spec.identity_init:
                init = identity_init(cfg, run_dir / "init_interpolator.safetensors")
                first = cfg.stage_names()[0]
                cfg.stages[first].init = str(init)
            setup.say(f"[train] {spec.key}: {status} in {rel(run_dir)}")
            log_lines: list[str] = []

            def echo(msg: str, _lines=log_lines) -> None:
                _lines.append(msg)
                if msg.startswith(("val ", "stage ", "done", "resumed", "note", "data: skipped")):
                    setup.say(f"    {msg}")

            train(cfg, run_dir, data_root=setup.data_root, resume="auto", device=setup.device, echo=echo)
        else:
            setup.say(f"[train] {spec.key}: reusing {rel(final)}")
        wall = time.time() - t0
        prev = _run_wall(run_dir)
        if status != "reused":
            write_json(run_dir / "reproduce_wall.json", {"wall_s": wall + prev}, indent=None)
            total_wall = wall + prev
        else:
            total_wall = prev
        entry = {
            "key": spec.key,
            "recipe": spec.recipe,
            "protocol": spec.protocol,
            "family": spec.family,
            "model": spec.model,
            "train_set": spec.train_set,
            "per_protocol": spec.per_protocol,
            "dir": str(run_dir),
            "status": status,
            "wall_s": total_wall,
            "this_run_s": wall,
            "overrides": spec.overrides,
            "notes": list(spec.notes),
            "stages": {},
        }
        for stage, row in spec.outputs.items():
            src = run_dir / f"{stage}.safetensors"
            label = spec.label(row)
            dst = models_dir / f"{label}.safetensors"
            shutil.copyfile(src, dst)
            meta = read_metadata(dst) or {}
            st_cfg = cfg.stages[stage]
            pw = (meta.get("perceptual_weights") or {}).get(stage)
            if pw and pw != "none":
                perceptual.add(pw)
            entry["stages"][stage] = {
                "row": row,
                "label": label,
                "iterations": st_cfg.iterations,
                "batch_size": st_cfg.batch_size,
                "lr": st_cfg.optim.lr,
                "losses": loss_text(st_cfg),
                "perceptual_weights": pw,
                "best_val": meta.get("best_val"),
            }
            models[label] = {
                "path": str(dst),
                "row": row,
                "protocol": spec.protocol,
                "per_protocol": spec.per_protocol,
                "perceptual_weights": _vgg(pw) if st_cfg.losses.perceptual != "none" else None,
                "run": spec.key,
                "stage": stage,
                "arch": cfg.model.name,
                "hparams": dict(cfg.model.hparams),
                "params": _param_count(dst),
            }
        entries.append(entry)
    return Trained(
        runs=tuple(entries),
        models=models,
        perceptual=frozenset(perceptual),
        threads=tuple(threads),
        timings={"training_s": time.time() - t_all},
    )


def _vgg(pw: str | None) -> str:
    """The VGG19 weights a stage's perceptual loss used, as its row names them."""
    if pw == "random":
        return "random"
    if not pw or str(pw).startswith("imagenet") or pw == "vgg19":
        return "ImageNet"
    return Path(str(pw)).name


def _run_wall(run_dir: Path) -> float:
    p = run_dir / "reproduce_wall.json"
    try:
        return float(loads(p.read_text())["wall_s"])
    except (OSError, ValueError, KeyError):
        return 0.0


def _param_count(path: Path) -> int:
    n = 0
    with safe_open(str(path), framework="pt") as f:
        for k in f.keys():
            n += math.prod(f.get_slice(k).get_shape())
    return n
