"""pydantic's validation errors as srlab's one-line :class:`~srlab.errors.ConfigError` messages.

A message names the key path (``stages.gan.optim.lr``), the bad value and what is expected; an unknown key
names the closest valid key of its section (or lists them), a value outside a fixed set the closest choice.
The schema is walked from the root model to find what a location expects.
"""

from __future__ import annotations

import difflib
import types
import typing
from typing import Annotated, Any

from pydantic import BaseModel

__all__ = ["error_message", "is_section"]

# pydantic's error kinds (the part before "_") -> what srlab says is expected
_EXPECTED = {
    "int": "int",
    "float": "float",
    "bool": "bool",
    "string": "str",
    "list": "a list",
    "tuple": "a list",
}
_EXPECTED.update(dict.fromkeys(("dict", "model"), "a mapping"))


def is_section(tp: Any) -> bool:
    """Whether ``tp`` is a schema section (a pydantic model class)."""
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _dotted(loc: tuple) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")


def _unwrap(tp: Any) -> Any:
    """The type inside ``X | None`` and ``Annotated[X, ...]``."""
    if typing.get_origin(tp) is Annotated:
        return _unwrap(typing.get_args(tp)[0])
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _unwrap(args[0]) if len(args) == 1 else tp
    return tp


def _union_members(tp: Any) -> list:
    """The members of a union of several types (``str | list[X]``), else []."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return [_unwrap(a) for a in typing.get_args(tp) if a is not type(None)]
    return []


def _strip_union_tags(root: type[BaseModel], loc: tuple) -> tuple:
    """``loc`` without the entries pydantic inserts after a union to name the member it tried."""
    out: list = []
    skip = False
    for key in loc:
        if skip:
            skip = False
            continue
        out.append(key)
        skip = len(_union_members(_unwrap(_type_at(root, tuple(out)) or int))) > 1
    return tuple(out)


def _type_at(root: type[BaseModel], loc: tuple) -> Any:
    """The schema's type at an error location (None where the schema says nothing)."""
    tp: Any = root
    for key in loc:
        tp = _unwrap(tp)
        members = _union_members(tp)
        if len(members) > 1:  # the member that can hold this key: a list for an index, else a section
            fits = [m for m in members if (typing.get_origin(m) in (list, tuple)) == isinstance(key, int)]
            tp = _unwrap(fits[0]) if fits else tp
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if is_section(tp):
            f = tp.model_fields.get(key)
            tp = f.annotation if f is not None else None
        elif origin is dict and args:
            tp = args[1]
        elif origin in (list, tuple) and args and isinstance(key, int):
            tp = args[key] if origin is tuple and key < len(args) else args[0]
        else:
            return None
    return _unwrap(tp)


def _unknown_key(root: type[BaseModel], loc: tuple) -> str:
    where, parent = _dotted(loc), _dotted(loc[:-1])
    section = _type_at(root, loc[:-1])
    names = list(section.model_fields) if is_section(section) else []
    close = difflib.get_close_matches(str(loc[-1]), names, n=1, cutoff=0.5)
    hint = f"; did you mean {(parent + '.' if parent else '') + close[0]!r}?" if close else ""
    valid = f" (valid keys here: {', '.join(names)})" if not close and names else ""
    return f"unknown config key {where!r}{hint}{valid}"


def error_message(err: dict, root: type[BaseModel]) -> str:
    """One line for one entry of ``ValidationError.errors()`` raised validating ``root``."""
    loc, kind, value = _strip_union_tags(root, tuple(err["loc"])), err["type"], err.get("input")
    path = _dotted(loc)
    if kind == "extra_forbidden":
        return _unknown_key(root, loc)
    if kind == "literal_error":
        choices = [str(a) for a in typing.get_args(_type_at(root, loc))]
        close = difflib.get_close_matches(value, choices, n=1) if isinstance(value, str) else []
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"{path}: {value!r} is not one of {' | '.join(repr(c) for c in choices)}{hint}"
    if kind == "missing" and loc and isinstance(loc[-1], int):  # a fixed-length list that is too short
        n = len(typing.get_args(_type_at(root, loc[:-1])))
        return f"{_dotted(loc[:-1])}: expected {n} values, got {len(value)}"
    if kind in ("too_short", "too_long"):
        ctx = err.get("ctx") or {}
        n = ctx.get("max_length", ctx.get("min_length"))
        return f"{path}: expected {n} values, got {ctx.get('actual_length')}"
    want = _EXPECTED.get(kind.split("_")[0])
    if want:
        return f"{path}: expected {want}, got {value!r}"
    return f"{path}: {err['msg']} (got {value!r})"
