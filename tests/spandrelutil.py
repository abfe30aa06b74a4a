"""Importing spandrel in tests: with the real torchvision where it works, else the stand-in in tests/stubs/.

spandrel imports torchvision when it is imported (for its LaMa inpainting model). Where no working
torchvision can be imported (the CPU torch pinned here has none), :func:`import_spandrel` gives that one
import the stand-in in tests/stubs/ and removes it from ``sys.modules`` again right after.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

STUBS = Path(__file__).resolve().parent / "stubs"


def drop(prefix: str) -> None:
    for k in [k for k in sys.modules if k == prefix or k.startswith(prefix + ".")]:
        del sys.modules[k]


def import_spandrel():
    try:
        return importlib.import_module("spandrel")
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] == "spandrel":
            pytest.skip('spandrel is not installed (pip install --no-deps "spandrel>=0.4" einops)')
    except (ImportError, RuntimeError, AttributeError):  # a torchvision that does not fit this torch
        pass
    drop("spandrel")
    drop("torchvision")
    sys.path.insert(0, str(STUBS))
    try:
        return importlib.import_module("spandrel")
    finally:
        sys.path.remove(str(STUBS))
        drop("torchvision")  # the stand-in served this one import; nothing else may see it
