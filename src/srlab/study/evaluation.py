"""``srlab eval`` on every saved model under each protocol, the commands that re-make its numbers, and the
table order and short titles of the models."""

from __future__ import annotations

import time

from srlab.errors import DataError
from srlab.study.context import PROTOCOLS, SCALE, TRAINED, Context, adapt_threads, rel, shell


def model_order(ctx: Context, protocol: str | None = None) -> list[str]:
    """Labels in table order; with a protocol, only that protocol's trained rows."""
    out = []
    for row in TRAINED:
        for proto in PROTOCOLS:
            if protocol and proto != protocol:
                continue
            for label, m in ctx.models.items():
                if m["row"] == row and m["protocol"] == proto:
                    out.append(label)
    out += [lb for lb, m in ctx.models.items() if m["row"] == "pretrained"]
    return out


def _eval_args(ctx: Context) -> tuple[list[str], dict[str, str]]:
    datasets = [r["dataset"] for r in ctx.roles.values()]
    set_paths = {r["dataset"]: r["path"] for r in ctx.roles.values()}
    return datasets, set_paths


def eval_command(ctx: Context, protocol: str, models: list[str], datasets: list[str] | None = None) -> str:
    """The ``srlab eval`` command that re-makes these numbers (paths as typed from the current directory)."""
    ds, sp = _eval_args(ctx)
    if datasets is not None:
        ds = [d for d in ds if d in datasets]
    parts = [
        "srlab eval",
        "--models " + ",".join(shell(rel(m)) if m not in ("bicubic", "bilinear") else m for m in models),
        "--datasets " + ",".join(ds),
        f"--scale {SCALE}",
        f"--protocol {protocol}",
        "--hr-crop 0",
    ]
    for name in ds:
        parts.append(f"--set-path {shell(name + '=' + rel(sp[name]))}")
    if ctx.data_root is not None:
        parts.append(f"--data-root {shell(rel(ctx.data_root))}")
    parts.append(f"--out {shell(rel(ctx.out / 'check' / protocol))}")
    return " \\\n    ".join(parts)


def run_evaluation(ctx: Context, progress: bool) -> None:
    from srlab.evaluate import evaluate
    from srlab.report.tables import write_results

    datasets, set_paths = _eval_args(ctx)
    if not datasets:
        raise DataError("no test set found for any role; see the report's data section")
    specs = ["bilinear", "bicubic"] + [ctx.models[lb]["path"] for lb in model_order(ctx)]
    for proto in PROTOCOLS:
        adapt_threads(ctx, f"eval-{proto}")
        t0 = time.time()
        ctx.say(f"[eval] {proto} protocol: {len(specs)} models x {', '.join(datasets)}")
        res = evaluate(
            specs,
            datasets,
            [SCALE],
            protocol=proto,
            data_root=ctx.data_root,
            set_paths=set_paths,
            device=ctx.device if ctx.device != "auto" else None,
            hr_crop=0,
            progress=progress,
            log=lambda m: None,
        )
        res.header["command"] = eval_command(ctx, proto, specs).replace(" \\\n    ", " ")
        files = write_results(
            res.rows, res.header, ctx.out / "eval" / proto, title=f"srlab reproduce: {proto} protocol"
        )
        ctx.results[proto] = {
            "rows": res.rows,
            "header": res.header,
            "files": {k: str(v) for k, v in files.items()},
            "messages": res.messages,
        }
        ctx.timings[f"eval_{proto}_s"] = time.time() - t0


def mean(rows: list[dict], model: str, dataset: str, key: str) -> float | None:
    vals = [r[key] for r in rows if r["model"] == model and r["dataset"] == dataset and key in r]
    if not vals:
        return None
    return float(sum(vals) / len(vals))


def short_title(ctx: Context, label: str) -> str:
    if label in ("bicubic", "bilinear"):
        return label
    m = ctx.models[label]
    if m["row"] == "pretrained":
        return f"pretrained ({ctx.pretrained['name']})" if ctx.pretrained else "pretrained"
    return {"srcnn": "SRCNN (ours)", "esrgan_psnr": "ESRGAN PSNR (ours)", "esrgan_gan": "ESRGAN GAN (ours)"}[
        m["row"]
    ]
