"""Small helpers the stages share: paths as a user types them, fresh folders, 8-bit RGB images, the CPU
thread choice and a protocol's short name."""

from __future__ import annotations

import os
import shlex
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from srlab.eval.protocols import get_protocol
from srlab.imaging.arrays import as_hwc, to_depth
from srlab.imaging.io import read_image, write_image
from srlab.runtime import free_cores, resolve_device


def rel(p: Path | str) -> str:
    """A path as a user would type it from the current directory (relative when below it)."""
    p = Path(p).resolve()
    try:
        return str(p.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(p)


def shell(s: str) -> str:
    return shlex.quote(s)


def write_png(path: Path, arr) -> None:
    write_image(path, arr, overwrite=True)


def fresh_dir(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def rgb8(px):
    """An image array (HW, HW1 or HW3; uint8 or uint16) as contiguous 8-bit RGB (grey replicated)."""

    a = to_depth(as_hwc(px), 8)
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    return np.ascontiguousarray(a)


def read_rgb(path: Path):
    px = read_image(path).pixels
    return rgb8(px[..., :3] if px.ndim == 3 else px)


def trained_on(protocol: str) -> str:
    """A protocol's degradation in a few words (the 'trained on' column)."""
    p = get_protocol(protocol)
    return f"{p.name} ({p.interpolation})"


def adapt_threads(device: str, base: int, phase: str, say: Callable[[str], None]) -> dict | None:
    """On the CPU, use only the cores other processes leave free (:func:`srlab.runtime.free_cores`); the
    choice, for the report (None: not measured, nothing changed)."""

    if resolve_device(device).type != "cpu":
        return None
    k, busy = free_cores(base)
    if busy is None:
        return None
    cores = os.cpu_count() or 1
    if k != torch.get_num_threads():
        torch.set_num_threads(k)
    if k < base:
        say(f"    (other processes keep {busy:.1f} of {cores} cores busy: using {k} thread{'s' * (k > 1)})")
    return {"phase": phase, "threads": k, "busy_cores": round(busy, 2), "cores": cores}
