"""The study-layout tables (one PSNR and one SSIM table per protocol, ours beside the published numbers),
the cross-protocol table, and their Markdown/CSV files and README assets. Every row names the weights it
used (which VGG19 a perceptual loss had, which pretrained file)."""

from __future__ import annotations

import math
import shutil
from typing import Any

from srlab.report.markdown import md_table
from srlab.study.context import METRIC_CHANNEL, SHORT_DEG, Context
from srlab.study.evaluation import interpolations, mean, model_order, short_title, weights_name


def row_label(ctx: Context, row: str, proto: str) -> str | None:
    """The evaluated file that makes ``row`` under ``proto`` (an interpolation row: its name)."""
    m = ctx.spec.models.get(row)
    if m is not None and m.interpolation:
        return m.interpolation
    cands = [lb for lb, x in ctx.models.items() if x["row"] == row]
    for lb in cands:
        if ctx.models[lb]["protocol"] == proto:
            return lb
    shared = [lb for lb in cands if not ctx.models[lb].get("per_protocol")]
    return shared[0] if shared else None


def published(ctx: Context, row: str, role: str) -> tuple[float, float] | None:
    pub = ctx.spec.published
    if pub is None:
        return None
    v = pub.rows.get(row, {}).get(role)
    return tuple(v) if v else None


def row_title(ctx: Context, row: str, label: str | None) -> str:
    """The row's title with the weights it used: '(ours; VGG19: random)', 'Pretrained: FILE (x4 -> ...)'."""
    title = ctx.spec.row_title(row)
    ref = ctx.references.get(row)
    if ref is not None and ref.get("how") != "used as it is":
        how = _how_short(ctx, row, ref)
        return f"Pretrained: {weights_name(ref)}" + (f" ({how})" if how else "")
    if ref is not None:
        return f"{title} ({ref['name']})"
    m = ctx.models.get(label or "")
    pw = m.get("perceptual_weights") if m else None
    if pw:
        tag = f"VGG19: {pw}"
        title = f"{title[:-1]}; {tag})" if title.endswith(")") else f"{title} ({tag})"
    return title


def _how_short(ctx: Context, row: str, ref: dict) -> str:
    spec = ctx.spec.models[row].pretrained
    post = {"matlab": "MATLAB imresize", "study": "study bilinear"}.get(spec.resize if spec else "", "")
    scale = int(ref.get("scale") or 0)
    if not scale or scale == ctx.scale or not post:
        return ""
    ratio = scale / ctx.scale
    return f"x{scale} → {post} /{ratio:g}" if ratio >= 1 else f"x{scale} → {post} x{1 / ratio:g}"


def study_tables(ctx: Context, proto: str) -> dict[str, Any]:
    """The PSNR and SSIM table in the study's layout for one protocol, ours beside the published numbers."""
    res = ctx.results[proto]
    ch = METRIC_CHANNEL[proto]
    out: dict[str, Any] = {"protocol": proto, "channel": ch, "rows": []}
    for row in ctx.spec.row_order():
        lb = row_label(ctx, row, proto)
        entry = {"row": row, "title": row_title(ctx, row, lb), "label": lb, "cells": {}}
        for role in ctx.spec.roles:
            cell: dict[str, Any] = {"psnr": None, "ssim": None, "published": published(ctx, row, role)}
            info = ctx.roles.get(role)
            if lb and info:
                cell["psnr"] = mean(res["rows"], lb, info["dataset"], f"psnr_{ch}")
                cell["ssim"] = mean(res["rows"], lb, info["dataset"], f"ssim_{ch}")
                cell["n"] = info["n"]
            entry["cells"][role] = cell
        out["rows"].append(entry)
    return out


def fmt(v: float | None, digits: int) -> str:
    if v is None:
        return "—"
    if math.isinf(v):
        return "inf"
    return f"{v:.{digits}f}"


def table_rows(ctx: Context, t: dict, metric: str) -> tuple[list[str], list[list[str]]]:
    with_pub = ctx.spec.published is not None and bool(ctx.spec.published.rows)
    nc = ctx.spec.published.not_comparable if ctx.spec.published else {}
    headers = ["Model"]
    for r in ctx.spec.roles.values():
        headers += [f"{r.title}: ours", f"{r.title}: study"] if with_pub else [r.title]
    rows = []
    for r in t["rows"]:
        if r["label"] is None and not any(c["published"] for c in r["cells"].values()):
            continue
        line = [r["title"]]
        for role in ctx.spec.roles:
            c = r["cells"][role]
            ours = "missing" if role not in ctx.roles else fmt(c[metric], 2 if metric == "psnr" else 4)
            line.append(ours)
            if not with_pub:
                continue
            pub = c["published"]
            if pub is None:
                p = "—"
            else:
                p = f"{pub[0]:.1f}" if metric == "psnr" else f"{pub[1]:.3f}"
                if nc.get(r["row"]) == metric:
                    p += " †"
            line.append(p)
        rows.append(line)
    return headers, rows


def cross_table(ctx: Context) -> tuple[list[str], list[list[str]]]:
    """Every model under every protocol: what a model trained on one degradation scores on the other."""
    headers = ["Model", "trained on"]
    for proto in ctx.protocols:
        for role in ctx.roles:
            title = ctx.spec.roles[role].title
            headers.append(f"{title}, {proto} protocol ({METRIC_CHANNEL[proto].upper()})")
    rows = []
    for lb in interpolations(ctx) + model_order(ctx):
        if lb in interpolations(ctx):
            title, trained = short_title(ctx, lb), "—"
        else:
            m = ctx.models[lb]
            title = row_title(ctx, m["row"], lb)
            trained = SHORT_DEG.get(m["protocol"], m["protocol"]) if m["protocol"] else "its own data"
        line = [title, trained]
        for proto in ctx.protocols:
            ch = METRIC_CHANNEL[proto]
            for info in ctx.roles.values():
                p = mean(ctx.results[proto]["rows"], lb, info["dataset"], f"psnr_{ch}")
                s = mean(ctx.results[proto]["rows"], lb, info["dataset"], f"ssim_{ch}")
                line.append(f"{fmt(p, 2)} / {fmt(s, 4)}")
        rows.append(line)
    return headers, rows


def write_tables(ctx: Context) -> dict[str, str]:
    """The study-layout tables as Markdown and CSV files (for READMEs and spreadsheets)."""
    import csv

    tdir = ctx.out / "tables"
    tdir.mkdir(parents=True, exist_ok=True)
    out = {}
    for proto in ctx.protocols:
        t = study_tables(ctx, proto)
        for metric in ("psnr", "ssim"):
            h, rows = table_rows(ctx, t, metric)
            md = md_table(h, rows)
            p = tdir / f"table_{metric}_{proto}.md"
            pub = "; study = its published numbers" if ctx.spec.published else ""
            p.write_text(
                f"{metric.upper()} (x{ctx.scale}, {proto} protocol, {METRIC_CHANNEL[proto].upper()}){pub}.\n\n"
                + "\n".join(md)
                + "\n",
                encoding="utf-8",
            )
            with open(tdir / f"table_{metric}_{proto}.csv", "w", newline="", encoding="utf-8") as f:
                w = csv.writer(f)
                w.writerow(h)
                w.writerows(rows)
            out[f"{metric}_{proto}"] = str(p)
    return out


def write_readme_assets(ctx: Context) -> dict[str, str]:
    """A figure and a table meant to be copied into a README: OUT/readme/figure.png and table.md."""
    rd = ctx.out / "readme"
    rd.mkdir(parents=True, exist_ok=True)
    out = {}
    first = next(iter(ctx.roles), "")
    pn = ctx.panels.get(f"{first}/{ctx.protocols[0]}") or next(iter(ctx.panels.values()), None)
    if pn:
        shutil.copyfile(pn["path"], rd / "figure.png")
        out["figure"] = str(rd / "figure.png")
    lines = []
    for proto in ctx.protocols:
        t = study_tables(ctx, proto)
        ch = METRIC_CHANNEL[proto]
        roles = [r for r in ctx.spec.roles if r in ctx.roles]
        head = ["Model"] + [f"{ctx.spec.roles[r].title} PSNR / SSIM" for r in roles]
        lines.append(f"**{proto} protocol** (x{ctx.scale}, {ch.upper()}, {ctx.spec.name} study)")
        lines.append("")
        body = []
        for r in t["rows"]:
            if r["label"] is None:
                continue
            cells = [f"{fmt(r['cells'][x]['psnr'], 2)} / {fmt(r['cells'][x]['ssim'], 4)}" for x in roles]
            body.append([r["title"]] + cells)
        lines += md_table(head, body)
        lines.append("")
    (rd / "table.md").write_text("\n".join(lines), encoding="utf-8")
    out["table"] = str(rd / "table.md")
    return out
