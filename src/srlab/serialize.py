"""Plain JSON for everything srlab writes (run summaries, result files, metadata).

One rule for values JSON cannot hold: a non-finite float (a diverged loss, an infinite PSNR of identical
images) becomes ``null``, so every file parses with strict JSON readers and a reader never mistakes the
string ``"inf"`` for a number; paths become strings, tuples and sets lists, numpy scalars Python numbers.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import PurePath
from typing import Any

__all__ = ["dumps", "jsonable"]


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
        return v if math.isfinite(v) else None
    item = getattr(v, "item", None)  # numpy / torch scalars
    if callable(item) and getattr(v, "ndim", 1) == 0:
        return jsonable(item())
    return v


def dumps(v: Any, *, indent: int | None = 1) -> str:
    """Strict JSON text of :func:`jsonable` ``(v)``."""
    return json.dumps(jsonable(v), indent=indent, allow_nan=False)
