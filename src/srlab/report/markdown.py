"""The one Markdown table writer (reports, eval tables, README assets)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["md_cell", "md_table"]

_SEP = {"l": ":---", "r": "---:", "c": ":---:"}


def md_cell(text: Any) -> str:
    """A table cell: pipes escaped, line breaks folded, so a value never breaks the table."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def md_table(
    headers: Sequence[Any], rows: Sequence[Sequence[Any]], align: str | Sequence[str] = ""
) -> list[str]:
    """Lines of a GitHub-flavoured Markdown table. ``align``: one of ``l``/``r``/``c`` per column (a string
    such as ``"lrr"``); missing entries default to left for the first column and right for the others."""
    n = len(headers)
    al = list(align) + [""] * n
    for i in range(n):
        if al[i] not in _SEP:
            al[i] = "l" if i == 0 else "r"
    for r in rows:
        if len(r) != n:
            raise ValueError(f"table row has {len(r)} cells for {n} headers: {list(r)!r}")
    lines = [
        "| " + " | ".join(md_cell(h) for h in headers) + " |",
        "|" + "|".join(_SEP[a] for a in al[:n]) + "|",
    ]
    lines += ["| " + " | ".join(md_cell(c) for c in r) + " |" for r in rows]
    return lines
