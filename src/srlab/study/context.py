"""What a study run knows: the protocol constants, :class:`RunSpec` (one training run), :class:`Context`
(the spec plus what each step found, dumped to ``reproduce.json``) and small helpers every step uses."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from srlab.eval.protocols import get_protocol
from srlab.study.spec import StudySpec

# ---------------------------------------------------------------------------------------------- protocols
# Lookups read off srlab.eval.protocols (the only place a protocol is defined), plus the short names the report
# prints. A spec chooses which protocols a run uses (ctx.protocols) and its scale (ctx.scale).
PROTOCOLS = ("study", "standard")
SCALE = 2  # the study's; a spec's own is ctx.scale
METRIC_CHANNEL = {p: get_protocol(p).metric_channel for p in PROTOCOLS}
INTERP_OF = {p: get_protocol(p).interpolation for p in PROTOCOLS}
DEGRADATION_OF = {p: get_protocol(p).degradation for p in PROTOCOLS}
SHORT_DEG = {"study": "study (bilinear)", "standard": "standard (MATLAB bicubic)"}
DEGRADATION_TEXT = {
    "study": "bilinear /2 without antialiasing, float LR (the study's)",
    "standard": "MATLAB bicubic /2, LR rounded to uint8",
}


# ------------------------------------------------------------------------------------------------ context
@dataclass
class RunSpec:
    """One training run: a recipe plus overrides, and which exported stage makes which table row."""

    key: str  # e.g. "srcnn_trained-study"
    model: str  # the spec's model key
    protocol: str  # the degradation it is trained on
    recipe: str  # config name in configs/ (or a path)
    overrides: dict[str, Any]
    outputs: dict[str, str]  # stage name -> row key ("srcnn", "esrgan_psnr", "esrgan_gan")
    identity_init: bool = False
    notes: list[str] = field(default_factory=list)
    train_set: str = ""  # the data set it trains on
    family: str = ""  # the network's architecture (registry name)

    def label(self, row: str) -> str:
        return f"{row.replace('_', '-')}_trained-{self.protocol}"


@dataclass
class Context:
    """Everything a reproduce run knows; filled step by step and dumped to reproduce.json."""

    spec: StudySpec
    out: Path
    data_root: Path | None
    device: str
    budget: float | None
    say: Callable[[str], None]
    started: float = field(default_factory=time.time)
    factor: float = 1.0
    notes: list[str] = field(default_factory=list)  # substitutions, loud things
    missing: list[dict] = field(default_factory=list)  # missing test roles (with where to get them)
    missing_inputs: list[dict] = field(default_factory=list)  # training sets, weights (see study.preview)
    roles: dict[str, dict] = field(default_factory=dict)  # role -> {dataset, path, n, source}
    train_set: dict = field(default_factory=dict)  # the spec's data.train, when found
    train_sets: dict[str, dict] = field(default_factory=dict)  # set name -> {name, path, images}
    val_set: str | None = None
    runs: list[dict] = field(default_factory=list)
    models: dict[str, dict] = field(default_factory=dict)  # label -> {path, row, protocol, ...}
    pretrained: dict | None = None
    references: dict[str, dict] = field(default_factory=dict)  # row -> what prepare_pretrained made
    results: dict[str, dict] = field(default_factory=dict)  # protocol -> {rows, header, files}
    panels: dict[str, dict] = field(default_factory=dict)
    figures: list[dict] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    threads: list[dict] = field(default_factory=list)  # CPU threads chosen per phase (see adapt_threads)
    perceptual: set = field(default_factory=set)
    base_threads: int = 1
    # the pretrained reference prepare_pretrained is asked for: (row key, Reference)
    reference: tuple[str, Any] | None = None

    @property
    def profile(self) -> StudySpec:
        """The spec (``name``, ``summary``, ``nominal_minutes``, ``nominal_hardware``, ``needs_data_root``)."""
        return self.spec

    @property
    def scale(self) -> int:
        return self.spec.scale

    @property
    def protocols(self) -> list[str]:
        return list(self.spec.protocols)

    @property
    def role_info(self) -> dict[str, dict[str, Any]]:
        """The spec's test roles as plain mappings, in the spec's order."""
        return {k: r.model_dump() for k, r in self.spec.roles.items()}

    @property
    def quick(self) -> SimpleNamespace:
        """Two settings other modules read: whether a pretrained row is wanted, and the role image cap."""
        caps = [r.max_images for r in self.spec.roles.values()]
        return SimpleNamespace(
            pretrained=any(m.pretrained for m in self.spec.models.values()),
            max_role_images=max(caps) if caps else 0,
        )


# ------------------------------------------------------------------------------------------------ helpers
def rel(p: Path | str) -> str:
    """A path as a user would type it from the current directory (relative when below it)."""
    p = Path(p).resolve()
    try:
        return str(p.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(p)


def shell(s: str) -> str:
    import shlex

    return shlex.quote(s)


def write_png(path: Path, arr) -> None:
    from srlab.imaging.io import write_image

    path.parent.mkdir(parents=True, exist_ok=True)
    write_image(path, arr, overwrite=True)


def fresh_dir(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def read_rgb(path: Path):
    import numpy as np

    from srlab.imaging.io import read_image

    img = read_image(path)
    px = img.pixels
    if px.dtype != np.uint8:
        px = np.round(px.astype(np.float64) / 257.0).astype(np.uint8)
    if px.ndim == 2:
        px = px[..., None]
    if px.shape[2] == 1:
        px = np.repeat(px, 3, axis=2)
    return np.ascontiguousarray(px[..., :3])


def adapt_threads(ctx: Context, phase: str) -> None:
    """On the CPU, use only the cores other processes leave free (:func:`srlab.runtime.free_cores`) and
    record the choice for the report."""
    import os

    import torch

    from srlab.runtime import free_cores, resolve_device

    if resolve_device(ctx.device).type != "cpu":
        return
    base = ctx.base_threads
    k, busy = free_cores(base)
    if busy is None:
        return
    cores = os.cpu_count() or 1
    if k != torch.get_num_threads():
        torch.set_num_threads(k)
    ctx.threads.append({"phase": phase, "threads": k, "busy_cores": round(busy, 2), "cores": cores})
    if k < base:
        ctx.say(
            f"    (other processes keep {busy:.1f} of {cores} cores busy: using {k} thread{'s' * (k > 1)})"
        )
