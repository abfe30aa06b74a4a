"""What a study run knows: the protocol constants, the study's roles and published numbers, the profiles,
:class:`Context` (filled step by step, dumped to ``reproduce.json``) and small helpers every step uses."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from srlab.protocols import get_protocol

# ---------------------------------------------------------------------------------------------- protocols
# The study runs both protocols of srlab.protocols (the only place a protocol is defined); these lookups
# are read off them, plus the short names the report prints.
SCALE = 2
PROTOCOLS = ("study", "standard")
METRIC_CHANNEL = {p: get_protocol(p).metric_channel for p in PROTOCOLS}
INTERP_OF = {p: get_protocol(p).interpolation for p in PROTOCOLS}
DEGRADATION_OF = {p: get_protocol(p).degradation for p in PROTOCOLS}
SHORT_DEG = {"study": "study (bilinear)", "standard": "standard (MATLAB bicubic)"}
DEGRADATION_TEXT = {
    "study": "bilinear /2 without antialiasing, float LR (the study's)",
    "standard": "MATLAB bicubic /2, LR rounded to uint8",
}

# ---------------------------------------------------------------------------------------- roles and rows
ROLES = ("natural", "faces", "anime")

# The study's published numbers (its Tables 1 and 2): PSNR in dB / SSIM (x100 in the paper), RGB, no crop,
# under its own protocol. Its pretrained-ESRGAN SSIM was computed on the wrong channel axis.
PUBLISHED: dict[str, dict[str, tuple[float, float]]] = {
    "srcnn": {"natural": (29.1, 0.867), "faces": (29.2, 0.907), "anime": (27.9, 0.909)},
    "esrgan_gan": {"natural": (29.5, 0.869), "faces": (30.2, 0.914), "anime": (30.3, 0.933)},
    "pretrained": {"natural": (26.5, 0.959), "faces": (26.4, 0.969), "anime": (23.6, 0.971)},
}
PUBLISHED_NOTE = (
    "the study's published numbers (its Tables 1-2: RGB, no border crop, its own protocol; SSIM printed x100 "
    "there). Its pretrained-ESRGAN SSIM was computed on the wrong channel axis, so that column is not "
    "comparable."
)

ROLE_INFO: dict[str, dict[str, Any]] = {
    "natural": {
        "title": "natural photos",
        "study_set": "DIV2K valid (0801-0900), 128x128 centre crops",
        "sets": ("DIV2K_valid_HR",),
        "fallback": ("B100", "Set14"),
    },
    "faces": {
        "title": "faces",
        "study_set": "FFHQ 128x128 thumbnails",
        "sets": ("FFHQ_thumbnails128",),
        "fallback": (),
    },
    "anime": {
        "title": "anime",
        "study_set": "selfie2anime testB, 256x256",
        "sets": ("selfie2anime",),
        "fallback": (),
    },
}

# Rows of the study-layout tables, in order. Keys of trained rows are completed with the protocol.
ROW_TITLES = {
    "bilinear": "Bilinear (the study's interpolation)",
    "bicubic": "Bicubic (MATLAB imresize)",
    "srcnn": "SRCNN (ours)",
    "esrgan_psnr": "ESRGAN, PSNR-oriented stage (ours)",
    "esrgan_gan": "ESRGAN, GAN stage (ours)",
    "pretrained": "Pretrained ESRGAN",
}
TRAINED = ("srcnn", "esrgan_psnr", "esrgan_gan")

# scikit-image's bundled sample images (public domain / CC0, see skimage/data/README.txt).
SAMPLE_TEST = ("astronaut", "chelsea", "coffee", "rocket")
SAMPLE_VAL = ("ihc",)
SAMPLE_TRAIN = (
    "coins",
    "page",
    "text",
    "camera",
    "brick",
    "grass",
    "gravel",
    "moon",
    "motorcycle_left",
    "hubble_deep_field",
    "retina",
)


# ----------------------------------------------------------------------------------------------- profiles
@dataclass(frozen=True)
class QuickSettings:
    """Sizes of the quick profile (tests shrink them; the report prints them)."""

    test_crop: int = 128  # HR test crops of the sample images (the study's size)
    crops_per_image: int = 3  # natural-role crops per test image
    test_images: int = 0  # how many of the sample test photos (0 = all four)
    train_images: int = 0  # how many of the sample training images (0 = all)
    val_crops: int = 2
    max_role_images: int = 16  # cap per role with --data-root (evenly spaced subset)
    patch: int = 32  # HR training patch
    srcnn_iters: int = 600
    srcnn_batch: int = 16
    srcnn_features: tuple[int, int] = (64, 32)
    srcnn_lr: float = 1e-3
    rrdb_blocks: int = 1
    rrdb_features: int = 32
    rrdb_growth: int = 16
    psnr_iters: int = 800
    psnr_batch: int = 8
    psnr_lr: float = 2e-4
    gan_iters: int = 150
    gan_batch: int = 4
    gan_lr: float = 1e-4
    d_features: int = 32
    val_every: int = 0  # 0: four validations per stage
    pretrained: bool = True


@dataclass(frozen=True)
class Profile:
    name: str
    summary: str
    nominal_minutes: float  # what the iteration counts are sized for (``--budget`` scales them)
    nominal_hardware: str
    needs_data_root: bool


PROFILES: dict[str, Profile] = {
    "quick": Profile(
        "quick",
        "small models, short training, no download: scikit-image's sample images (or --data-root); "
        "a demonstration of the pipeline, not the study's numbers",
        8.0,
        "a 2-core CPU",
        False,
    ),
    "study": Profile(
        "study",
        "the study's settings (configs/srcnn_x2_study.yaml, configs/esrgan_x2_study.yaml): RGB SRCNN 9-5-5 and "
        "RRDBNet-16 ESRGAN trained on the 800 DIV2K 128x128 centre crops",
        90.0,
        "one H100-class GPU",
        True,
    ),
    "paper": Profile(
        "paper",
        "the papers' recipes at x2: SRCNN (Dong et al.: Y channel, T91 33x33 sub-images, configs/srcnn_x2_paper.yaml) "
        "and ESRGAN (Wang et al.: RRDBNet-23, L1 stage then RaGAN + VGG conv5_4, configs/esrgan_x4_paper.yaml at x2)",
        20 * 24 * 60.0,
        "one H100-class GPU",
        True,
    ),
}


@dataclass
class RunSpec:
    """One training run: a recipe plus overrides, and which exported stage makes which table row."""

    key: str  # e.g. "srcnn_trained-study"
    family: str  # "srcnn" | "esrgan"
    protocol: str  # the degradation it is trained on
    recipe: str  # config name in configs/
    overrides: dict[str, Any]
    outputs: dict[str, str]  # stage name -> row key ("srcnn", "esrgan_psnr", "esrgan_gan")
    identity_init: bool = False
    notes: list[str] = field(default_factory=list)

    def label(self, row: str) -> str:
        return f"{row.replace('_', '-')}_trained-{self.protocol}"


@dataclass
class Context:
    """Everything a reproduce run knows; filled step by step and dumped to reproduce.json."""

    profile: Profile
    out: Path
    data_root: Path | None
    device: str
    budget: float | None
    quick: QuickSettings
    say: Callable[[str], None]
    started: float = field(default_factory=time.time)
    factor: float = 1.0
    notes: list[str] = field(default_factory=list)  # substitutions, loud things
    missing: list[dict] = field(default_factory=list)
    roles: dict[str, dict] = field(default_factory=dict)  # role -> {dataset, path, n, source}
    train_set: dict = field(default_factory=dict)
    val_set: str | None = None
    runs: list[dict] = field(default_factory=list)
    models: dict[str, dict] = field(default_factory=dict)  # label -> {path, row, protocol, ...}
    pretrained: dict | None = None
    results: dict[str, dict] = field(default_factory=dict)  # protocol -> {rows, header, files}
    panels: dict[str, dict] = field(default_factory=dict)
    figures: list[dict] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    threads: list[dict] = field(default_factory=list)  # CPU threads chosen per phase (see adapt_threads)
    perceptual: set = field(default_factory=set)
    base_threads: int = 1


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
