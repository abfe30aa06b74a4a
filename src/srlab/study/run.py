"""``reproduce()``: the plan first (printed; ``plan_only`` stops there), then the steps in order, then
``OUT/reproduce.json``."""

from __future__ import annotations

import inspect
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from srlab.errors import ConfigError, DataError
from srlab.serialize import dumps, jsonable
from srlab.study.context import Context, rel, shell
from srlab.study.datasets import resolve_root
from srlab.study.environment import environment
from srlab.study.evaluation import eval_command, eval_specs, run_evaluation
from srlab.study.figures import run_curves, run_distributions, run_panels
from srlab.study.inputs import blocking, resolve_inputs, vgg_missing
from srlab.study.plan import plan_runs
from srlab.study.preview import plan_lines, plan_summary
from srlab.study.report import build_report
from srlab.study.runs import prepare_pretrained, run_training
from srlab.study.spec import StudySpec, load_spec
from srlab.study.tables import study_tables, write_readme_assets, write_tables


def reproduce(
    spec: str | os.PathLike | StudySpec = "quick",
    *,
    data_root: str | os.PathLike | None = None,
    device: str = "auto",
    out: str | os.PathLike | None = None,
    budget: float | None = None,
    overrides: dict[str, Any] | list[str] | None = None,
    trained: dict[str, str] | None = None,
    plan_only: bool = False,
    progress: bool | None = None,
    command: str | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run a study spec (a bundled name, a YAML path or a :class:`StudySpec`); returns the summary written
    to ``OUT/reproduce.json``. The plan is printed first; ``plan_only`` returns it (``can_run``,
    ``missing_inputs``, ...) without doing any work, and a plan that cannot run raises a DataError.

    ``data_root=None`` with a spec that has ``data.samples`` uses scikit-image's sample images (the
    environment variable is *not* consulted, so the default run is the same
    everywhere); other specs resolve it like every srlab command. ``overrides`` (``key.path=value``) change
    the spec before validation; ``trained`` (``{"srcnn": "srcnn-study-x2-recipe"}``) uses models srlab ships
    instead of training those (:func:`srlab.study.spec.use_trained`).
    """
    sp = spec if isinstance(spec, StudySpec) else load_spec(spec, overrides, trained)
    if isinstance(spec, StudySpec) and overrides:
        raise ConfigError("overrides apply to a spec name or file, not to a loaded StudySpec")
    if budget is not None and budget <= 0:
        raise ConfigError(f"--budget must be a positive number of minutes, not {budget}")
    root = resolve_root(data_root, sp)
    if root is None and sp.data.samples is None:
        from srlab.data.find import resolve_data_root

        root = resolve_data_root(None)
    out_dir = Path(out) if out else Path("reports") / sp.name
    if progress is None:
        progress = sys.stderr.isatty()
    ctx = Context(sp, out_dir, root, device or "auto", budget, log)
    ctx.factor = (budget / sp.nominal_minutes) if budget else 1.0
    import torch

    ctx.base_threads = torch.get_num_threads()
    try:
        return _reproduce(ctx, budget, command, progress, plan_only)
    finally:
        torch.set_num_threads(ctx.base_threads)


def _reproduce(ctx: Context, budget, command, progress, plan_only) -> dict[str, Any]:
    t_all = time.time()
    log = ctx.say
    if plan_only:
        # the plan writes nothing the run would keep: derived test folders go to a scratch copy
        import tempfile

        real_out = ctx.out
        with tempfile.TemporaryDirectory(prefix="srlab-plan-") as tmp:
            ctx.out = Path(tmp)
            resolve_inputs(ctx)
            runs = plan_runs(ctx)
            vgg_missing(ctx, runs)
            blockers = blocking(ctx)
            for line in plan_lines(ctx, runs, blockers):
                log(line)
            ctx.out = real_out
            return plan_summary(ctx, runs, blockers)
    ctx.out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    resolve_inputs(ctx)
    runs = plan_runs(ctx)
    vgg_missing(ctx, runs)
    ctx.timings["data_s"] = time.time() - t0
    blockers = blocking(ctx)
    for line in plan_lines(ctx, runs, blockers):
        log(line)
    if blockers:
        raise DataError(
            f"study {ctx.spec.name}: cannot run ({'; '.join(blockers)}); the plan above lists where to get "
            "each missing input"
        )
    log(
        "[data] roles: "
        + ", ".join(f"{r} ({v['n']} images)" for r, v in ctx.roles.items())
        + (f"; missing: {', '.join(m['role'] for m in ctx.missing)}" if ctx.missing else "")
    )
    t0 = time.time()
    run_training(ctx, runs, progress)
    ctx.timings["training_s"] = time.time() - t0
    prepare_references(ctx)
    run_evaluation(ctx, progress)
    t0 = time.time()
    if ctx.spec.figures.panels:
        run_panels(ctx, progress)
    if ctx.spec.figures.curves:
        run_curves(ctx)
    if ctx.spec.figures.distributions:
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
        "profile": ctx.spec.name,
        "spec": ctx.spec.name,
        "spec_file": str(ctx.spec.source) if ctx.spec.source else None,
        "deviations": [d.model_dump() for d in ctx.spec.deviations],
        "missing_inputs": ctx.missing_inputs,
        "command": cmd,
        "out": str(ctx.out),
        "data_root": str(ctx.data_root) if ctx.data_root else None,
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
        "train_sets": ctx.train_sets,
        "val_set": ctx.val_set,
        "runs": ctx.runs,
        "models": ctx.models,
        "pretrained": ctx.pretrained,
        "tables": {proto: study_tables(ctx, proto) for proto in ctx.protocols},
        "eval_commands": {proto: eval_command(ctx, proto, eval_specs(ctx)) for proto in ctx.protocols},
        "results_files": {proto: ctx.results[proto]["files"] for proto in ctx.protocols},
        "figures": [f["path"] for f in ctx.figures] + [p["path"] for p in ctx.panels.values()],
        "table_files": tables,
        "readme": readme,
        "report_md": str(md),
        "report_html": str(html),
        "environment": {**environment(), "torch_threads": ctx.base_threads},
        "spec_settings": jsonable(ctx.spec.model_dump()),
        "threads": ctx.threads,
    }
    (ctx.out / "reproduce.json").write_text(dumps(summary), encoding="utf-8")
    log(f"[report] {rel(md)}, {rel(html)} ({wall / 60:.1f} min)")
    return summary


def prepare_references(ctx: Context) -> None:
    """The spec's pretrained models: a weights file at the study's scale is evaluated as it is; the others
    (zoo names, other scales) go through :func:`srlab.study.runs.prepare_pretrained`. A reference whose
    weights are not here leaves its row empty (the plan listed it)."""
    from srlab.errors import SrlabError
    from srlab.weights.loader import load_model

    accepts = inspect.signature(prepare_pretrained).parameters
    for key, m in ctx.spec.models.items():
        ref = m.pretrained
        if ref is None:
            continue
        path = ctx.spec.resolve_path(ref.weights)
        if ref.resize == "none" and path.suffix and path.is_file():
            try:
                _net, desc = load_model(path)
            except SrlabError as exc:
                ctx.notes.append(f"**{m.title}: not evaluated**: {exc}")
                continue
            # evaluated under the row's key (srlab eval names a model by its file's stem)
            dst = ctx.out / "models" / f"{key}{path.suffix}"
            dst.parent.mkdir(parents=True, exist_ok=True)
            if (
                not dst.is_file()
                or dst.stat().st_size != path.stat().st_size
                or dst.stat().st_mtime < path.stat().st_mtime
            ):
                shutil.copyfile(path, dst)
            ctx.models[key] = {
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
            ctx.references[key] = {"name": path.name, "path": str(path), "how": "used as it is"}
            continue
        ctx.reference = (key, ref)
        kw = {k: v for k, v in (("source", ref.weights), ("post", ref.resize), ("row", key)) if k in accepts}
        before = set(ctx.models)
        prepare_pretrained(ctx, **kw)
        for label in set(ctx.models) - before:
            ctx.models[label]["row"] = key
        if ctx.pretrained and key not in ctx.references:
            ctx.references[key] = dict(ctx.pretrained)
    ctx.reference = None


def _default_command(ctx: Context) -> str:
    spec = ctx.spec
    bundled = (
        spec.source is not None
        and spec.source.parent.name == "studies"
        and (spec.source.parent.parent.name == "configs")
    )
    parts = ["srlab reproduce", spec.name if bundled else shell(rel(spec.source or spec.name))]
    if ctx.data_root is not None:
        parts.append(f"--data-root {rel(ctx.data_root)}")
    if ctx.budget:
        parts.append(f"--budget {ctx.budget:g}")
    parts.append(f"--out {rel(ctx.out)}")
    return " ".join(parts)
