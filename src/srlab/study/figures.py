"""Stage 5, Figures: per-role panels with zoomed insets (made from the images the evaluation kept as it
scored them, not from a second evaluation), training curves and per-image PSNR distributions."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import numpy as np

from srlab.eval.protocols import get_protocol
from srlab.report.figures import Tile, choose_inset, save_distribution, save_panel, save_training_curves
from srlab.study.common import rgb8
from srlab.study.evaluation import channel, interpolations, model_order, short_title, weights_name
from srlab.study.records import Figures, Study


def make_figures(study: Study) -> Figures:
    """The figures the spec asks for (``figures.panels``, ``curves``, ``distributions``)."""
    t0 = time.time()
    want = study.spec.figures
    panels = make_panels(study) if want.panels else {}
    figures = (make_curves(study) if want.curves else []) + (
        make_distributions(study) if want.distributions else []
    )
    return Figures(panels=panels, figures=tuple(figures), seconds=time.time() - t0)


def _display(a):
    """An SR/LR float array on 0-255 as the 8-bit image a viewer shows (clipped, rounded half up)."""

    return rgb8(np.floor(np.clip(a, 0, 255) + 0.5).astype(np.uint8))


def make_panels(study: Study) -> dict[str, dict]:
    """Per role and protocol: the kept image through every model, LR and HR beside them, one inset box."""

    assert study.scores is not None
    setup = study.setup
    scale = setup.scale
    panels: dict[str, dict] = {}
    for role in study.inputs.roles:
        for proto in setup.protocols:
            kept = study.scores.protocols[proto].kept.get(role)
            if kept is None:
                continue
            # the study's figures show bicubic; the study protocol's own interpolation is bilinear
            interps = [i for i in interpolations(study) if proto == "study" or i != "bilinear"]
            labels = interps + model_order(study, proto)
            name = Path(kept.path).name
            stem = Path(kept.path).stem
            dataset = study.inputs.roles[role]["dataset"]
            by_model = {
                r["model"]: r
                for r in study.rows(proto)
                if r["dataset"] == dataset and r["image"] == stem and r["model"] in labels
            }
            if not by_model:
                continue
            ch = channel(proto)
            hr = rgb8(kept.hr)
            lr = _display(kept.lr)
            tiles = [Tile(f"LR ({lr.shape[1]}x{lr.shape[0]})", lr, "input, shown enlarged")]
            for lb in labels:
                r = by_model.get(lb)
                if r is None or lb not in kept.sr:
                    continue
                tiles.append(
                    Tile(
                        short_title(study, lb),
                        _display(kept.sr[lb]),
                        f"PSNR {r[f'psnr_{ch}']:.2f} dB · SSIM {r[f'ssim_{ch}']:.4f}",
                    )
                )
            tiles.append(Tile(f"HR ({hr.shape[1]}x{hr.shape[0]})", hr, "ground truth"))
            box = choose_inset(hr)
            path = setup.out / "figures" / f"panel_{role}_{proto}.png"
            save_panel(
                path,
                tiles,
                box,
                title=f"{study.spec.roles[role].title} — {name} — x{scale}, {proto} protocol "
                f"({get_protocol(proto).summary}); metrics on {ch.upper()}",
                footnote=_panel_footnote(study),
            )
            panels[f"{role}/{proto}"] = {"path": str(path), "image": name, "box": box}
    return panels


def _panel_footnote(study: Study) -> str:
    refs = study.trained.references.values()
    return " ".join(f"Pretrained: {weights_name(r)}, {r['how']}." for r in refs if r.get("how"))


def make_curves(study: Study) -> list[dict]:
    """Per protocol: the training losses and validation PSNR of the runs trained on its degradation."""

    out: list[dict] = []
    for proto in study.setup.protocols:
        runs: dict[str, dict[str, tuple[list[float], list[float]]]] = {}
        for r in study.trained.runs:
            if r["protocol"] != proto and r.get("per_protocol", True):
                continue
            path = Path(r["dir"]) / "scalars.csv"
            if not path.is_file():
                continue
            series: dict[str, tuple[list[float], list[float]]] = {}
            offsets: dict[str, int] = {}
            rows = list(csv.DictReader(path.open(encoding="utf-8")))
            # stages in order; later stages continue the x axis of earlier ones
            order: list[str] = []
            for row in rows:
                if row["stage"] not in order:
                    order.append(row["stage"])
            acc = 0
            for st in order:
                offsets[st] = acc
                acc += max((int(x["iteration"]) for x in rows if x["stage"] == st), default=0)
            for row in rows:
                tag = row["tag"]
                if not (tag.startswith("l_") or tag == "val_psnr") or tag.endswith("total"):
                    continue
                name = f"{row['stage']} {tag}" if len(order) > 1 else tag
                xs, ys = series.setdefault(name, ([], []))
                try:
                    ys.append(float(row["value"]))
                except ValueError:
                    continue
                xs.append(int(row["iteration"]) + offsets[row["stage"]])
            runs[r["key"].replace("_trained-" + r["protocol"], "")] = series
        if not runs:
            continue
        path = study.setup.out / "figures" / f"curves_{proto}.png"
        save_training_curves(
            path,
            runs,
            title=f"Training on the {proto} protocol's degradation; validation under the {proto} protocol",
        )
        out.append({"kind": "curves", "protocol": proto, "path": str(path)})
    return out


def make_distributions(study: Study) -> list[dict]:
    """Per protocol and role: the per-image PSNR of every model (from the evaluation's rows)."""

    assert study.scores is not None
    out: list[dict] = []
    for proto in study.setup.protocols:
        rows = study.rows(proto)
        ch = channel(proto)
        labels = interpolations(study) + model_order(study, proto)
        for role, info in study.inputs.roles.items():
            data = {}
            for lb in labels:
                vals = [r[f"psnr_{ch}"] for r in rows if r["model"] == lb and r["dataset"] == info["dataset"]]
                if vals:
                    data[short_title(study, lb)] = vals
            path = study.setup.out / "figures" / f"psnr_distribution_{role}_{proto}.png"
            save_distribution(
                path,
                data,
                title=f"Per-image PSNR ({ch.upper()}), {study.spec.roles[role].title} ({info['n']} images), "
                f"{proto} protocol; the number is the mean",
                ylabel=f"PSNR {ch.upper()} (dB)",
            )
            out.append({"kind": "distribution", "protocol": proto, "role": role, "path": str(path)})
    return out
