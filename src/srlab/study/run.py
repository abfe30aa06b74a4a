"""``reproduce()``: the study's steps in order, then ``OUT/reproduce.json``."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from srlab.errors import ConfigError
from srlab.serialize import dumps, jsonable
from srlab.study.context import PROFILES, PROTOCOLS, Context, Profile, QuickSettings, rel
from srlab.study.datasets import prepare_data_root, resolve_root
from srlab.study.environment import environment
from srlab.study.evaluation import eval_command, model_order, run_evaluation
from srlab.study.figures import run_curves, run_distributions, run_panels
from srlab.study.plan import plan_runs
from srlab.study.report import build_report
from srlab.study.runs import prepare_pretrained, run_training
from srlab.study.samples import prepare_quick_samples
from srlab.study.tables import study_tables, write_readme_assets, write_tables


def _resolve_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ConfigError(f"unknown profile {name!r}; use {', '.join(PROFILES)}") from None


def reproduce(
    profile: str = "quick",
    *,
    data_root: str | os.PathLike | None = None,
    device: str = "auto",
    out: str | os.PathLike | None = None,
    budget: float | None = None,
    quick: QuickSettings | None = None,
    progress: bool | None = None,
    command: str | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the whole study; returns the summary written to ``OUT/reproduce.json`` (see :mod:`srlab.study`).

    ``data_root=None`` with the quick profile uses scikit-image's sample images (the environment variable
    and ../shared/data are *not* consulted, so the default run is the same everywhere); the other profiles
    resolve it like every srlab command. ``quick`` overrides the quick profile's sizes (tests use tiny ones).
    """
    prof = _resolve_profile(profile)
    if budget is not None and budget <= 0:
        raise ConfigError(f"--budget must be a positive number of minutes, not {budget}")
    root = resolve_root(data_root, prof)
    out_dir = Path(out) if out else Path("reports") / prof.name
    out_dir.mkdir(parents=True, exist_ok=True)
    if progress is None:
        progress = sys.stderr.isatty()
    ctx = Context(
        prof,
        out_dir,
        root,
        device or "auto",
        budget,
        quick or QuickSettings(),
        log,
    )
    ctx.factor = (budget / prof.nominal_minutes) if budget else 1.0
    import torch

    ctx.base_threads = torch.get_num_threads()
    try:
        return _reproduce(ctx, prof, root, budget, command, progress, log)
    finally:
        torch.set_num_threads(ctx.base_threads)


def _reproduce(ctx, prof, root, budget, command, progress, log) -> dict[str, Any]:
    t_all = time.time()

    t0 = time.time()
    if root is None:
        prepare_quick_samples(ctx)
    else:
        prepare_data_root(ctx)
    ctx.timings["data_s"] = time.time() - t0
    log(
        "[data] roles: "
        + ", ".join(f"{r} ({v['n']} images)" for r, v in ctx.roles.items())
        + (f"; missing: {', '.join(m['role'] for m in ctx.missing)}" if ctx.missing else "")
    )
    runs = plan_runs(ctx)
    t0 = time.time()
    run_training(ctx, runs, progress)
    ctx.timings["training_s"] = time.time() - t0
    prepare_pretrained(ctx)
    run_evaluation(ctx, progress)
    t0 = time.time()
    run_panels(ctx, progress)
    run_curves(ctx)
    run_distributions(ctx)
    ctx.timings["figures_s"] = time.time() - t0
    tables = write_tables(ctx)
    readme = write_readme_assets(ctx)
    wall = time.time() - t_all
    ctx.timings["total_s"] = wall
    from srlab.report.html import write_report

    cmd = command or _default_command(ctx)
    doc = build_report(ctx, cmd, wall)
    md, html = write_report(doc, ctx.out)
    summary = {
        "profile": prof.name,
        "command": cmd,
        "out": str(ctx.out),
        "data_root": str(root) if root else None,
        "device": ctx.device,
        "budget": budget,
        "factor": ctx.factor,
        "wall_s": wall,
        "timings": ctx.timings,
        "roles": ctx.roles,
        "missing": ctx.missing,
        "notes": ctx.notes,
        "perceptual_weights": sorted(ctx.perceptual),
        "train_set": ctx.train_set,
        "val_set": ctx.val_set,
        "runs": ctx.runs,
        "models": ctx.models,
        "pretrained": ctx.pretrained,
        "tables": {proto: study_tables(ctx, proto) for proto in PROTOCOLS},
        "eval_commands": {
            proto: eval_command(
                ctx, proto, ["bilinear", "bicubic"] + [ctx.models[lb]["path"] for lb in model_order(ctx)]
            )
            for proto in PROTOCOLS
        },
        "results_files": {proto: ctx.results[proto]["files"] for proto in PROTOCOLS},
        "figures": [f["path"] for f in ctx.figures] + [p["path"] for p in ctx.panels.values()],
        "table_files": tables,
        "readme": readme,
        "report_md": str(md),
        "report_html": str(html),
        "environment": {**environment(), "torch_threads": ctx.base_threads},
        "quick_settings": jsonable(ctx.quick),
        "threads": ctx.threads,
    }
    (ctx.out / "reproduce.json").write_text(dumps(summary), encoding="utf-8")
    log(f"[report] {rel(md)}, {rel(html)} ({wall / 60:.1f} min)")
    return summary


def _default_command(ctx: Context) -> str:
    parts = ["srlab reproduce", f"--profile {ctx.profile.name}"]
    if ctx.data_root is not None:
        parts.append(f"--data-root {rel(ctx.data_root)}")
    if ctx.budget:
        parts.append(f"--budget {ctx.budget:g}")
    parts.append(f"--out {rel(ctx.out)}")
    return " ".join(parts)
