"""Where each value of a recipe comes from: the source comments of a training config, by key path.

A paper recipe (``configs/*_paper.yaml``) gives every value a trailing comment naming its source (a paper
section, an options file of the official code, or "srlab" where nothing is published). This module reads
those comments without a round-trip YAML library: PyYAML's composer gives each key its line, and the comment
is what follows an unquoted ``#`` on that line (or, when the line has none, the comment lines directly above
the key at the same indentation). ``base:`` chains are followed (the file's own comments win over its
base's), ``quick:`` entries are keyed by their dotted key, and :func:`recipe_plan` prints the resolved config
of ``srlab train CONFIG --plan`` with the source of each value: the command line, the ``quick:`` section,
the file (or its base), or srlab's default.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from srlab.errors import ConfigError
from srlab.serialize import dumps
from srlab.train.config import config_to_dict, find_config, load_config, parse_override

__all__ = ["PlanRow", "header_comment", "line_comment", "recipe_plan", "format_plan", "value_sources"]

Path_ = tuple[str, ...]
DEFAULT = "srlab default"
NO_SOURCE = "(no source comment)"


def line_comment(line: str) -> str:
    """The comment that ends a YAML line ('' if none): text after a ``#`` that is outside quotes and starts
    the line or follows whitespace."""
    quote = ""
    i = 0
    while i < len(line):
        ch = line[i]
        if quote:
            if ch == "\\" and quote == '"':
                i += 2
                continue
            if ch == quote:
                if quote == "'" and line[i + 1 : i + 2] == "'":  # '' inside a single-quoted scalar
                    i += 2
                    continue
                quote = ""
        elif ch in "'\"" and (i == 0 or line[i - 1] in " \t[{,:-"):
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[i + 1 :].strip()
        i += 1
    return ""


def _comment_above(lines: list[str], row: int, col: int) -> str:
    """The full-line comments directly above ``row`` at indentation ``col``, joined ('' for the block a file
    starts with: that is the file's header, not the key's source)."""
    out: list[str] = []
    r = row - 1
    while r >= 0:
        text = lines[r]
        stripped = text.lstrip()
        if not stripped.startswith("#") or len(text) - len(stripped) != col:
            break
        out.append(stripped[1:].strip())
        r -= 1
    return "" if r < 0 else " ".join(reversed(out))


def _walk(node: yaml.Node, path: Path_, lines: list[str], out: dict[Path_, str], inherited: str) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = str(key_node.value)
            row, col = key_node.start_mark.line, key_node.start_mark.column
            src = line_comment(lines[row]) or _comment_above(lines, row, col) or inherited
            sub = (*path, key)
            if src:
                out[sub] = src
            # a value on the key's line (a flow mapping or list) shares the line's comment
            _walk(value_node, sub, lines, out, src if value_node.start_mark.line == row else "")
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            src = inherited or line_comment(lines[item.start_mark.line])
            sub = (*path, str(i))
            if src:
                out[sub] = src
            _walk(item, sub, lines, out, src)


def _read(path: Path) -> tuple[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: is not valid YAML ({getattr(exc, 'problem', exc)})") from None
    return text, node


def _base_of(path: Path, node: Any) -> Path | None:
    if not isinstance(node, yaml.MappingNode):
        return None
    for k, v in node.value:
        if k.value == "base" and isinstance(v, yaml.ScalarNode) and v.value:
            b = Path(v.value)
            return b if b.is_absolute() else path.parent / b
    return None


def _chain(path: Path) -> list[tuple[Path, str, Any]]:
    """The file and its ``base:`` files, base first."""
    out: list[tuple[Path, str, Any]] = []
    seen: set[Path] = set()
    p: Path | None = path
    while p is not None:
        p = p.resolve()
        if p in seen:
            raise ConfigError(f"{p}: circular 'base:' chain")
        seen.add(p)
        text, node = _read(p)
        out.append((p, text, node))
        p = _base_of(p, node)
    return out[::-1]


def value_sources(path: str | Path) -> dict[Path_, str]:
    """Key path (a tuple; list items by index, ``quick:`` keys as written) -> source comment, for a config
    file and its ``base:`` chain (the file's own comment wins)."""
    out: dict[Path_, str] = {}
    for _p, text, node in _chain(Path(path)):
        if node is not None:
            _walk(node, (), text.splitlines(), out, "")
    return out


def header_comment(path: str | Path) -> list[str]:
    """The comment block a file starts with (the recipe's description and its source legend)."""
    out: list[str] = []
    text, _node = _read(Path(path))
    for line in text.splitlines():
        s = line.strip()
        if not s.startswith("#"):
            break
        out.append(s[1:].rstrip()[1:] if s[1:2] == " " else s[1:].rstrip())
    return out


# ------------------------------------------------------------------------------------------------- plan
@dataclass
class PlanRow:
    key: str  # dotted path of the resolved value
    value: Any
    source: str  # the comment, "command line: k=v", "quick: ...", srlab default, or (no source comment)


def _leaves(data: Any, path: Path_ = ()) -> list[tuple[Path_, Any]]:
    """Resolved values down to scalars; lists of scalars stay whole (one value: milestones, betas)."""
    if isinstance(data, dict):
        if not data:
            return [(path, {})]
        return [leaf for k, v in data.items() for leaf in _leaves(v, (*path, str(k)))]
    if isinstance(data, list) and any(isinstance(v, (dict, list)) for v in data):
        return [leaf for i, v in enumerate(data) for leaf in _leaves(v, (*path, str(i)))]
    return [(path, data)]


def _covers(pattern: Path_, path: Path_) -> bool:
    """Whether an override key (``*`` matching one component) sets ``path`` or a section above it."""
    return len(pattern) <= len(path) and all(fnmatch.fnmatchcase(p, q) for q, p in zip(pattern, path))


def _has_path(raw: Any, path: Path_) -> bool:
    node = raw
    for part in path:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False
    return True


def _nearest(sources: dict[Path_, str], path: Path_) -> str:
    for n in range(len(path), 0, -1):
        if path[:n] in sources:
            return sources[path[:n]]
    return ""


def recipe_plan(
    name_or_path: str | Path, overrides: list[str] | None = None, *, quick: bool = False
) -> tuple[Path, list[PlanRow]]:
    """The resolved config of a recipe (``base:``, ``quick:`` and command-line overrides applied, validated)
    with each value's source. Returns ``(file, rows)``."""
    path = find_config(name_or_path)
    cfg, _raw = load_config(path, overrides, quick=quick)
    # the file as written (base merged), before quick: and overrides; load_config adds only the name
    _cfg, file_raw = load_config(path)
    sources = value_sources(path)
    cli = [(tuple(k.split(".")), k, v) for k, v in (parse_override(o) for o in overrides or [])]
    quick_keys: list[tuple[Path_, str]] = []
    if quick:
        q = file_raw.get("quick") or {}
        quick_keys = [(tuple(str(k).split(".")), str(k)) for k in q]
    rows: list[PlanRow] = []
    for leaf, value in _leaves(config_to_dict(cfg)):
        if leaf and leaf[0] == "quick":
            continue
        src = ""
        for pattern, key, v in reversed(cli):
            if _covers(pattern, leaf):
                src = f"command line: {key}={dumps(v, indent=None)}"
                break
        if not src:
            for pattern, key in reversed(quick_keys):
                if _covers(pattern, leaf):
                    src = "quick: " + (sources.get(("quick", key)) or NO_SOURCE)
                    break
        if not src:
            if leaf == ("name",) and "name" not in sources:
                src = f"the file's name ({path.name})"
            elif leaf == ("description",) and "description" not in sources:
                src = "the recipe's summary"
            elif not _has_path(file_raw, leaf):
                src = DEFAULT
            else:
                src = _nearest(sources, leaf) or NO_SOURCE
        rows.append(PlanRow(".".join(leaf), value, src))
    return path, rows


def _show(value: Any) -> str:
    if isinstance(value, str):
        return value
    return dumps(value, indent=None)


def format_plan(path: Path, rows: list[PlanRow], *, defaults: bool = False) -> str:
    """The plan as text: the files' header comments (their source legends), then ``key: value  # source``
    (srlab's defaults only with ``defaults=True``; their count otherwise)."""
    out: list[str] = []
    for p, _text, _node in _chain(path):
        out.append(f"{p}:")
        out += [f"  {line}" for line in header_comment(p)]
    shown = [r for r in rows if defaults or r.source != DEFAULT]
    width = min(48, max((len(r.key) + len(_show(r.value)) + 2 for r in shown), default=0))
    out.append("")
    out.append("resolved config (key: value  # source):")
    for r in shown:
        kv = f"{r.key}: {_show(r.value)}"
        out.append(f"  {kv:<{width}}  # {r.source}")
    hidden = len(rows) - len(shown)
    if hidden:
        out.append(f"  ... and {hidden} values at srlab's defaults (--print-config lists every key)")
    return "\n".join(out)
