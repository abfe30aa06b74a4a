"""The report's figures: per-role panels with zoomed insets, training curves and per-image PSNR
distributions."""

from __future__ import annotations

import shutil
from pathlib import Path

from srlab.study.context import DEGRADATION_TEXT, METRIC_CHANNEL, Context, fresh_dir, read_rgb
from srlab.study.evaluation import interpolations, model_order, short_title


def run_panels(ctx: Context, progress: bool) -> None:
    """Per role and protocol: one image through every model via srlab.eval.loop (save_dir), then a panel."""
    import numpy as np
    import torch

    from srlab.eval.loop import evaluate
    from srlab.imaging.files import list_images
    from srlab.imaging.resize import imresize, quantize, study_resize
    from srlab.report.figures import Tile, choose_inset, save_panel

    figdir = ctx.out / "figures"
    for role, info in ctx.roles.items():
        files = list_images(Path(info["path"]), recursive=role == "faces")
        if not files:
            continue
        # the image with the most detail among the first 24 (differences between models show there)
        best, best_e = files[0], -1.0
        for f in files[:24]:
            a = read_rgb(f).astype(np.float64).mean(axis=2)
            e = float(np.abs(np.diff(a, axis=0)).mean() + np.abs(np.diff(a, axis=1)).mean())
            if e > best_e:
                best, best_e = f, e
        pdir = fresh_dir(ctx.out / "data" / f"panel-{role}")
        shutil.copyfile(best, pdir / best.name)
        scale = ctx.scale
        for proto in ctx.protocols:
            # the study's figures show bicubic; the study protocol's own interpolation is bilinear
            interps = [i for i in interpolations(ctx) if proto == "study" or i != "bilinear"]
            labels = interps + model_order(ctx, proto)
            specs = interps + [ctx.models[lb]["path"] for lb in labels[len(interps) :]]
            save = ctx.out / "eval" / proto / "panel-images"
            res = evaluate(
                specs,
                [f"panel-{role}"],
                [scale],
                protocol=proto,
                data_root=ctx.data_root,
                set_paths={f"panel-{role}": pdir},
                device=ctx.device if ctx.device != "auto" else None,
                hr_crop=0,
                save_dir=save,
                progress=False,
                log=lambda m: None,
            )
            if not res.rows:
                continue
            ch = METRIC_CHANNEL[proto]
            hr = read_rgb(pdir / best.name)
            hr = hr[: hr.shape[0] - hr.shape[0] % scale, : hr.shape[1] - hr.shape[1] % scale]
            t = torch.from_numpy(hr).permute(2, 0, 1)[None].double()
            if proto == "standard":
                lr = quantize(imresize(t, 1.0 / scale))
            else:
                lr = (
                    study_resize((t / 255.0).float(), (t.shape[-2] // scale, t.shape[-1] // scale)).double()
                    * 255
                )
            lr_np = lr[0].permute(1, 2, 0).clamp(0, 255).round().to(torch.uint8).numpy()
            tiles = [Tile(f"LR ({lr_np.shape[1]}x{lr_np.shape[0]})", lr_np, "input, shown enlarged")]
            by_model = {r["model"]: r for r in res.rows}
            for lb in labels:
                r = by_model.get(lb)
                img_path = save / lb / f"panel-{role}" / f"x{scale}" / f"{best.stem}.png"
                if r is None or not img_path.is_file():
                    continue
                tiles.append(
                    Tile(
                        short_title(ctx, lb),
                        read_rgb(img_path),
                        f"PSNR {r[f'psnr_{ch}']:.2f} dB · SSIM {r[f'ssim_{ch}']:.4f}",
                    )
                )
            tiles.append(Tile(f"HR ({hr.shape[1]}x{hr.shape[0]})", hr, "ground truth"))
            box = choose_inset(hr)
            path = figdir / f"panel_{role}_{proto}.png"
            save_panel(
                path,
                tiles,
                box,
                title=f"{ctx.spec.roles[role].title} — {best.name} — x{scale}, {proto} protocol "
                f"({DEGRADATION_TEXT[proto]}); metrics on {ch.upper()}",
                footnote=_panel_footnote(ctx),
            )
            ctx.panels[f"{role}/{proto}"] = {
                "path": str(path),
                "image": best.name,
                "rows": res.rows,
                "box": box,
            }


def _panel_footnote(ctx: Context) -> str:
    from srlab.study.evaluation import weights_name

    return " ".join(
        f"Pretrained: {weights_name(r)}, {r['how']}." for r in ctx.references.values() if r.get("how")
    )


def run_curves(ctx: Context) -> None:
    import csv

    from srlab.report.figures import save_training_curves

    for proto in ctx.protocols:
        runs: dict[str, dict[str, tuple[list[float], list[float]]]] = {}
        for r in ctx.runs:
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
        path = ctx.out / "figures" / f"curves_{proto}.png"
        save_training_curves(
            path,
            runs,
            title=f"Training on the {proto} degradation ({DEGRADATION_TEXT[proto]}); validation under the {proto} protocol",
        )
        ctx.figures.append({"kind": "curves", "protocol": proto, "path": str(path)})


def run_distributions(ctx: Context) -> None:
    from srlab.report.figures import save_distribution

    for proto in ctx.protocols:
        res = ctx.results.get(proto)
        if not res:
            continue
        ch = METRIC_CHANNEL[proto]
        labels = interpolations(ctx) + model_order(ctx, proto)
        for role, info in ctx.roles.items():
            data = {}
            for lb in labels:
                vals = [
                    r[f"psnr_{ch}"]
                    for r in res["rows"]
                    if r["model"] == lb and r["dataset"] == info["dataset"]
                ]
                if vals:
                    data[short_title(ctx, lb)] = vals
            path = ctx.out / "figures" / f"psnr_distribution_{role}_{proto}.png"
            save_distribution(
                path,
                data,
                title=f"Per-image PSNR ({ch.upper()}), {ctx.spec.roles[role].title} ({info['n']} images), "
                f"{proto} protocol; the number is the mean",
                ylabel=f"PSNR {ch.upper()} (dB)",
            )
            ctx.figures.append({"kind": "distribution", "protocol": proto, "role": role, "path": str(path)})
