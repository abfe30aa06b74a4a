"""``srlab eval`` on every saved model under each protocol, the commands that re-make its numbers, and the
table order and short titles of the models."""

from __future__ import annotations

import time
from pathlib import Path

from srlab.errors import DataError
from srlab.study.context import Context, adapt_threads, rel, shell


def model_order(ctx: Context, protocol: str | None = None) -> list[str]:
    """Labels of the evaluated model files in the spec's row order; with a protocol, a model trained once
    per protocol appears only under its own."""
    out = []
    for row in ctx.spec.row_order():
        for label, m in ctx.models.items():
            if m["row"] != row:
                continue
            if protocol and m.get("per_protocol") and m["protocol"] != protocol:
                continue
            out.append(label)
    return out


def interpolations(ctx: Context) -> list[str]:
    return [m.interpolation for m in ctx.spec.models.values() if m.interpolation]


def eval_specs(ctx: Context, protocol: str | None = None) -> list[str]:
    """What ``srlab eval`` is given: the interpolation rows by name, every other model by its file."""
    return interpolations(ctx) + [ctx.models[lb]["path"] for lb in model_order(ctx, protocol)]


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
        f"--scale {ctx.scale}",
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
    from srlab.eval.loop import evaluate
    from srlab.eval.results import write_results

    datasets, set_paths = _eval_args(ctx)
    if not datasets:
        raise DataError("no test set found for any role; see the report's data section")
    specs = eval_specs(ctx)
    for proto in ctx.protocols:
        adapt_threads(ctx, f"eval-{proto}")
        t0 = time.time()
        ctx.say(f"[eval] {proto} protocol: {len(specs)} models x {', '.join(datasets)}")
        res = evaluate(
            specs,
            datasets,
            [ctx.scale],
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
    """A model's name in figures and the cross-protocol table (the spec's title; a pretrained one with
    the weights it used)."""
    for m in ctx.spec.models.values():
        if m.interpolation == label:
            return m.title
    m = ctx.models[label]
    ref = ctx.references.get(m["row"])
    if ref is not None:
        return f"Pretrained: {weights_name(ref)}"
    return ctx.spec.row_title(m["row"])


def weights_name(ref: dict) -> str:
    """The file a pretrained row used, as the row names it (the zoo entry's file name without suffix)."""
    from srlab.weights.zoo import ZOO

    if ref.get("file"):
        return Path(str(ref["file"])).stem
    name = str(ref.get("name", "?"))
    entry = ZOO.get(name)
    return Path(entry.filename).stem if entry else Path(name).stem if "." in name else name
