"""Stage 4, Scores: ``srlab eval`` (:func:`srlab.eval.loop.evaluate`) on every model under each protocol,
keeping the panel images as they were scored; the commands that re-make its numbers, and the table order
and short titles of the models."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from srlab.errors import DataError
from srlab.eval.loop import evaluate
from srlab.eval.protocols import get_protocol
from srlab.eval.results import write_results
from srlab.imaging.files import list_images
from srlab.study.common import adapt_threads, read_rgb, rel, shell
from srlab.study.records import KeptImage, ProtocolScores, Scores, Setup, Study
from srlab.weights.zoo import ZOO


def model_order(study: Study, protocol: str | None = None) -> list[str]:
    """Labels of the evaluated model files in the spec's row order; with a protocol, a model trained once
    per protocol appears only under its own."""
    out = []
    for row in study.spec.row_order():
        for label, m in study.models.items():
            if m["row"] != row:
                continue
            if protocol and m.get("per_protocol") and m["protocol"] != protocol:
                continue
            out.append(label)
    return out


def interpolations(study: Study) -> list[str]:
    return [m.interpolation for m in study.spec.models.values() if m.interpolation]


def eval_specs(study: Study, protocol: str | None = None) -> list[str]:
    """What ``srlab eval`` is given: the interpolation rows by name, every other model by its file."""
    return interpolations(study) + [study.models[lb]["path"] for lb in model_order(study, protocol)]


def _eval_args(study: Study) -> tuple[list[str], dict[str, str]]:
    roles = study.inputs.roles.values()
    return [r["dataset"] for r in roles], {r["dataset"]: r["path"] for r in roles}


def eval_command(study: Study, protocol: str, models: list[str]) -> str:
    """The ``srlab eval`` command that re-makes these numbers (paths as typed from the current directory)."""
    setup = study.setup
    ds, sp = _eval_args(study)
    parts = [
        "srlab eval",
        "--models " + ",".join(shell(rel(m)) if m not in ("bicubic", "bilinear") else m for m in models),
        "--datasets " + ",".join(ds),
        f"--scale {setup.scale}",
        f"--protocol {protocol}",
        "--hr-crop 0",
    ]
    for name in ds:
        parts.append(f"--set-path {shell(name + '=' + rel(sp[name]))}")
    if setup.data_root is not None:
        parts.append(f"--data-root {shell(rel(setup.data_root))}")
    parts.append(f"--out {shell(rel(setup.out / 'check' / protocol))}")
    return " \\\n    ".join(parts)


def panel_images(study: Study) -> dict[str, Path]:
    """Per role, the image its panels show: the one with the most detail among the first 24 (differences
    between models show there)."""

    out: dict[str, Path] = {}
    for role, info in study.inputs.roles.items():
        files = list_images(Path(info["path"]), recursive=role == "faces")
        if not files:
            continue
        best, best_e = files[0], -1.0
        for f in files[:24]:
            a = read_rgb(f).astype(np.float64).mean(axis=2)
            e = float(np.abs(np.diff(a, axis=0)).mean() + np.abs(np.diff(a, axis=1)).mean())
            if e > best_e:
                best, best_e = f, e
        out[role] = best
    return out


def score(study: Study) -> Scores:
    """Every model on every role under each protocol; per-image rows written to ``OUT/eval/<protocol>/``."""

    setup: Setup = study.setup
    datasets, set_paths = _eval_args(study)
    if not datasets:
        raise DataError("no test set found for any role; see the report's data section")
    specs = eval_specs(study)
    panels = panel_images(study) if study.spec.figures.panels else {}
    out: dict[str, ProtocolScores] = {}
    threads: list[dict] = []
    for proto in setup.protocols:
        chosen = adapt_threads(setup.device, setup.base_threads, f"eval-{proto}", setup.say)
        if chosen:
            threads.append(chosen)
        t0 = time.time()
        setup.say(f"[eval] {proto} protocol: {len(specs)} models x {', '.join(datasets)}")
        res = evaluate(
            specs,
            datasets,
            [setup.scale],
            protocol=proto,
            data_root=setup.data_root,
            set_paths=set_paths,
            device=setup.device if setup.device != "auto" else None,
            hr_crop=0,
            progress=setup.progress,
            log=lambda m: None,
            keep=list(panels.values()),
            command=eval_command(study, proto, specs).replace(" \\\n    ", " "),
        )
        header = res.header
        files = write_results(
            res.rows, header, setup.out / "eval" / proto, title=f"srlab reproduce: {proto} protocol"
        )
        kept = {}
        for role, path in panels.items():
            k = res.kept.get((str(path.resolve()), setup.scale))
            if k is not None:
                kept[role] = KeptImage(str(path), k["hr"], k["lr"], k["sr"])
        out[proto] = ProtocolScores(
            protocol=proto,
            rows=res.rows,
            header=header,
            files={k: str(v) for k, v in files.items()},
            messages=res.messages,
            kept=kept,
            seconds=time.time() - t0,
        )
    return Scores(out, threads=tuple(threads))


def mean(rows: list[dict], model: str, dataset: str, key: str) -> float | None:
    vals = [r[key] for r in rows if r["model"] == model and r["dataset"] == dataset and key in r]
    if not vals:
        return None
    return float(sum(vals) / len(vals))


def channel(protocol: str) -> str:
    """The metric channel a protocol's tables report (``y`` or ``rgb``)."""
    return get_protocol(protocol).metric_channel


def short_title(study: Study, label: str) -> str:
    """A model's name in figures and the cross-protocol table (the spec's title; a pretrained one with
    the weights it used)."""
    for m in study.spec.models.values():
        if m.interpolation == label:
            return m.title
    m = study.models[label]
    ref = study.trained.references.get(m["row"])
    if ref is not None:
        return f"Pretrained: {weights_name(ref)}"
    return study.spec.row_title(m["row"])


def weights_name(ref: dict) -> str:
    """The file a pretrained row used, as the row names it (the zoo entry's file name without suffix)."""

    if ref.get("file"):
        return Path(str(ref["file"])).stem
    name = str(ref.get("name", "?"))
    entry = ZOO.get(name)
    return Path(entry.filename).stem if entry else Path(name).stem if "." in name else name
