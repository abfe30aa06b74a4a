"""Plain JSON for everything srlab writes and reads back (run summaries, result files, metadata).

One rule for values JSON cannot hold, so that NaN and infinity stay distinct and come back exactly: a
non-finite float is written as one of the strings ``"NaN"``, ``"Infinity"`` or ``"-Infinity"`` (the tokens
JavaScript and Python's non-strict JSON use), and :func:`loads` turns exactly those strings back into floats.
Every file therefore parses with strict JSON readers, a diverged loss (NaN) is never read back as a perfect
score (inf), and ``null`` keeps meaning "no value". Paths become strings, tuples and sets lists, numpy and
torch scalars Python numbers.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import PurePath
from typing import Any

__all__ = ["NON_FINITE", "dumps", "jsonable", "loads"]

NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _float(v: float) -> float | str:
    if math.isfinite(v):
        return v
    if math.isnan(v):
        return "NaN"
    return "Infinity" if v > 0 else "-Infinity"


def jsonable(v: Any) -> Any:
    """``v`` as JSON-able Python values (see the module docstring)."""
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return {f.name: jsonable(getattr(v, f.name)) for f in dataclasses.fields(v)}
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, set, frozenset)):
        items = sorted(v, key=str) if isinstance(v, (set, frozenset)) else v
        return [jsonable(x) for x in items]
    if isinstance(v, PurePath):
        return str(v)
    if isinstance(v, bool) or v is None or isinstance(v, (int, str)):
        return v
    if isinstance(v, float):
        return _float(v)
    item = getattr(v, "item", None)  # numpy / torch scalars
    if callable(item) and getattr(v, "ndim", 1) == 0:
        return jsonable(item())
    return v


def dumps(v: Any, *, indent: int | None = 1, sort_keys: bool = False, default: Any = None) -> str:
    """Strict JSON text of :func:`jsonable` ``(v)`` (``default`` as for :func:`json.dumps`: what to make of
    values JSON has no type for)."""
    return json.dumps(jsonable(v), indent=indent, allow_nan=False, sort_keys=sort_keys, default=default)


def _restore(v: Any) -> Any:
    if isinstance(v, str):
        return NON_FINITE.get(v, v)
    if isinstance(v, list):
        return [_restore(x) for x in v]
    if isinstance(v, dict):
        return {k: _restore(x) for k, x in v.items()}
    return v


def _no_constants(token: str) -> Any:
    raise ValueError(f"non-standard JSON constant {token}")


def loads(text: str | bytes) -> Any:
    """Parse strict JSON written by :func:`dumps`: the non-finite strings come back as floats. The bare
    ``NaN``/``Infinity`` tokens of non-strict writers are refused (ValueError), as strict readers do."""
    return _restore(json.loads(text, parse_constant=_no_constants))
