"""Evaluation results: per-image rows -> summaries, a paper-style Markdown table, CSV and JSON files.

A *row* is a dict; evaluation rows have the fields of :data:`RESULT_FIELDS` (``model, dataset, scale, image,
psnr_y, ssim_y, psnr_rgb, ssim_rgb, runtime_s, h, w``) and may carry more. A *header* is a JSON-able dict
that says how the numbers were made (protocol, versions, device, models); it is written with the rows.

- :func:`summarize` averages per-image rows per (model, dataset, scale) (mean of per-image values, as papers do).
- :func:`markdown_table` prints them as papers print them: one row per model, one column per data set and
  scale, cells ``PSNR / SSIM``.
- :func:`incomplete_sets` is the one completeness rule: the data sets (and scales) an evaluation did not
  cover whole; tables mark their columns (``Set5 (4/5) ×2``), :func:`mark_complete` writes it into the header,
  :func:`failures` turns it into the reasons ``srlab eval`` exits non-zero.
- :func:`tables_markdown` is the one results-table builder (console and ``results.md``).
- :func:`write_results` writes ``results.json`` (header + summary + rows; the schema is in
  ``docs/eval_json_schema.md``), ``results.csv`` (per-image rows), ``summary.csv`` and ``results.md``.

No dependency beyond the standard library and srlab's writer.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from srlab.atomic import write_json, write_text
from srlab.errors import DataError
from srlab.report.markdown import md_table
from srlab.serialize import loads

__all__ = [
    "JSON_SCHEMA_VERSION",
    "METRIC_FIELDS",
    "RESULT_FIELDS",
    "failures",
    "incomplete_sets",
    "mark_complete",
    "markdown_table",
    "perceptual_fields",
    "protocol_lines",
    "read_results",
    "summarize",
    "tables_markdown",
    "write_results",
]

JSON_SCHEMA_VERSION = "srlab-eval/1"
RESULT_FIELDS = (
    "model",
    "dataset",
    "scale",
    "image",
    "psnr_y",
    "ssim_y",
    "psnr_rgb",
    "ssim_rgb",
    "runtime_s",
    "h",
    "w",
)
PERCEPTUAL_FIELDS = ("lpips", "lpips_vgg", "dists", "niqe")  # srlab.eval.perceptual.PERCEPTUAL's columns
METRIC_FIELDS = ("psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb", *PERCEPTUAL_FIELDS, "runtime_s")
_LOWER_BETTER = ("lpips", "dists", "niqe", "runtime")
_GROUP = ("model", "dataset", "scale")


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def summarize(rows: Iterable[dict], by: Sequence[str] = _GROUP) -> list[dict]:
    """Mean of each numeric metric per group (first-seen order); ``n`` counts the rows of the group.

    Rows that are already summaries (they have ``n`` and no ``image``) are returned unchanged.
    """
    rows = list(rows)
    if rows and all("n" in r and "image" not in r for r in rows):
        return rows
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(tuple(r.get(k) for k in by), []).append(r)
    out = []
    for key, grp in groups.items():
        s: dict[str, Any] = dict(zip(by, key))
        s["n"] = len(grp)
        fields = [f for f in METRIC_FIELDS if any(f in r for r in grp)]
        fields += [
            f
            for f in grp[0]
            if f not in fields and f not in by and f not in ("image", "index", "h", "w", "n")
        ]
        for f in fields:
            vals = [r[f] for r in grp if _is_num(r.get(f))]
            if vals and len(vals) == len(grp):
                s[f] = math.fsum(vals) / len(vals)
        out.append(s)
    return out


def _fmt(v: Any, digits: int) -> str:
    if not _is_num(v):
        return "–"
    if math.isinf(v):
        return "inf"
    return f"{v:.{digits}f}"


def markdown_table(
    rows: Iterable[dict],
    *,
    channel: str = "y",
    metrics: Sequence[str] = ("psnr", "ssim"),
    digits: Sequence[int] | None = None,
    models: Sequence[str] | None = None,
    datasets: Sequence[str] | None = None,
    scales: Sequence[int] | None = None,
    model_header: str = "Model",
    bold_best: bool = True,
    incomplete: Mapping[tuple[str, int], tuple[int, int]] | None = None,
) -> str:
    """A Markdown table as papers print it: models as rows, ``dataset ×scale`` columns, ``PSNR / SSIM`` cells.

    ``rows`` are per-image rows or :func:`summarize` output. ``channel`` picks ``psnr_y``/``ssim_y`` or the
    ``_rgb`` fields; ``metrics`` may also name e.g. ``("lpips",)`` or ``("runtime_s",)`` (full field names
    are used as they are). The best value of each column is bold when several models are compared
    (highest, or lowest for ``lpips``/``runtime_s``). ``incomplete`` maps ``(dataset, scale)`` to ``(used,
    expected)`` for the columns whose set was not evaluated whole (:func:`incomplete_sets`): their headers
    say so, ``Set5 (4/5) ×2``.
    """
    summ = summarize(rows)
    fields = [m if m in METRIC_FIELDS or m.endswith(("_y", "_rgb")) else f"{m}_{channel}" for m in metrics]
    if digits is None:
        digits = [4 if f.startswith(("ssim", "lpips", "dists", "niqe", "runtime")) else 2 for f in fields]
    models = list(models) if models else list(dict.fromkeys(r["model"] for r in summ))
    datasets = list(datasets) if datasets else list(dict.fromkeys(r["dataset"] for r in summ))
    scales = list(scales) if scales else sorted({int(r["scale"]) for r in summ})
    index = {(r["model"], r["dataset"], int(r["scale"])): r for r in summ}
    cols = [(d, s) for d in datasets for s in scales if any((m, d, s) in index for m in models)]
    best: dict[tuple, list] = {}
    if bold_best and len(models) > 1:
        for d, s in cols:
            for f in fields:
                vals = [index[(m, d, s)].get(f) for m in models if (m, d, s) in index]
                vals = [v for v in vals if _is_num(v)]
                if vals:
                    best[(d, s, f)] = min(vals) if f.startswith(_LOWER_BETTER) else max(vals)
    names = " / ".join(
        f.split("_")[0].upper() if f.endswith(("_y", "_rgb")) else f.upper() if f in PERCEPTUAL_FIELDS else f
        for f in fields
    )
    body = []
    for m in models:
        cells = []
        for d, s in cols:
            r = index.get((m, d, s))
            if r is None:
                cells.append("–")
                continue
            parts = []
            for f, dg in zip(fields, digits):
                txt = _fmt(r.get(f), dg)
                if (d, s, f) in best and _is_num(r.get(f)) and _fmt(best[(d, s, f)], dg) == txt:
                    txt = f"**{txt}**"
                parts.append(txt)
            cells.append(" / ".join(parts))
        body.append([m, *cells])
    marks = {k: f" ({u}/{e})" for k, (u, e) in (incomplete or {}).items()}
    head = [model_header, *(f"{d}{marks.get((d, s), '')} ×{s}" for d, s in cols)]
    if all(f in PERCEPTUAL_FIELDS for f in fields):  # perceptual metrics carry their own colour rule
        lines = [f"{names} (lower is better)", ""]
    else:
        lines = [f"{names} ({channel.upper() if channel == 'y' else 'RGB'})", ""]
    return "\n".join(lines + md_table(head, body, "l" + "c" * len(cols)))


def mark_complete(header: dict) -> dict:
    """Set every header data set's ``complete`` flags (per scale) by :func:`incomplete_sets`; returns it."""
    missing = incomplete_sets(header)
    for d in header.get("datasets", []):
        d["complete"] = {str(s): (d["name"], int(s)) not in missing for s in (d.get("used") or {})}
    return header


def failures(header: dict) -> list[str]:
    """What makes an evaluation not the number its set names promise, one phrase each: a set not
    evaluated whole (a ``--set-path`` subset only is marked in the tables, not counted here) and SR files
    that could not be paired with their ground truth."""
    out = [
        f"{d} x{s}: {v['used']} of {v['expected']} images"
        for (d, s), v in incomplete_sets(header).items()
        if not v["subset"]
    ]
    bad = header.get("mismatches") or []
    if bad:
        out.append(f"{len(bad)} SR/ground-truth files not scored (the 'mismatch:' lines above)")
    return out


def tables_markdown(summary: Sequence[dict], header: dict) -> list[str]:
    """The result tables as papers print them: Y, RGB and (when measured) perceptual, each followed by a
    blank line, with incomplete sets marked; what ``srlab eval`` prints and ``results.md`` holds."""
    if not summary:
        return []
    marks = {k: (v["used"], v["expected"]) for k, v in incomplete_sets(header).items()}
    out = [markdown_table(summary, channel="y", incomplete=marks), ""]
    out += [markdown_table(summary, channel="rgb", incomplete=marks), ""]
    extra = perceptual_fields(summary)
    if extra:
        out += [markdown_table(summary, channel="rgb", metrics=extra, incomplete=marks), ""]
    return out


def perceptual_fields(rows: Iterable[dict]) -> tuple[str, ...]:
    """The perceptual columns (:data:`PERCEPTUAL_FIELDS`) that the rows carry, in that order."""
    rows = list(rows)
    return tuple(f for f in PERCEPTUAL_FIELDS if any(f in r for r in rows))


def _needed(d: dict) -> tuple[int, int]:
    """(images found, images a whole evaluation uses) of one header data set: for a shard its own share,
    else every image found and, for a known set, at least its catalogued count."""
    if "shard_files" in d:
        share = int(d["shard_files"])
        return share, share
    found = int(d.get("found") or 0)
    return found, max(int(d.get("expected") or 0), found)


def incomplete_sets(header: dict) -> dict[tuple[str, int], dict[str, Any]]:
    """The ``(dataset, scale)`` pairs of an evaluation header whose set was not evaluated whole: the one
    completeness rule, used for the header's ``complete`` flags (:func:`mark_complete`), the tables' marks,
    ``results.md`` and the exit status of ``srlab eval`` alike.

    Each value holds ``used``, ``expected`` (the images found, and for a known set at least its catalogued
    count; for a ``--shard`` run the images of its share: a share is partial by design), ``skipped`` (images
    found but not evaluated: unreadable, too small) and ``subset`` (a folder given with ``--set-path`` that
    holds fewer images than the known set: a deliberate subset, unless some of them were skipped too).
    """
    out = {}
    for d in header.get("datasets", []):
        found, expected = _needed(d)
        for s, used in (d.get("used") or {}).items():
            used = int(used)
            if used < expected:
                out[(d["name"], int(s))] = {
                    "used": used,
                    "expected": expected,
                    "skipped": found - used,
                    "subset": bool(d.get("set_path")) and used == found,
                }
    return out


def protocol_lines(header: dict) -> list[str]:
    """Human-readable lines describing how the numbers were made (for the Markdown report)."""
    out = []
    proto = header.get("protocol") or {}
    if proto:
        out.append(f"- protocol: **{proto.get('name', '?')}** — {proto.get('summary', '')}".rstrip(" —"))
        for key in ("hr", "degradation", "lr_rounding", "sr_rounding", "crop", "y_channel", "rgb", "ssim"):
            if key in proto:
                out.append(f"- {key.replace('_', ' ')}: {proto[key]}")
        for key in ("grayscale", "y_models"):
            if key in proto:
                out.append(f"- {key.replace('_', ' ')}: {proto[key]}")
    for name, desc in (header.get("metrics") or {}).items():
        out.append(f"- {name}: {desc}")
    if header.get("source"):
        out.append(f"- source: {header['source']}")
    for key in ("srlab_version", "torch_version", "device", "created"):
        if key in header:
            out.append(f"- {key.replace('_', ' ')}: {header[key]}")
    for m in header.get("models", []):
        if "sr_dir" in m:  # srlab eval --sr: images made elsewhere
            out.append(f"- SR images {m.get('label')}: {m['sr_dir']} ({m.get('files', '?')} files)")
            continue
        ck = m.get("checkpoint")
        extra = f", checkpoint {ck} (sha256 {m.get('sha256', '?')[:16]}…)" if ck else ""
        d = m.get("descriptor") or {}
        out.append(
            f"- model {m.get('label')}: {d.get('arch', '?')} x{d.get('scale', '?')}, "
            f"{d.get('params', 0):,} params, colour {d.get('color', '?')}{extra}"
        )
    return out


def _csv_fields(rows: Sequence[dict], first: Sequence[str]) -> list[str]:
    fields = [f for f in first if any(f in r for r in rows)]
    for r in rows:
        for k in r:
            if k not in fields:
                fields.append(k)
    return fields


def _write_csv(path: Path, rows: Sequence[dict], first: Sequence[str]) -> None:
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=_csv_fields(rows, first), extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in r.items()})
    write_text(path, buf.getvalue())


def write_results(
    rows: Sequence[dict],
    header: dict,
    out_dir: str | os.PathLike,
    *,
    stem: str = "results",
    title: str = "Evaluation results",
) -> dict[str, Path]:
    """Write ``{stem}.json``, ``{stem}.csv`` (per-image), ``summary.csv`` and ``{stem}.md`` into ``out_dir``.

    Returns the paths by kind (``json``, ``csv``, ``summary_csv``, ``md``). Infinite values (PSNR of identical
    images) are ``"Infinity"`` in JSON (:mod:`srlab.serialize`) and ``inf`` in CSV. Every file is written
    atomically.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = list(rows)
    summ = summarize(rows)
    paths = {
        "json": out / f"{stem}.json",
        "csv": out / f"{stem}.csv",
        "summary_csv": out / ("summary.csv" if stem == "results" else f"{stem}_summary.csv"),
        "md": out / f"{stem}.md",
    }
    doc = {"schema": JSON_SCHEMA_VERSION, "header": header, "summary": summ, "rows": rows}
    write_json(paths["json"], doc)
    _write_csv(paths["csv"], rows, RESULT_FIELDS)
    _write_csv(paths["summary_csv"], summ, (*_GROUP, "n", *METRIC_FIELDS))
    md = [f"# {title}", "", *tables_markdown(summ, header)]
    lines = protocol_lines(header)
    if lines:
        md += ["## How these numbers were made", "", *lines, ""]
    skipped = [(d.get("name"), s) for d in header.get("datasets", []) for s in d.get("skipped", [])]
    if skipped:
        md += ["## Skipped images", ""]
        md += [f"- {name}: {s.get('image')}: {s.get('reason')}" for name, s in skipped]
        md.append("")
    bad = header.get("mismatches") or []
    if bad:
        md += ["## Files not scored", ""]
        md += [f"- {b.get('model')}: {b.get('side')} {b.get('file')}: {b.get('reason')}" for b in bad]
        md.append("")
    write_text(paths["md"], "\n".join(md))
    return paths


def read_results(path: str | os.PathLike) -> dict:
    """Load a ``results.json`` written by :func:`write_results`: non-finite values come back exactly
    (:mod:`srlab.serialize`: NaN stays NaN, infinity stays infinity)."""
    try:
        doc = loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"{path}: cannot read it as an srlab evaluation file ({exc})") from None
    if not isinstance(doc, dict) or doc.get("schema") != JSON_SCHEMA_VERSION:
        schema = doc.get("schema") if isinstance(doc, dict) else None
        raise DataError(f"{path}: not an srlab evaluation file (schema {schema!r})")
    return doc
