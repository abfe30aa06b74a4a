"""The study-layout tables (its Table 1 PSNR and Table 2 SSIM per protocol, ours beside its published
numbers), the cross-protocol table, and their Markdown/CSV files and README assets."""

from __future__ import annotations

import math
import shutil
from typing import Any

from srlab.report.markdown import md_table
from srlab.study.context import (
    METRIC_CHANNEL,
    PROTOCOLS,
    PUBLISHED,
    ROLE_INFO,
    ROLES,
    ROW_TITLES,
    SCALE,
    SHORT_DEG,
    Context,
)
from srlab.study.evaluation import mean, model_order, short_title


def row_label(ctx: Context, row: str, proto: str) -> str | None:
    if row in ("bilinear", "bicubic"):
        return row
    if row == "pretrained":
        return ctx.pretrained["label"] if ctx.pretrained else None
    for lb, m in ctx.models.items():
        if m["row"] == row and m["protocol"] == proto:
            return lb
    return None


def study_tables(ctx: Context, proto: str) -> dict[str, Any]:
    """Table 1 (PSNR) and Table 2 (SSIM) in the study's layout for one protocol, ours beside the study's."""
    res = ctx.results[proto]
    ch = METRIC_CHANNEL[proto]
    out: dict[str, Any] = {"protocol": proto, "channel": ch, "rows": []}
    for row in ROW_TITLES:
        lb = row_label(ctx, row, proto)
        entry = {"row": row, "title": _row_title(ctx, row), "label": lb, "cells": {}}
        for role in ROLES:
            cell: dict[str, Any] = {"psnr": None, "ssim": None, "published": PUBLISHED.get(row, {}).get(role)}
            info = ctx.roles.get(role)
            if lb and info:
                cell["psnr"] = mean(res["rows"], lb, info["dataset"], f"psnr_{ch}")
                cell["ssim"] = mean(res["rows"], lb, info["dataset"], f"ssim_{ch}")
                cell["n"] = info["n"]
            entry["cells"][role] = cell
        out["rows"].append(entry)
    return out


def _row_title(ctx: Context, row: str) -> str:
    if row == "pretrained" and ctx.pretrained:
        return f"Pretrained: {ctx.pretrained['name']} (x4 → imresize /2)"
    return ROW_TITLES[row]


def fmt(v: float | None, digits: int) -> str:
    if v is None:
        return "—"
    if math.isinf(v):
        return "inf"
    return f"{v:.{digits}f}"


def table_rows(ctx: Context, t: dict, metric: str) -> tuple[list[str], list[list[str]]]:
    headers = ["Model"]
    for role in ROLES:
        title = ROLE_INFO[role]["title"]
        headers += [f"{title}: ours", f"{title}: study"]
    rows = []
    for r in t["rows"]:
        if r["label"] is None and r["row"] not in ("pretrained",):
            continue
        line = [r["title"]]
        for role in ROLES:
            c = r["cells"][role]
            pub = c["published"]
            if role not in ctx.roles:
                ours = "missing"
            else:
                ours = fmt(c[metric], 2 if metric == "psnr" else 4)
            if pub is None:
                p = "—"
            else:
                p = f"{pub[0]:.1f}" if metric == "psnr" else f"{pub[1]:.3f}"
                if metric == "ssim" and r["row"] == "pretrained":
                    p += " †"
            line += [ours, p]
        rows.append(line)
    return headers, rows


def cross_table(ctx: Context) -> tuple[list[str], list[list[str]]]:
    """Trained models under both protocols: what a model trained on one degradation scores on the other."""
    headers = ["Model", "trained on"]
    for proto in PROTOCOLS:
        for role in ctx.roles:
            headers.append(f"{ROLE_INFO[role]['title']}, {proto} protocol ({METRIC_CHANNEL[proto].upper()})")
    rows = []
    labels = ["bilinear", "bicubic"] + model_order(ctx)
    for lb in labels:
        if lb in ("bilinear", "bicubic"):
            title, trained = lb, "—"
        else:
            m = ctx.models[lb]
            title = short_title(ctx, lb)
            trained = SHORT_DEG[m["protocol"]] if m["protocol"] else "its own data"
        line = [title, trained]
        for proto in PROTOCOLS:
            ch = METRIC_CHANNEL[proto]
            for _role, info in ctx.roles.items():
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
    for proto in PROTOCOLS:
        t = study_tables(ctx, proto)
        for metric in ("psnr", "ssim"):
            h, rows = table_rows(ctx, t, metric)
            md = md_table(h, rows)
            p = tdir / f"table_{metric}_{proto}.md"
            p.write_text(
                f"{metric.upper()} (x{SCALE}, {proto} protocol, {METRIC_CHANNEL[proto].upper()}); study = "
                f"its published numbers.\n\n" + "\n".join(md) + "\n",
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
    pn = ctx.panels.get("natural/study") or next(iter(ctx.panels.values()), None)
    if pn:
        shutil.copyfile(pn["path"], rd / "figure.png")
        out["figure"] = str(rd / "figure.png")
    lines = []
    for proto in PROTOCOLS:
        t = study_tables(ctx, proto)
        ch = METRIC_CHANNEL[proto]
        roles = [r for r in ROLES if r in ctx.roles]
        head = ["Model"] + [f"{ROLE_INFO[r]['title']} PSNR / SSIM" for r in roles]
        lines.append(f"**{proto} protocol** (x{SCALE}, {ch.upper()}, {ctx.profile.name} profile)")
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
