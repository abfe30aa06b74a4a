"""The one YAML reader: every YAML file srlab reads (training configs, study specs, overrides) goes through
:func:`load_yaml` / :func:`read_yaml`.

``yaml.safe_load`` builds no objects but it follows aliases: ten nested anchors of ten aliases each are a
few hundred bytes that stand for 10^10 values, which any later deep copy, merge, dump or error message
makes real. Here the document is first *composed* (nodes only; an alias is the same node object again) and
its expanded size is counted per distinct node, so a document whose values, aliases followed, would exceed
:data:`MAX_NODES` is refused before anything is built, as is a recursive alias, nesting deeper than
:data:`MAX_DEPTH` and a text larger than :data:`MAX_BYTES`. Errors are one
:class:`~srlab.errors.ConfigError` line naming the file and line, quoting at most ~200 characters.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from srlab.errors import ConfigError, shown

__all__ = ["MAX_BYTES", "MAX_DEPTH", "MAX_NODES", "YamlSyntaxError", "load_yaml", "read_yaml"]

MAX_BYTES = 4 << 20  # srlab's YAML files are configs of a few kB
MAX_NODES = 200_000  # values (keys, items, scalars) with every alias followed
MAX_DEPTH = 100


class YamlSyntaxError(ConfigError):
    """The text is not valid YAML (a caller may then take it as a plain string, as overrides do)."""


def read_yaml(path: str | os.PathLike) -> Any:
    """The document in the YAML file ``path`` (see :func:`load_yaml`); a missing file is one line too."""
    path = Path(path)
    try:
        if path.is_file() and path.stat().st_size > MAX_BYTES:
            raise ConfigError(
                f"{path}: {path.stat().st_size:,} bytes is not a config (at most {MAX_BYTES:,}); check the file"
            )
        text = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a YAML file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    return load_yaml(text, source=str(path))


def load_yaml(text: str | bytes, *, source: str = "<text>") -> Any:
    """``yaml.safe_load(text)`` with bounds: ConfigError for invalid YAML, a text past :data:`MAX_BYTES`,
    aliases that expand past :data:`MAX_NODES` values, a recursive alias or nesting past :data:`MAX_DEPTH`."""
    if isinstance(text, bytes):
        if len(text) > MAX_BYTES:
            raise ConfigError(f"{source}: {len(text):,} bytes is not a config (at most {MAX_BYTES:,})")
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{source}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    elif len(text) > MAX_BYTES:
        raise ConfigError(f"{source}: {len(text):,} characters is not a config (at most {MAX_BYTES:,})")
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_size(node, source)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise YamlSyntaxError(f"{source}:{where} is not valid YAML ({shown(problem, quote=False)})") from None
    except RecursionError:
        raise ConfigError(f"{source}: nested deeper than srlab reads; flatten the file") from None
    finally:
        loader.dispose()


def _check_size(root, source: str) -> None:
    """Count the values ``root`` stands for with every alias followed, each distinct node counted once
    (memoised), without recursion; refuse past the limits."""
    sizes: dict[int, int] = {}
    active: set[int] = set()
    stack: list[tuple[Any, int, bool]] = [(root, 0, False)]
    while stack:
        node, depth, done = stack.pop()
        key = id(node)
        if done:
            active.discard(key)
            kids = _children(node)
            total = 1 + sum(sizes[id(k)] for k in kids)
            if total > MAX_NODES:
                line = node.start_mark.line + 1 if node.start_mark else "?"
                raise ConfigError(
                    f"{source}: line {line}: its aliases expand to more than {MAX_NODES:,} values (an alias "
                    "bomb?); refused before reading it; write the values out or use fewer aliases"
                )
            sizes[key] = total
            continue
        if key in sizes:
            continue
        if key in active:
            line = node.start_mark.line + 1 if node.start_mark else "?"
            raise ConfigError(f"{source}: line {line}: an alias refers to the value that holds it; remove it")
        if depth > MAX_DEPTH:
            raise ConfigError(f"{source}: nested deeper than {MAX_DEPTH} levels; flatten the file")
        if isinstance(node, yaml.ScalarNode):
            sizes[key] = 1
            continue
        active.add(key)
        stack.append((node, depth, True))
        for k in _children(node):
            if id(k) not in sizes:
                stack.append((k, depth + 1, False))


def _children(node) -> list:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []
