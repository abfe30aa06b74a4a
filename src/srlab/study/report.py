"""Stage 6, Report: the study's ``report.md`` / ``report.html`` -- results tables, figures, provenance of every
row, data, settings and environment -- as a :class:`srlab.report.html.Document` made from the records."""

from __future__ import annotations

import time
from pathlib import Path

from srlab.eval.protocols import get_protocol
from srlab.report.html import Document
from srlab.study.common import rel, trained_on
from srlab.study.evaluation import (
    channel,
    eval_command,
    eval_specs,
    interpolations,
    mean,
    model_order,
    short_title,
)
from srlab.study.records import Study
from srlab.study.tables import cross_table, fmt, row_label, row_title, study_tables, table_rows


def _fig(study: Study, path: str) -> str:
    return str(Path(path).resolve().relative_to(study.setup.out.resolve()))


def timings(study: Study, wall: float) -> dict[str, float]:
    """Wall time per step, from the records."""
    assert study.scores is not None
    out = {"data_s": study.inputs.seconds + study.plan.seconds, **study.trained.timings}
    out.update({f"eval_{p}_s": s.seconds for p, s in study.scores.protocols.items()})
    out["figures_s"] = study.figures.seconds
    out["total_s"] = wall
    return out


def build_report(study: Study, command: str, wall: float, env: dict):
    setup, inputs, trained = study.setup, study.inputs, study.trained
    assert study.scores is not None
    p = study.spec
    scale = setup.scale
    protocols = setup.protocols
    env = dict(env)
    doc = Document(f"srlab reproduce — {p.name}")
    doc.paragraph(
        (f"**{p.title}.** " if p.title else "")
        + f"This report runs the study spec `{rel(p.source) if p.source else p.name}` with srlab on the data "
        f"found here, under the {' and the '.join(f'{x!r}' for x in protocols)} protocol"
        + ("s" if len(protocols) > 1 else "")
        + ". Every row names the weights it used."
    )
    doc.bullets(
        [
            f"command: `{command}`",
            f"study: **{p.name}** — {p.summary}",
            f"wall time: **{wall / 60:.1f} min** ({wall:.0f} s) on {env['cpu']}"
            + (f" + {', '.join(env['gpus'])}" if env["gpus"] else "")
            + f", device `{setup.device}`",
            f"finished: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}; srlab {env['srlab']}"
            + (f" (git {env['git']})" if env["git"] else ""),
        ]
    )
    # loud notices first
    if "random" in trained.perceptual:
        doc.warning(
            "**The perceptual loss used RANDOM VGG19 weights.** ImageNet VGG19 (vgg19-dcbb9e9d.pth) is not in "
            "the weight cache, so the ESRGAN GAN stage's 'perceptual' term compared features of an untrained "
            "network. The GAN-stage rows are therefore not ESRGAN as published. `srlab weights fetch vgg19` "
            "downloads the weights; re-run to train with them."
        )
    elif trained.perceptual:
        doc.paragraph(f"Perceptual-loss weights: {', '.join(sorted(trained.perceptual))}.")
    if p.notice:
        doc.warning(p.notice)
    for n in inputs.notes + trained.notes:
        doc.warning(n)
    for m in inputs.missing:
        doc.warning(f"**Role '{m['role']}' is missing** ({m['why']}): see [Data](#data).")

    # ---- tables
    doc.heading("Results")
    doc.paragraph(
        "Rows are models, columns the test roles, as in the study's Tables 1 and 2. **ours** = this run; "
        + (f"**study** = {p.published.note} " if p.published else "")
        + "A model trained once per protocol makes that protocol's row from the run on its degradation "
        "(see [Which checkpoint made which row](#which-checkpoint-made-which-row))."
    )
    for i, proto in enumerate(protocols):
        t = study_tables(study, proto)
        ch = channel(proto).upper()
        spec = get_protocol(proto).summary
        doc.heading(f"{proto.capitalize()} protocol", 3)
        doc.paragraph(
            f"Protocol **{proto}**: {spec}. Metrics on **{ch}**"
            + (
                " (the role folders already hold the test crops, so `srlab eval` runs with `--hr-crop 0`)"
                if proto == "study"
                else ""
            )
            + (", no border crop." if proto == "study" else f", border crop {scale}.")
            + (
                " The study's numbers were made under this protocol."
                if proto == "study"
                else " The study's numbers (its protocol, RGB) are repeated for reference only."
            )
        )
        h, rows = table_rows(study, t, "psnr")
        doc.table(h, rows, caption=f"Table {2 * i + 1}: PSNR (dB), x{scale}, {proto} protocol ({ch})")
        h, rows = table_rows(study, t, "ssim")
        doc.table(h, rows, caption=f"Table {2 * i + 2}: SSIM, x{scale}, {proto} protocol ({ch})")
    if p.published and p.published.not_comparable_why:
        doc.paragraph(f"† {p.published.not_comparable_why}")
    doc.heading("Cross-protocol: trained on one degradation, tested on the other", 3)
    doc.paragraph(
        "PSNR (dB) / SSIM of every model under both protocols. A model trained on the study's bilinear "
        "degradation meets MATLAB-bicubic LR images under the standard protocol and vice versa; losing to "
        "interpolation there is a finding (the study's own SRCNN does), not a bug."
    )
    h, rows = cross_table(study)
    doc.table(
        h,
        rows,
        caption="Every model under both protocols (PSNR / SSIM)",
        align=["l", "l"] + ["r"] * (len(h) - 2),
    )
    _findings(study, doc)
    _deviations(study, doc)

    # ---- figures
    doc.heading("Figures")
    for role in inputs.roles:
        for proto in protocols:
            pn = study.figures.panels.get(f"{role}/{proto}")
            if pn:
                doc.figure(
                    _fig(study, pn["path"]),
                    f"{p.roles[role].title}, {proto} protocol: {pn['image']}; the red box is enlarged "
                    "below each image; PSNR/SSIM of this image under each.",
                )
    for f in study.figures.figures:
        if f["kind"] == "curves":
            doc.figure(
                _fig(study, f["path"]),
                f"Training losses and validation PSNR ({f['protocol']} degradation); validation set "
                f"{rel(inputs.val_set) if inputs.val_set else '(none)'}.",
            )
    for f in study.figures.figures:
        if f["kind"] == "distribution":
            doc.figure(_fig(study, f["path"]), f"Per-image PSNR, {f['role']}, {f['protocol']} protocol.")

    # ---- provenance
    doc.heading("Which checkpoint made which row")
    prov = []
    for lb in model_order(study):
        m = study.models[lb]
        run = next((r for r in trained.runs if r["key"] == m["run"]), None)
        st = run["stages"][m["stage"]] if run else {}
        ref = trained.references.get(m["row"]) or {}
        prov.append(
            [
                row_title(study, m["row"], lb),
                m["protocol"] or "—",
                f"`{rel(m['path'])}`",
                f"{m['arch']} ({m['params']:,} params)",
                (
                    f"{run['recipe']} + overrides, stage {m['stage']}: {st.get('iterations')} it × batch "
                    f"{st.get('batch_size')}, lr {st.get('lr'):g}, {st.get('losses')}"
                )
                if run
                else str(ref.get("what") or ref.get("how") or ""),
            ]
        )
    doc.table(
        ["Row", "trained on", "checkpoint", "network", "how it was made"],
        prov,
        align=["l", "l", "l", "l", "l"],
    )
    doc.paragraph(
        "Every number in the tables is the mean over the role's images of `srlab eval` run on these files; "
        "these commands re-make them (per-image rows in `eval/<protocol>/results.csv`):"
    )
    specs = eval_specs(study)
    for proto in protocols:
        doc.paragraph(f"{proto} protocol — all rows:")
        doc.code(eval_command(study, proto, specs), "bash")
    doc.paragraph("One row at a time:")
    lines = []
    for proto in protocols:
        for lb in interpolations(study) + model_order(study):
            spec = lb if lb in interpolations(study) else study.models[lb]["path"]
            m = study.models.get(lb)
            how = f", trained on {trained_on(m['protocol'])}" if m and m["protocol"] else ""
            lines.append(f"# {short_title(study, lb)}{how} — {proto} protocol")
            lines.append(eval_command(study, proto, [spec]).replace(" \\\n    ", " "))
    doc.code("\n".join(lines), "bash")

    # ---- data
    doc.heading("Data")
    rows = []
    for role, r in p.roles.items():
        info = inputs.roles.get(role)
        if info:
            rows.append(
                [
                    role,
                    r.study_set,
                    info["source"] + (" (**substituted**)" if info["substituted"] else ""),
                    f"`{rel(info['path'])}`",
                ]
            )
        else:
            rows.append([role, r.study_set, "**missing**", "—"])
    doc.table(["Role", "the study used", "this run", "folder"], rows, align=["l", "l", "l", "l"])
    sets = {v["path"]: v for v in inputs.train_sets.values() if v.get("path")}
    for ts in sets.values() if trained.runs else []:
        doc.paragraph(
            f"Training images: {ts.get('name')} (`{rel(ts['path'])}`"
            + (f", {ts['images']} images" if isinstance(ts.get("images"), int) else "")
            + ")"
            + (f"; {ts['note']}" if ts.get("note") else "")
            + f". Validation during training: {('`' + rel(inputs.val_set) + '`') if inputs.val_set else 'none'}"
            " (never a test role)."
        )
    if inputs.missing:
        doc.paragraph("Missing roles and where to get them:")
        items = []
        for m in inputs.missing:
            where = "; ".join(f"**{k}**: {v}" for k, v in m["where"].items())
            items.append(
                f"**{m['role']}** ({m['study_set']}): {m['why']}. {where}. {m['layout']}"
                " and pass `--data-root DATA_ROOT`."
            )
        doc.bullets(items)

    # ---- settings
    doc.heading("Settings")
    rows = []
    for r in trained.runs:
        for stage, st in r["stages"].items():
            rows.append(
                [
                    r["key"],
                    stage,
                    str(st["iterations"]),
                    str(st["batch_size"]),
                    f"{st['lr']:g}",
                    st["losses"],
                    st["perceptual_weights"] or "—",
                    fmt((st.get("best_val") or {}).get("psnr"), 2),
                ]
            )
    doc.table(
        ["run", "stage", "iterations", "batch", "lr", "loss", "VGG weights", "best val PSNR"],
        rows,
        caption="Training runs",
    )
    rows = [
        [r["key"], r["recipe"], r["status"], f"{r['wall_s']:.0f} s", f"`{rel(r['dir'])}`"]
        for r in trained.runs
    ]
    doc.table(["run", "recipe (configs/)", "this invocation", "training wall time", "run folder"], rows)
    notes = [f"{r['key']}: {n}" for r in trained.runs for n in r["notes"]]
    if notes:
        doc.bullets(notes)
    if setup.factor != 1.0:
        doc.paragraph(
            f"`--budget {setup.budget:g}` scaled every iteration count by {setup.factor:.3g} "
            f"(the spec is sized for {p.nominal_minutes:g} min on {p.nominal_hardware})."
        )
    if setup.quick:
        doc.paragraph(
            "`--quick`: every recipe ran with its own `quick:` section (small networks, few iterations), the spec's overrides on top: a demonstration of the pipeline, not the recipes' results."
        )
    doc.paragraph("Protocols (as `srlab eval` writes them in each results.json header):")
    for proto in protocols:
        hdr = study.scores.protocols[proto].header["protocol"]
        doc.bullets([f"**{proto}** — {k.replace('_', ' ')}: {v}" for k, v in hdr.items() if k != "name"])

    # ---- environment
    doc.heading("Environment")
    env["torch_threads"] = setup.base_threads
    env["gpus"] = ", ".join(env["gpus"]) or "none"
    doc.table(["", "version / value"], [[k, str(v)] for k, v in env.items()], align=["l", "l"])
    steps = timings(study, wall).items()
    doc.table(["step", "wall time"], [[k.removesuffix("_s"), f"{v:.1f} s"] for k, v in steps])
    threads = trained.threads + study.scores.threads
    if threads:
        doc.paragraph(
            "CPU threads per phase: srlab used the cores that other processes left free when the phase "
            "started (busy cores measured from /proc/stat over 0.5 s)."
        )
        doc.table(
            ["phase", "torch threads", "cores busy with other work", "cores"],
            [[t["phase"], str(t["threads"]), f"{t['busy_cores']:.2f}", str(t["cores"])] for t in threads],
        )
    doc.heading("Files")
    doc.bullets(
        [
            "`report.md`, `report.html` (self-contained), `reproduce.json` (all numbers and settings)",
            "`tables/` — the study-layout tables (Markdown, CSV); `eval/<protocol>/` — `srlab eval` results "
            "(per-image CSV/JSON)",
            "`figures/` — panels, training curves, distributions (PNG); `readme/` — the figure and table for a README",
            "`models/` — every evaluated checkpoint; `runs/` — training runs (logs, checkpoints, configs)",
        ]
    )
    return doc


def _deviations(study: Study, doc) -> None:
    """Every point where the spec cannot follow the study, or the study contradicts itself."""
    devs = study.spec.deviations
    if not devs:
        return
    doc.heading("Deviations from the study")
    doc.paragraph(
        "Where the study cannot be followed, or its text, code and numbers disagree, and what this run does "
        f"instead (from the spec's `deviations`, {len(devs)} points):"
    )
    doc.table(
        ["point", "the study", "this run", "why"],
        [[d.what, d.source or "—", d.here, d.why] for d in devs],
        align=["l", "l", "l", "l"],
    )


def _findings(study: Study, doc) -> None:
    """Whether SRCNN beats its protocol's interpolation baseline on the natural role, as sentences."""
    lines = []
    for proto in study.setup.protocols:
        info = study.inputs.roles.get("natural")
        lb = row_label(study, "srcnn", proto)
        if not info or not lb:
            continue
        ch = channel(proto)
        rows = study.rows(proto)
        interp = get_protocol(proto).interpolation
        s = mean(rows, lb, info["dataset"], f"psnr_{ch}")
        b = mean(rows, interp, info["dataset"], f"psnr_{ch}")
        if s is None or b is None:
            continue
        verdict = "beats" if s > b else "does **not** beat"
        lines.append(
            f"{proto} protocol, natural: SRCNN (trained on {trained_on(study.models[lb]['protocol'])}) {s:.2f} dB "
            f"{verdict} {interp} {b:.2f} dB ({s - b:+.2f} dB)."
        )
    if lines:
        doc.paragraph("Checks:")
        doc.bullets(lines)
