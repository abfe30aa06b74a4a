"""One report, two renderings: ``report.md`` (GitHub Markdown, images by relative path) and a self-contained
``report.html`` (the same content, PNG figures embedded as base64 ``data:`` URIs, no external resource).

A report is a :class:`Document`: an ordered list of blocks (headings, paragraphs, warnings, tables, figures,
code, lists). Inline markup in text is limited to ``**bold**``, ```code``` and ``[text](url)``, which both
renderings understand. Only the standard library is used.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from srlab.atomic import write_text
from srlab.errors import SrlabError
from srlab.report.markdown import md_table

__all__ = ["Document", "write_report"]

_INLINE = re.compile(r"(\*\*[^*]+\*\*|`[^`]+`|\[[^\]]+\]\([^)\s]+\))")


def _inline_html(text: str) -> str:
    out = []
    for part in _INLINE.split(str(text)):
        if not part:
            continue
        if part.startswith("**") and part.endswith("**") and len(part) > 4:
            out.append(f"<strong>{html.escape(part[2:-2])}</strong>")
        elif part.startswith("`") and part.endswith("`") and len(part) > 2:
            out.append(f"<code>{html.escape(part[1:-1])}</code>")
        elif part.startswith("[") and "](" in part and part.endswith(")"):
            label, url = part[1:-1].split("](", 1)
            out.append(f'<a href="{html.escape(url, quote=True)}">{html.escape(label)}</a>')
        else:
            out.append(html.escape(part))
    return "".join(out)


def _slug(text: str) -> str:
    s = re.sub(r"[^a-z0-9]+", "-", re.sub(r"[`*]", "", text).lower()).strip("-")
    return s or "section"


@dataclass
class Document:
    """An ordered list of report blocks with Markdown and HTML renderings."""

    title: str
    blocks: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    # -- building --------------------------------------------------------------------------------------
    def heading(self, text: str, level: int = 2) -> Document:
        self.blocks.append(("heading", {"text": text, "level": int(level)}))
        return self

    def paragraph(self, text: str) -> Document:
        self.blocks.append(("paragraph", {"text": text}))
        return self

    def warning(self, text: str) -> Document:
        """A loud notice (substitutions, random perceptual weights, missing data)."""
        self.blocks.append(("warning", {"text": text}))
        return self

    def bullets(self, items: Sequence[str]) -> Document:
        self.blocks.append(("bullets", {"items": [str(i) for i in items]}))
        return self

    def code(self, text: str, lang: str = "") -> Document:
        self.blocks.append(("code", {"text": text.rstrip("\n"), "lang": lang}))
        return self

    def table(
        self,
        headers: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        caption: str = "",
        align: Sequence[str] | None = None,
    ) -> Document:
        """A table; ``align`` per column: 'l', 'r' or 'c' (default: first column left, the rest right)."""
        hs = [str(h) for h in headers]
        al = list(align) if align else ["l"] + ["r"] * (len(hs) - 1)
        self.blocks.append(
            (
                "table",
                {
                    "headers": hs,
                    "rows": [[("" if c is None else str(c)) for c in r] for r in rows],
                    "caption": caption,
                    "align": al,
                },
            )
        )
        return self

    def figure(self, path: str, caption: str = "", alt: str = "") -> Document:
        """A PNG figure; ``path`` is relative to the report folder."""
        self.blocks.append(("figure", {"path": str(path), "caption": caption, "alt": alt or caption}))
        return self

    # -- rendering -------------------------------------------------------------------------------------
    def to_markdown(self) -> str:
        lines = [f"# {self.title}", ""]
        for kind, b in self.blocks:
            if kind == "heading":
                lines += ["#" * max(2, min(6, b["level"])) + " " + b["text"], ""]
            elif kind == "paragraph":
                lines += [b["text"], ""]
            elif kind == "warning":
                lines += ["> **Warning:** " + b["text"].replace("\n", "\n> "), ""]
            elif kind == "bullets":
                lines += [f"- {i}" for i in b["items"]] + [""]
            elif kind == "code":
                lines += [f"```{b['lang']}", b["text"], "```", ""]
            elif kind == "table":
                if b["caption"]:
                    lines += [f"**{b['caption']}**", ""]
                lines += md_table(b["headers"], b["rows"], b["align"])
                lines.append("")
            elif kind == "figure":
                lines += [f"![{b['alt']}]({b['path']})", ""]
                if b["caption"]:
                    lines += [f"*{b['caption']}*", ""]
        return "\n".join(lines).rstrip() + "\n"

    def to_html(self, base_dir: str | Path) -> str:
        """The HTML rendering with every figure read from ``base_dir`` and embedded as base64."""
        base = Path(base_dir)
        body: list[str] = [f"<h1>{_inline_html(self.title)}</h1>"]
        toc: list[str] = []
        for kind, b in self.blocks:
            if kind == "heading":
                lvl = max(2, min(6, b["level"]))
                sid = _slug(b["text"])
                if lvl == 2:
                    toc.append(f'<li><a href="#{sid}">{_inline_html(b["text"])}</a></li>')
                body.append(f'<h{lvl} id="{sid}">{_inline_html(b["text"])}</h{lvl}>')
            elif kind == "paragraph":
                body.append(f"<p>{_inline_html(b['text'])}</p>")
            elif kind == "warning":
                body.append(f'<div class="warning"><strong>Warning:</strong> {_inline_html(b["text"])}</div>')
            elif kind == "bullets":
                body.append("<ul>" + "".join(f"<li>{_inline_html(i)}</li>" for i in b["items"]) + "</ul>")
            elif kind == "code":
                body.append(f"<pre><code>{html.escape(b['text'])}</code></pre>")
            elif kind == "table":
                cls = {"l": "l", "r": "r", "c": "c"}
                t = ['<div class="tablewrap"><table>']
                if b["caption"]:
                    t.append(f"<caption>{_inline_html(b['caption'])}</caption>")
                t.append(
                    "<thead><tr>"
                    + "".join(
                        f'<th class="{cls.get(a, "l")}">{_inline_html(h)}</th>'
                        for h, a in zip(b["headers"], b["align"])
                    )
                    + "</tr></thead><tbody>"
                )
                for r in b["rows"]:
                    t.append(
                        "<tr>"
                        + "".join(
                            f'<td class="{cls.get(a, "l")}">{_inline_html(c)}</td>'
                            for c, a in zip(r, b["align"])
                        )
                        + "</tr>"
                    )
                t.append("</tbody></table></div>")
                body.append("".join(t))
            elif kind == "figure":
                src = _data_uri(base / b["path"])
                cap = f"<figcaption>{_inline_html(b['caption'])}</figcaption>" if b["caption"] else ""
                body.append(
                    f'<figure><img src="{src}" alt="{html.escape(b["alt"], quote=True)}" '
                    f'data-path="{html.escape(b["path"], quote=True)}">{cap}</figure>'
                )
        nav = f"<nav><strong>Contents</strong><ol>{''.join(toc)}</ol></nav>" if toc else ""
        return (
            '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{html.escape(self.title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<main>\n"
            + body[0]
            + "\n"
            + nav
            + "\n"
            + "\n".join(body[1:])
            + "\n</main>\n</body>\n</html>\n"
        )


def _data_uri(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError:
        raise SrlabError(f"report figure {path} is missing; re-run the report step to draw it") from None
    mime = "image/png" if path.suffix.lower() == ".png" else "image/jpeg"
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


def write_report(doc: Document, out_dir: str | Path, *, stem: str = "report") -> tuple[Path, Path]:
    """Write ``<stem>.md`` and the self-contained ``<stem>.html`` into ``out_dir``; return both paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    md = out / f"{stem}.md"
    ht = out / f"{stem}.html"
    for path, text in ((md, doc.to_markdown()), (ht, doc.to_html(out))):
        write_text(path, text)
    return md, ht


_CSS = """
body{font-family:-apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,"DejaVu Sans",Arial,sans-serif;
 color:#1d1d1f;background:#fafafa;margin:0;line-height:1.45}
main{max-width:1100px;margin:0 auto;padding:24px 28px 60px;background:#fff}
h1{font-size:1.7em;border-bottom:2px solid #0072B2;padding-bottom:6px}
h2{font-size:1.3em;margin-top:1.8em;border-bottom:1px solid #ddd;padding-bottom:3px}
h3{font-size:1.08em;margin-top:1.4em}
code{background:#f1f1f4;padding:1px 4px;border-radius:3px;font-size:.9em}
pre{background:#f6f6f8;padding:10px 12px;overflow-x:auto;border-radius:4px;font-size:.85em}
pre code{background:none;padding:0}
.warning{background:#fff4e5;border-left:5px solid #d55e00;padding:8px 12px;margin:10px 0}
.tablewrap{overflow-x:auto;margin:8px 0 16px}
table{border-collapse:collapse;font-size:.88em}
caption{text-align:left;font-weight:600;padding:4px 0}
th,td{border:1px solid #d6d6dc;padding:4px 8px}
th{background:#eef3f8}
td.r,th.r{text-align:right;font-variant-numeric:tabular-nums}
td.c,th.c{text-align:center}
tbody tr:nth-child(even){background:#fafbfd}
figure{margin:14px 0}
figure img{max-width:100%;height:auto;border:1px solid #e3e3e3}
figcaption{font-size:.88em;color:#444;margin-top:4px}
nav{background:#f6f8fa;border:1px solid #e1e4e8;padding:6px 14px;font-size:.9em;margin-bottom:10px}
nav ol{margin:4px 0;padding-left:20px;columns:2}
"""
