"""Stage 6, Report (its tables): one PSNR and one SSIM table per protocol in the study's layout, ours beside
the published numbers, the cross-protocol table, and their Markdown/CSV files and README assets. Every row
names the weights it used (which VGG19 a perceptual loss had, which pretrained file)."""

from __future__ import annotations

import csv
import io
import math
import shutil
from typing import Any

from srlab.atomic import atomic_path, write_text
from srlab.report.markdown import md_table
from srlab.study.common import trained_on
from srlab.study.evaluation import channel, interpolations, mean, model_order, short_title, weights_name
from srlab.study.records import Study


def row_label(study: Study, row: str, proto: str) -> str | None:
    """The evaluated file that makes ``row`` under ``proto`` (an interpolation row: its name)."""
    m = study.spec.models.get(row)
    if m is not None and m.interpolation:
        return m.interpolation
    models = study.models
    cands = [lb for lb, x in models.items() if x["row"] == row]
    for lb in cands:
        if models[lb]["protocol"] == proto:
            return lb
    shared = [lb for lb in cands if not models[lb].get("per_protocol")]
    return shared[0] if shared else None


def published(study: Study, row: str, role: str) -> tuple[float, float] | None:
    pub = study.spec.published
    if pub is None:
        return None
    v = pub.rows.get(row, {}).get(role)
    return tuple(v) if v else None


def row_title(study: Study, row: str, label: str | None) -> str:
    """The row's title with the weights it used: '(ours; VGG19: random)', 'Pretrained: FILE (x4 -> ...)'."""
    title = study.spec.row_title(row)
    ref = study.trained.references.get(row)
    if ref is not None and ref.get("how") != "used as it is":
        how = _how_short(study, row, ref)
        return f"Pretrained: {weights_name(ref)}" + (f" ({how})" if how else "")
    if ref is not None:
        return f"{title} ({ref['name']})"
    m = study.models.get(label or "")
    pw = m.get("perceptual_weights") if m else None
    if pw:
        tag = f"VGG19: {pw}"
        title = f"{title[:-1]}; {tag})" if title.endswith(")") else f"{title} ({tag})"
    return title


def _how_short(study: Study, row: str, ref: dict) -> str:
    spec = study.spec.models[row].pretrained
    post = {"matlab": "MATLAB imresize", "study": "study bilinear"}.get(spec.resize if spec else "", "")
    scale, ours = int(ref.get("scale") or 0), study.setup.scale
    if not scale or scale == ours or not post:
        return ""
    ratio = scale / ours
    return f"x{scale} → {post} /{ratio:g}" if ratio >= 1 else f"x{scale} → {post} x{1 / ratio:g}"


def study_tables(study: Study, proto: str) -> dict[str, Any]:
    """The PSNR and SSIM table in the study's layout for one protocol, ours beside the published numbers."""
    rows = study.rows(proto)
    ch = channel(proto)
    out: dict[str, Any] = {"protocol": proto, "channel": ch, "rows": []}
    for row in study.spec.row_order():
        lb = row_label(study, row, proto)
        entry = {"row": row, "title": row_title(study, row, lb), "label": lb, "cells": {}}
        for role in study.spec.roles:
            cell: dict[str, Any] = {"psnr": None, "ssim": None, "published": published(study, row, role)}
            info = study.inputs.roles.get(role)
            if lb and info:
                cell["psnr"] = mean(rows, lb, info["dataset"], f"psnr_{ch}")
                cell["ssim"] = mean(rows, lb, info["dataset"], f"ssim_{ch}")
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


def table_rows(study: Study, t: dict, metric: str) -> tuple[list[str], list[list[str]]]:
    spec = study.spec
    with_pub = spec.published is not None and bool(spec.published.rows)
    nc = spec.published.not_comparable if spec.published else {}
    headers = ["Model"]
    for r in spec.roles.values():
        headers += [f"{r.title}: ours", f"{r.title}: study"] if with_pub else [r.title]
    rows = []
    for r in t["rows"]:
        if r["label"] is None and not any(c["published"] for c in r["cells"].values()):
            continue
        line = [r["title"]]
        for role in spec.roles:
            c = r["cells"][role]
            ours = (
                "missing" if role not in study.inputs.roles else fmt(c[metric], 2 if metric == "psnr" else 4)
            )
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


def cross_table(study: Study) -> tuple[list[str], list[list[str]]]:
    """Every model under every protocol: what a model trained on one degradation scores on the other."""
    protocols, roles = study.setup.protocols, study.inputs.roles
    headers = ["Model", "trained on"]
    for proto in protocols:
        for role in roles:
            headers.append(f"{study.spec.roles[role].title}, {proto} protocol ({channel(proto).upper()})")
    rows = []
    interps = interpolations(study)
    for lb in interps + model_order(study):
        if lb in interps:
            title, trained = short_title(study, lb), "—"
        else:
            m = study.models[lb]
            title = row_title(study, m["row"], lb)
            trained = trained_on(m["protocol"]) if m["protocol"] else "its own data"
        line = [title, trained]
        for proto in protocols:
            ch = channel(proto)
            for info in roles.values():
                p = mean(study.rows(proto), lb, info["dataset"], f"psnr_{ch}")
                s = mean(study.rows(proto), lb, info["dataset"], f"ssim_{ch}")
                line.append(f"{fmt(p, 2)} / {fmt(s, 4)}")
        rows.append(line)
    return headers, rows


def write_tables(study: Study) -> dict[str, str]:
    """The study-layout tables as Markdown and CSV files (for READMEs and spreadsheets)."""
    tdir = study.setup.out / "tables"
    out = {}
    for proto in study.setup.protocols:
        t = study_tables(study, proto)
        for metric in ("psnr", "ssim"):
            h, rows = table_rows(study, t, metric)
            p = tdir / f"table_{metric}_{proto}.md"
            pub = "; study = its published numbers" if study.spec.published else ""
            head = (
                f"{metric.upper()} (x{study.setup.scale}, {proto} protocol, {channel(proto).upper()}){pub}."
            )
            write_text(p, head + "\n\n" + "\n".join(md_table(h, rows)) + "\n")
            buf = io.StringIO(newline="")
            w = csv.writer(buf)
            w.writerow(h)
            w.writerows(rows)
            write_text(tdir / f"table_{metric}_{proto}.csv", buf.getvalue())
            out[f"{metric}_{proto}"] = str(p)
    return out


def write_readme_assets(study: Study) -> dict[str, str]:
    """A figure and a table meant to be copied into a README: OUT/readme/figure.png and table.md."""
    rd = study.setup.out / "readme"
    out = {}
    panels = study.figures.panels
    first = next(iter(study.inputs.roles), "")
    pn = panels.get(f"{first}/{study.setup.protocols[0]}") or next(iter(panels.values()), None)
    if pn:
        with atomic_path(rd / "figure.png") as tmp:
            shutil.copyfile(pn["path"], tmp)
        out["figure"] = str(rd / "figure.png")
    lines = []
    for proto in study.setup.protocols:
        t = study_tables(study, proto)
        ch = channel(proto)
        roles = [r for r in study.spec.roles if r in study.inputs.roles]
        head = ["Model"] + [f"{study.spec.roles[r].title} PSNR / SSIM" for r in roles]
        lines.append(f"**{proto} protocol** (x{study.setup.scale}, {ch.upper()}, {study.spec.name} study)")
        lines.append("")
        body = []
        for r in t["rows"]:
            if r["label"] is None:
                continue
            cells = [f"{fmt(r['cells'][x]['psnr'], 2)} / {fmt(r['cells'][x]['ssim'], 4)}" for x in roles]
            body.append([r["title"]] + cells)
        lines += md_table(head, body)
        lines.append("")
    write_text(rd / "table.md", "\n".join(lines))
    out["table"] = str(rd / "table.md")
    return out
